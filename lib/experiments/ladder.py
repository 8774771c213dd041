"""The model table (Table II regenerated) from finished runs, with an Otsu threshold as a reference row.

- Scores: counts summed over the test tiles (and over seeds), then Dice, IoU, precision and recall, per area
  (whole tile; annotated region). The spread of each run's pooled Dice over seeds is shown beside it.
- The 95% interval of the pooled Dice is Fieller's over test *source images* (each image's counts summed over
  its tiles and the seeds; `lib.evaluation.statistics`), which holds its level with 7 images.
- Each model is compared with the U-Net on the per-image Dice (each image's tiles pooled, averaged over seeds):
  mean difference, sign-flip permutation test and interval; the p-values of all comparisons of an area are
  Holm-adjusted, and the verdict follows from the adjusted p-value. With 7 test images the smallest possible
  p-value is 2/128 = 0.016, so after Holm over 7 comparisons none can fall below 0.11: no ordering of the ladder
  can be established on one split.
- Budget: epochs, optimiser steps and training seconds of every run (the active-learning rung takes as many steps
  as the others).
- Boundary metrics (`lib.evaluation.boundary`) on the tiles with a true boundary in the area, the same tiles for
  every model; HD95 over the tiles where every model predicts a boundary (how many is shown).
- Nuclei as objects (`instance_ladder`): each model's test probabilities labelled by prediction's own rule
  (`lib.inference.instances.label_nuclei`: cut at the run's threshold, touching nuclei split by the watershed, its
  distances and areas scaled to the network input; a baseline's mask is split alike), against the true nuclei of the
  prepared tiles (the synthetic generator's own; on real data the mask's connected components), counted per tile
  and summed per image: object F1 at IoU 0.5, AJI and PQ, each with Fieller's interval over test images (all three
  are ratios of sums). A classic row, the haematoxylin threshold + watershed with no training
  (`lib.inference.classic`), is the baseline a pathologist already has; every model is compared with it and with
  the U-Net on per-image AJI and object F1, paired, Holm-adjusted within each comparison.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.tiles import TileSet
from ..evaluation.baselines import OTSU_LABEL, otsu_predictions
from ..evaluation.boundary import boundary_table
from ..evaluation.instances import instance_counts, instance_intervals, instance_scores, pooled_instance_scores
from ..evaluation.metrics import AREAS, dice_interval, per_group, pooled
from ..evaluation.scoring import score_masks
from ..evaluation.statistics import holm, paired_comparison, verdict
from ..inference.classic import classic_nuclei
from ..inference.instances import label_tiles, settings_at_input, split_nuclei
from ..models import MODELS
from ..report.paper import AL_BACKGROUND_SHARE, TABLE2_DICE
from ..training.runs import Run

REFERENCE = "unet"
CLASSIC_LABEL = "Haematoxylin + watershed (classic, no training)"
CLASSIC_NAME = CLASSIC_LABEL.split(" (")[0]  # how instance_ladder's columns name it: "<metric> - <name>"
BOUNDARY_TOLERANCE_PX = 2.0


@dataclass
class Entry:
    """One row of the table: a model's runs (one per seed), or the Otsu baseline, on the same test tiles."""
    name: str
    label: str
    per_tile: list[pd.DataFrame]   # per seed: the test tiles' counts per area (per_tile.csv)
    predictions: list[np.ndarray]  # per seed: the binary test predictions, in the same tile order
    epochs: float = np.nan
    steps: float = np.nan
    train_seconds: float = np.nan  # mean over seeds of a run's training time (all its folds)
    baseline: bool = False
    instances: list[np.ndarray] | None = None  # per seed: labelled nuclei of the test tiles (None: from runs)
    runs: list[Run] | None = None  # per seed: the run, whose probabilities prediction's rule labels (None: the masks')


def run_entries(runs: dict[str, list[Run]], predictions: bool = True) -> dict[str, Entry]:
    """The table's entries of the trained models (without their test predictions when `predictions` is False: the
    pixel scores need only the per-tile counts, and a run record has no probabilities)."""
    return {name: Entry(name, MODELS[name].label, [run.per_tile for run in model_runs],
                        [run.test_predictions() for run in model_runs] if predictions else [],
                        model_runs[0].metrics["epochs"], model_runs[0].metrics["optimizer_steps"],
                        float(np.mean([run.metrics["train_seconds"] for run in model_runs])), runs=model_runs)
            for name, model_runs in runs.items()}


def otsu_entry(tile_set: TileSet, index: np.ndarray) -> Entry:
    """The Otsu threshold on the same test tiles, scored like a model (no training: no epochs, no steps)."""
    preds = otsu_predictions(np.asarray(tile_set.images[index]))
    return Entry("otsu", OTSU_LABEL, [score_masks(preds, tile_set, index)[1]], [preds], baseline=True)


def classic_entry(tile_set: TileSet, index: np.ndarray, cfg: dict) -> Entry:
    """The haematoxylin threshold + watershed on the same test tiles, at the network input's resolution like the
    models, scored like a model (no training: no epochs, no steps)."""
    settings = settings_at_input(cfg)
    labels = np.stack([classic_nuclei(image, settings["sigma_px"], settings["min_distance_px"], settings["min_area_px"])
                       for image in np.asarray(tile_set.images[index])])
    preds = labels > 0
    return Entry("classic", CLASSIC_LABEL, [score_masks(preds, tile_set, index)[1]], [preds], baseline=True,
                 instances=[labels])


def _counts(per_tile: pd.DataFrame, area: str) -> pd.DataFrame:
    return per_tile[[f"{area}_{k}" for k in ("tp", "fp", "fn")]].set_axis(["tp", "fp", "fn"], axis=1)


def image_counts(entry: Entry, area: str) -> pd.DataFrame:
    """tp, fp, fn and the scores per test source image, counts summed over the image's tiles and the seeds."""
    summed = sum(per_group(_counts(table, area), table.source)[["tp", "fp", "fn"]] for table in entry.per_tile)
    return per_group(summed, summed.index)


def image_dice(entry: Entry, area: str) -> pd.Series:
    """Dice of each test source image (its tiles pooled), averaged over seeds."""
    per_seed = [per_group(_counts(table, area), table.source)["dice"] for table in entry.per_tile]
    return pd.concat(per_seed, axis=1).mean(axis=1)


def pooled_dice(entry: Entry, area: str) -> dict[str, float]:
    """Dice pooled over the test images (and seeds), with Fieller's 95% interval over the images."""
    counts = image_counts(entry, area)
    low, high = dice_interval(counts)
    return {"Dice": pooled(counts)["dice"], "Dice 95% CI low": low, "Dice 95% CI high": high}


def model_table(entries: dict[str, Entry], area: str = "whole_tile") -> pd.DataFrame:
    """One row per entry: pooled scores, seed spread, Fieller CI over images, budget, the paper's Dice and the
    paired, Holm-adjusted comparison with the U-Net."""
    reference = image_dice(entries[REFERENCE], area) if REFERENCE in entries else None
    rows = []
    for name, entry in entries.items():
        counts = image_counts(entry, area)
        seeds = [pooled(_counts(table, area))["dice"] for table in entry.per_tile]
        scores = pooled(counts)
        row = {"model": entry.label, "seeds": len(entry.per_tile), "epochs": entry.epochs,
               "optimizer steps": entry.steps, "training seconds": entry.train_seconds, **pooled_dice(entry, area),
               "Dice sd over seeds": np.std(seeds, ddof=1) if len(seeds) > 1 else np.nan,
               "IoU": scores["iou"], "precision": scores["precision"], "recall": scores["recall"],
               "test images": len(counts), "paper Dice (%)": TABLE2_DICE.get(name, np.nan)}
        if reference is not None and name != REFERENCE and not entry.baseline:
            test = paired_comparison((image_dice(entry, area) - reference).to_numpy())
            row |= {"image Dice - U-Net": test["difference"], "difference CI low": test["CI low"],
                    "difference CI high": test["CI high"], "p vs U-Net": test["p"]}
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model").astype({"epochs": "Int64", "optimizer steps": "Int64"})
    if "p vs U-Net" in table:
        table["Holm p vs U-Net"] = holm(table["p vs U-Net"].to_numpy())
        table["verdict vs U-Net"] = [verdict(d, p) if not np.isnan(p) else "" for d, p in
                                     zip(table["image Dice - U-Net"], table["Holm p vs U-Net"], strict=True)]
    return table


def boundary_metrics(entries: dict[str, Entry], tile_set: TileSet, index: np.ndarray,
                     area: str = "whole_tile") -> pd.DataFrame:
    """Mean boundary F1 over the tiles with a true boundary in the area and mean HD95 over those of them where
    every entry and seed predicts a boundary, with both tile counts (the same tiles for every row)."""
    masks = np.asarray(tile_set.masks[index], bool)
    within = np.asarray(tile_set.regions[index], bool) if area == "annotated_region" else None
    tables = {name: [boundary_table(preds, masks, within, BOUNDARY_TOLERANCE_PX) for preds in entry.predictions]
              for name, entry in entries.items()}
    measured = next(iter(tables.values()))[0].measured.to_numpy()
    common = measured & np.all([t.hd95.notna().to_numpy() for seeds in tables.values() for t in seeds], axis=0)
    rows = []
    for name, seeds in tables.items():
        rows.append({"model": entries[name].label, "tiles measured": int(measured.sum()),
                     f"boundary F1 @{BOUNDARY_TOLERANCE_PX:g}px": np.mean([t.boundary_f1[measured].mean() for t in seeds]),
                     "tiles in the HD95 mean": int(common.sum()),
                     "HD95 (px)": np.mean([t.hd95[common].mean() for t in seeds]) if common.any() else np.nan,
                     "tiles without a predicted boundary (mean over seeds)":
                         np.mean([int((measured & t.hd95.isna().to_numpy()).sum()) for t in seeds])})
    return pd.DataFrame(rows).set_index("model")


def per_tile_frame(entries: dict[str, Entry], tile_pixels: int, area: str = "whole_tile") -> pd.DataFrame:
    """Long table for plots: model, seed, tile, its Dice (NaN where undefined) and its share of cell pixels."""
    frames = []
    for entry in entries.values():
        for seed, table in enumerate(entry.per_tile):
            frames.append(pd.DataFrame({
                "model": entry.label, "seed": seed, "tile_id": table.tile_id, "source": table.source,
                "Dice": table[f"{area}_dice"], "cell share": (table.whole_tile_tp + table.whole_tile_fn) / tile_pixels,
                "area": area.replace("_", " ")}))
    return pd.concat(frames, ignore_index=True)


def _instance_counts(entry: Entry, tile_set: TileSet, index: np.ndarray, cfg: dict, area: str) -> list[pd.DataFrame]:
    """Per seed: the instance counts of each test source image (its tiles summed)."""
    settings = settings_at_input(cfg)
    truth = np.asarray(tile_set.instances[index])
    within = np.asarray(tile_set.regions[index], bool) if area == "annotated_region" else [None] * len(index)
    sources = tile_set.table.source.to_numpy()[index]
    if entry.instances is not None:
        labelled = entry.instances
    elif entry.runs is not None:  # as prediction labels them: cores from the probabilities when core_share < 1
        labelled = [label_tiles(run.test_probabilities(), run.tile_thresholds(), settings, centres=run.test_centres())
                    for run in entry.runs]
    else:  # a baseline's masks
        labelled = [[split_nuclei(pred, settings["min_distance_px"], settings["min_area_px"]) for pred in preds]
                    for preds in entry.predictions]
    return [pd.DataFrame([instance_counts(t, p, w) for t, p, w in zip(truth, labels, within, strict=True)])
            .groupby(sources).sum() for labels in labelled]


def _image_scores(per_seed: list[pd.DataFrame], metric: str) -> pd.Series:
    """One instance score per image, averaged over seeds (NaN where undefined)."""
    return pd.concat([table.apply(lambda row: instance_scores(row)[metric], axis=1) for table in per_seed],
                     axis=1).mean(axis=1)


def instance_ladder(entries: dict[str, Entry], tile_set: TileSet, index: np.ndarray, cfg: dict,
                    area: str = "whole_tile", counts: dict[str, list[pd.DataFrame]] | None = None) -> pd.DataFrame:
    """One row per entry: object precision, recall and F1, AJI and PQ pooled over the test images (and seeds) with
    Fieller intervals, and the paired per-image differences in AJI and object F1 to the U-Net and to the classic
    pipeline, Holm-adjusted over the rows of each comparison (module docstring). `counts`: per entry, the instance
    counts of each image per seed where they were taken already (run records, `lib.experiments.records`)."""
    counts = {name: (counts or {}).get(name) or _instance_counts(entry, tile_set, index, cfg, area)
              for name, entry in entries.items()}
    rows = []
    for name, per_seed in counts.items():
        summed = sum(per_seed)
        scores = pooled_instance_scores(summed)
        row = {"model": entries[name].label, "object_precision": scores["object_precision"],
               "object_recall": scores["object_recall"]}
        for metric, (low, high) in instance_intervals(summed).items():
            row |= {metric: scores[metric], f"{metric} 95% CI low": low, f"{metric} 95% CI high": high}
        rows.append(row | {"sq": scores["sq"], "true nuclei": int(summed.tp.sum() + summed.fn.sum()),
                           "test images": len(summed)})
    table = pd.DataFrame(rows).set_index("model")
    for reference in (REFERENCE, "classic"):
        if reference not in entries:
            continue
        label = entries[reference].label.split(" (")[0]
        for metric in ("aji", "object_f1"):
            base = _image_scores(counts[reference], metric)
            tests = {entries[name].label: paired_comparison((_image_scores(per_seed, metric) - base).to_numpy())
                     for name, per_seed in counts.items() if name != reference and not entries[name].baseline}
            column = f"{metric} - {label}"
            table[column] = pd.Series({model: test["difference"] for model, test in tests.items()})
            table[f"{column} Holm p"] = pd.Series(dict(zip(tests, holm(np.array([t["p"] for t in tests.values()])),
                                                           strict=True)))
            table[f"{column} verdict"] = [verdict(d, p) if not np.isnan(p) else "" for d, p in
                                          zip(table[column], table[f"{column} Holm p"], strict=True)]
    return table


def describe_instances(tables: dict[str, pd.DataFrame]) -> str:
    """The instance tables in words: the classic pipeline's scores, the best model's, and how many models beat the
    classic pipeline on AJI and object F1 after Holm's correction."""
    lines = []
    for area, table in tables.items():
        trained = table[~table.index.isin([OTSU_LABEL, CLASSIC_LABEL])]
        best = trained.aji.idxmax()
        lines.append(f"**{area.replace('_', ' ').capitalize()}**: the highest AJI is {best}'s ({trained.aji[best]:.3f}, "
                     f"95% CI {trained.loc[best, 'aji 95% CI low']:.3f}-{trained.loc[best, 'aji 95% CI high']:.3f}; "
                     f"object F1 {trained.object_f1[best]:.3f}, PQ {trained.pq[best]:.3f}).")
        if CLASSIC_LABEL in table.index:
            row = table.loc[CLASSIC_LABEL]
            lines.append(f"The classic pipeline, with no training, scores AJI {row.aji:.3f}, object F1 "
                         f"{row.object_f1:.3f}, PQ {row.pq:.3f}.")
            for metric, name in (("aji", "AJI"), ("object_f1", "object F1")):
                verdicts = trained[f"{metric} - {CLASSIC_NAME} verdict"]
                lines.append(f"On {name}, {(verdicts == 'supported').sum()} of the {len(trained)} trained models are "
                             f"better than it and {(verdicts == 'contradicted').sum()} worse after Holm's correction; "
                             f"the rest are inconclusive.")
    return " ".join(lines)


def active_learning_tables(run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The active-learning run's learning curve (per round) and its acquired tiles."""
    return pd.read_csv(Path(run) / "al_rounds.csv"), pd.read_csv(Path(run) / "al_acquired.csv")


def describe_uncertainty(acquired: pd.DataFrame) -> str:
    """Where the acquired tiles' MC-Dropout uncertainty lay, next to the paper's background claim."""
    if acquired.empty:
        return "No tile was acquired (the pool was empty)."
    shares = acquired[["share_boundary", "share_interior", "share_background"]].mean()
    return (f"Over the {len(acquired)} acquired tiles, on average {shares.share_background:.0%} of a tile's "
            f"uncertainty lay on background farther than 3 px from a cell boundary, {shares.share_boundary:.0%} within "
            f"3 px of a boundary and {shares.share_interior:.0%} inside cells (the paper reports "
            f"{AL_BACKGROUND_SHARE:.0%} on background).")


def describe_ladder(tables: dict[str, pd.DataFrame]) -> str:
    """The ladder's outcome in words, from the tables of both areas: best model, the Enhanced model against the
    U-Net, which comparisons survive Holm's correction, and the paper's order."""
    lines = []
    enhanced, unet = MODELS["enhanced"].label, MODELS[REFERENCE].label
    for area, table in tables.items():
        name = area.replace("_", " ")
        trained = table[~table.index.isin([OTSU_LABEL, CLASSIC_LABEL])]
        best = trained.Dice.idxmax()
        lines.append(f"**{name.capitalize()}**: the highest pooled Dice is {best}'s ({trained.Dice[best]:.3f}, 95% CI "
                     f"{trained.loc[best, 'Dice 95% CI low']:.3f}-{trained.loc[best, 'Dice 95% CI high']:.3f} over "
                     f"{int(trained.loc[best, 'test images'])} test images).")
        for baseline in (OTSU_LABEL, CLASSIC_LABEL):
            if baseline in table.index:
                beaten = (trained.Dice > table.Dice[baseline]).sum()
                lines.append(f"The {baseline.split(' (')[0]} scores {table.Dice[baseline]:.3f}; {beaten} of the "
                             f"{len(trained)} trained models score above it.")
        if "Holm p vs U-Net" in table and enhanced in table.index and unet in table.index:
            row = table.loc[enhanced]
            lines.append(f"The Enhanced model's per-image Dice is {row['image Dice - U-Net']:+.3f} against the U-Net's "
                         f"(95% CI {row['difference CI low']:+.3f} to {row['difference CI high']:+.3f}; sign-flip p = "
                         f"{row['p vs U-Net']:.3f}, Holm-adjusted {row['Holm p vs U-Net']:.3f}: {row['verdict vs U-Net']}).")
            decided = table[table["verdict vs U-Net"].isin(["supported", "contradicted"])]
            lines.append("After Holm's correction " + (
                "no model differs from the U-Net." if decided.empty else
                "these differ from the U-Net: " + ", ".join(f"{m} ({'better' if r['image Dice - U-Net'] > 0 else 'worse'})"
                                                            for m, r in decided.iterrows()) + "."))
    whole = tables[AREAS[0]]
    paper = whole["paper Dice (%)"].dropna().sort_values().index
    ours = [m for m in whole.Dice.sort_values().index if m in paper]
    lines.append("Ranked by whole-tile Dice, the paper's models come out " + (
        "in the paper's order." if ours == list(paper) else "in another order than the paper's: " + " < ".join(ours) + "."))
    return " ".join(lines)
