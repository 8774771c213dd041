"""Ablations of the Enhanced model, failure analysis and calibration (paper §IV claims; notebook 07).

Every ablation retrains the Enhanced model with one thing changed, on the same data, seeds and budget
(`ablations.max_train_tiles`, `ablations.epochs`), in results/<dataset>/<profile>/ablation-<name>/. Effects are
differences to the baseline (the unchanged model under the same budget), averaged over test source images and
seeds, with a 95% paired bootstrap CI over images. Verdict: *supported* when the CI lies above zero (the paper's
direction), *not supported* when it lies below, *inconclusive* when it contains zero.

Failure analysis (the baseline's test errors, false positives and false negatives, at its threshold). A pixel
can be in several groups, so the shares need not add to 100%:
- small objects: inside a true or predicted object under `train.small_object_px` px;
- boundary: within 3 px of a true cell boundary;
- low contrast: local grayscale standard deviation (7x7) below the `low_contrast_percentile` of all test pixels;
- artifacts: within `artifact_distance_px` of a pixel whose grayscale lies outside the 1st-99th percentile of the
  test pixels (dark debris and folds, blank glass), after removing isolated pixels.
Calibration: expected calibration error over all test pixels (`calibration_bins` equal-width bins).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from .boundary import boundary, boundary_table
from .config import with_budget
from .predict import run_test_predictions
from .tiling import object_areas
from .train import load_run, train

BASELINE = "baseline"
# name: (what changes, config changes as {section: {key: value}})
ABLATIONS = {
    BASELINE: ("nothing (the Enhanced model under the ablation budget)", {}),
    "drop": ("no edge channel: RGB only (naive channel dropping)", {"model": {"input_variant": "drop"}}),
    "smp4": ("edge channel through smp's 4-channel first convolution", {"model": {"input_variant": "smp4"}}),
    "uniform_sampling": ("uniform instead of complexity-weighted sampling", {"train": {"sampling": "uniform"}}),
    "loss_dice": ("Dice loss instead of the stabilized loss", {"train": {"loss": "dice"}}),
    "loss_bce": ("BCE loss", {"train": {"loss": "bce"}}),
    "loss_tversky": ("Tversky loss", {"train": {"loss": "tversky"}}),
    "loss_combo": ("Dice + BCE loss", {"train": {"loss": "combo"}}),
    "random_tile_split": ("tiles split at random, ignoring their source image (leaky)",
                          {"data": {"split_protocol": "random_tile_leaky"}}),
}
BOUNDARY_BAND_PX = 3


def ablation_config(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    cfg = with_budget(cfg, "ablations")
    for section, changes in ABLATIONS[name][1].items():
        cfg[section].update(changes)
    return cfg


def train_ablations(cfg: dict[str, Any], data_dir, force: bool = False) -> dict[str, list[dict]]:
    """Every ablation for every seed (trained, or loaded when it exists)."""
    return {name: [load_run(train(ablation_config(cfg, name), data_dir, "enhanced", seed, force=force,
                                  experiment=f"ablation-{name}")) for seed in range(cfg["ablations"]["seeds"])]
            for name in ABLATIONS}


def small_object_hits(pred: np.ndarray, target: np.ndarray, small_px: int) -> tuple[int, int]:
    """(detected, total) true objects under `small_px` px; detected = predicted pixels cover half of it."""
    labels, count = ndimage.label(target, structure=np.ones((3, 3)))
    if count == 0:
        return 0, 0
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    covered = np.bincount(labels.ravel(), weights=pred.ravel().astype(float), minlength=count + 1)
    small = np.flatnonzero(areas[1:] < small_px) + 1
    return int((covered[small] >= areas[small] / 2).sum()), len(small)


def per_image_measures(run: dict, tile_set, small_px: int, tta: bool | None = None) -> pd.DataFrame:
    """Per test source image: pooled Dice, mean boundary F1 and HD95 of its tiles, small objects detected."""
    probabilities, index = run_test_predictions(run, tile_set, tta)
    preds, masks = probabilities >= run["metrics"]["threshold"], np.asarray(tile_set.masks[index], bool)
    per_tile = boundary_table(preds, masks)
    hits = np.array([small_object_hits(p, m, small_px) for p, m in zip(preds, masks)])
    per_tile = per_tile.assign(source=run["per_image"].source.to_numpy(), tp=(preds & masks).sum((1, 2)),
                               fp=(preds & ~masks).sum((1, 2)), fn=(~preds & masks).sum((1, 2)),
                               small_detected=hits[:, 0], small_total=hits[:, 1])
    grouped = per_tile.groupby("source")
    sums = grouped[["tp", "fp", "fn", "small_detected", "small_total"]].sum()
    return pd.DataFrame({
        "Dice": np.where(2 * sums.tp + sums.fp + sums.fn == 0, 1.0,
                         2 * sums.tp / np.maximum(2 * sums.tp + sums.fp + sums.fn, 1)),
        "boundary F1": grouped.boundary_f1.mean(), "HD95": grouped.hd95.mean(),
        "small-object recall": np.where(sums.small_total == 0, np.nan, sums.small_detected / sums.small_total.clip(1)),
    })


def paired_effect(ours: pd.Series, reference: pd.Series, draws: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean over images of ours - reference, and its 95% bootstrap CI (images resampled)."""
    difference = (ours - reference).dropna().to_numpy()
    if len(difference) == 0:
        return {"effect": np.nan, "CI low": np.nan, "CI high": np.nan, "images": 0}
    means = difference[np.random.default_rng(seed).integers(0, len(difference), (draws, len(difference)))].mean(1)
    return {"effect": float(difference.mean()), "CI low": float(np.percentile(means, 2.5)),
            "CI high": float(np.percentile(means, 97.5)), "images": len(difference)}


def verdict(low: float, high: float) -> str:
    if np.isnan(low):
        return "inconclusive (no data)"
    return "supported" if low > 0 else ("not supported" if high < 0 else "inconclusive")


def measures_over_seeds(runs: list[dict], tile_set, small_px: int, tta: bool | None = None) -> pd.DataFrame:
    return sum(per_image_measures(run, tile_set, small_px, tta) for run in runs) / len(runs)


# (claim, paper's effect as text, ours (ablation name or "tta"), reference, measure): "ours better by ..."
CLAIMS = [
    ("Gabor edge channel improves boundary accuracy", "+2.1% boundary accuracy", BASELINE, "drop", "boundary F1"),
    ("Learnable projection beats channel dropping", "+2.3% Dice", BASELINE, "drop", "Dice"),
    ("Learnable projection beats smp's 4-channel patch", "not stated", BASELINE, "smp4", "Dice"),
    ("Complexity-weighted sampling finds small lesions", "+3.8% small-lesion detection", BASELINE,
     "uniform_sampling", "small-object recall"),
    ("The stabilized loss beats Dice loss", "not stated", BASELINE, "loss_dice", "Dice"),
    ("The stabilized loss beats BCE", "not stated", BASELINE, "loss_bce", "Dice"),
    ("The stabilized loss beats Tversky loss", "not stated", BASELINE, "loss_tversky", "Dice"),
    ("The stabilized loss beats Dice + BCE", "not stated", BASELINE, "loss_combo", "Dice"),
    ("Test-time augmentation helps", "not stated", "tta", "no_tta", "Dice"),
]


def claims_table(runs: dict[str, list[dict]], tile_set, small_px: int) -> pd.DataFrame:
    """Each claim, the paper's effect, our paired effect with its CI and a verdict, computed from the runs."""
    measures = {name: measures_over_seeds(runs[name], tile_set, small_px)
                for name in ABLATIONS if name != "random_tile_split"}
    measures["tta"] = measures_over_seeds(runs[BASELINE], tile_set, small_px, tta=True)
    measures["no_tta"] = measures_over_seeds(runs[BASELINE], tile_set, small_px, tta=False)
    rows = []
    for claim, paper, ours, reference, measure in CLAIMS:
        effect = paired_effect(measures[ours][measure], measures[reference][measure])
        rows.append({"claim": claim, "paper": paper, "measure": measure, "ours vs": reference, **effect,
                     "verdict": verdict(effect["CI low"], effect["CI high"])})
    return pd.DataFrame(rows).set_index("claim")


def split_protocol_table(runs: dict[str, list[dict]]) -> pd.DataFrame:
    """Test Dice under the group split and the leaky random tile split (different test sets: not paired)."""
    rows = []
    for name, label in ((BASELINE, "group split (tiles of an image stay together)"),
                        ("random_tile_split", "random tile split (leaky)")):
        dice = [run["metrics"]["test"]["whole_tile"]["pooled"]["dice"] for run in runs[name]]
        rows.append({"protocol": label, "test Dice": np.mean(dice), "seeds": len(dice)})
    return pd.DataFrame(rows).set_index("protocol")


def area_table(runs: list[dict]) -> pd.DataFrame:
    """Baseline test scores on whole tiles and inside the annotated region (mean over seeds)."""
    return pd.DataFrame({area.replace("_", " "): pd.DataFrame([run["metrics"]["test"][area]["pooled"]
                                                              for run in runs]).mean()
                         for area in ("whole_tile", "annotated_region")}).T


def error_breakdown(probabilities: np.ndarray, index: np.ndarray, tile_set, threshold: float,
                    settings: dict[str, Any], small_px: int) -> pd.DataFrame:
    """Share of error pixels in each failure group (module docstring), next to the paper's shares."""
    images = np.asarray(tile_set.images[index], np.float32) / 255
    gray = images.mean(-1)
    local_std = np.stack([np.sqrt(np.maximum(ndimage.uniform_filter(g ** 2, 7) - ndimage.uniform_filter(g, 7) ** 2, 0))
                          for g in gray])
    low_contrast = local_std < np.percentile(local_std, settings["low_contrast_percentile"])
    dark, bright = np.percentile(gray, [1, 99])
    counts = dict.fromkeys(["small objects", "boundary", "low contrast", "artifacts", "none of these"], 0)
    total = 0
    for i, probability in enumerate(probabilities):
        mask, pred = np.asarray(tile_set.masks[index[i]], bool), probability >= threshold
        errors = pred ^ mask
        total += errors.sum()
        small = np.zeros_like(mask)
        for source in (mask, pred):
            labels, _ = ndimage.label(source, structure=np.ones((3, 3)))
            areas = np.concatenate([[0], object_areas(source)])
            small |= (labels > 0) & (areas[labels] < small_px)
        near_boundary = ndimage.distance_transform_edt(~boundary(mask)) <= BOUNDARY_BAND_PX if mask.any() else np.zeros_like(mask)
        artifact = ndimage.binary_opening((gray[i] < dark) | (gray[i] > bright))
        near_artifact = (ndimage.distance_transform_edt(~artifact) <= settings["artifact_distance_px"]
                         if artifact.any() else np.zeros_like(mask))
        groups = {"small objects": small, "boundary": near_boundary, "low contrast": low_contrast[i],
                  "artifacts": near_artifact}
        for name, where in groups.items():
            counts[name] += (errors & where).sum()
        counts["none of these"] += (errors & ~np.any(list(groups.values()), axis=0)).sum()
    paper = {"small objects": 15, "boundary": 40, "low contrast": 25, "artifacts": 20, "none of these": np.nan}
    return pd.DataFrame({"share of error pixels (%)": {k: 100 * v / max(total, 1) for k, v in counts.items()},
                         "paper (%)": paper})


def calibration(probabilities: np.ndarray, masks: np.ndarray, bins: int) -> tuple[float, pd.DataFrame]:
    """Expected calibration error and the reliability table (per bin: mean probability, observed frequency,
    share of pixels)."""
    p, y = probabilities.ravel(), np.asarray(masks, bool).ravel()
    which = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    confidence = np.bincount(which, weights=p, minlength=bins) / np.maximum(count, 1)
    frequency = np.bincount(which, weights=y, minlength=bins) / np.maximum(count, 1)
    table = pd.DataFrame({"bin low": np.arange(bins) / bins, "mean probability": confidence,
                          "observed frequency": frequency, "pixels": count})
    ece = float(np.sum(count / count.sum() * np.abs(confidence - frequency)))
    return ece, table[table.pixels > 0]


def overview(runs: dict[str, list[dict]]) -> pd.DataFrame:
    """What each ablation changes and its pooled test Dice (mean over seeds)."""
    return pd.DataFrame({"changes": {name: ABLATIONS[name][0] for name in runs},
                         "test Dice (pooled, seed mean)": {
                             name: np.mean([run["metrics"]["test"]["whole_tile"]["pooled"]["dice"] for run in found])
                             for name, found in runs.items()}})
