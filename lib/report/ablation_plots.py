"""Figures of notebook 07 (ablations): the reliability diagram."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def reliability_diagram(tables: dict[str, pd.DataFrame], errors: dict[str, float]) -> plt.Figure:
    """Left: observed frequency of cell pixels against the mean predicted probability per bin, each arm labelled
    with its expected calibration error (the diagonal is perfect calibration). Right: how many pixels fall in
    each bin (log scale): most pixels are confident background, so most bins hold few pixels."""
    fig, (curve, counts) = plt.subplots(1, 2, figsize=(10, 4.2))
    curve.plot([0, 1], [0, 1], c="0.6", ls=":", label="perfectly calibrated")
    for arm, table in tables.items():
        curve.plot(table["mean probability"], table["observed frequency"], "o-", ms=4,
                   label=f"{arm} (ECE {errors[arm]:.3f})")
        width = 1 / len(table) if len(table) else 0.05
        counts.bar(table["bin low"] + width / 2, table["pixels"], width=width * 0.9, alpha=0.5, label=arm)
    curve.set(xlabel="mean predicted probability (bin)", ylabel="observed share of cell pixels", xlim=(0, 1),
              ylim=(0, 1), title="reliability (whole tile, all test pixels)")
    curve.legend(fontsize=8, loc="upper left")
    counts.set(yscale="log", xlabel="predicted probability (bin)", ylabel="test pixels", xlim=(0, 1),
               title="pixels per bin")
    counts.legend(fontsize=8)
    fig.tight_layout()
    return fig
