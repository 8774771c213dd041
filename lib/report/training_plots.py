"""Figures of notebooks 03 and 05 (training): curves of one run, the stability arms, every model's curve."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def training_curves(history: pd.DataFrame, title: str = "", targets: tuple[float, ...] = (),
                    alpha: float = 0.9) -> plt.Figure:
    """Paper Fig. 2 layout: (a) losses, (b) validation Dice, (c) validation IoU per epoch. The measured values
    are the solid lines; the thin dashed line is their EMA (alpha 0.9), which selects the checkpoint; the selected
    epoch is marked, flagged outlier epochs dotted, optional horizontal target lines on (b) labelled as the
    paper's. Validation scores are pooled over the validation tiles at threshold 0.5, whole tile, without TTA."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    epochs = history["epoch"]

    def measured_and_ema(axis: plt.Axes, column: str, label: str, colour: str) -> None:
        axis.plot(epochs, history[column], c=colour, lw=2, marker="o", ms=3, label=label)
        axis.plot(epochs, history[column].ewm(alpha=1 - alpha, adjust=False).mean(), c=colour, lw=1, ls="--",
                  label=f"{label}: EMA (selects the checkpoint)" if column == "val_dice" else f"{label}: EMA")

    measured_and_ema(axes[0], "train_loss", "training loss", "tab:blue")
    measured_and_ema(axes[0], "val_loss", "validation loss", "tab:orange")
    axes[0].set(title="(a) loss", xlabel="epoch", ylabel="loss")
    measured_and_ema(axes[1], "val_dice", "validation Dice", "tab:blue")
    for target in targets:
        axes[1].axhline(target, ls=":", c="0.5", lw=1)
    if targets:
        axes[1].text(epochs.iloc[0], max(targets), " / ".join(f"{t:.0%}" for t in targets) + " (the paper's targets)",
                     fontsize=7, va="bottom")
    axes[1].set(title="(b) validation Dice", xlabel="epoch", ylim=(0, 1),
                ylabel="Dice (pooled, threshold 0.5, whole tile)")
    measured_and_ema(axes[2], "val_iou", "validation IoU", "tab:green")
    axes[2].set(title="(c) validation IoU", xlabel="epoch", ylim=(0, 1), ylabel="IoU (pooled, threshold 0.5, whole tile)")
    selected = history[history["selected"].astype(bool)].epoch.max() if history["selected"].astype(bool).any() else None
    for axis in axes:
        if selected is not None:
            axis.axvline(selected, c="tab:red", lw=1, ls="-.", label=f"selected epoch {selected}")
        for epoch in history.loc[history["outlier"].astype(bool), "epoch"]:
            axis.axvline(epoch, c="k", lw=0.8, ls=":")
        axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
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
    """Validation Dice per epoch of every model, one small panel each on the same axes."""
    columns = min(4, len(histories))
    rows = -(-len(histories) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.6 * rows), sharex=True, sharey=True,
                             squeeze=False)
    for axis, (label, history) in zip(axes.flat, histories.items()):
        axis.plot(history.epoch, history.val_dice, marker="o", ms=3, c="tab:blue")
        axis.set(title=label, ylim=(0, 1))
        axis.title.set_size(9)
    for axis in axes.flat[len(histories):]:
        axis.axis("off")
    for axis in axes[-1]:
        axis.set_xlabel("epoch")
    for axis in axes[:, 0]:
        axis.set_ylabel("validation Dice")
    fig.suptitle("validation Dice of every model (pooled, threshold 0.5, whole tile)")
    fig.tight_layout()
    return fig
