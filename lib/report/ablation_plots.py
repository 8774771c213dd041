"""Figures of notebook 07 (ablations): the reliability diagram."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def reliability_diagram(tables: dict[bool, pd.DataFrame]) -> plt.Figure:
    """Observed frequency of cell pixels against mean predicted probability per bin, with and without TTA;
    the diagonal is perfect calibration."""
    fig, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], c="0.6", ls=":", label="perfectly calibrated")
    for tta, table in tables.items():
        axis.plot(table["mean probability"], table["observed frequency"], "o-", ms=4,
                  label="with TTA" if tta else "without TTA")
    axis.set(xlabel="mean predicted probability", ylabel="observed share of cell pixels", xlim=(0, 1), ylim=(0, 1))
    axis.legend(fontsize=8)
    fig.tight_layout()
    return fig
