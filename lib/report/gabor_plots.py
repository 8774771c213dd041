"""Figures of notebook 02 (the edge channel): the bank, one tile's responses, the edge map, value distributions."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..edges.gabor import orientations_deg
from .drawing import outline


def _bank_layout(stack: np.ndarray, gabor_cfg: dict, cmap: str, symmetric: bool) -> plt.Figure:
    """A wavelengths x orientations grid of kernels or responses, labelled."""
    rows, cols = len(gabor_cfg["wavelengths"]), gabor_cfg["orientations"]
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.75 * rows))
    for w, wavelength in enumerate(gabor_cfg["wavelengths"]):
        for o, theta in enumerate(orientations_deg(cols)):
            item = stack[w * cols + o]
            limit = np.abs(item).max() if symmetric else None
            axes[w, o].imshow(item, cmap=cmap, vmin=-limit if symmetric else None, vmax=limit)
            axes[w, o].set_xticks([])
            axes[w, o].set_yticks([])
            if w == 0:
                axes[w, o].set_title(f"θ = {theta:g}°", fontsize=9)
        axes[w, 0].set_ylabel(f"λ = {wavelength:g} px", fontsize=9)
    fig.tight_layout()
    return fig


def gabor_bank_grid(bank: np.ndarray, gabor_cfg: dict) -> plt.Figure:
    """The kernels of the bank (red positive, blue negative)."""
    return _bank_layout(bank, gabor_cfg, "RdBu_r", symmetric=True)


def response_grid(responses: np.ndarray, gabor_cfg: dict) -> plt.Figure:
    """One tile's response to every kernel."""
    return _bank_layout(responses, gabor_cfg, "magma", symmetric=False)


def edge_map_panel(image: np.ndarray, edge: np.ndarray, mask: np.ndarray) -> plt.Figure:
    """Tile, its edge map, and the edge map with the ground-truth boundaries in green."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9))
    axes[0].imshow(outline(image, mask))
    axes[0].set_title("tile, annotated cells")
    shown = axes[1].imshow(edge, cmap="magma", vmin=0, vmax=1)
    axes[1].set_title("edge map (max over the bank)")
    fig.colorbar(shown, ax=axes[1], fraction=0.046)
    coloured = (plt.get_cmap("magma")(np.asarray(edge, np.float32))[..., :3] * 255).astype(np.uint8)
    axes[2].imshow(outline(coloured, mask))
    axes[2].set_title("edge map + ground-truth boundaries")
    for axis in axes:
        axis.axis("off")
    fig.tight_layout()
    return fig


def edge_value_distributions(frame: pd.DataFrame) -> plt.Figure:
    """Edge-map values on boundary, interior and background pixels."""
    fig, axis = plt.subplots(figsize=(7, 3.6))
    sns.histplot(frame, x="edge value", hue="pixel class", stat="density", common_norm=False, element="step",
                 bins=50, ax=axis)
    axis.set(xlim=(0, 1), title="edge-map values per pixel class (inside the annotated region)")
    fig.tight_layout()
    return fig


def map_row(maps: dict[str, np.ndarray]) -> plt.Figure:
    """Several maps side by side, each titled (for comparing open choices)."""
    fig, axes = plt.subplots(1, len(maps), figsize=(2.6 * len(maps), 2.9))
    for axis, (title, values) in zip(np.atleast_1d(axes), maps.items()):
        axis.imshow(values, cmap="magma", vmin=0, vmax=1)
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    fig.tight_layout()
    return fig
