"""Scoring what `python -m lib.inference` wrote for a folder of images against that dataset's truth, the way a user
would check a model on their own annotated images (the benchmarks on external and rescaled images use it).

Truth: `masks/<stem>.*` for pixels, every image; for objects `instances/<stem>.png` (0 = background, one label per
nucleus): a dataset with an `instances/` folder is scored as objects on the images it labels there only; one without
is scored on the connected components of every mask (8-connected), which merge touching nuclei.
With `region_dilation`, only the annotated region counts (the convex hull of the mask dilated by that many px,
`lib.data.tiling.annotated_region`), as for UCSB's partly annotated images. Counts are summed over the images, then
the scores (pooled).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from PIL import Image

from ..data.geometry import label_objects
from ..data.reading import find_pairs, read_mask
from ..data.tiling import annotated_region
from .instances import instance_counts, pooled_instance_scores
from .metrics import count_table, pooled


def score_predictions(data_dir: Path, predicted: Path, region_dilation: int | None = None) -> dict[str, float]:
    """Pooled pixel Dice and instance scores of the `<stem>_labels.tif` in `predicted` (module docstring)."""
    data_dir, predicted = Path(data_dir), Path(predicted)
    pixels, objects = [], []
    for pair in find_pairs(data_dir):
        labels_path = predicted / f"{pair.stem}_labels.tif"
        if not labels_path.is_file():
            raise FileNotFoundError(f"{labels_path} is missing: predict {pair.image_path} first")
        labels, mask = tifffile.imread(labels_path), read_mask(pair.mask_path)
        if labels.shape != mask.shape:
            raise ValueError(f"{labels_path} is {labels.shape[1]}x{labels.shape[0]}, its mask {mask.shape[1]}x{mask.shape[0]}")
        within = None if region_dilation is None else annotated_region(mask, region_dilation)
        pixels.append(count_table(labels[None] > 0, mask[None], None if within is None else within[None]))
        instances = data_dir / "instances" / f"{pair.stem}.png"
        if instances.is_file():
            objects.append(instance_counts(np.asarray(Image.open(instances)), labels, within))
        elif not (data_dir / "instances").is_dir():
            objects.append(instance_counts(label_objects(mask)[0], labels, within))
    scores = pooled_instance_scores(pd.DataFrame(objects))
    return {"pixel Dice": pooled(pd.concat(pixels))["dice"], "images": len(pixels),
            **{key: scores[key] for key in ("object_precision", "object_recall", "object_f1", "aji", "pq")},
            "images scored as objects": len(objects)}


def predict_and_score(arguments: list[str], data_dir: Path) -> dict[str, float]:
    """`python -m lib.inference` with `arguments` (the method: `--run RUN ...` or `--classic`, and its options) on
    `data_dir`'s images, into a temporary folder, scored by `score_predictions`, with the wall seconds it took and the
    median zoom the images were predicted at (1: at their own pixels; with `--mpp auto`, the scan's estimate)."""
    from ..inference import __main__ as predict_cli  # the command line itself, as a user runs it

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        predict_cli.main([*arguments, "--input", str(Path(data_dir) / "images"), "--output", out])
        seconds = time.perf_counter() - start
        return {**score_predictions(data_dir, Path(out)), "seconds": seconds, "zoom (median)": median_zoom(Path(out))}


def median_zoom(predicted: Path) -> float:
    """The median zoom that a `python -m lib.inference` output folder's images were predicted at (its cells.csv)."""
    return float(pd.read_csv(predicted / "cells.csv")["zoom"].median())
