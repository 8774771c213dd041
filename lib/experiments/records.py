"""Run records: the part of a finished run that notebook 09's tables are computed from, small enough to publish.

A run's folder (`lib.training`) holds its checkpoint and its test probabilities: tens of MB, never committed. Its
record holds a few tens of kB: the run's `config.yaml`, `versions.json`, `history.csv`, `metrics.json` and
`per_tile.csv` as they are (`RECORD_FILES`), and `objects.csv`, computed from the probabilities when the record is
written: per test tile, inside the annotated region, the small true objects and how many the run's mask finds
(`ablations.small_object_hits`), and the instance counts of its nuclei as prediction labels them
(`lib.inference.instances.label_tiles` at the profile's `instances` settings) against the true nuclei
(`lib.evaluation.instances.instance_counts`). The settings those counts were taken at are columns of the file, so
that a record taken at other settings is refused, not mixed in.

Records are published under figures/ beside the tables they feed (`lib.paths.records_roots`), so a sweep
trained piecewise — over several sessions or machines, or on a GPU machine whose checkpoints never come back —
is assembled from the records committed so far. A record is read back as a `Run` (no checkpoint, no probabilities)
and is current when its config is the one asked for and its dataset the same (the data folder's path may differ
between machines).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..data.geometry import source_area_to_input
from ..data.tiles import TileSet
from ..evaluation.instances import INSTANCE_COUNTS, instance_counts
from ..evaluation.metrics import per_group
from ..inference.instances import label_tiles, settings_at_input
from ..paths import dataset_name
from ..training.runs import OutOfFold, Run, StaleRunError, changed_settings, read_run
from .ablations import small_object_hits

RECORD_FILES = ("config.yaml", "versions.json", "history.csv", "per_tile.csv", "metrics.json")  # metrics.json last
OBJECTS = "objects.csv"
SMALL = ("small_detected", "small_total")


def evaluation_settings(cfg: dict[str, Any]) -> dict[str, float]:
    """What `objects.csv`'s counts depend on besides the run: the small-object size and the watershed's settings,
    in px of the network input."""
    return {"small_px": source_area_to_input(cfg["train"]["small_object_source_px"], cfg["data"]),
            **{key: value for key, value in settings_at_input(cfg).items() if key != "sigma_px"}}


def object_counts(run: Run, tile_set: TileSet, cfg: dict[str, Any]) -> pd.DataFrame:
    """Per test tile of `run` (its own arm and thresholds), inside the annotated region: small objects found and
    total, and the instance counts of its nuclei; the evaluation settings as columns."""
    settings = evaluation_settings(cfg)
    index = run.test_index(tile_set)
    masks, regions = np.asarray(tile_set.masks[index], bool), np.asarray(tile_set.regions[index], bool)
    truths = np.asarray(tile_set.instances[index])
    probabilities, thresholds = run.test_probabilities(), run.tile_thresholds()
    predictions = probabilities >= thresholds[:, None, None]
    labelled = label_tiles(probabilities, thresholds, settings_at_input(cfg), centres=run.test_centres())
    rows = [dict(zip(SMALL, small_object_hits(pred, mask & region, settings["small_px"]), strict=True))
            | instance_counts(truth, labels, region)
            for pred, mask, region, truth, labels in zip(predictions, masks, regions, truths, labelled, strict=True)]
    table = pd.DataFrame(rows, columns=[*SMALL, *INSTANCE_COUNTS])
    return pd.concat([run.per_tile[["tile_id", "source"]].reset_index(drop=True), table], axis=1).assign(**settings)


def is_recorded(run: Run, record: Path, cfg: dict[str, Any]) -> bool:
    """Whether `record` holds this run (the same metrics) at the current evaluation settings."""
    if not (record / "metrics.json").is_file() or not (record / OBJECTS).is_file():
        return False
    same_run = (record / "metrics.json").read_text() == (run.folder / "metrics.json").read_text()
    return same_run and _settings_differ(pd.read_csv(record / OBJECTS), cfg) == []


def write_record(run: Run, record: Path, tile_set: TileSet, cfg: dict[str, Any]) -> None:
    """Write (or replace) the record of a finished run: its files and `objects.csv`, into a temporary folder
    renamed into place, so that a record is either whole or absent."""
    objects = object_counts(run, tile_set, cfg)
    record.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=record.parent, prefix=f".{record.name}-"))
    objects.to_csv(staging / OBJECTS, index=False)  # the folder's rename below is what makes the record atomic
    for name in RECORD_FILES:
        shutil.copyfile(run.folder / name, staging / name)
    if record.exists():
        shutil.rmtree(record)
    os.replace(staging, record)


def _settings_differ(objects: pd.DataFrame, cfg: dict[str, Any]) -> list[str]:
    return [key for key, value in evaluation_settings(cfg).items()
            if key not in objects or not np.allclose(objects[key].to_numpy(float), value)]


def read_record(record: Path, cfg: dict[str, Any], data_dir: str | Path | None, model_name: str) -> Run:
    """A record read as a finished run (its per_tile table gains objects.csv's columns); StaleRunError naming the
    record if it was taken with another config, dataset or evaluation settings."""
    problems = record_problems(record, cfg, data_dir, model_name)
    if problems:
        raise StaleRunError(f"{record}: a record of another {problems}; write it again from the run "
                               "(notebook 09 does, where the run's folder is) or train that run")
    run = read_run(record)
    run.per_tile = run.per_tile.merge(pd.read_csv(record / OBJECTS)[["tile_id", *SMALL, *INSTANCE_COUNTS]],
                                      on="tile_id", how="left", validate="one_to_one")
    return run


def record_problems(record: Path, cfg: dict[str, Any], data_dir: str | Path | None, model_name: str) -> str:
    """What makes a finished record not this config's ('' when it is): changed settings, dataset or evaluation."""
    recorded = yaml.safe_load((record / "config.yaml").read_text())
    changed = changed_settings(recorded["config"], cfg, model_name)
    changed += ["dataset"] if recorded["dataset"] != dataset_name(data_dir) else []
    changed += [f"evaluation ({key})" for key in _settings_differ(pd.read_csv(record / OBJECTS), cfg)]
    return f"config (changed: {', '.join(changed)})" if changed else ""


def is_current(record: Path, cfg: dict[str, Any], data_dir: str | Path | None, model_name: str) -> bool:
    """Whether `record` is a finished record of this config, dataset and evaluation settings."""
    return ((record / "metrics.json").is_file() and (record / OBJECTS).is_file()
            and not record_problems(record, cfg, data_dir, model_name))


def joined(folds: list[Run]) -> Run:
    """One seed's records: the single split's run, or every fold's read as one (`OutOfFold`)."""
    return folds[0] if len(folds) == 1 and folds[0].record["fold"] is None else OutOfFold.of(folds)


def image_measures(run: Run) -> pd.DataFrame:
    """Per test source image, inside the annotated region: pooled Dice and small-object recall (NaN without small
    objects), with the small objects found and total; what `ablations.per_image_measures` computes from the
    probabilities, here from the record."""
    tiles = run.per_tile
    region = tiles[[f"annotated_region_{k}" for k in ("tp", "fp", "fn")]].set_axis(["tp", "fp", "fn"], axis=1)
    small = tiles.groupby("source")[list(SMALL)].sum()
    return pd.DataFrame({"Dice": per_group(region, tiles.source)["dice"],
                         "small-object recall": small.small_detected / small.small_total.where(small.small_total > 0),
                         }).join(small)


def image_instance_counts(run: Run) -> pd.DataFrame:
    """The instance counts of each test source image inside the annotated region (its tiles summed)."""
    return run.per_tile.groupby("source")[list(INSTANCE_COUNTS)].sum()
