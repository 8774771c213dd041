"""The model table (Table II regenerated) from finished runs.

- Scores are pooled over the test tiles (counts summed, then Dice, IoU, precision, recall), as in metrics.json;
  with several seeds the table gives their mean and standard deviation.
- The 95% CI resamples test *source images* (tiles of one image move together; 2000 bootstrap draws), with
  each image's counts summed over seeds.
- The paired test against the U-Net compares per-image Dice (each image's tiles pooled, averaged over seeds)
  with a two-sided Wilcoxon signed-rank test; with few test images the smallest reachable p-value is large
  (7 images: 0.016), which the table shows rather than hides.
- Boundary metrics (lib/boundary.py) are means over test tiles; HD95 skips tiles where it is undefined and
  counts them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from .boundary import boundary_table
from .metrics import scores
from .models import MODELS
from .predict import run_test_predictions
from .train import RESULTS_ROOT, changed_settings, load_run, run_directory

# The paper's Table II, Dice in percent. FgFEU-Net and Pro_UNeXt report on other datasets: no entry.
PAPER_DICE = {"unet": 78.2, "attention_unet": 82.4, "attention_unet_hybrid": 87.1, "attention_unet_al": 85.3,
              "multiscale_attention_unet": 89.2, "enhanced": 95.5}
AREAS = ("whole_tile", "annotated_region")
BASELINE = "unet"


def find_runs(cfg: dict[str, Any], data_dir, models: list[str], seeds: int,
              root: Path = RESULTS_ROOT) -> dict[str, list[dict]]:
    """Every finished run of these models and seeds, checked to have been trained with this config."""
    runs: dict[str, list[dict]] = {}
    missing, stale = [], []
    for model in models:
        for seed in range(seeds):
            folder = run_directory(cfg, data_dir, model, seed, root)
            if not (folder / "metrics.json").is_file():
                missing.append(f"{model} seed {seed}")
                continue
            run = load_run(folder)
            changed = changed_settings(run["record"]["config"], cfg, model)
            if changed:
                stale.append(f"{folder} ({', '.join(changed)})")
            runs.setdefault(model, []).append(run)
    if missing:
        raise FileNotFoundError(f"no finished run for {', '.join(missing)} under {root}; train them first "
                                f"(./run_all.sh --profile {cfg['profile']} --only 03, or python -m lib.train)")
    if stale:
        raise RuntimeError(f"trained with another config than this notebook's: {', '.join(stale)}; "
                           "retrain them (--force) or run the notebook with their profile")
    return runs


def image_counts(per_image: pd.DataFrame, area: str) -> pd.DataFrame:
    """True/false positive and false negative pixels per test source image."""
    columns = {f"{area}_{k}": k for k in ("tp", "fp", "fn")}
    return per_image.groupby("source")[list(columns)].sum().rename(columns=columns)


def _dice(counts: pd.DataFrame | pd.Series) -> float:
    return scores(*(float(np.sum(counts[k])) for k in ("tp", "fp", "fn")))["dice"]


def bootstrap_ci(counts: pd.DataFrame, draws: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of pooled Dice when source images are resampled with replacement."""
    rng = np.random.default_rng(seed)
    values = counts[["tp", "fp", "fn"]].to_numpy(float)
    picks = rng.integers(0, len(values), size=(draws, len(values)))
    tp, fp, fn = (values[picks][..., k].sum(1) for k in range(3))
    dice = np.where(2 * tp + fp + fn == 0, 1.0, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12))
    tail = (1 - level) / 2 * 100
    return float(np.percentile(dice, tail)), float(np.percentile(dice, 100 - tail))


def per_image_dice(model_runs: list[dict], area: str) -> pd.Series:
    """Dice of each test source image (its tiles pooled), averaged over seeds."""
    per_seed = [image_counts(run["per_image"], area).apply(_dice, axis=1) for run in model_runs]
    return pd.concat(per_seed, axis=1).mean(axis=1)


def model_table(runs: dict[str, list[dict]], area: str = "whole_tile", draws: int = 2000) -> pd.DataFrame:
    """One row per model: pooled scores (mean and std over seeds), bootstrap CI, paper Dice, paired test."""
    baseline = per_image_dice(runs[BASELINE], area) if BASELINE in runs else None
    rows = []
    for model, model_runs in runs.items():
        pooled = pd.DataFrame([run["metrics"]["test"][area]["pooled"] for run in model_runs])
        counts = sum(image_counts(run["per_image"], area) for run in model_runs)
        low, high = bootstrap_ci(counts, draws)
        row = {"model": MODELS[model].label, "seeds": len(model_runs),
               "epochs": model_runs[0]["metrics"]["epochs"],
               "Dice": pooled.dice.mean(), "Dice std (seeds)": pooled.dice.std() if len(pooled) > 1 else np.nan,
               "Dice 95% CI low": low, "Dice 95% CI high": high,
               "IoU": pooled.iou.mean(), "precision": pooled.precision.mean(), "recall": pooled.recall.mean(),
               "paper Dice (%)": PAPER_DICE.get(model, np.nan)}
        if baseline is not None and model != BASELINE:
            difference = per_image_dice(model_runs, area) - baseline
            row["mean image Dice - U-Net"] = difference.mean()
            row["Wilcoxon p vs U-Net"] = (wilcoxon(difference).pvalue if (difference != 0).any() else 1.0)
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def boundary_metrics(runs: dict[str, list[dict]], tile_set, area: str = "whole_tile",
                     tolerance: float = 2.0) -> pd.DataFrame:
    """Mean HD95 (px), tiles where it is undefined, and mean boundary F1 at `tolerance` px, over seeds."""
    rows = []
    for model, model_runs in runs.items():
        per_seed = []
        for run in model_runs:
            probabilities, index = run_test_predictions(run, tile_set)
            preds = probabilities >= run["metrics"]["threshold"]
            within = np.asarray(tile_set.regions[index], bool) if area == "annotated_region" else None
            table = boundary_table(preds, np.asarray(tile_set.masks[index]), within, tolerance)
            per_seed.append({"HD95 (px)": table.hd95.mean(), "tiles without HD95": int(table.hd95.isna().sum()),
                             f"boundary F1 @{tolerance:g}px": table.boundary_f1.mean()})
        rows.append({"model": MODELS[model].label, **pd.DataFrame(per_seed).mean().to_dict()})
    return pd.DataFrame(rows).set_index("model")


def per_tile_frame(runs: dict[str, list[dict]], tile_pixels: int, area: str = "whole_tile") -> pd.DataFrame:
    """Long table for plots: model, seed, tile, its Dice and its share of cell pixels (ground truth)."""
    frames = []
    for model, model_runs in runs.items():
        for run in model_runs:
            table = run["per_image"]
            frames.append(pd.DataFrame({
                "model": MODELS[model].label, "seed": run["record"]["seed"], "tile_id": table.tile_id,
                "source": table.source, "Dice": table[f"{area}_dice"],
                "cell share": (table.whole_tile_tp + table.whole_tile_fn) / tile_pixels}))
    return pd.concat(frames, ignore_index=True)


def active_learning_tables(run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The active-learning run's learning curve (per round) and its acquired tiles."""
    return pd.read_csv(Path(run) / "al_rounds.csv"), pd.read_csv(Path(run) / "al_acquired.csv")


def describe_uncertainty(acquired: pd.DataFrame) -> str:
    """Where the acquired tiles' MC-Dropout uncertainty lay, next to the paper's 67% background claim."""
    if acquired.empty:
        return "No tile was acquired (the pool was empty)."
    shares = acquired[["share_boundary", "share_interior", "share_background"]].mean()
    return (f"Over the {len(acquired)} acquired tiles, on average {shares.share_background:.0%} of a tile's "
            f"uncertainty lay on background farther than 3 px from a cell boundary, {shares.share_boundary:.0%} within "
            f"3 px of a boundary and {shares.share_interior:.0%} inside cells (the paper reports 67% on background).")


def describe_ladder(whole: pd.DataFrame, region: pd.DataFrame) -> str:
    """A paragraph on the ladder's outcome, from the two tables."""
    best = whole.Dice.idxmax()
    lines = [f"Best whole-tile test Dice: **{best}** ({whole.Dice[best]:.3f}, 95% CI "
             f"{whole.loc[best, 'Dice 95% CI low']:.3f}-{whole.loc[best, 'Dice 95% CI high']:.3f})."]
    enhanced, unet = MODELS["enhanced"].label, MODELS[BASELINE].label
    if enhanced in whole.index and unet in whole.index:
        gap = whole.Dice[enhanced] - whole.Dice[unet]
        p = whole.loc[enhanced, "Wilcoxon p vs U-Net"]
        lines.append(f"The Enhanced model is {abs(gap):.3f} Dice {'above' if gap >= 0 else 'below'} the U-Net "
                     f"(paper: {PAPER_DICE['enhanced'] - PAPER_DICE['unet']:.1f} points above); paired over test "
                     f"images, Wilcoxon p = {p:.3g}" + (" — not significant at 0.05." if p >= 0.05 else "."))
    order_ours = list(whole.Dice.sort_values().index)
    paper_rows = whole["paper Dice (%)"].dropna().sort_values().index
    same = [m for m in order_ours if m in paper_rows] == list(paper_rows)
    lines.append("Ranked by Dice, the paper's models come out " + ("in the paper's order." if same else
                 "in a different order than in the paper: " + " < ".join(m for m in order_ours if m in paper_rows) + "."))
    if len(region):
        best_region = region.Dice.idxmax()
        lines.append(f"Inside the annotated region the best is **{best_region}** ({region.Dice[best_region]:.3f}); "
                     "outside it, correct detections of unannotated cells count as errors (UCSB annotates one region "
                     "per image).")
    return " ".join(lines)
