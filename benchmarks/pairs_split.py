"""Benchmark (not a test): do two runs split different shares of the same touching nuclei? A paired test on the
test tiles that `benchmarks/instances.py` scored for each run.

    .venv/bin/python benchmarks/pairs_split.py --baseline instances-synthetic-quick-contact_weight-10-enhanced \\
        --compare instances-synthetic-quick-contact_weight-10-enhanced-seed1 \\
                  instances-synthetic-quick-contact_weight-10-epochs-24-enhanced [--entry "<entry>"] [--fresh-seed 1000]

Each run's entry (default: its watershed settings and core share chosen on validation) is read from
figures/benchmarks/<name>-pairs.csv (per test tile: touching pairs, split, merged); the runs must share their test
tiles and pairs. With `--fresh-seed S` (synthetic runs only) the pairs are counted instead on every tile holding
touching pairs of a synthetic set generated from seed S rather than the runs' seed, so none of them was trained on,
validated on or chosen with: about eight times the test tiles' pairs. The set is kept at the source resolution
(`data.tile_size`), so runs that differ only in their input size are compared on the same pairs. Each run predicts
the tiles as it predicts a new image (its own input size, edge bounds, TTA arm and threshold; probabilities back at
source resolution) and labels them with the entry's watershed settings in source px. With `--as-predicted` too,
each run's fresh tiles are labelled as `python -m lib.inference` labels its nuclei: cut at the threshold and split
with the marker distance chosen together in training for the best AJI of the nuclei of its validation tiles predicted
as new images (`instances.threshold_from_validation`, lib/training/train.py), with the profile's minimum area and
core share, rather than at its pixel threshold (chosen for Dice at its network input) and the entry's settings;
`--profile-distance` splits them at the profile's marker distance instead, as predict did before training chose
it. For each compared run: the share split and the share merged into one object (beside the baseline's), the paired
difference to the baseline with the sign-flip interval over the tiles holding pairs
(`lib.evaluation.statistics.paired_share_difference`), the p-value and Holm's adjustment over the comparisons.
Another seed of the baseline's setting shows how far a seed alone moves the share.
Writes figures/benchmarks/pairs_split-<baseline without "instances-">[-fresh<S>[-as_predicted[-profile_distance]]]
(.csv and .md) and, when the runs differ in their training seed alone, the same name with -recipe: their mean share
with an interval over the seeds and one over the tiles (`recipe_share`); a later call on other recipes removes it.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from lib.config import load_config
from lib.data import tiles
from lib.evaluation.instances import SPLIT_PAIRS_COLUMNS, TOUCHING_GAP_SOURCE_PX, split_pairs, touching_pairs
from lib.evaluation.statistics import LEVEL, holm, paired_share_difference, ratio_interval, verdict
from lib.inference.instances import label_tiles, scaled_settings
from lib.inference.predict import WindowPredictor, load_run_model, predict_windows, run_precision
from lib.report.output import FIGURES_ROOT, remove_table, save_benchmark
from lib.training.runs import Run, prediction_instances, prediction_min_distance, prediction_threshold, read_run

ENTRY = "chosen on validation, core share too"
BATCH = 16


def read_pairs(name: str, entry: str) -> tuple[pd.Series, pd.DataFrame]:
    """A run's row of its instances table and its entry's per-tile pairs, indexed by tile."""
    folder = FIGURES_ROOT / "benchmarks"
    table_path, pairs_path = folder / f"{name}.csv", folder / f"{name}-pairs.csv"
    for path in (table_path, pairs_path):
        if not path.exists():
            raise SystemExit(f"error: {path} not found; run benchmarks/instances.py on that run (it writes both)")
    table = pd.read_csv(table_path, index_col="entry")
    found = table[(table.method != "classic") & (table.settings == entry)]
    if found.empty:
        raise SystemExit(f"error: {table_path} has no model entry '{entry}'")
    pairs = pd.read_csv(pairs_path)
    return found.iloc[0], pairs[pairs.entry == found.index[0]].set_index("tile").sort_index()


def merged_share(pairs: pd.DataFrame) -> float:
    """The share of the touching pairs that one predicted object merges (a lost pair not merged has a nucleus
    outlined with IoU <= 0.5 or missed)."""
    touching = pairs["touching pairs"].sum()
    return pairs["merged"].sum() / touching if touching else float("nan")  # no pairs: undefined, as instances.py says


@dataclass(frozen=True)
class FreshSet:
    """The tiles holding touching pairs of a synthetic set generated from another seed (module docstring)."""

    seed: int
    data: dict  # the data settings it was generated with, but the input size: every run compared must share them
    images: np.ndarray  # (N, H, W, 3) uint8, at source resolution
    truth: np.ndarray  # (N, H, W) int32 instance labels
    tiles: pd.Index  # their indices in the generated set


def generation_settings(data: dict) -> dict:
    """The data settings that decide the synthetic tiles at source resolution: all but the network's input size."""
    return {key: value for key, value in data.items() if key != "input_size"}


def synthetic_run(row: pd.Series) -> Run:
    """The run of an instances table's row, which --fresh-seed needs trained on the synthetic set."""
    run = read_run(Path(row["run"]))
    if run.record["data_dir"]:
        raise SystemExit(f"error: {row['run']} was trained on {run.record['data_dir']}; --fresh-seed generates "
                         "synthetic tiles, for runs trained on the synthetic set")
    return run


def fresh_set(row: pd.Series, seed: int) -> FreshSet:
    """The fresh set for the data settings of the run of an instances table's row."""
    cfg = synthetic_run(row).record["config"]
    source = {**cfg["data"], "input_size": cfg["data"]["tile_size"]}  # tiles kept as generated
    tile_set = tiles.prepare({**cfg, "data": source, "seed": seed})
    truth = np.asarray(tile_set.instances)
    holding = [i for i, labels in enumerate(truth) if touching_pairs(labels, TOUCHING_GAP_SOURCE_PX)]
    return FreshSet(seed, generation_settings(source), np.asarray(tile_set.images[holding]), truth[holding],
                    pd.Index(holding, name="tile"))


def fresh_pairs(row: pd.Series, fresh: FreshSet, as_predicted: bool = False,
                profile_distance: bool = False) -> tuple[pd.DataFrame, dict]:
    """Each tile's touching pairs, split and merged, indexed by tile, for the run of an instances table's row on the
    fresh set, each tile predicted as a new image is (`lib.inference.predict.WindowPredictor`) and cut at the run's
    pixel threshold with the row's watershed settings, or with `as_predicted` as `python -m lib.inference` labels its
    nuclei (with `profile_distance`, at the profile's marker distance rather than the run's); and the threshold and
    marker distance used."""
    run = synthetic_run(row)
    cfg = run.record["config"]
    if generation_settings(cfg["data"]) != fresh.data:
        raise SystemExit(f"error: {row['run']} was trained with other data settings than the baseline's, on which "
                         "the fresh set is generated (only the input size may differ); compare runs of one synthetic set")
    if fresh.seed == cfg["seed"]:
        raise SystemExit(f"error: --fresh-seed {fresh.seed} is the seed {row['run']} was trained with; give another")
    device = torch.device("cpu")
    model, model_name, _, metrics = load_run_model(run.folder, device)
    precision = run_precision(cfg, device)
    predictor = WindowPredictor(precision.prepare(model), model_name, cfg, device, metrics["tta"],
                                metrics["edge_bounds"], batch_size=BATCH, precision=precision)
    maps = predict_windows(predictor, fresh.images, f"{row['run']}: fresh tiles")
    settings = {"min_distance_px": row["min distance (source px)"], "min_area_px": row["min area (source px)"],
                "core_share": row["core share"]}
    if as_predicted:
        if prediction_min_distance([metrics], metrics["tta"]) is None:
            raise SystemExit(f"error: {row['run']} records no nuclei threshold and marker distance (trained before "
                             "instances.threshold_from_validation chose both, or with it off); train it again")
        profile = load_config(cfg["profile"])["instances"]
        settings = scaled_settings(profile if profile_distance else prediction_instances([metrics], metrics["tta"],
                                                                                          profile), 1.0)
    threshold = prediction_threshold([metrics], metrics["tta"], nuclei=as_predicted)
    labels = label_tiles(maps[..., 0], np.full(len(maps), threshold), settings,
                         centres=maps[..., 1] if predictor.channels > 1 else None)
    counts = [split_pairs(truth, predicted, TOUCHING_GAP_SOURCE_PX)
              for truth, predicted in zip(fresh.truth, labels, strict=True)]
    return (pd.DataFrame(counts, columns=SPLIT_PAIRS_COLUMNS, index=fresh.tiles),
            {"threshold": threshold, "min distance (source px)": settings["min_distance_px"]})


def one_recipe(runs: list[Run]) -> bool:
    """Whether the runs differ in their training seed alone (their configs otherwise equal)."""
    settings = [{key: value for key, value in run.record["config"].items() if key != "seed"} for run in runs]
    return all(setting == settings[0] for setting in settings[1:])


def recipe_share(runs: list[Run], pairs: list[pd.DataFrame]) -> pd.DataFrame:
    """The mean share of the same touching pairs that seeds of one recipe split, with two intervals, each for one
    source of chance: Student's t over the seeds (how far a seed alone moves the share, on these pairs) and
    Fieller's over the tiles (`ratio_interval`: the pairs drawn, the seeds' splits summed per tile)."""
    totals = pairs[0]["touching pairs"].to_numpy()
    shares = np.array([p["split"].sum() / totals.sum() for p in pairs])
    seeds_low, seeds_high = np.clip(  # a share lies in [0, 1], which Student's t does not know
        stats.t.interval(LEVEL, len(shares) - 1, loc=shares.mean(), scale=stats.sem(shares)), 0, 1)
    tiles_low, tiles_high = ratio_interval(sum(p["split"].to_numpy() for p in pairs), len(pairs) * totals)
    return pd.DataFrame([{
        "entry": str(runs[0].folder.parent), "seeds": ", ".join(str(run.record["seed"]) for run in runs),
        "touching pairs split (mean)": shares.mean(), "seeds CI low": seeds_low, "seeds CI high": seeds_high,
        "tiles CI low": tiles_low, "tiles CI high": tiles_high, "lowest seed": shares.min(),
        "highest seed": shares.max(), "tiles": len(totals), "touching pairs": int(totals.sum())}])


def remove_recipe_table(table_name: str) -> list[Path]:
    """Deletes the `<table_name>-recipe` table an earlier call wrote (its .csv and .md), when the runs compared now
    are not one recipe: its mean would describe other runs than the table beside it. Returns what it deleted."""
    stale = remove_table(FIGURES_ROOT / "benchmarks", f"{table_name}-recipe")
    for path in stale:
        print(f"removed {path}: the runs compared are not seeds of one recipe")
    return stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="an instances table's name, without .csv")
    parser.add_argument("--compare", required=True, nargs="+", help="instances tables to compare with it")
    parser.add_argument("--entry", default=ENTRY)
    parser.add_argument("--fresh-seed", type=int, help="count the pairs on a synthetic set generated from this seed")
    parser.add_argument("--as-predicted", action="store_true",
                        help="with --fresh-seed: label each run's maps as predict labels its nuclei (the threshold and "
                             "marker distance chosen for them in training) instead of at its pixel threshold with the "
                             "entry's watershed settings")
    parser.add_argument("--profile-distance", action="store_true",
                        help="with --as-predicted: split at the profile's marker distance, not the run's (as predict "
                             "did before training chose it), to measure what that choice changes")
    args = parser.parse_args()
    if args.as_predicted and args.fresh_seed is None:
        parser.error("--as-predicted needs --fresh-seed")
    if args.profile_distance and not args.as_predicted:
        parser.error("--profile-distance needs --as-predicted")

    fresh = None

    def pairs_of(name: str) -> tuple[pd.Series, pd.DataFrame, Run, dict]:
        """A run's row, its pairs, and the threshold and training seconds of the run that gave them (the run on
        disk for the fresh set, which it predicts; else the table's, whose run may since have been trained again)
        with its training machine's reference step, from the run's versions.json."""
        nonlocal fresh
        row, pairs = read_pairs(name, args.entry)
        run = read_run(Path(row["run"]))
        trained = {"threshold": row["threshold"], "training seconds": row["training seconds"]}
        if args.fresh_seed is not None:
            if fresh is None:  # generated once, from the baseline's data settings
                fresh = fresh_set(row, args.fresh_seed)
            pairs, cut = fresh_pairs(row, fresh, args.as_predicted, args.profile_distance)
            trained = {**cut, "training seconds": run.metrics["train_seconds"],
                       **({"pixel threshold": run.metrics["threshold"]} if args.as_predicted else {})}
        return row, pairs, run, {**trained, "training reference_step_ms": run.versions.get("reference_step_ms")}

    base_row, base, base_run, base_trained = pairs_of(args.baseline)
    rows, runs, all_pairs = [], [base_run], [base]
    for name in args.compare:
        row, other, run, trained = pairs_of(name)
        runs.append(run)
        all_pairs.append(other)
        if not (base.index.equals(other.index) and np.array_equal(base["touching pairs"], other["touching pairs"])):
            raise SystemExit(f"error: {name} was scored on other tiles or pairs than {args.baseline}")
        test = paired_share_difference(base["touching pairs"], base["split"], other["split"])
        rows.append({"entry": name, "run": row["run"], "input px": run.record["config"]["data"]["input_size"],
                     "epochs": row["epochs"], "seed": row["seed"],
                     "touching pairs split": test["share B"], "baseline split": test["share A"],
                     "touching pairs merged": merged_share(other), "baseline merged": merged_share(base),
                     "difference": test["difference"], "CI low": test["CI low"], "CI high": test["CI high"],
                     "p": test["p"], "tiles": test["units"], "touching pairs": test["items"],
                     **trained, **{f"baseline {key}": value for key, value in base_trained.items()
                                   if key in ("threshold", "pixel threshold", "min distance (source px)",
                                              "training reference_step_ms")}})
    table = pd.DataFrame(rows)
    table["p (Holm)"] = holm(table.p.to_numpy())
    table["verdict"] = [verdict(d, p) for d, p in zip(table.difference, table["p (Holm)"], strict=True)]
    table["verdict"] = table.verdict.replace({"supported": "splits more", "contradicted": "splits fewer"})
    tiles_scored = (f"the {len(base)} tiles holding touching pairs of a synthetic set generated from seed "
                    f"{args.fresh_seed} (none trained, validated or chosen on; predicted as new images and scored at source "
                    "resolution" if args.fresh_seed is not None else
                    "the test tiles, scored as `benchmarks/instances.py` scores them (inside the annotated region, at "
                    "the network input")
    suffix = ("" if args.fresh_seed is None else f"-fresh{args.fresh_seed}") + ("-as_predicted" if args.as_predicted else "") + (
        "-profile_distance" if args.profile_distance else "")
    profile = (" (here the profile's marker distance instead of the run's, as predict split nuclei before training "
               "chose it)" if args.profile_distance else "")
    cut = ("the threshold `python -m lib.inference` cuts its nuclei at and split with the marker distance it splits "
           "them with (columns threshold and min distance; its pixel threshold: column pixel threshold), both chosen "
           "in training for the best pooled AJI of the nuclei of its validation tiles predicted the same way "
           f"(`instances.threshold_from_validation`), with the profile's minimum area and core share{profile}"
           if args.as_predicted else "its own validation-chosen threshold, column threshold")
    table_name = f"pairs_split-{args.baseline.removeprefix('instances-')}{suffix}"
    save_benchmark(table, table_name, caption=(
        f"Touching pairs split on {tiles_scored}, each run's tiles cut at {cut}) by each run against "
        f"`{args.baseline}` (`{base_row['run']}`, {base_row['epochs']:.0f} epochs, seed "
        f"{base_row['seed']:.0f}, threshold {base_trained['threshold']:.2f}; the entry '{args.entry}' of each"
        f"{', whose settings only name the run' if args.as_predicted else ''}). The "
        f"share of the same true pairs (nuclei within {TOUCHING_GAP_SOURCE_PX} source px) that each run splits (merged: "
        "the share that one predicted object covers both nuclei of; a pair neither split nor merged has a nucleus "
        "outlined with IoU <= 0.5 or missed), the "
        f"paired difference (run minus baseline) with the sign-flip test and its {LEVEL:.0%} interval over the tiles "
        "holding pairs (a tile's pairs are not independent), Holm's adjustment over the runs compared; `inconclusive` "
        f"unless the adjusted p < {1 - LEVEL:.2f}. Threshold and training seconds: "
        f"{'those of the run on disk, which predicts the set' if fresh else 'those of the instances table'}; training "
        "reference_step_ms: that of the machine that trained each run (and the baseline), from the run's versions.json. "
        "`benchmarks/pairs_split.py`."))
    if one_recipe(runs):
        save_benchmark(recipe_share(runs, all_pairs), f"{table_name}-recipe", caption=(
            f"The mean share of the same {all_pairs[0]['touching pairs'].sum()} touching pairs (on {tiles_scored}) "
            f"that the {len(runs)} runs of `{table_name}` split, "
            "runs of one recipe that differ in their training seed alone, with two "
            f"{LEVEL:.0%} intervals, one for each source of chance: Student's t over the seeds (how far a seed alone "
            "moves the share, on these pairs; clipped to [0, 1]) and Fieller's over the tiles holding pairs (the pairs "
            "drawn; each tile's splits summed over the seeds); the lowest and highest seed's share beside. "
            "`benchmarks/pairs_split.py`."))
    else:
        remove_recipe_table(table_name)


if __name__ == "__main__":
    main()
