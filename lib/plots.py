"""Figures and tables of the notebooks, saved under `figures/<dataset>/<profile>/` (named after the notebook)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Rectangle
from skimage.segmentation import find_boundaries

from .io import find_pairs, load_pair, write_text_atomic
from .tiles import TileSet
from .tiling import SPLITS, annotated_region

SPLIT_COLOURS = dict(zip(SPLITS, sns.color_palette("colorblind", 3)))


def save_figure(fig: plt.Figure, folder: Path, name: str) -> Path:
    """PNG at 120 dpi; the notebook still shows the figure inline."""
    path = Path(folder) / f"{name}.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def save_table(frame: pd.DataFrame, folder: Path, name: str, digits: int = 2) -> Path:
    """The same table as CSV (full precision) and Markdown (rounded), written atomically."""
    base = Path(folder) / name
    write_text_atomic(base.with_suffix(".csv"), frame.to_csv())
    write_text_atomic(base.with_suffix(".md"), frame.round(digits).to_markdown() + "\n")
    return base.with_suffix(".csv")


def foreground_share_histogram(tiles: TileSet) -> plt.Figure:
    """Share of cell pixels per tile, per split (tiles without cells counted at the left edge)."""
    table = tiles.table.assign(share=100 * tiles.table["cell_pixels"] / tiles.table["tile_pixels"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    sns.histplot(table, x="share", hue="split", hue_order=SPLITS, palette=SPLIT_COLOURS, bins=40, stat="percent",
                 common_norm=False, element="step", ax=axes[0])
    axes[0].set(xlabel="cell pixels in the tile (%)", ylabel="tiles of the split (%)", title="all tiles")
    positive = table[table["has_cells"]]
    sns.histplot(positive, x="share", hue="split", hue_order=SPLITS, palette=SPLIT_COLOURS, bins=30,
                 stat="percent", common_norm=False, element="step", log_scale=True, ax=axes[1])
    axes[1].set(xlabel="cell pixels in the tile (%, log)", ylabel="", title="tiles with cells")
    fig.tight_layout()
    return fig


def object_distributions(tiles: TileSet) -> plt.Figure:
    """Connected-component sizes and the number of components per tile with cells, per split."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    sns.histplot(tiles.objects, x="area_px", hue="split", hue_order=SPLITS, palette=SPLIT_COLOURS, bins=40,
                 log_scale=True, stat="percent", common_norm=False, element="step", ax=axes[0])
    axes[0].set(xlabel="object area (px at tile resolution, log)", ylabel="objects of the split (%)")
    positive = tiles.table[tiles.table["has_cells"]]
    sns.boxplot(positive, x="split", y="n_objects", order=SPLITS, hue="split", palette=SPLIT_COLOURS, ax=axes[1])
    axes[1].set(xlabel="", ylabel="objects per tile with cells")
    fig.tight_layout()
    return fig


def outline(image: np.ndarray, mask: np.ndarray, colour=(0, 255, 0)) -> np.ndarray:
    """The image with the mask's boundary pixels painted in `colour`."""
    out = np.array(image, copy=True)
    out[find_boundaries(np.asarray(mask, bool), mode="inner")] = colour
    return out


def example_grid(tiles: TileSet, per_row: int = 6, seed: int = 0) -> plt.Figure:
    """Tiles of each split (half with cells, half without), mask outlines in green."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(SPLITS), per_row, figsize=(2.1 * per_row, 2.3 * len(SPLITS)))
    for row, split in enumerate(SPLITS):
        part = tiles.table[tiles.table["split"] == split]
        chosen = []
        for has_cells, count in ((True, per_row - per_row // 2), (False, per_row // 2)):
            pool = part.index[part["has_cells"] == has_cells].to_numpy()
            chosen += list(rng.choice(pool, min(count, len(pool)), replace=False))
        for col, axis in enumerate(axes[row]):
            axis.axis("off")
            if col < len(chosen):
                i = chosen[col]
                axis.imshow(outline(tiles.images[i], tiles.masks[i]))
                axis.set_title(f"{split} · {100 * tiles.table.cell_pixels[i] / tiles.table.tile_pixels[i]:.1f}% cells",
                               fontsize=8)
    fig.tight_layout()
    return fig


def source_overview(tiles: TileSet, data_dir: str | Path, stem: str) -> plt.Figure:
    """One source image: annotated cells (green), annotated region (yellow), tiles (blue: with cells)."""
    pair = next(p for p in find_pairs(data_dir) if p.stem == stem)
    image, mask = load_pair(pair)
    size, dilation = tiles.meta["data"]["tile_size"], tiles.meta["data"]["region_dilation"]
    region = annotated_region(mask, dilation)
    shown = outline(outline(image, mask), region, colour=(255, 210, 0))
    fig, axis = plt.subplots(figsize=(8, 7))
    axis.imshow(shown)
    rows = tiles.table[tiles.table["source"] == stem]
    for _, tile in rows.iterrows():
        axis.add_patch(Rectangle((tile.x, tile.y), size, size, fill=False, lw=1.5 if tile.has_cells else 0.8,
                                 ec="tab:blue" if tile.has_cells else "0.3", ls="-" if tile.has_cells else ":"))
    axis.set_title(f"{stem} ({rows.split.iloc[0]} split): {len(rows)} tiles, "
                   f"{int(rows.has_cells.sum())} with annotated cells")
    axis.axis("off")
    fig.tight_layout()
    return fig


def _bank_layout(stack: np.ndarray, gabor_cfg: dict, cmap: str, symmetric: bool) -> plt.Figure:
    """A wavelengths x orientations grid of kernels or responses, labelled."""
    from .gabor import orientations_deg
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


def training_curves(history: pd.DataFrame, title: str = "", targets: tuple[float, ...] = ()) -> plt.Figure:
    """Paper Fig. 2 layout: (a) losses, (b) validation Dice raw and EMA, (c) validation IoU; selected epoch
    marked, flagged outlier epochs crossed, optional horizontal target lines on (b) (labelled as the paper's)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    epochs = history["epoch"]
    axes[0].plot(epochs, history["train_loss"], label="train")
    axes[0].plot(epochs, history["val_loss"], label="validation")
    axes[0].set(title="(a) loss", xlabel="epoch")
    axes[1].plot(epochs, history["val_dice"], alpha=0.5, label="validation Dice")
    axes[1].plot(epochs, history["ema_dice"], label="EMA (α 0.9)")
    for target in targets:
        axes[1].axhline(target, ls=":", c="0.5", lw=1)
        axes[1].text(epochs.iloc[0], target, f"{target:.0%} (paper's target line)", fontsize=7, va="bottom")
    axes[1].set(title="(b) validation Dice", xlabel="epoch", ylim=(0, 1))
    axes[2].plot(epochs, history["val_iou"], c="tab:green")
    axes[2].set(title="(c) validation IoU", xlabel="epoch", ylim=(0, 1))
    selected = history[history["selected"]].epoch.max() if history["selected"].any() else None
    for axis in axes:
        if selected is not None:
            axis.axvline(selected, c="tab:red", lw=1, ls="--", label=f"selected epoch {selected}")
        for epoch in history.loc[history["outlier"], "epoch"]:
            axis.axvline(epoch, c="k", lw=0.8, ls=":")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
