"""Figures of notebook 09 (the budget sweep): each claim's effect against the budget, and quality against cost."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

VERDICT_COLOURS = {"supported": "tab:green", "contradicted": "tab:red", "inconclusive": "0.45", "no data": "0.8"}


def _point_labels(table: pd.DataFrame) -> list[str]:
    return [point.replace(", ", "\n") for point in table["point"]]


def claims_across_budgets(claims: pd.DataFrame) -> plt.Figure:
    """One panel per claim: the paired effect (ours - vs) with its 95% interval at each budget point, coloured by
    the Holm-adjusted verdict at that point; the dotted line is no effect."""
    names = list(dict.fromkeys(claims.claim))
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        rows = claims[claims.claim == name].reset_index(drop=True)
        x = np.arange(len(rows))
        ax.axhline(0, c="0.6", ls=":")
        for i, row in rows.iterrows():
            colour = VERDICT_COLOURS[row["verdict"]]
            ax.errorbar(x[i], row["effect"], yerr=[[row["effect"] - row["CI low"]], [row["CI high"] - row["effect"]]],
                        fmt="o", c=colour, capsize=4, label=row["verdict"])
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="best")
        ax.set_xticks(x, _point_labels(rows), fontsize=8)
        ax.set_title(textwrap.fill(name, 40), fontsize=9)
        ax.set_ylabel(f"{rows['measure'].iloc[0]}: {rows['ours'].iloc[0]} - {rows['vs'].iloc[0]}", fontsize=8)
    fig.suptitle("Each claim across training budgets (paired per test image, annotated region, 95% sign-flip "
                 "interval; colour: Holm-adjusted verdict at that point)", fontsize=10)
    fig.tight_layout()
    return fig


def quality_against_cost(quality: pd.DataFrame) -> plt.Figure:
    """Region Dice (pooled, Fieller 95% interval) of each model against its measured training seconds (all folds),
    one line per model through its points, full-resolution points filled; the classic pipeline (no training)
    at each input size as a dashed line."""
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    ax.set_xscale("log")
    for (model, rows), marker in zip(quality.groupby("model", sort=False), "os^", strict=False):
        rows = rows.sort_values("training seconds")
        line = ax.plot(rows["training seconds"], rows["Dice"], "-", alpha=0.5)[0]
        for _, row in rows.iterrows():
            ax.errorbar(row["training seconds"], row["Dice"], capsize=3, fmt=marker, c=line.get_color(),
                        mfc=line.get_color() if row["full resolution"] else "white",
                        yerr=[[row["Dice"] - row["Dice 95% CI low"]], [row["Dice 95% CI high"] - row["Dice"]]])
            ax.annotate(row["point"], (row["training seconds"], row["Dice"]),
                        textcoords="offset points", xytext=(5, -10), fontsize=7)
        ax.plot([], [], marker, c=line.get_color(), label=model)
    classic = quality.groupby("input px")["classic Dice"].first().sort_values()
    for i, (px, dice) in enumerate(classic.items()):  # labels stacked upwards from the lowest line: lines may be close
        ax.axhline(dice, ls="--", c="0.4", lw=1)
        ax.annotate(f"classic, {px} px input (no training): {dice:.3f}", (ax.get_xlim()[0], classic.iloc[0]),
                    textcoords="offset points", xytext=(4, 3 + 9 * i), fontsize=7, color="0.3")
    ax.set(xlabel="training seconds (all folds; see 'trained on')",
           ylabel="Dice, annotated region (pooled, 95% CI)",
           title="Quality against cost (filled: full resolution)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
