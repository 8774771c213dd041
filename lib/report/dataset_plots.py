"""Figures of notebook 01 (the dataset): cell shares, object sizes, example tiles, one source image."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.patches import Rectangle

from ..data.reading import find_pairs, load_pair
from ..data.tiles import TileSet
from ..data.tiling import SPLITS, annotated_region
from .drawing import outline

SPLIT_COLOURS = dict(zip(SPLITS, sns.color_palette("colorblind", 3)))


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
