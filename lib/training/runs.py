"""A training run's folder and records, and the one rule for which run may be reused.

results/<dataset>/<profile>/[<experiment>/]<model>/seed<k>/[fold<f>/] holds config.yaml (the record: model, seed,
fold, dataset, data folder and the config sections training reads), versions.json, history.csv (per epoch),
sampling_weights.csv, best.pt (the selected checkpoint), per_tile.csv (the test tiles' counts and scores),
test_probabilities-tta.npy and test_probabilities-no_tta.npy (test_centres-<arm>.npy for a model with a centre
head), metrics.json, written when the run is finished (its
presence marks it so), and MODEL_CARD.md. While a run is unfinished, last.pt holds the full training state.

A run may be resumed or read only when it was recorded from the same data folder and the settings its training
reads are unchanged (`changed_settings`: another model's `ladder.epochs` entry, or a setting only notebook 05
reads, is not such a setting; a setting introduced after a run was recorded is no change at the value that
reproduces what the run did, `INTRODUCED`). Training (`lib.training.train`) and every notebook go through this
check (`check_current`, `open_run`, `open_runs`); a stale run is refused with the changed keys named.

With K folds (`data.folds`), the K runs of one model and seed read as one (`OutOfFold`): their test tiles
together are every source image once, each predicted by the fold's model that never saw it.
"""
from __future__ import annotations

import copy
import json
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from ..data.tiles import TileSet
from ..evaluation.metrics import pooled
from ..models import has_centre_head, loss_area, model_spec
from ..paths import (
    REPO_ROOT,
    RESULTS_ROOT,
    SETTING_AXES,
    data_folder,
    dataset_name,
    run_directory,
    setting_changes,
    setting_directory,
    setting_name,
)
from .recipe import model_epochs

RUN_SECTIONS = ("profile", "seed", "data", "gabor", "model", "train", "ladder", "stability")
ARMS = {True: "tta", False: "no_tta"}  # test-time augmentation on / off
# Settings added after runs were first recorded, at the value that reproduces what a run recorded without them did.
INTRODUCED = {"data.folds": 1, "train.loss_area": "whole_tile", "train.precision": "fp32", "train.stain_augmentation": 0.0,
              "train.scale_augmentation": 0.0, "train.zoom_limit": 1.4, "train.contact_weight": 0.0, "train.gap_sigma_px": 0.0,
              "model.centre_head": False, "model.full_resolution_skip": False,
              "model.encoder_scale": 1.0, "model.encoder_shrink": "area"}


class StaleRunError(RuntimeError):
    """A run on disk was recorded with another config or data folder than the one asked for."""


class MissingRunError(FileNotFoundError):
    """A run that a table or notebook needs has not been trained (or not finished); `what` names it."""

    def __init__(self, message: str, what: str = ""):
        super().__init__(message)
        self.what = what


def run_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of a config a training run depends on (not `runs`, which says what run_all trains, nor the
    sections of the notebooks that only read runs)."""
    return {key: value for key, value in cfg.items() if key in RUN_SECTIONS}


def model_run_config(cfg: dict[str, Any], model_name: str) -> dict[str, Any]:
    """run_config as one model's training reads it: ladder.epochs resolved to this model's epochs, and the
    `stability` section only where it sets the learning rate (the unstabilized arm)."""
    config = run_config(cfg)
    ladder = {key: value for key, value in config["ladder"].items() if key != "epochs"}
    stability = {} if model_spec(model_name).stabilized else {"learning_rate": config["stability"]["learning_rate"]}
    return {**config, "ladder": ladder, "stability": stability,
            "train": {**config["train"], "epochs": model_epochs(cfg, model_name),
                      "loss_area": loss_area(model_name, config)}}


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    items: dict[str, Any] = {}
    for key, value in config.items():
        items.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return items


def with_introduced(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded config with the settings introduced after it at their old-behaviour values (`INTRODUCED`)."""
    config = copy.deepcopy(config)
    for dotted, value in INTRODUCED.items():
        section, key = dotted.split(".")
        config.setdefault(section, {}).setdefault(key, value)
    return config


def changed_settings(recorded: dict[str, Any], cfg: dict[str, Any], model_name: str) -> list[str]:
    """The dotted config keys whose values a run recorded with `recorded` would train with differently under
    `cfg` (empty: the run is this config's)."""
    before = _flat(model_run_config(with_introduced(recorded), model_name))
    after = _flat(model_run_config(cfg, model_name))
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def run_record(cfg: dict[str, Any], data_dir: str | Path | None, model_name: str, seed: int,
               fold: int | None = None) -> dict[str, Any]:
    """What config.yaml records about a run."""
    folder = data_folder(data_dir)
    return {"model": model_name, "seed": seed, "fold": fold, "dataset": dataset_name(data_dir),
            "data_dir": "" if folder is None else str(folder), "config": run_config(cfg)}


def check_current(run: Path, cfg: dict[str, Any], data_dir: str | Path | None, model_name: str) -> None:
    """Refuse (StaleRunError) a run folder recorded with another config or data folder; nothing recorded is fine."""
    if not (run / "config.yaml").is_file():
        return
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    changed = changed_settings(recorded["config"], cfg, model_name)
    changed += ["data_dir"] if recorded["data_dir"] != run_record(cfg, data_dir, model_name, 0)["data_dir"] else []
    if changed:
        state = "a finished" if (run / "metrics.json").is_file() else "an unfinished"
        raise StaleRunError(f"{run} holds {state} run of another config (changed: {', '.join(changed)}); "
                            "pass --force to train it again")


def is_finished_and_current(run: Path, cfg: dict[str, Any], data_dir: str | Path | None, model_name: str) -> bool:
    """Whether a run folder holds a finished run trained with this config (a stale one is not: it needs --force)."""
    if not (run / "metrics.json").is_file():
        return False
    try:
        check_current(run, cfg, data_dir, model_name)
    except StaleRunError:
        return False
    return True


def library_versions() -> dict[str, str]:
    """Versions of what the numbers depend on, and the code's git commit when there is one."""
    import albumentations
    import cv2
    import segmentation_models_pytorch
    import timm
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
            "segmentation_models_pytorch": segmentation_models_pytorch.__version__, "timm": timm.__version__,
            "albumentations": albumentations.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
            "git_commit": commit}


def _area_counts(per_tile: pd.DataFrame, area: str) -> pd.DataFrame:
    return per_tile[[f"{area}_{k}" for k in ("tp", "fp", "fn")]].set_axis(["tp", "fp", "fn"], axis=1)


@dataclass
class Run:
    """A finished run's records, read from its folder."""
    folder: Path
    record: dict[str, Any]
    versions: dict[str, Any]
    history: pd.DataFrame
    metrics: dict[str, Any]
    per_tile: pd.DataFrame
    weights: pd.DataFrame

    @property
    def model(self) -> str:
        return self.record["model"]

    @property
    def fold_runs(self) -> tuple[Run, ...]:
        """The single runs this run is made of: itself (an `OutOfFold` gives its folds)."""
        return (self,)

    @property
    def seed(self) -> int:
        return self.record["seed"]

    @property
    def experiment(self) -> str:
        """The sub-folder of a run whose settings differ from the profile's (`--experiment`; "" for none): the
        folders between the setting's and the model's (module docstring)."""
        parts = self.folder.resolve().parts
        model_at = len(parts) - 1 - parts[::-1].index(self.model)
        setting = setting_name(self.record["config"])
        setting_at = max((i for i in range(model_at) if parts[i] == setting), default=model_at - 1)
        return "/".join(parts[setting_at + 1:model_at])

    def threshold(self, tta: bool | None = None) -> float:
        """The test threshold of an arm (None: the run's own TTA setting), chosen on its validation split."""
        return self.metrics["arms"][ARMS[self.metrics["tta"] if tta is None else tta]]["threshold"]

    def test_probabilities(self, tta: bool | None = None) -> np.ndarray:
        """Test-tile probabilities (N, H, W) float32 of an arm, in the order of `per_tile`."""
        arm = ARMS[self.metrics["tta"] if tta is None else tta]
        return np.load(self.folder / f"test_probabilities-{arm}.npy").astype(np.float32)

    def test_centres(self, tta: bool | None = None) -> np.ndarray | None:
        """Test-tile centre maps (N, H, W) float32 of an arm for a model with a centre head, else None."""
        path = self.folder / f"test_centres-{ARMS[self.metrics['tta'] if tta is None else tta]}.npy"
        return np.load(path).astype(np.float32) if has_centre_head(self.model, self.record["config"]) else None

    def tile_thresholds(self, tta: bool | None = None) -> np.ndarray:
        """The threshold each test tile is cut at (one per tile, in the order of `per_tile`)."""
        return np.full(len(self.per_tile), self.threshold(tta))

    def test_predictions(self, tta: bool | None = None) -> np.ndarray:
        """Binary test predictions (N, H, W) of an arm, at its threshold."""
        return self.test_probabilities(tta) >= self.tile_thresholds(tta)[:, None, None]

    def test_index(self, tile_set: TileSet) -> np.ndarray:
        """Rows of `tile_set` of the run's test tiles, in the order of `per_tile`."""
        position = {tile_id: i for i, tile_id in enumerate(tile_set.table.tile_id)}
        return np.array([position[tile_id] for tile_id in self.per_tile.tile_id])

    def pooled_scores(self, area: str) -> dict[str, float]:
        """Dice, IoU, precision and recall of the run's own arm, pooled over its test tiles, in an area."""
        return pooled(_area_counts(self.per_tile, area))


@dataclass
class OutOfFold(Run):
    """The runs of one model and seed over the folds of a cross-validation, read as one run whose test tiles are
    every fold's (`per_tile` gains a `fold` column; each fold's tiles are cut at that fold's threshold)."""
    folds: tuple[Run, ...] = ()

    @classmethod
    def of(cls, folds: list[Run]) -> OutOfFold:
        """Join the fold runs (in fold order); history, metrics and weights are fold 0's, for what they share;
        optimiser steps and training seconds are the folds' sums (the cross-validation's budget)."""
        first = folds[0]
        per_tile = pd.concat([run.per_tile.assign(fold=i) for i, run in enumerate(folds)], ignore_index=True)
        metrics = {**first.metrics, **{key: sum(run.metrics[key] for run in folds)
                                       for key in ("optimizer_steps", "train_seconds")}}
        return cls(first.folder.parent, first.record, first.versions, first.history, metrics, per_tile,
                   first.weights, tuple(folds))

    @property
    def fold_runs(self) -> tuple[Run, ...]:
        return self.folds or (self,)

    def test_probabilities(self, tta: bool | None = None) -> np.ndarray:
        return np.concatenate([run.test_probabilities(tta) for run in self.folds])

    def test_centres(self, tta: bool | None = None) -> np.ndarray | None:
        centres = [run.test_centres(tta) for run in self.folds]
        return None if centres[0] is None else np.concatenate(centres)

    def tile_thresholds(self, tta: bool | None = None) -> np.ndarray:
        return np.concatenate([run.tile_thresholds(tta) for run in self.folds])

    def threshold(self, tta: bool | None = None) -> float:
        """The folds' thresholds differ; this is their median (for captions; cutting uses `tile_thresholds`)."""
        return float(np.median([run.threshold(tta) for run in self.folds]))


def prediction_threshold(metrics: list[dict[str, Any]], tta: bool, nuclei: bool = False) -> float:
    """The threshold a prediction by these runs cuts at: one run's own for the TTA setting, chosen on its validation
    split; several runs' (averaged together) the mean of theirs. With `nuclei`, the threshold their nuclei are cut at
    when they predict a new image (`python -m lib.inference`): chosen for nuclei (`instances.threshold_from_validation`,
    lib/training/train.py), or the pixel threshold for a run that recorded none (trained before it, or with it off)."""
    arms = [run_metrics["arms"][ARMS[tta]] for run_metrics in metrics]
    return float(np.mean([arm.get("nuclei_threshold", arm["threshold"]) if nuclei else arm["threshold"]
                          for arm in arms]))


def prediction_min_distance(metrics: list[dict[str, Any]], tta: bool) -> float | None:
    """The watershed's minimum marker distance (source px of the runs' training images) that these runs' nuclei are
    split with when they predict a new image: chosen with their nuclei threshold (`prediction_threshold`); several
    runs' the mean of theirs; None when a run recorded none (the profile's `instances.min_distance_source_px` then)."""
    arms = [run_metrics["arms"][ARMS[tta]] for run_metrics in metrics]
    if any("nuclei_min_distance_source_px" not in arm for arm in arms):
        return None
    return float(np.mean([arm["nuclei_min_distance_source_px"] for arm in arms]))


def prediction_instances(metrics: list[dict[str, Any]], tta: bool, instances: dict[str, Any]) -> dict[str, Any]:
    """The `instances` settings (a profile's) that `python -m lib.inference` labels these runs' nuclei with: the
    marker distance the runs chose in training (`prediction_min_distance`) in place of the profile's, when they
    recorded one."""
    distance = prediction_min_distance(metrics, tta)
    return instances if distance is None else {**instances, "min_distance_source_px": distance}


def read_run(run: Path) -> Run:
    """A finished run's records, without checking which config it belongs to (use `open_run` for that); its
    config holds the settings introduced after it was recorded at the values it trained with (`INTRODUCED`); a run
    record (`lib.experiments.records`) has no sampling weights: empty."""
    run = Path(run)
    if not (run / "metrics.json").is_file():
        raise MissingRunError(f"{run} is not a finished run (no metrics.json); train it first")
    record = yaml.safe_load((run / "config.yaml").read_text())
    record["config"] = with_introduced(record["config"])  # settings added since, at the values it trained with
    return Run(run, record,
               json.loads((run / "versions.json").read_text()), pd.read_csv(run / "history.csv"),
               json.loads((run / "metrics.json").read_text()), pd.read_csv(run / "per_tile.csv"),
               pd.read_csv(run / "sampling_weights.csv") if (run / "sampling_weights.csv").is_file() else pd.DataFrame())



def read_recipe_runs(paths: list[Path]) -> list[Run]:
    """Finished runs of one recipe (other seeds of one model and config), read to be measured averaged; ValueError
    naming the first that differs."""
    runs = [read_run(path) for path in paths]
    for path, other in zip(paths[1:], runs[1:]):
        if other.model != runs[0].model or other.record["config"] != runs[0].record["config"]:
            raise ValueError(f"{path} and {paths[0]} differ in their model or training recipe: runs averaged "
                             "together are one recipe's seeds")
    return runs

def _open_one(cfg: dict[str, Any], data_dir: str | Path | None, model_name: str, seed: int, experiment: str,
              root: Path, fold: int | None) -> Run:
    folder = run_directory(cfg, data_dir, model_name, seed, root, experiment, fold)
    if not (folder / "metrics.json").is_file():
        what = f"{model_name} seed {seed}" + ("" if fold is None else f" fold {fold}")
        raise MissingRunError(f"no finished run of {what} in {folder}; train it first ({training_command(cfg)} "
                              "--only 03, or python -m lib.training)", what)
    check_current(folder, cfg, data_dir, model_name)
    return read_run(folder)


def training_command(cfg: dict[str, Any]) -> str:
    """The run_all.sh options that train this config's runs (its profile, folds, and the settings that make its
    setting, `lib.paths.SETTING_AXES`)."""
    words = ["./run_all.sh", "--profile", cfg["profile"]]
    words += ["--folds", str(cfg["data"]["folds"])] if cfg["data"]["folds"] > 1 else []
    changes = setting_changes(cfg)
    for dotted, option, _ in SETTING_AXES:
        words += [option, str(changes[dotted])] if dotted in changes else []
    return " ".join(words)


def run_folds(cfg: dict[str, Any]) -> list[int | None]:
    """The fold of each run one model and seed trains: None for the single split, else 0 to K-1 (`data.folds`)."""
    return [None] if cfg["data"]["folds"] == 1 else list(range(cfg["data"]["folds"]))


def open_run(cfg: dict[str, Any], data_dir: str | Path | None, model_name: str, seed: int, experiment: str = "",
             root: Path = RESULTS_ROOT, fold: int | None = None) -> Run:
    """The finished run of this config, data folder, model and seed: with `data.folds` > 1, fold `fold`'s, or
    (fold None) every fold's read as one (`OutOfFold`). MissingRunError if there is none, StaleRunError if the
    one there was trained otherwise."""
    folds = cfg["data"]["folds"]
    if folds == 1 or fold is not None:
        return _open_one(cfg, data_dir, model_name, seed, experiment, root, fold)
    return OutOfFold.of([_open_one(cfg, data_dir, model_name, seed, experiment, root, f) for f in range(folds)])


def open_runs(cfg: dict[str, Any], data_dir: str | Path | None, models: list[str], seeds: int,
              root: Path = RESULTS_ROOT) -> dict[str, list[Run]]:
    """`open_run` for every model and seed, naming every missing and every stale run in one error."""
    runs: dict[str, list[Run]] = {}
    missing, stale = [], []
    for model in models:
        for seed in range(seeds):
            try:
                runs.setdefault(model, []).append(open_run(cfg, data_dir, model, seed, root=root))
            except MissingRunError as error:
                missing.append(error.what)
            except StaleRunError as error:
                stale.append(str(error))
    if missing:
        raise MissingRunError(f"no finished run for {', '.join(missing)} under "
                              f"{setting_directory(cfg, data_dir, root)}; train them first "
                              f"({training_command(cfg)} --only 03, or python -m lib.training)")
    if stale:
        raise StaleRunError("; ".join(stale) + " (or run the notebook with the runs' profile and data folder)")
    return runs
