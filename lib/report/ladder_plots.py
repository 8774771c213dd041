"""Figures of notebook 04 (the model ladder): per-tile Dice, Dice against cell share, costs, active learning."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

JITTER_SEED = 0


def dice_distributions(frame: pd.DataFrame) -> plt.Figure:
    """Per-tile test Dice of every model (tiles with cells), box plot with the tiles drawn over it."""
    positive = frame[frame["cell share"] > 0]
    fig, axis = plt.subplots(figsize=(11, 0.5 * positive.model.nunique() + 1.5))
    sns.boxplot(positive, x="Dice", y="model", color="0.9", showfliers=False, ax=axis)
    state = np.random.get_state()  # seaborn jitters the tiles with numpy's global generator: seeded here, the same
    np.random.seed(JITTER_SEED)    # figure each time (and the caller's generator left as it was)
    try:
        sns.stripplot(positive, x="Dice", y="model", size=2.5, alpha=0.5, color="tab:blue", ax=axis)
    finally:
        np.random.set_state(state)
    axis.set(xlim=(0, 1), ylabel="", title=f"test Dice per tile, {positive.area.iloc[0]} (tiles with cells, each run "
                                           "at its validation-chosen threshold)")
    fig.tight_layout()
    return fig


def dice_against_cell_share(frame: pd.DataFrame) -> plt.Figure:
    """Per-tile Dice against the share of cell pixels in the tile (log scale), one small panel per model."""
    positive = frame[frame["cell share"] > 0]
    grid = sns.relplot(positive, x="cell share", y="Dice", col="model", col_wrap=4, s=12, alpha=0.6, height=2.4,
                       aspect=1.2, color="tab:blue")
    grid.set(xscale="log", ylim=(0, 1.02))
    grid.set_axis_labels("cell pixels in the tile (share, log)", f"test Dice, {positive.area.iloc[0]}")
    grid.set_titles("{col_name}", size=9)
    return grid.figure


def model_costs_chart(costs: pd.DataFrame) -> plt.Figure:
    """Bar charts of every column of a per-model cost table (parameters, FLOPs, ...)."""
    fig, axes = plt.subplots(1, len(costs.columns), figsize=(5 * len(costs.columns), 0.45 * len(costs) + 1.5),
                             sharey=True)
    for axis, column in zip(np.atleast_1d(axes), costs.columns):
        sns.barplot(x=costs[column], y=costs.index, color="tab:blue", ax=axis)
        axis.set(xlabel=column, ylabel="")
    fig.tight_layout()
    return fig


def active_learning_curve(curve: pd.DataFrame) -> plt.Figure:
    """Validation and test Dice after each active-learning round against the labelled training tiles."""
    fig, axis = plt.subplots(figsize=(6, 3.6))
    axis.plot(curve.labelled_tiles, curve.val_dice, "o-", label="validation Dice (selection)")
    axis.plot(curve.labelled_tiles, curve.test_dice_no_tta, "s-", label="test Dice (no TTA)")
    axis.set(xlabel="labelled training tiles", ylabel="Dice", ylim=(0, 1), title="active learning by MC-Dropout")
    axis.legend(fontsize=8)
    fig.tight_layout()
    return fig
