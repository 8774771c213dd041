"""The paper's claims and the models' quality across training budgets (notebook 09).

A budget point is an input size (px the networks see; `data.tile_size` is full resolution) and a number of
training epochs (`budget.points`). At every point the same five arms train on every fold of the setting:
the Enhanced model and the U-Net, both with their loss inside the annotated region (`enhanced_region`,
`unet_region`: UCSB annotates one region per image, so this is the protocol that decides there), and the Enhanced
model with one thing changed as in notebook 07: RGB only (`drop`), Dice loss (`loss_dice`), uniform sampling
(`uniform_sampling`). Every arm sees all the training tiles (no ablation subset), so the points differ only in
their two axes. The input size is a setting axis (`lib.paths.SETTING_AXES`: runs at 256 px live under
`<setting>-in256/`), the epochs an experiment folder (`budget-e32/`, `budget-e32-drop/`, ...): every point's runs
live apart and never meet another point's. At the points of `budget.fgfeu_points` (the recommended recipe's)
FgFEU-Net, another paper's system, trains too, region-trained with the same epochs as the others
(`fgfeu_net_region`; its VGG16 encoder costs ten times the others' FLOPs, so the model table trains it for fewer
epochs); it joins the quality and nuclei tables there once its runs are recorded, and a point counts as trained
without it.

At each point a claim is the paired per-image effect of notebook 07's measure (Dice, or small-object recall for
the sampling claim) inside the annotated region, Holm-adjusted over the point's claims. The models' quality is the
region Dice pooled over the out-of-fold test tiles, with Fieller's interval over images, beside the training
seconds (summed over folds) and the machine that trained them; the classic pipeline (haematoxylin + watershed, no
training) is scored on the same tiles at the same input size and compared per image (Holm over the point's
models), on pixels (Dice) and as nuclei (object F1, AJI, PQ: notebook 04's `instance_ladder`, the models' nuclei
labelled by prediction's rule). The recommended point is the model and point with the best validation Dice (never
test) among the models trained at every point: an extra arm trains only at the point that choice gives, so it has no
curve to be chosen on; its validation Dice is reported beside the choice.
Every table is computed from the runs' records (`records.py`: a few tens of kB a run, published under figures/), not
from their checkpoints, so that runs trained on other machines or in other sessions count once their records are
committed. A sweep may be read before all its points are trained (`train_missing=False`: the points whose every run
is recorded, the others listed as not trained yet with how many of their runs are), so that a long sweep trained
piecewise is reported as it grows;
the points not trained yet are planned from the measured ones (`estimated_seconds`), so that their cost is known
before they train.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import ConfigError, apply_changes
from ..data import tiles
from ..data.tiles import TileSet
from ..evaluation.statistics import holm, paired_comparison, verdict
from ..models import input_channels
from ..paths import RESULTS_ROOT, records_roots, run_directory, setting_directory
from ..progress import progress
from ..report.published import duration
from ..training.runs import MissingRunError, Run, is_finished_and_current, read_run, run_folds
from ..training.train import train
from . import ablations
from .efficiency import training_step_ms
from .ladder import CLASSIC_NAME, Entry, classic_entry, image_dice, instance_ladder, pooled_dice, run_entries
from .records import image_instance_counts, image_measures, is_current, is_recorded, joined, read_record, write_record

# arm: (model, notebook 07's variant whose one change it makes, or None)
ARMS = {
    "enhanced": ("enhanced_region", None),
    "unet": ("unet_region", None),
    "drop": ("enhanced_region", "drop"),
    "loss_dice": ("enhanced_region", "loss_dice"),
    "uniform_sampling": ("enhanced_region", "uniform_sampling"),
    "fgfeu": ("fgfeu_net_region", None),
}
EXTRA_ARMS = {"fgfeu": "fgfeu_points"}  # arms trained only at the points of budget.<key>
CORE_ARMS = [arm for arm in ARMS if arm not in EXTRA_ARMS]  # a point is trained when these are
QUALITY_ARMS = {"enhanced": "Enhanced (region-trained)", "unet": "U-Net (region-trained)",
                "fgfeu": "FgFEU-Net (region-trained)"}
# (claim, ours, reference, measure): notebook 07's wording and measure for its three variants, and the model table's
CLAIMS = [(claim, "enhanced", variant, measure) for claim, _, ours, variant, measure in ablations.CLAIMS
          if ours == ablations.BASELINE and variant in {arm_variant for _, arm_variant in ARMS.values()}]
CLAIMS.append(("The Enhanced model beats the U-Net (both region-trained)", "enhanced", "unet", "Dice"))
AREA = "annotated_region"
NOT_TRAINED = "not trained yet"
EXPERIMENT_PREFIX = "budget-"  # the sweep's experiment folders: budget-e<epochs>[-<variant>]


@dataclass(frozen=True, order=True)
class BudgetPoint:
    """One point of the sweep: the input size and the training epochs."""
    input_size: int
    epochs: int

    @property
    def label(self) -> str:
        return f"{self.input_size} px, {self.epochs} epoch{'s' * (self.epochs != 1)}"  # every table's "point" column

    def experiment(self, arm: str) -> str:
        """The experiment folder of an arm's runs at this point."""
        variant = ARMS[arm][1]
        return f"{EXPERIMENT_PREFIX}e{self.epochs}" + (f"-{variant}" if variant else "")

    def config(self, cfg: dict[str, Any], arm: str | None = None) -> dict[str, Any]:
        """`cfg` at this point's input size and epochs, with the arm's one change."""
        cfg = apply_changes(cfg, {"data.input_size": self.input_size, "train.epochs": self.epochs})
        variant = ARMS[arm][1] if arm else None
        return ablations.with_variant(cfg, variant) if variant else cfg


def budget_points(cfg: dict[str, Any]) -> list[BudgetPoint]:
    """The profile's points (`budget.points`), checked: [input px, epochs], positive integers, the input no larger
    than the tile (full resolution), no point twice."""
    points = []
    for entry in cfg["budget"]["points"]:
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, int) and v > 0 for v in entry)):
            raise ConfigError(f"budget.points: a point is [input px, epochs] (positive integers), not {entry!r}")
        point = BudgetPoint(*entry)
        if point.input_size > cfg["data"]["tile_size"]:
            raise ConfigError(f"budget.points: input {point.input_size} px is larger than data.tile_size "
                              f"{cfg['data']['tile_size']} (full resolution)")
        if point in points:
            raise ConfigError(f"budget.points: {entry} is listed twice")
        point.config(cfg)  # an input size the encoders cannot take is refused here, before anything trains
        points.append(point)
    return points


def point_arms(cfg: dict[str, Any], point: BudgetPoint) -> list[str]:
    """The arms that train at a point: the core arms, and an extra arm where its `budget` key lists the point (each
    listed point checked to be one of the sweep's)."""
    points = budget_points(cfg)
    arms = list(CORE_ARMS)
    for arm, key in EXTRA_ARMS.items():
        listed = [BudgetPoint(*entry) for entry in cfg["budget"][key]]
        if any(at not in points for at in listed):
            raise ConfigError(f"budget.{key}: {cfg['budget'][key]} must be points of budget.points")
        arms += [arm] if point in listed else []
    return arms


def sweep(cfg: dict[str, Any]) -> list[tuple[BudgetPoint, str, int, int | None]]:
    """Every training run of the sweep: (point, arm, seed, fold), points in the profile's order."""
    return [(point, arm, seed, fold) for point in budget_points(cfg) for arm in point_arms(cfg, point)
            for seed in range(cfg["budget"]["seeds"]) for fold in run_folds(cfg)]


def in_sweep(run_folder: Path) -> bool:
    """Whether a run folder (relative to its setting's folder) is one of the sweep's."""
    return any(part.startswith(EXPERIMENT_PREFIX) for part in Path(run_folder).parts)


def _sweep_folder(point: BudgetPoint, arm: str, seed: int, fold: int | None, cfg: dict[str, Any],
                  data_dir: str | Path | None, root: Path) -> Path:
    """Where a sweep run lives under `root` (results/), or its record under a records root."""
    return run_directory(point.config(cfg, arm), data_dir, ARMS[arm][0], seed, root, point.experiment(arm), fold)


def record_runs(cfg: dict[str, Any], data_dir: str | Path | None, root: Path = RESULTS_ROOT,
                records: Path | None = None) -> None:
    """Write the record of every finished, current run of the sweep under `root` that `records` does not hold yet
    (or holds from another training of it)."""
    records = records_roots()[0] if records is None else records
    todo = []
    for point, arm, seed, fold in sweep(cfg):
        config, model = point.config(cfg, arm), ARMS[arm][0]
        folder = _sweep_folder(point, arm, seed, fold, cfg, data_dir, root)
        if is_finished_and_current(folder, config, data_dir, model):
            run, record = read_run(folder), _sweep_folder(point, arm, seed, fold, cfg, data_dir, records)
            if not is_recorded(run, record, config):
                todo.append((point, arm, run, record))
    tile_sets = point_tiles(cfg, data_dir, sorted({point for point, *_ in todo}))
    for point, arm, run, record in progress(todo, desc="run records", unit="run"):
        write_record(run, record, tile_sets[point], point.config(cfg, arm))


def _current_record(point: BudgetPoint, arm: str, seed: int, fold: int | None, cfg: dict[str, Any],
                    data_dir: str | Path | None, roots: list[Path]) -> Path | None:
    """The first root's current record of a run, or None."""
    folders = (_sweep_folder(point, arm, seed, fold, cfg, data_dir, root) for root in roots)
    return next((folder for folder in folders if is_current(folder, point.config(cfg, arm), data_dir, ARMS[arm][0])),
                None)


def recorded_runs(point: BudgetPoint, cfg: dict[str, Any], data_dir: str | Path | None,
                  roots: list[Path] | None = None) -> tuple[int, int]:
    """How many of the point's runs (arm, seed, fold) have a current record, and how many it has."""
    roots = records_roots() if roots is None else roots
    found = [_current_record(point, arm, seed, fold, cfg, data_dir, roots) is not None
             for at, arm, seed, fold in sweep(cfg) if at == point]
    return sum(found), len(found)


def recording_progress(runs: dict[BudgetPoint, dict[str, list[Run]]], cfg: dict[str, Any],
                       data_dir: str | Path | None) -> dict[BudgetPoint, tuple[int, int]]:
    """`recorded_runs` of every point not read whole (`train_budget`'s `runs`): not trained yet, or trained
    without an extra arm."""
    return {point: recorded_runs(point, cfg, data_dir) for point in budget_points(cfg)
            if point not in runs or set(point_arms(cfg, point)) - set(runs[point])}


def is_recorded_point(point: BudgetPoint, cfg: dict[str, Any], data_dir: str | Path | None,
                      roots: list[Path] | None = None) -> bool:
    """Whether every run of the point has a current record."""
    recorded, runs = recorded_runs(point, cfg, data_dir, roots)
    return recorded == runs


def train_budget(cfg: dict[str, Any], data_dir: str | Path | None, force: bool = False,
                 root: Path = RESULTS_ROOT, train_missing: bool = True,
                 records: list[Path] | None = None) -> dict[BudgetPoint, dict[str, list[Run]]]:
    """Train (or load) every run of the sweep, record each finished one (`record_runs`, into the first of
    `records`, by default `records_roots()`), and read the points whose every core arm's runs have a current record:
    per point and arm (an extra arm where all its runs are recorded), each seed's folds read as one run
    (`records.joined`). With `train_missing` False nothing trains (`force` included): MissingRunError if no point
    is recorded whole."""
    records = records_roots() if records is None else records
    if train_missing:
        jobs = progress(sweep(cfg), desc="budget sweep", unit="run")
        for point, arm, seed, fold in jobs:
            jobs.set_postfix(point=point.label, arm=arm, fold=fold)
            train(point.config(cfg, arm), data_dir, ARMS[arm][0], seed, force=force, root=root,
                  experiment=point.experiment(arm), fold=fold)
    record_runs(cfg, data_dir, root, records[0])
    located = {job: _current_record(*job, cfg, data_dir, records) for job in sweep(cfg)}  # each record checked once

    def recorded(point: BudgetPoint, arm: str) -> bool:
        return all(folder is not None for (at, of, *_), folder in located.items() if (at, of) == (point, arm))

    points = [point for point in budget_points(cfg) if all(recorded(point, arm) for arm in CORE_ARMS)]
    if not points:
        raise MissingRunError(f"no budget point has all its runs finished under {setting_directory(cfg, data_dir, root)}"
                              f" or recorded under {', '.join(str(path) for path in records)} (train them with "
                              "./run_all.sh --budget, or from python -m lib.experiments.study --budget)")
    return {point: {arm: [joined([read_record(located[point, arm, seed, fold], point.config(cfg, arm), data_dir, model)
                                  for fold in run_folds(cfg)])
                          for seed in range(cfg["budget"]["seeds"])]
                    for arm in point_arms(cfg, point) if recorded(point, arm) for model in [ARMS[arm][0]]}
            for point in points}


def point_tiles(cfg: dict[str, Any], data_dir: str | Path | None,
                points: list[BudgetPoint]) -> dict[BudgetPoint, TileSet]:
    """Each point's prepared tiles: one set per input size, loaded once however many points share it."""
    first = {point.input_size: point for point in reversed(points)}  # one point per input size
    by_size = {size: tiles.prepare(point.config(cfg), data_dir) for size, point in first.items()}
    return {point: by_size[point.input_size] for point in points}


def claims_by_budget(runs: dict[BudgetPoint, dict[str, list[Run]]]) -> pd.DataFrame:
    """One row per point and claim: the paired per-image effect inside the annotated region (from the run records,
    seeds averaged), its sign-flip interval, p, Holm-adjusted over the point's claims, and the verdict."""
    tables = []
    for point, arms in runs.items():
        measures = {arm: sum(image_measures(run) for run in found) / len(found) for arm, found in arms.items()}
        rows = []
        for claim, ours, reference, measure in CLAIMS:
            test = paired_comparison((measures[ours][measure] - measures[reference][measure]).to_numpy())
            rows.append({"input px": point.input_size, "epochs": point.epochs, "point": point.label, "claim": claim,
                         "measure": measure,
                         "ours": ours, "vs": reference, "effect": test["difference"], "CI low": test["CI low"],
                         "CI high": test["CI high"], "p": test["p"], "images": test["units"]})
        table = pd.DataFrame(rows)
        table["Holm p"] = holm(table["p"].to_numpy())
        table["verdict"] = [verdict(d, p) for d, p in zip(table["effect"], table["Holm p"], strict=True)]
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def validation_dice(run: Run) -> float:
    """The validation Dice of the epoch a run selected (what training chooses on), averaged over its folds."""
    folds = run.fold_runs
    return float(np.mean([fold.history.set_index("epoch").val_dice[fold.metrics["selected_epoch"]] for fold in folds]))


def validation_gain(run: Run) -> float:
    """Whether the validation curve still rose when training stopped: mean validation Dice over the last quarter of
    the epochs minus that over the quarter before, averaged over the run's folds (undefined below 2 epochs)."""
    gains = []
    for fold in run.fold_runs:
        dice = fold.history.val_dice.to_numpy()
        quarter = len(dice) // 4 or 1
        gains.append(dice[-quarter:].mean() - dice[-2 * quarter:-quarter].mean() if len(dice) >= 2 else np.nan)
    return float(np.mean(gains))


def _starting_weights(found: list[Run]) -> str:
    """The weights the runs started from, as their records say (why a download failed, after the colon, left out)."""
    return "; ".join(sorted({fold.metrics["encoder_weights"].split(":")[0] for run in found for fold in run.fold_runs}))


def _machines(found: list[Run]) -> str:
    folds = [fold for run in found for fold in run.fold_runs]
    return "; ".join(sorted({fold.versions.get("machine", "not recorded") for fold in folds}))


def _reference_steps(found: list[Run]) -> str:
    """The range of the machine's reference step the runs recorded when they finished, and how many did."""
    folds = [fold for run in found for fold in run.fold_runs]
    steps = [fold.versions["reference_step_ms"] for fold in folds if fold.versions.get("reference_step_ms")]
    if not steps:
        return "not recorded"
    spread = f"{min(steps)} ms" if min(steps) == max(steps) else f"{min(steps)}-{max(steps)} ms"
    return spread + ("" if len(steps) == len(folds) else f" ({len(steps)} of {len(folds)} runs)")


def _quality_arms(arms: dict[str, list[Run]]) -> dict[str, str]:
    """The quality tables' models (label by arm) that a point's runs hold."""
    return {arm: label for arm, label in QUALITY_ARMS.items() if arm in arms}


def classic_by_budget(runs: dict[BudgetPoint, dict[str, list[Run]]], tile_sets: dict[BudgetPoint, TileSet],
                      cfg: dict[str, Any]) -> dict[BudgetPoint, Entry]:
    """The classic pipeline at every point: on the point's out-of-fold test tiles at its input size (computed once,
    read by the quality and the nuclei tables)."""
    return {point: classic_entry(tile_sets[point], arms["enhanced"][0].test_index(tile_sets[point]), point.config(cfg))
            for point, arms in runs.items()}


def quality_by_budget(runs: dict[BudgetPoint, dict[str, list[Run]]], classics: dict[BudgetPoint, Entry],
                      cfg: dict[str, Any]) -> pd.DataFrame:
    """One row per point and model (Enhanced, U-Net): region Dice pooled over the out-of-fold test tiles with
    Fieller's interval over images, validation Dice and how much it still rose at the end (`validation_gain`),
    training seconds (folds summed, mean over seeds) and the machine that trained them, and the paired per-image Dice
    difference from the classic pipeline on the same tiles at the same input size (`classic_by_budget`; Holm over the
    point's models); `recommended` marks the row chosen on validation."""
    tables = []
    for point, arms in runs.items():
        classic = classics[point]
        rows = []
        for arm, label in _quality_arms(arms).items():
            found = arms[arm]
            entry = run_entries({ARMS[arm][0]: found}, predictions=False)[ARMS[arm][0]]
            test = paired_comparison((image_dice(entry, AREA) - image_dice(classic, AREA)).to_numpy())
            rows.append({"input px": point.input_size, "epochs": point.epochs, "point": point.label, "model": label,
                         "arm": arm, "full resolution": point.input_size == cfg["data"]["tile_size"],
                         **pooled_dice(entry, AREA),
                         "validation Dice": np.mean([validation_dice(run) for run in found]),
                         "validation gain, last quarter": np.mean([validation_gain(run) for run in found]),
                         "training seconds": entry.train_seconds, "trained on": _machines(found),
                         "starting weights": _starting_weights(found),
                         "classic Dice": pooled_dice(classic, AREA)["Dice"],
                         "Dice - classic": test["difference"], "difference CI low": test["CI low"],
                         "difference CI high": test["CI high"], "p vs classic": test["p"], "images": test["units"]})
        table = pd.DataFrame(rows)
        table["Holm p vs classic"] = holm(table["p vs classic"].to_numpy())
        table["verdict vs classic"] = [verdict(d, p) for d, p in
                                       zip(table["Dice - classic"], table["Holm p vs classic"], strict=True)]
        tables.append(table)
    quality = pd.concat(tables, ignore_index=True)
    quality["recommended"] = quality.index == recommended(quality).name  # the report's pages read the choice here
    return quality


def resolution_at_equal_seconds(quality: pd.DataFrame) -> pd.DataFrame:
    """What full resolution buys at equal training seconds, per model: each full-resolution point's region Dice
    against the shrunk-input points' curve read at the same seconds (linear between the two points around it;
    undefined outside the seconds they span: no extrapolation). A reading of the curve, without an interval."""
    rows = []
    for model, group in quality.groupby("model", sort=False):
        shrunk = group[~group["full resolution"]].sort_values("training seconds")
        seconds_spanned = shrunk["training seconds"].agg(["min", "max"]) if len(shrunk) > 1 else None
        for _, full in group[group["full resolution"]].iterrows():
            seconds = full["training seconds"]
            inside = seconds_spanned is not None and seconds_spanned["min"] <= seconds <= seconds_spanned["max"]
            curve = float(np.interp(seconds, shrunk["training seconds"], shrunk["Dice"])) if inside else np.nan
            rows.append({"model": model, "point": full["point"], "training seconds": seconds, "Dice": full["Dice"],
                         "shrunk input at the same seconds": curve, "full resolution - shrunk input": full["Dice"] - curve})
    return pd.DataFrame(rows, columns=["model", "point", "training seconds", "Dice", "shrunk input at the same seconds",
                                       "full resolution - shrunk input"])


def recommended(quality: pd.DataFrame) -> pd.Series:
    """The model and point with the best validation Dice among the models trained at every point (test scores play
    no part in the choice)."""
    candidates = quality[~quality.arm.isin(list(EXTRA_ARMS))]
    return candidates.loc[candidates["validation Dice"].idxmax()]


def recommended_changes(best: pd.Series, precision: str) -> dict[str, Any]:
    """The settings that make `quick` the recommended recipe (`recommended`'s row, trained in the sweep's
    `precision`): what the derived profile `configs/recommended.yaml` must change."""
    return {"data.input_size": int(best["input px"]), "train.epochs": int(best["epochs"]),
            "train.precision": precision, "runs.models": [ARMS[best["arm"]][0]]}


def verdict_changes(claims: pd.DataFrame) -> pd.DataFrame:
    """Per claim, its verdict at each point (columns in the points' order) and whether a larger budget changes it
    (undefined with one point: "one point only")."""
    table = claims.pivot(index="claim", columns="point", values="verdict")[list(dict.fromkeys(claims.point))]
    table["changes with the budget"] = ["one point only" if len(row) < 2 else "yes" if len(set(row)) > 1 else "no"
                                        for row in table.to_numpy()]
    return table.loc[list(dict.fromkeys(claims.claim))]


def instances_by_budget(runs: dict[BudgetPoint, dict[str, list[Run]]], tile_sets: dict[BudgetPoint, TileSet],
                        classics: dict[BudgetPoint, Entry], quality: pd.DataFrame,
                        cfg: dict[str, Any]) -> pd.DataFrame:
    """Notebook 04's nuclei-as-objects table at every point, inside the annotated region over the out-of-fold test
    tiles: object F1, AJI and PQ of the Enhanced model, the U-Net and the classic pipeline with Fieller intervals,
    and each model's paired per-image difference in AJI and object F1 from the classic pipeline (Holm over the
    point's models); `recommended` marks the row of `quality`'s recommended model and point."""
    tables = []
    for point, arms in runs.items():
        tile_set, config = tile_sets[point], point.config(cfg)
        index = arms["enhanced"][0].test_index(tile_set)
        models = _quality_arms(arms)
        entries = run_entries({ARMS[arm][0]: arms[arm] for arm in models}, predictions=False)
        for arm, label in models.items():  # named as in the quality table
            entries[ARMS[arm][0]].label = label
        entries["classic"] = classics[point]
        counts = {ARMS[arm][0]: [image_instance_counts(run) for run in arms[arm]] for arm in models}
        table = instance_ladder(entries, tile_set, index, config, AREA, counts).reset_index()
        tables.append(table.assign(**{"input px": point.input_size, "epochs": point.epochs, "point": point.label}))
    instances = pd.concat(tables, ignore_index=True)
    best = recommended(quality)
    instances["recommended"] = (instances.point == best["point"]) & (instances.model == best["model"])
    return instances


def describe(claims: pd.DataFrame, quality: pd.DataFrame, instances: pd.DataFrame, cost: pd.DataFrame) -> str:
    """Generated text: claim by claim, the verdict at each point and whether it changes; the best model and point
    (chosen on validation) against the classic pipeline, in Dice and as nuclei; the points not trained yet and
    their planned cost (`cost_by_budget`)."""
    changes = verdict_changes(claims)
    lines = []
    for claim, row in changes.iterrows():
        verdicts = row.drop("changes with the budget")
        said = ", ".join(f"{value} at {point}" for point, value in verdicts.items())
        change = {"yes": "The verdict changes with the budget.",
                  "no": "A larger budget does not change the verdict.",
                  "one point only": "Whether a larger budget changes it is not measured yet (one point)."}
        lines.append(f"- {claim}: {said}. {change[row['changes with the budget']]}")
    best = recommended(quality)
    lines.append(f"- Best on validation of the models trained at every point: {best['model']} at {best['point']}: region "
                 f"Dice {best['Dice']:.3f} [{best['Dice 95% CI low']:.3f}, {best['Dice 95% CI high']:.3f}] over "
                 f"{best['images']} images, {best['Dice - classic']:+.3f} per image against the classic pipeline "
                 f"(Holm p {best['Holm p vs classic']:.3g}: {best['verdict vs classic']}), trained in "
                 f"{best['training seconds']:.0f} s ({best['trained on']}).")
    gain = best["validation gain, last quarter"]
    if not np.isnan(gain):
        trend = "still rising: a longer point is worth training" if gain > 0 else "flat: more epochs should not help"
        lines.append(f"- Its validation curve there: {gain:+.3f} Dice over the last quarter of the epochs against the "
                     f"quarter before ({trend}).")
    for _, row in resolution_at_equal_seconds(quality).dropna().iterrows():
        curve = row["shrunk input at the same seconds"]
        lines.append(f"- {row['model']} at full resolution ({row['point']}, {row['training seconds']:.0f} s): region "
                     f"Dice {row['Dice']:.3f}, the shrunk input's curve at the same seconds {curve:.3f} "
                     f"({row['full resolution - shrunk input']:+.3f}).")
    ahead = quality[quality["verdict vs classic"] == "supported"]
    lines.append("- Above the classic pipeline in region Dice (per image, Holm within the point): " + (
        "; ".join(f"{row['model']} at {row['point']} ({row['Dice - classic']:+.3f}, Holm p "
                  f"{row['Holm p vs classic']:.3g})" for _, row in ahead.iterrows()) or "no model at any point") + ".")
    model = instances[instances.recommended].iloc[0]
    against = [f"{name} {model[f'{metric} - {CLASSIC_NAME}']:+.3f} (Holm p "
               f"{model[f'{metric} - {CLASSIC_NAME} Holm p']:.3g}: {model[f'{metric} - {CLASSIC_NAME} verdict']})"
               for metric, name in (("aji", "AJI"), ("object_f1", "object F1"))]
    lines.append(f"- As nuclei at that point: AJI {model['aji']:.3f}, object F1 {model['object_f1']:.3f}; per image "
                 f"against the classic pipeline: {', '.join(against)}.")
    for _, row in quality[quality.arm.isin(EXTRA_ARMS)].iterrows():
        enhanced = quality[(quality.point == row["point"]) & (quality.arm == "enhanced")].iloc[0]
        lines.append(f"- {row['model']} with the same epochs at {row['point']} (starting from {row['starting weights']}): "
                     f"region Dice {row['Dice']:.3f} [{row['Dice 95% CI low']:.3f}, {row['Dice 95% CI high']:.3f}], "
                     f"{row['Dice - classic']:+.3f} per image against the classic pipeline ({row['verdict vs classic']}), "
                     f"validation Dice {row['validation Dice']:.3f} (the recommended: {best['validation Dice']:.3f}; "
                     f"trained at this point only, not a candidate), trained in {row['training seconds']:.0f} s (the "
                     f"Enhanced model: {enhanced['training seconds']:.0f} s).")
    partial = cost[(cost["trained on"] != NOT_TRAINED) & cost["runs recorded so far"].notna()]
    for point, so_far in partial["runs recorded so far"].items():
        lines.append(f"- At {point}, an extra arm ({', '.join(QUALITY_ARMS[arm] for arm in EXTRA_ARMS)}) is not "
                     f"recorded whole yet ({so_far} of the point's runs recorded).")
    waiting = cost[cost["trained on"] == NOT_TRAINED]
    if len(waiting):
        planned = "; ".join(f"{point} (about {duration(seconds)})"
                            for point, seconds in waiting["estimated training seconds"].items())
        lines.append(f"- Not trained yet: {planned} of training planned from the measured points (the job list, "
                     "`python -m lib.experiments.study --budget`, names their runs).")
    return "\n".join(lines)


def estimated_seconds(runs: dict[BudgetPoint, dict[str, list[Run]]], point: BudgetPoint,
                      cfg: dict[str, Any], step_ms: dict[tuple[str, int, int], float] | None = None) -> float:
    """The training seconds a point not trained yet should take, planned from those measured: the trained point
    nearest in input size (then in epochs), each arm's seconds scaled by the epochs and, at another input size, by
    the ratio of one training step's time at the two sizes measured on this machine (`training_step_ms`; `step_ms`
    keeps the timings, per network (model, input channels) and size, between calls). Validation and data loading
    are assumed to scale alike. An arm the point trains but the nearest point did not (an extra arm) is not
    planned."""
    step_ms = {} if step_ms is None else step_ms
    basis = min(runs, key=lambda at: (abs(at.input_size - point.input_size), abs(at.epochs - point.epochs)))

    def step(arm: str, size: int) -> float:
        config = BudgetPoint(size, point.epochs).config(cfg, arm)
        network = (ARMS[arm][0], input_channels(ARMS[arm][0], config), size)  # arms that differ in loss only share it
        if network not in step_ms:
            step_ms[network] = training_step_ms(config, ARMS[arm][0])
        return step_ms[network]

    seconds = 0.0
    planned = point_arms(cfg, point)  # once: it checks every point of the profile
    for arm, found in runs[basis].items():
        if arm not in planned:
            continue
        scale = point.epochs / basis.epochs
        if point.input_size != basis.input_size:
            scale *= step(arm, point.input_size) / step(arm, basis.input_size)
        seconds += scale * sum(run.metrics["train_seconds"] for run in found)
    return seconds


def cost_by_budget(runs: dict[BudgetPoint, dict[str, list[Run]]], missing: list[BudgetPoint],
                   cfg: dict[str, Any], recorded: dict[BudgetPoint, tuple[int, int]] | None = None) -> pd.DataFrame:
    """What each point cost to train: its runs (arms x seeds x folds), their training seconds summed, the
    machines they were trained on and those machines' reference step (`efficiency.reference_step_ms`, recorded by
    each run); the points not trained yet with none, and their training seconds planned from those measured
    (`estimated_seconds`); for those and for trained points whose extra arm is not recorded yet, how many of their
    runs are recorded so far (`recorded`, from `recorded_runs`); the last row is the whole sweep (measured, and what
    is left planned)."""
    recorded = recorded or {}

    def so_far(point: BudgetPoint) -> str | float:
        return "{} of {}".format(*recorded[point]) if point in recorded else np.nan

    rows = []
    for point, arms in runs.items():
        found = [run for runs_of_arm in arms.values() for run in runs_of_arm]
        rows.append({"point": point.label, "runs": sum(len(run.fold_runs) for run in found),
                     "training seconds": sum(run.metrics["train_seconds"] for run in found),
                     "trained on": _machines(found), "reference step": _reference_steps(found),
                     "estimated training seconds": np.nan,
                     "runs recorded so far": so_far(point)})
    step_ms: dict[tuple[str, int, int], float] = {}
    rows += [{"point": point.label, "runs": 0, "training seconds": np.nan, "trained on": NOT_TRAINED,
              "reference step": "", "estimated training seconds": estimated_seconds(runs, point, cfg, step_ms),
              "runs recorded so far": so_far(point)}
             for point in missing]
    table = pd.DataFrame(rows)
    trained = table[table["runs"] > 0]
    total = {"point": "whole sweep", "runs": trained["runs"].sum(), "training seconds": trained["training seconds"].sum(),
             "trained on": "; ".join(sorted(set("; ".join(trained["trained on"]).split("; ")))),
             "reference step": _reference_steps([run for arms in runs.values() for found in arms.values()
                                                      for run in found]),
             "estimated training seconds": table["estimated training seconds"].sum() if missing else np.nan}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True).set_index("point")
