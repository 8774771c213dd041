"""Figures of notebook 08 (efficiency): throughput per model and input size."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def throughput_chart(latency: pd.DataFrame) -> plt.Figure:
    """Images per second of every model (linear scale), one panel per input size, with and without TTA."""
    sizes = sorted(latency["size (px)"].unique())
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 0.45 * latency.model.nunique() + 1.8),
                             sharey=True, squeeze=False)
    for axis, size in zip(axes[0], sizes):
        part = latency[latency["size (px)"] == size].assign(TTA=lambda f: f.TTA.map({True: "with TTA", False: "no TTA"}))
        sns.barplot(part, x="images per second", y="model", hue="TTA", ax=axis)
        axis.set(title=f"{size} x {size} px", ylabel="")
        axis.legend(fontsize=8, loc="lower right", title="")
    fig.tight_layout()
    return fig
