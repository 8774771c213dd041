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


def training_curves(history: pd.DataFrame, title: str = "", targets: tuple[float, ...] = (),
                    alpha: float = 0.9) -> plt.Figure:
    """Paper Fig. 2 layout: (a) losses, (b) validation Dice, (c) validation IoU, each raw (thin) with its EMA
    (alpha 0.9, the selection rule's); selected epoch marked, flagged outlier epochs dotted, optional horizontal
    target lines on (b) (labelled as the paper's)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    epochs = history["epoch"]

    def raw_and_ema(axis, column, label, colour):
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


def dice_distributions(frame: pd.DataFrame) -> plt.Figure:
    """Per-tile test Dice of every model (tiles with cells), box plot with the tiles drawn over it."""
    positive = frame[frame["cell share"] > 0]
    fig, axis = plt.subplots(figsize=(11, 0.5 * positive.model.nunique() + 1.5))
    sns.boxplot(positive, x="Dice", y="model", color="0.9", showfliers=False, ax=axis)
    sns.stripplot(positive, x="Dice", y="model", size=2.5, alpha=0.5, color="tab:blue", ax=axis)
    axis.set(xlim=(0, 1), ylabel="", title="test Dice per tile (tiles with cells)")
    fig.tight_layout()
    return fig


def dice_against_cell_share(frame: pd.DataFrame) -> plt.Figure:
    """Per-tile Dice against the share of cell pixels in the tile (log scale), one colour per model."""
    positive = frame[frame["cell share"] > 0]
    fig, axis = plt.subplots(figsize=(9, 4.5))
    sns.scatterplot(positive, x="cell share", y="Dice", hue="model", s=14, alpha=0.7, ax=axis)
    axis.set(xscale="log", ylim=(0, 1), xlabel="cell pixels in the tile (share, log)", ylabel="test Dice")
    axis.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


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


def contrast_stretch(image: np.ndarray, low: float = 1, high: float = 99) -> np.ndarray:
    """Linear stretch of each channel between its `low` and `high` percentiles, to [0, 1]."""
    image = np.asarray(image, np.float32)
    lo, hi = np.percentile(image, low, axis=(0, 1)), np.percentile(image, high, axis=(0, 1))
    return np.clip((image - lo) / np.maximum(hi - lo, 1e-6), 0, 1)


def qualitative_cases(images, masks, probabilities, threshold: float, titles: list[str]) -> plt.Figure:
    """Paper Fig. 3 layout, one row per case: input (linear contrast stretch), ground truth, probability heat
    map, overlay (true positives green, false positives red, false negatives blue) and error map (probability
    minus ground truth: red where it over-calls, blue where it misses)."""
    fig, axes = plt.subplots(len(images), 5, figsize=(15, 3.1 * len(images)), squeeze=False)
    for row, (image, mask, probability, title) in enumerate(zip(images, masks, probabilities, titles)):
        mask, pred = np.asarray(mask, bool), probability >= threshold
        overlay = contrast_stretch(image) * 0.55
        for colour, where in (((0, 1, 0), pred & mask), ((1, 0, 0), pred & ~mask), ((0, 0.4, 1), ~pred & mask)):
            overlay[where] = colour
        panels = [(contrast_stretch(image), None), (mask, "gray"), (probability, "magma"), (overlay, None),
                  (probability - mask, "coolwarm")]
        for column, (panel, cmap) in enumerate(panels):
            axis = axes[row, column]
            limits = {"vmin": -1, "vmax": 1} if column == 4 else ({"vmin": 0, "vmax": 1} if cmap else {})
            shown = axis.imshow(panel, cmap=cmap, **limits)
            axis.set_xticks([]), axis.set_yticks([])
            if column in (2, 4):
                fig.colorbar(shown, ax=axis, fraction=0.046)
        axes[row, 0].set_ylabel(title, fontsize=9)
    for column, name in enumerate(["input (contrast stretched)", "ground truth", "probability",
                                   "overlay: TP green, FP red, FN blue", "error: probability - truth"]):
        axes[0, column].set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def cases_overview(table: pd.DataFrame, chosen: pd.DataFrame) -> plt.Figure:
    """Every test tile's Dice against its cell count, coloured by ring score, the chosen cases labelled."""
    fig, axis = plt.subplots(figsize=(7, 4))
    shown = axis.scatter(table.cells, table.Dice, c=table["ring score"], cmap="viridis", s=18)
    for case, row in chosen.iterrows():
        axis.annotate(case, (row.cells, row.Dice), fontsize=8, xytext=(4, 4), textcoords="offset points")
    axis.set(xlabel="cells in the tile", ylabel="test Dice", ylim=(0, 1.02))
    fig.colorbar(shown, label="ring score")
    fig.tight_layout()
    return fig


def throughput_chart(latency: pd.DataFrame) -> plt.Figure:
    """Images per second of every model (log scale), one panel per input size, with and without TTA."""
    sizes = sorted(latency["size (px)"].unique())
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 0.45 * latency.model.nunique() + 1.8),
                             sharey=True, squeeze=False)
    for axis, size in zip(axes[0], sizes):
        part = latency[latency["size (px)"] == size].assign(TTA=lambda f: f.TTA.map({True: "with TTA", False: "no TTA"}))
        sns.barplot(part, x="images per second", y="model", hue="TTA", ax=axis)
        axis.set(xscale="log", title=f"{size} x {size} px", ylabel="")
        axis.legend(fontsize=8)
    fig.tight_layout()
    return fig


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
