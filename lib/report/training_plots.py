"""Figures of notebooks 03 and 05 (training): curves of one run, the stability arms, every model's curve."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def training_curves(history: pd.DataFrame, title: str = "", targets: tuple[float, ...] = (),
                    alpha: float = 0.9) -> plt.Figure:
    """Paper Fig. 2 layout: (a) losses, (b) validation Dice, (c) validation IoU, each raw (thin) with its EMA
    (alpha 0.9, the selection rule's); selected epoch marked, flagged outlier epochs dotted, optional horizontal
    target lines on (b) (labelled as the paper's)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    epochs = history["epoch"]

    def raw_and_ema(axis: plt.Axes, column: str, label: str, colour: str) -> None:
        axis.plot(epochs, history[column], c=colour, alpha=0.35, lw=1)
        axis.plot(epochs, history[column].ewm(alpha=1 - alpha, adjust=False).mean(), c=colour, label=f"{label} (EMA)")

    raw_and_ema(axes[0], "train_loss", "train", "tab:blue")
    raw_and_ema(axes[0], "val_loss", "validation", "tab:orange")
    axes[0].set(title="(a) loss", xlabel="epoch")
    raw_and_ema(axes[1], "val_dice", "validation Dice", "tab:blue")
    for target in targets:
        axes[1].axhline(target, ls=":", c="0.5", lw=1)
    if targets:
        axes[1].text(epochs.iloc[0], max(targets), " / ".join(f"{t:.0%}" for t in targets) + " (paper's target lines)",
                     fontsize=7, va="bottom")
    axes[1].set(title="(b) validation Dice", xlabel="epoch", ylim=(0, 1))
    raw_and_ema(axes[2], "val_iou", "validation IoU", "tab:green")
    axes[2].set(title="(c) validation IoU", xlabel="epoch", ylim=(0, 1))
    selected = history[history["selected"].astype(bool)].epoch.max() if history["selected"].astype(bool).any() else None
    for axis in axes:
        if selected is not None:
            axis.axvline(selected, c="tab:red", lw=1, ls="--", label=f"selected epoch {selected}")
        for epoch in history.loc[history["outlier"].astype(bool), "epoch"]:
            axis.axvline(epoch, c="k", lw=0.8, ls=":")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def stability_curves(spread: pd.DataFrame, drop_epochs: pd.DataFrame) -> plt.Figure:
    """Validation Dice per epoch of every seed, one panel per arm; catastrophic drops marked with a cross."""
    arms = list(dict.fromkeys(spread.arm))
    fig, axes = plt.subplots(1, len(arms), figsize=(6 * len(arms), 3.8), sharey=True)
    for axis, arm in zip(np.atleast_1d(axes), arms):
        part = spread[spread.arm == arm]
        sns.lineplot(part, x="epoch", y="val_dice", hue="seed", palette="colorblind", marker="o", ms=3, ax=axis)
        marks = drop_epochs[drop_epochs.arm == arm]
        axis.scatter(marks.epoch, marks.to, marker="x", s=80, c="tab:red", zorder=5, label="catastrophic drop")
        axis.set(title=arm, ylim=(0, 1), ylabel="validation Dice")
        axis.legend(fontsize=7, title="seed", title_fontsize=7)
    fig.tight_layout()
    return fig


def ladder_curves(histories: dict[str, pd.DataFrame]) -> plt.Figure:
    """Validation Dice per epoch of every model on one figure."""
    fig, axis = plt.subplots(figsize=(9, 4))
    for label, history in histories.items():
        axis.plot(history.epoch, history.val_dice, marker="o", ms=3, label=label)
    axis.set(xlabel="epoch", ylabel="validation Dice", ylim=(0, 1), title="validation Dice of every model")
    axis.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
