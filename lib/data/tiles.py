"""From a dataset to prepared tiles: cut (or generate), split, resize, and cache them on disk.

The prepared set lives in `data/prepared/<dataset>/<key>/`, where the key hashes the data config,
the seed and the source files, so every notebook of a run reads the same tiles and split:
`tiles.csv` (one row per tile: source image, coordinates, split, statistics), `objects.csv`
(objects per tile, their areas in source-image pixels), and `images.npy`, `masks.npy`, `regions.npy` and
`instances.npy` at the input size. The instances are the true nuclei, one label each: the synthetic generator's
own (it knows which cell each pixel belongs to), and for real data the connected components of the mask (8-connected,
`geometry.label_objects`), which merge touching nuclei that one annotated outline covers (UCSB's masks do).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from scipy import ndimage

from ..files import write_json_atomic
from ..paths import PREPARED_ROOT, data_folder, dataset_name
from ..progress import progress
from . import synthetic
from .geometry import label_objects, object_areas
from .reading import DatasetError, find_pairs, load_pair
from .tiling import SPLITS, annotated_region, fold_split, group_folds, group_labels, group_of, group_split, slide_of, tile_grid

PREPARED_FORMAT = 2  # 2: instances.npy added; part of the key, so older prepared folders are not read


@dataclass
class TileSet:
    """Prepared tiles of one dataset: a table plus memory-mapped arrays at the network input size."""

    name: str
    root: Path
    meta: dict       # meta.json: dataset, data folder, seed and the data config used
    table: pd.DataFrame
    objects: pd.DataFrame
    images: np.ndarray   # (N, S, S, 3) uint8
    masks: np.ndarray    # (N, S, S) uint8 in {0, 1}
    regions: np.ndarray  # (N, S, S) uint8 in {0, 1}: inside the annotated region
    instances: np.ndarray  # (N, S, S) uint16: the true nuclei, 0 = background (module docstring)

    def indices(self, split: str, fold: int | None = None) -> np.ndarray:
        """Row indices of the tiles of one split: of the single split, or of fold `fold` of the
        cross-validation (`lib.data.tiling`; the folds are dealt when the tiles are prepared)."""
        return np.flatnonzero(self.splits(fold) == split)

    def splits(self, fold: int | None = None) -> np.ndarray:
        """Each tile's split (train, val or test), for the single split or for one fold."""
        if fold is None:
            return self.table["split"].to_numpy()
        folds = self.meta["data"]["folds"]
        if not 0 <= fold < folds:
            raise ValueError(f"fold {fold} does not exist: data.folds is {folds} (folds 0 to {folds - 1})")
        groups = group_labels(self.table["group"], self.table["label"])
        fold_of = dict(zip(self.table["group"], self.table["fold"], strict=True))
        split = fold_split(groups, fold_of, fold, self.meta["data"]["split_proportions"], self.meta["seed"])
        return self.table["group"].map(split).to_numpy()


def _resize(stack: np.ndarray, size: int, binary: bool) -> np.ndarray:
    if stack.shape[1] == size:
        return stack.astype(np.uint8)
    out = [cv2.resize(item.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) for item in stack]
    return (np.stack(out) >= 0.5).astype(np.uint8) if binary else np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _resize_instances(labels: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Instance labels at the size of the resized `masks`: nearest-neighbour labels, cut to the mask, and every
    mask pixel the nearest label missed given the label of the nearest labelled pixel, so the union stays the mask."""
    size = masks.shape[1]
    out = np.zeros(masks.shape, np.uint16)
    for i, (label, mask) in enumerate(zip(labels, masks, strict=True)):
        nearest = label if label.shape[0] == size else cv2.resize(label, (size, size), interpolation=cv2.INTER_NEAREST)
        nearest = np.where(mask > 0, nearest, 0)
        if (missed := (mask > 0) & (nearest == 0)).any() and nearest.any():
            index = ndimage.distance_transform_edt(nearest == 0, return_distances=False, return_indices=True)
            nearest[missed] = nearest[index[0][missed], index[1][missed]]
        out[i] = nearest
    return out


def _tile_rows(masks: np.ndarray, min_cell_pixels: int) -> tuple[list[dict], list[dict]]:
    """Per-tile mask statistics and per-object areas, at tile resolution."""
    rows, objects = [], []
    for i, mask in enumerate(masks):
        areas = object_areas(mask)
        rows.append({"cell_pixels": int(mask.sum()), "tile_pixels": int(mask.size), "n_objects": len(areas),
                     "has_cells": bool(mask.sum() >= min_cell_pixels)})
        objects += [{"tile": i, "area_px": int(a)} for a in areas]
    return rows, objects


def _cut_real(data_dir: Path, data_cfg: dict[str, Any], seed: int):
    """Tiles of every source image, with the annotated region; whole groups (images or slides) per split."""
    pairs = find_pairs(data_dir)
    tile, stride = data_cfg["tile_size"], data_cfg["stride"]
    images, masks, regions, rows = [], [], [], []
    for pair in progress(pairs, desc=f"tiling {data_dir.name}", unit="image"):
        image, mask = load_pair(pair)
        if min(mask.shape) < tile:
            raise DatasetError(f"{pair.image_path} is {mask.shape[1]}x{mask.shape[0]}, smaller than the tile size {tile}")
        region = annotated_region(mask, data_cfg["region_dilation"])
        for y, x in tile_grid(*mask.shape, tile, stride):
            window = (slice(y, y + tile), slice(x, x + tile))
            images.append(image[window])
            masks.append(mask[window])
            regions.append(region[window])
            rows.append({"tile_id": f"{pair.stem}_y{y:04d}_x{x:04d}", "source": pair.stem, "label": pair.label,
                         "y": y, "x": x, "configuration": ""})
    table = pd.DataFrame(rows)
    table["slide"] = table["source"].map(lambda stem: slide_of(stem, data_cfg["slide_pattern"]))
    table["group"] = group_of(table["source"], data_cfg)
    groups = group_labels(table["group"], table["label"])
    if len(groups) < len(SPLITS):
        raise DatasetError(f"{data_dir}: {len(groups)} group(s) of source images (data.group_by: "
                           f"{data_cfg['group_by']}) cannot fill train, val and test; add images")
    table["split"] = table["group"].map(group_split(groups, data_cfg["split_proportions"], seed))
    masks = np.stack(masks)
    return np.stack(images), masks, np.stack(regions), np.stack([label_objects(m)[0] for m in masks]).astype(np.uint16), table


def _generate_synthetic(data_cfg: dict[str, Any], seed: int):
    """The embedded dataset; every target cell is annotated, so the annotated region is the whole tile."""
    size = data_cfg["tile_size"]
    images, instances, table = synthetic.generate(
        data_cfg["synthetic_counts"], data_cfg["synthetic_positive_share"], data_cfg["synthetic_cell_shares"],
        size, seed, data_cfg["synthetic_annotator_jitter"],
        progress=lambda plans: progress(plans, desc="generating synthetic tiles", unit="tile"))
    table.insert(0, "tile_id", [f"synthetic_{i:04d}" for i in range(len(table))])
    table.insert(1, "source", table["tile_id"])  # each tile is its own source: no leakage possible
    table.insert(2, "label", "unknown")
    table.insert(3, "y", 0)
    table.insert(4, "x", 0)
    table["slide"] = table["group"] = table["source"]
    masks = instances > 0
    return images, masks, np.ones_like(masks), instances, table


def _sources_fingerprint(data_dir: Path) -> str:
    """A hash of every source file's name and bytes (and the manifest's)."""
    digest = hashlib.sha256()
    for pair in find_pairs(data_dir):
        for path in (pair.image_path, pair.mask_path):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    manifest = data_dir / "manifest.csv"
    if manifest.is_file():
        digest.update(manifest.read_bytes())
    return digest.hexdigest()


def preparation_key(cfg: dict[str, Any], data_dir: str | Path | None) -> str:
    """A short hash of everything the prepared tiles depend on."""
    folder = data_folder(data_dir)
    source = f"synthetic-v{synthetic.GENERATOR_VERSION}" if folder is None else _sources_fingerprint(folder)
    payload = json.dumps({"data": cfg["data"], "seed": cfg["seed"], "source": source, "format": PREPARED_FORMAT},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def prepare(cfg: dict[str, Any], data_dir: str | Path | None = None, root: Path = PREPARED_ROOT) -> TileSet:
    """Prepared tiles for this config and dataset: loaded when they exist, else built and saved atomically."""
    name = dataset_name(data_dir)
    target = Path(root) / name / preparation_key(cfg, data_dir)
    if not (target / "meta.json").is_file():
        _build(cfg, data_dir, name, target)
    return load(target)


def _build(cfg: dict[str, Any], data_dir: str | Path | None, name: str, target: Path) -> None:
    data_cfg, seed, folder = cfg["data"], cfg["seed"], data_folder(data_dir)
    if folder is None:
        images, masks, regions, instances, table = _generate_synthetic(data_cfg, seed)
    else:
        images, masks, regions, instances, table = _cut_real(folder, data_cfg, seed)
        if not masks.any():  # nothing to segment: every score would be undefined
            raise DatasetError(f"{folder / 'masks'}: no mask holds a single foreground pixel; a segmentation "
                               "dataset needs annotated cells")
    stats, objects = _tile_rows(masks, data_cfg["min_cell_pixels"])
    table = pd.concat([table, pd.DataFrame(stats)], axis=1)
    groups = group_labels(table["group"], table["label"])
    table["fold"] = table["group"].map(group_folds(groups, data_cfg["folds"], seed)) if data_cfg["folds"] > 1 else 0
    table["region_pixels"] = regions.reshape(len(regions), -1).sum(1)
    for split in SPLITS:
        if not (table["split"] == split).any():
            raise DatasetError(f"split {split!r} of dataset {name!r} is empty; check split_proportions in the config")
    objects = pd.DataFrame(objects, columns=["tile", "area_px"])
    objects.insert(0, "tile_id", table["tile_id"].to_numpy()[objects["tile"].to_numpy()] if len(objects) else [])
    objects["split"] = table["split"].to_numpy()[objects["tile"].to_numpy()] if len(objects) else []

    size = data_cfg["input_size"]
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "images.npy", _resize(images, size, binary=False))
    resized_masks = _resize(masks, size, binary=True)
    np.save(tmp / "masks.npy", resized_masks)
    np.save(tmp / "instances.npy", _resize_instances(instances, resized_masks))
    np.save(tmp / "regions.npy", _resize(regions, size, binary=True))
    table.to_csv(tmp / "tiles.csv", index=False)
    objects.drop(columns="tile").to_csv(tmp / "objects.csv", index=False)
    source = "" if folder is None else str(folder)
    write_json_atomic(tmp / "meta.json", {"dataset": name, "data_dir": source, "seed": seed, "data": data_cfg,
                                          "n_tiles": len(table)})
    try:
        os.rename(tmp, target)
    except OSError:  # another process finished the same preparation first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)


def load(root: str | Path) -> TileSet:
    """Open a prepared tile set (arrays memory-mapped)."""
    root = Path(root)
    meta = json.loads((root / "meta.json").read_text())
    arrays = {name: np.load(root / f"{name}.npy", mmap_mode="r") for name in ("images", "masks", "regions", "instances")}
    table = pd.read_csv(root / "tiles.csv", keep_default_na=False)
    return TileSet(meta["dataset"], root, meta, table, pd.read_csv(root / "objects.csv"), **arrays)
