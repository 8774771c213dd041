"""Scoring what `python -m lib.inference` wrote for a folder of images against that dataset's truth, the way a user
would check a model on their own annotated images (the benchmarks on external and rescaled images use it).

Truth: `masks/<stem>.*` for pixels, every image; for objects `instances/<stem>.png` (0 = background, one label per
nucleus): a dataset with an `instances/` folder is scored as objects on the images it labels there only; one without
is scored on the connected components of every mask (8-connected), which merge touching nuclei.
With `region_dilation`, only the annotated region counts (the convex hull of the mask dilated by that many px,
`lib.data.tiling.annotated_region`), as for UCSB's partly annotated images. Counts are summed over the images, then
the scores (pooled), each with Fieller's interval over the images (`lib.evaluation.statistics`: the images are the
units). Two methods predicted on the same images are compared image by image (`paired_to`): the paired test of the
repository's other tables, Holm-adjusted over the measures compared.
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
from .instances import (
    INSTANCE_COUNTS,
    INSTANCE_METRICS,
    instance_counts,
    instance_intervals,
    instance_scores,
    pooled_instance_scores,
)
from .metrics import count_table, dice_interval, per_row, pooled
from .statistics import holm, paired_comparison, verdict

PAIRED_MEASURES = ("pixel Dice", "aji", "object_f1")  # what `paired_to` compares: the measures issue 26 sets targets on


def image_counts(data_dir: Path, predicted: Path,
                 region_dilation: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per image, indexed by its stem: the pixel counts (tp, fp, fn) of the `<stem>_labels.tif` in `predicted`
    against every image's mask, and the instance counts of the images scored as objects (module docstring)."""
    data_dir, predicted = Path(data_dir), Path(predicted)
    pixels, objects = {}, {}
    for pair in find_pairs(data_dir):
        labels_path = predicted / f"{pair.stem}_labels.tif"
        if not labels_path.is_file():
            raise FileNotFoundError(f"{labels_path} is missing: predict {pair.image_path} first")
        labels, mask = tifffile.imread(labels_path), read_mask(pair.mask_path)
        if labels.shape != mask.shape:
            raise ValueError(f"{labels_path} is {labels.shape[1]}x{labels.shape[0]}, its mask {mask.shape[1]}x{mask.shape[0]}")
        within = None if region_dilation is None else annotated_region(mask, region_dilation)
        pixels[pair.stem] = count_table(labels[None] > 0, mask[None], None if within is None else within[None])
        instances = data_dir / "instances" / f"{pair.stem}.png"
        if instances.is_file():
            objects[pair.stem] = instance_counts(np.asarray(Image.open(instances)), labels, within)
        elif not (data_dir / "instances").is_dir():
            objects[pair.stem] = instance_counts(label_objects(mask)[0], labels, within)
    return (pd.concat(pixels.values()).set_axis(list(pixels)),  # one row per image, dtypes kept
            pd.DataFrame.from_dict(objects, orient="index", columns=list(INSTANCE_COUNTS)))


def image_scores(pixels: pd.DataFrame, objects: pd.DataFrame) -> pd.DataFrame:
    """Per image (`image_counts`' tables): pixel Dice, and object F1, AJI and PQ where it is scored as objects (NaN
    elsewhere, and where a score is undefined)."""
    instance = pd.DataFrame([instance_scores(row) for _, row in objects.iterrows()], index=objects.index,
                            columns=list(INSTANCE_METRICS))
    return pd.DataFrame({"pixel Dice": per_row(pixels)["dice"]}).join(instance[["object_f1", "aji", "pq"]])


def pooled_scores(pixels: pd.DataFrame, objects: pd.DataFrame) -> dict[str, float]:
    """Pixel Dice pooled over every image, the instance scores over the images scored as objects, each ratio with
    Fieller's 95% interval over those images (`image_counts`' tables)."""
    scores, intervals = pooled_instance_scores(objects), instance_intervals(objects)
    low, high = dice_interval(pixels)
    return {"pixel Dice": pooled(pixels)["dice"], "pixel Dice 95% CI low": low, "pixel Dice 95% CI high": high,
            "images": len(pixels),
            "object_precision": scores["object_precision"], "object_recall": scores["object_recall"],
            **{column: value for key, (low, high) in intervals.items()  # each score beside its interval
               for column, value in ((key, scores[key]), (f"{key} 95% CI low", low), (f"{key} 95% CI high", high))},
            "images scored as objects": len(objects)}


def score_predictions(data_dir: Path, predicted: Path, region_dilation: int | None = None) -> dict[str, float]:
    """Pooled pixel Dice and instance scores of the `<stem>_labels.tif` in `predicted`, with their intervals
    (module docstring, `pooled_scores`)."""
    return pooled_scores(*image_counts(data_dir, predicted, region_dilation))


def paired_to(reference: pd.DataFrame, other: pd.DataFrame, reference_name: str) -> dict[str, float | str]:
    """`other` against `reference` (named `reference_name` in the keys) on the same images (`image_scores` tables):
    for each of `PAIRED_MEASURES`, the mean per-image difference (other minus reference, over the images where both
    are defined) with its sign-flip interval and its p-value Holm-adjusted over the measures, with the verdict
    (`lib.evaluation.statistics`)."""
    tests = {measure: paired_comparison((other[measure] - reference[measure].reindex(other.index)).to_numpy())
             for measure in PAIRED_MEASURES}
    adjusted = holm(np.array([test["p"] for test in tests.values()]))
    row = {}
    for (measure, test), p in zip(tests.items(), adjusted, strict=True):
        column = f"{measure} - {reference_name}"
        row |= {column: test["difference"], f"{column} 95% CI low": test["CI low"],
                f"{column} 95% CI high": test["CI high"], f"{column} images": test["units"],
                f"{column} Holm p": p, f"{column} verdict": verdict(test["difference"], p)}
    return row


def predict_and_score(arguments: list[str], data_dir: Path) -> tuple[dict[str, float], pd.DataFrame]:
    """`python -m lib.inference` with `arguments` (the method: `--run RUN ...` or `--classic`, and its options) on
    `data_dir`'s images, into a temporary folder, scored by `pooled_scores`, with the wall seconds it took and the
    median zoom the images were predicted at (1: at their own pixels; with `--mpp auto`, the scan's estimate); and each
    image's scores (`image_scores`)."""
    from ..inference import __main__ as predict_cli  # the command line itself, as a user runs it

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        predict_cli.main([*arguments, "--input", str(Path(data_dir) / "images"), "--output", out])
        seconds = time.perf_counter() - start
        pixels, objects = image_counts(data_dir, Path(out))
        return ({**pooled_scores(pixels, objects), "seconds": seconds, "zoom (median)": median_zoom(Path(out))},
                image_scores(pixels, objects))


def median_zoom(predicted: Path) -> float:
    """The median zoom that a `python -m lib.inference` output folder's images were predicted at (its cells.csv)."""
    return float(pd.read_csv(predicted / "cells.csv")["zoom"].median())
