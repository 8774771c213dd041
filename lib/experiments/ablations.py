"""Ablations of the Enhanced model: the paper's claims (§IV) and the split protocol, each tested against a
variant retrained with one thing changed (notebook 07).

Every variant trains the Enhanced model on the same data, seeds and budget (`ablations.max_train_tiles`,
`ablations.epochs`: the same tiles, epochs and optimiser steps), in results/<dataset>/<setting>/ablation-<name>/;
with K folds (`data.folds`) on each fold, so that every source image is tested.

Measures are taken per test source image and inside the annotated region (on UCSB only one region per image is
annotated, and whole-tile scores would count correct detections of unlabeled nuclei as errors; on the synthetic
data the region is the whole tile); every row names its area. Dice: the image's counts pooled; boundary F1 at
2 px: mean over the image's tiles with a true boundary (`lib.evaluation.boundary`); small-object recall: the true
objects under `train.small_object_source_px` source pixels (converted to the input) that the prediction covers
at least half of. Each arm is cut at its own validation-chosen threshold (the TTA and no-TTA arms too).

An effect is the mean over images (and seeds) of ours - reference, with its sign-flip interval and p-value
(`lib.evaluation.statistics`). The p-values of one table are Holm-adjusted and the verdict follows from the
adjusted p-value: `supported` (better, p < 0.05), `contradicted` (worse, p < 0.05) or `inconclusive`.

The split protocol is measured paired, on the same test tiles and under the same budget: (1) half of every
test image's tiles train (the leaky split: they replace as many training tiles and leave the test set; both arms
are scored on the other half); (2) training images that share a slide with a test image are left out of
training (the same number of training tiles, drawn from the other slides).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import with_budget
from ..data.geometry import label_objects, source_area_to_input
from ..data.tiles import TileSet
from ..evaluation.boundary import boundary_table
from ..evaluation.metrics import count_table, per_group
from ..evaluation.statistics import holm, paired_comparison, verdict
from ..progress import progress
from ..report.paper import CLAIM_EFFECTS
from ..training.runs import Run, open_run, run_folds
from ..training.train import PoolTooSmallError, check_pool, train

BASELINE = "baseline"
# name: (what changes, config changes as {section: {key: value}})
ABLATIONS = {
    BASELINE: ("nothing (the Enhanced model under the ablation budget)", {}),
    "projection_blank": ("the projection fed a constant fourth channel: no edge information",
                         {"model": {"input_variant": "projection_blank"}}),
    "drop": ("no edge channel and no projection: RGB only (naive channel dropping)", {"model": {"input_variant": "drop"}}),
    "smp4": ("edge channel through smp's 4-channel first convolution", {"model": {"input_variant": "smp4"}}),
    "uniform_sampling": ("uniform instead of complexity-weighted sampling", {"train": {"sampling": "uniform"}}),
    "loss_dice": ("Dice loss instead of the stabilized loss", {"train": {"loss": "dice"}}),
    "loss_bce": ("BCE loss", {"train": {"loss": "bce"}}),
    "loss_tversky": ("Tversky loss", {"train": {"loss": "tversky"}}),
    "loss_combo": ("Dice + BCE loss", {"train": {"loss": "combo"}}),
    "loss_in_region": ("the loss only inside the annotated region (nnU-Net's ignore label for unlabeled nuclei)",
                       {"train": {"loss_area": "annotated_region"}}),
    "leaky_tiles": ("half of each test image's tiles train, replacing as many training tiles (leaky split)",
                    {"train": {"training_pool": "with_test_image_tiles"}}),
    "no_test_slides": ("training tiles only from slides that hold no test image",
                       {"train": {"training_pool": "without_test_slides"}}),
}
TTA, NO_TTA = "tta", "no_tta"  # the baseline's two arms of test-time augmentation
# (claim, the paper's effect, ours, reference, measure): "ours is better than the reference by the effect"
CLAIMS = [
    ("Gabor channel + projection beat RGB only (the paper's comparison)", CLAIM_EFFECTS["projection_vs_drop"],
     BASELINE, "drop", "Dice"),
    ("The Gabor edge channel improves boundary accuracy", CLAIM_EFFECTS["gabor_boundary"], BASELINE,
     "projection_blank", "boundary F1"),
    ("The learnable projection itself beats channel dropping", "not stated", "projection_blank", "drop", "Dice"),
    ("Learnable projection beats smp's 4-channel patch", "not stated", BASELINE, "smp4", "Dice"),
    ("Complexity-weighted sampling finds small lesions", CLAIM_EFFECTS["sampling_small_lesions"], BASELINE,
     "uniform_sampling", "small-object recall"),
    ("The stabilized loss beats Dice loss", "not stated", BASELINE, "loss_dice", "Dice"),
    ("The stabilized loss beats BCE", "not stated", BASELINE, "loss_bce", "Dice"),
    ("The stabilized loss beats Tversky loss", "not stated", BASELINE, "loss_tversky", "Dice"),
    ("The stabilized loss beats Dice + BCE", "not stated", BASELINE, "loss_combo", "Dice"),
    ("Test-time augmentation helps", "not stated", TTA, NO_TTA, "Dice"),
    ("Training inside the annotated region beats whole-tile training", "not in the paper", "loss_in_region",
     BASELINE, "Dice"),
]
# (question, ours, reference): "ours scores higher than the reference" = the protocol leaks
PROTOCOL = [
    ("Tiles of the test images in training inflate test Dice (leaky split)", "leaky_tiles", BASELINE),
    ("Training images on the test images' slides inflate test Dice", BASELINE, "no_test_slides"),
]


def with_variant(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """A copy of `cfg` with the variant's one change (the budget sweep makes the same changes at its points)."""
    cfg = copy.deepcopy(cfg)
    for section, changes in ABLATIONS[name][1].items():
        cfg[section].update(changes)
    return cfg


def ablation_config(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """The profile's config under the ablation budget with the variant's one change."""
    return with_variant(with_budget(cfg, "ablations"), name)


def experiment_name(name: str) -> str:
    """The folder of an ablation variant's runs."""
    return f"ablation-{name}"


def train_ablations(cfg: dict[str, Any], data_dir: str | Path | None,
                    force: bool = False) -> tuple[dict[str, list[Run]], dict[str, str]]:
    """Every variant for every seed and fold (trained, or loaded when it exists); with folds, each variant's
    folds read as one run (`lib.training.runs.OutOfFold`). A variant whose training pool cannot meet the budget
    (on some fold: with 5 folds on UCSB, the slides without a test image) is not measured, found out before any of
    its folds trains: it is left out of the runs, and the second mapping gives the reason."""
    runs, not_measured = {}, {}
    variants = progress(ABLATIONS, desc="ablation variants", unit="variant")
    for name in variants:
        variants.set_postfix(now=name)
        variant, experiment = ablation_config(cfg, name), experiment_name(name)
        try:
            check_pool(variant, data_dir)
        except PoolTooSmallError as error:
            not_measured[name] = str(error)
            variants.write(f"{name}: not measured: {error}")
            continue
        for seed in range(cfg["ablations"]["seeds"]):
            for fold in run_folds(variant):
                train(variant, data_dir, "enhanced", seed, force=force, experiment=experiment, fold=fold)
        runs[name] = [open_run(variant, data_dir, "enhanced", seed, experiment)
                      for seed in range(cfg["ablations"]["seeds"])]
    return runs, not_measured


def small_object_hits(pred: np.ndarray, target: np.ndarray, small_px: float) -> tuple[int, int]:
    """(detected, total) true objects under `small_px` px; detected = predicted pixels cover half of it."""
    labels, count = label_objects(target)
    if count == 0:
        return 0, 0
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    covered = np.bincount(labels.ravel(), weights=np.asarray(pred, float).ravel(), minlength=count + 1)
    small = np.flatnonzero(areas[1:] < small_px) + 1
    return int((covered[small] >= areas[small] / 2).sum()), len(small)


def per_image_measures(run: Run, tile_set: TileSet, small_px: float, tta: bool | None = None,
                       tiles: pd.Index | None = None, counts: bool = False) -> pd.DataFrame:
    """Per test source image, inside the annotated region: pooled Dice, mean boundary F1 of its tiles, and the
    recall of small objects (with `counts`, its detected and total objects too); only the test tiles named in
    `tiles` when given (paired protocol arms)."""
    keep = np.ones(len(run.per_tile), bool) if tiles is None else run.per_tile.tile_id.isin(tiles).to_numpy()
    index = run.test_index(tile_set)[keep]
    preds = run.test_predictions(tta)[keep]
    masks, regions = np.asarray(tile_set.masks[index], bool), np.asarray(tile_set.regions[index], bool)
    sources = run.per_tile.source.to_numpy()[keep]
    hits = np.array([small_object_hits(p, m & r, small_px) for p, m, r in zip(preds, masks, regions, strict=True)])
    per_tile = boundary_table(preds, masks, regions).assign(source=sources, small_detected=hits[:, 0],
                                                            small_total=hits[:, 1])
    grouped = per_tile.groupby("source")
    small = grouped[["small_detected", "small_total"]].sum()
    measures = pd.DataFrame({
        "Dice": per_group(count_table(preds, masks, regions), sources)["dice"],
        "boundary F1": grouped.boundary_f1.mean(),
        "small-object recall": (small.small_detected / small.small_total.where(small.small_total > 0)),
    })
    return measures.join(small) if counts else measures


def small_object_table(runs: dict[str, list[Run]], tile_set: TileSet, cfg: dict[str, Any]) -> pd.DataFrame:
    """What the small-lesion claim rests on: per arm, the true objects under `train.small_object_source_px` inside
    the test images' annotated region and how many the arm detects (mean over seeds)."""
    small_px = source_area_to_input(cfg["train"]["small_object_source_px"], cfg["data"])
    rows = {}
    for name in (BASELINE, "uniform_sampling"):
        found = [per_image_measures(run, tile_set, small_px, counts=True) for run in runs[name]]
        rows[name] = {"small objects in the test region": int(found[0].small_total.sum()),
                      "detected (mean over seeds)": float(np.mean([f.small_detected.sum() for f in found]))}
    return pd.DataFrame(rows).T


def measures_over_seeds(runs: list[Run], tile_set: TileSet, small_px: float, tta: bool | None = None,
                        tiles: pd.Index | None = None) -> pd.DataFrame:
    """`per_image_measures` averaged over the seeds."""
    return sum(per_image_measures(run, tile_set, small_px, tta, tiles) for run in runs) / len(runs)


def _tested(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    table["Holm p"] = holm(table["p"].to_numpy())
    table["verdict"] = [verdict(d, p) for d, p in zip(table["effect"], table["Holm p"], strict=True)]
    return table


def claims_table(runs: dict[str, list[Run]], tile_set: TileSet, cfg: dict[str, Any]) -> pd.DataFrame:
    """Each claim, the paper's effect, our paired effect with its interval, the Holm-adjusted p-value and the
    verdict, measured inside the annotated region."""
    small_px = source_area_to_input(cfg["train"]["small_object_source_px"], cfg["data"])
    measures = {name: measures_over_seeds(runs[name], tile_set, small_px) for name in runs}
    measures[TTA] = measures_over_seeds(runs[BASELINE], tile_set, small_px, tta=True)
    measures[NO_TTA] = measures_over_seeds(runs[BASELINE], tile_set, small_px, tta=False)
    rows = []
    for claim, paper, ours, reference, measure in CLAIMS:
        test = paired_comparison((measures[ours][measure] - measures[reference][measure]).to_numpy())
        rows.append({"claim": claim, "paper": paper, "measure": measure, "area": "annotated region",
                     "ours": ours, "vs": reference, "effect": test["difference"], "CI low": test["CI low"],
                     "CI high": test["CI high"], "p": test["p"], "images": test["units"]})
    return _tested(rows).set_index("claim")


def protocol_table(runs: dict[str, list[Run]], tile_set: TileSet, cfg: dict[str, Any],
                   not_measured: dict[str, str] | None = None) -> pd.DataFrame:
    """The split protocol's leakage, paired over test images on the tiles both arms are tested on (Dice inside
    the annotated region), Holm-adjusted over its rows; a row whose variant was not measured (`not_measured`:
    variant -> reason) has no effect, verdict `no data`, and says why."""
    small_px = source_area_to_input(cfg["train"]["small_object_source_px"], cfg["data"])
    not_measured = not_measured or {}
    rows = []
    for question, ours, reference in PROTOCOL:
        row = {"question": question, "measure": "Dice", "area": "annotated region", "ours": ours, "vs": reference}
        missing = [name for name in (ours, reference) if name in not_measured]
        if missing:
            rows.append(row | {"test tiles": 0, "effect": np.nan, "CI low": np.nan, "CI high": np.nan, "p": np.nan,
                               "images": 0, "not measured": "; ".join(f"{name}: {not_measured[name]}"
                                                                      for name in missing)})
            continue
        shared = pd.Index(runs[ours][0].per_tile.tile_id).intersection(pd.Index(runs[reference][0].per_tile.tile_id))
        difference = (measures_over_seeds(runs[ours], tile_set, small_px, tiles=shared)["Dice"]
                      - measures_over_seeds(runs[reference], tile_set, small_px, tiles=shared)["Dice"])
        test = paired_comparison(difference.to_numpy())
        rows.append(row | {"test tiles": len(shared), "effect": test["difference"], "CI low": test["CI low"],
                           "CI high": test["CI high"], "p": test["p"], "images": test["units"], "not measured": ""})
    return _tested(rows).set_index("question")


def area_table(runs: list[Run]) -> pd.DataFrame:
    """Baseline test scores on whole tiles and inside the annotated region (pooled, mean over seeds)."""
    return pd.DataFrame({area.replace("_", " "): pd.DataFrame([run.pooled_scores(area) for run in runs]).mean()
                         for area in ("whole_tile", "annotated_region")}).T


def overview(runs: dict[str, list[Run]]) -> pd.DataFrame:
    """What each variant changes, its test tiles, its budget (optimiser steps, and training seconds: the cost of a
    study resumed over several sessions, which no single wall time shows) and its pooled test Dice per area.
    With folds, steps and seconds are the folds' sums."""
    return pd.DataFrame({
        name: {"changes": ABLATIONS[name][0], "test tiles": len(found[0].per_tile),
               "optimizer steps": found[0].metrics["optimizer_steps"],
               "training seconds (seed mean)": np.mean([run.metrics["train_seconds"] for run in found]),
               **{f"test Dice, {area.replace('_', ' ')} (pooled, seed mean)":
                  np.mean([run.pooled_scores(area)["dice"] for run in found]) for area in ("whole_tile", "annotated_region")}}
        for name, found in runs.items()}).T
