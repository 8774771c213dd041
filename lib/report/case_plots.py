"""Figures of notebook 06 (Fig. 3): the four cases and where they sit among all test tiles."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .drawing import FALSE_NEGATIVE, FALSE_POSITIVE, REGION, TRUE_POSITIVE, contrast_stretch, outline


def qualitative_cases(images: np.ndarray, masks: np.ndarray, regions: np.ndarray, probabilities: np.ndarray,
                      thresholds: np.ndarray, titles: list[str]) -> plt.Figure:
    """Paper Fig. 3 layout, one row per case: input (linear contrast stretch), ground truth, probability heat
    map, overlay at the case's threshold (true positives yellow, false positives vermillion, false negatives
    blue; the annotated region outlined in white, errors outside it are not errors) and error map (probability
    minus ground truth: orange where it over-calls, purple where it misses)."""
    fig, axes = plt.subplots(len(images), 5, figsize=(15, 3.1 * len(images)), squeeze=False)
    for row, (image, mask, region, probability, threshold, title) in enumerate(
            zip(images, masks, regions, probabilities, thresholds, titles, strict=True)):
        mask, region, pred = np.asarray(mask, bool), np.asarray(region, bool), probability >= threshold
        overlay = contrast_stretch(image) * 0.55
        for colour, where in ((TRUE_POSITIVE, pred & mask), (FALSE_POSITIVE, pred & ~mask & region),
                              (FALSE_NEGATIVE, ~pred & mask)):
            overlay[where] = colour
        overlay = outline(overlay, region, colour=REGION) if not region.all() else overlay
        panels = [(contrast_stretch(image), None), (mask, "gray"), (probability, "magma"), (overlay, None),
                  (probability - mask, "PuOr_r")]
        for column, (panel, cmap) in enumerate(panels):
            axis = axes[row, column]
            limits = {"vmin": -1, "vmax": 1} if column == 4 else ({"vmin": 0, "vmax": 1} if cmap else {})
            shown = axis.imshow(panel, cmap=cmap, **limits)
            axis.set_xticks([]), axis.set_yticks([])
            if column in (2, 4):
                fig.colorbar(shown, ax=axis, fraction=0.046)
        axes[row, 0].set_ylabel(title, fontsize=9)
        axes[row, 3].set_xlabel(f"threshold {threshold:.2f}", fontsize=8)
    for column, name in enumerate(["input (contrast stretched)", "ground truth", "probability",
                                   "overlay: TP yellow, FP vermillion, FN blue", "probability - truth"]):
        axes[0, column].set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def cases_overview(table: pd.DataFrame, chosen: pd.DataFrame) -> plt.Figure:
    """Every test tile's Dice against its cell count, coloured by ring score, the chosen cases labelled (tiles
    whose Dice is undefined, with neither cells nor predictions in the region, are not drawn)."""
    fig, axis = plt.subplots(figsize=(7, 4))
    shown = axis.scatter(table.cells, table.Dice, c=table["ring score"], cmap="viridis", s=18)
    for case, row in chosen.iterrows():
        axis.annotate(case, (row.cells, row.Dice), fontsize=8, xytext=(4, 4), textcoords="offset points")
    axis.set(xlabel="cells in the tile", ylabel="test Dice (annotated region)", ylim=(0, 1.02))
    fig.colorbar(shown, label="ring score")
    fig.tight_layout()
    return fig
