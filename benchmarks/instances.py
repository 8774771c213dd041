"""Benchmark (not a test): a run's nuclei as objects, with the watershed's settings chosen on its validation tiles,
against the classic pipeline with its settings chosen on the training tiles.

    .venv/bin/python benchmarks/instances.py --run results/<dataset>/<setting>/[<experiment>/]<model>/seed<k>[/fold<f>]
    .venv/bin/python benchmarks/instances.py --run RUN_SEED0 RUN_SEED1 ...   # runs of one recipe, averaged

Several runs of one recipe (other seeds, so the same split) are measured as `python -m lib.inference` predicts with
them: their probabilities averaged, cut at the mean of their thresholds (models with a centre head one at a time).

1. The run's validation tiles are predicted (its own TTA arm and threshold) and the watershed's minimum marker
   distance and minimum area are chosen on them by pooled AJI inside the annotated region
   (`lib.evaluation.scoring.choose_split_settings`; the grid is in source-image px, scaled to the network input),
   twice: with markers from the mask (core share 1: the profiles' setting, which every table uses), and with the
   core share chosen too (markers from the surest cores when that does better on validation). A model with a
   centre head takes its markers from its predicted centre map instead (lib/inference/instances.py), in every row.
2. The classic pipeline's smoothing, distance and area are chosen the same way on (up to 200 of) the training
   tiles, which it never trains on.
3. Both are scored on the test tiles, at the profile's settings and at the chosen ones: object precision, recall,
   F1 at IoU 0.5, AJI, PQ, and the shares of touching true nuclei (within 3 source px) that come out split and
   merged (the rest: a nucleus of the pair found with the wrong outline, or missed), the share split with Fieller's
   95% interval over the tiles that hold pairs; the model's rows also give its validation tiles' scores at the same
   settings (`benchmarks/contact_weight.py` chooses a gap weight on them).
Writes figures/benchmarks/instances-<dataset>-<setting>[-<experiment>]-<model>[-seed<k>][-fold<f>].csv (scores; seed 0
unnamed), -grid.csv (every setting tried on validation or training tiles) and -pairs.csv (each test tile's touching pairs,
split and merged, per entry: `benchmarks/pairs_split.py` compares runs on them), with the run's epochs, seed, training
seconds and its training machine's reference step, and this machine's. Nothing here looks at the test tiles to choose.
"""
from __future__ import annotations

import argparse
import functools
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib import config, paths
from lib.data import tiles
from lib.data.geometry import input_scale
from lib.evaluation.instances import (
    SPLIT_PAIRS_COLUMNS,
    TOUCHING_GAP_SOURCE_PX,
    instance_counts,
    instance_scores,
    split_pairs,
)
from lib.evaluation.scoring import choose_split_settings, pooled_relief_scores
from lib.evaluation.statistics import ratio_interval
from lib.files import write_text_atomic
from lib.inference.classic import classic_mask, classic_nuclei
from lib.inference.inputs import tile_edges
from lib.inference.instances import label_tiles, scaled_settings, watershed_relief
from lib.inference.predict import load_run_model, predict_tiles, refiner, run_precision
from lib.models import has_centre_head
from lib.report.output import save_benchmark
from lib.training.dataset import TileDataset
from lib.training.runs import prediction_threshold, read_recipe_runs
from lib.training.train import split_indices

DISTANCES_SOURCE_PX = (2, 3, 4, 6, 8, 10, 12)
AREAS_SOURCE_PX = (10, 20, 30, 50)
CORE_SHARES = (0.5, 0.2, 0.1)  # below 1: markers from the cores (lib/inference/instances.py)
SIGMAS_SOURCE_PX = (0.5, 1.0, 2.0)
MAX_CLASSIC_TILES = 200
VALIDATION_COLUMNS = ("aji", "object_f1", "touching pairs", "touching pairs split")  # the model's, at the same settings



def scores(truth: np.ndarray, labels: list[np.ndarray], within: np.ndarray,
           touching_px: float) -> tuple[dict[str, float], np.ndarray]:
    """Pooled instance scores and the shares of touching pairs split and merged; each tile's (pairs, split, merged)."""
    counts = pd.DataFrame([instance_counts(t, p, w) for t, p, w in zip(truth, labels, within, strict=True)]).sum()
    per_tile = np.array([split_pairs(np.where(w, t, 0), np.where(w, p, 0), touching_px)
                         for t, p, w in zip(truth, labels, within, strict=True)])
    pairs, with_pairs = per_tile.sum(0), per_tile[per_tile[:, 0] > 0]
    low, high = np.clip(ratio_interval(with_pairs[:, 1], with_pairs[:, 0]), 0, 1)  # tiles as units: a tile's pairs are
    # not independent; Fieller's bounds can pass the 0 and 1 that a share cannot (clipping keeps the coverage)
    return {**instance_scores(counts), "true nuclei": int(counts.tp + counts.fn), "touching pairs": int(pairs[0]),
            "touching pairs split": pairs[1] / pairs[0] if pairs[0] else float("nan"),
            "touching pairs split CI low": low, "touching pairs split CI high": high,
            "touching pairs merged": pairs[2] / pairs[0] if pairs[0] else float("nan")}, per_tile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path, nargs="+",
                        help="a run, or runs of one recipe (other seeds) measured averaged")
    args = parser.parse_args()
    try:
        runs = read_recipe_runs(args.run)
    except ValueError as error:
        parser.error(str(error))
    run, named = runs[0], " + ".join(map(str, args.run))
    cfg, model_name = run.record["config"], run.model
    if len(runs) > 1 and has_centre_head(model_name, cfg):
        parser.error("runs with a centre head are measured one at a time")
    tile_set = tiles.prepare(cfg, run.record["data_dir"] or None)
    factor = input_scale(cfg["data"])
    index = split_indices(tile_set, cfg, model_name, run.record.get("fold"))
    within = {split: np.asarray(tile_set.regions[i], bool) for split, i in index.items()}
    truth = {split: np.asarray(tile_set.instances[i]) for split, i in index.items()}
    test = run.test_index(tile_set)
    assert np.array_equal(np.sort(test), np.sort(index["test"]))
    assert all(np.array_equal(other.test_index(tile_set), test) for other in runs[1:])  # one split: the same order
    truth["test"], within["test"] = np.asarray(tile_set.instances[test]), np.asarray(tile_set.regions[test], bool)
    touching = TOUCHING_GAP_SOURCE_PX * factor
    profile_config = config.load_config(cfg["profile"])

    # 1. the model's watershed settings, on its validation tiles
    device = torch.device("cpu")
    precision = run_precision(cfg, device)
    dataset = TileDataset(tile_set, index["val"], tile_edges(tile_set, model_name, cfg)[0], cfg["model"])
    val_maps = np.mean([predict_tiles(precision.prepare(model), dataset, device, metrics["tta"], refiner(model_name, cfg),
                                      precision=precision, every_channel=True)  # (N, C, H, W): probability, centre map
                        for model, _, _, metrics in (load_run_model(path, device) for path in args.run)], axis=0)
    threshold = prediction_threshold([other.metrics for other in runs], run.metrics["tta"])  # one recipe: one arm
    centre_head = has_centre_head(model_name, cfg)
    val_probabilities, val_centres = val_maps[:, 0], (val_maps[:, 1] if centre_head else None)
    choose = functools.partial(choose_split_settings, val_probabilities, threshold, truth["val"], within["val"],
                               tuple(d * factor for d in DISTANCES_SOURCE_PX),
                               tuple(a * factor**2 for a in AREAS_SOURCE_PX), centres=val_centres)
    chosen, grid = choose((1.0,))
    with_cores, cores_grid = (chosen, grid.iloc[:0]) if centre_head else choose(CORE_SHARES)  # cores: unused with centres
    if cores_grid.empty or cores_grid.aji.max() <= grid.aji.max():  # ties go to the mask's markers
        with_cores = chosen
    grid = pd.concat([grid, cores_grid]).assign(method=model_name, tiles="validation")

    # 2. the classic pipeline's settings, on training tiles
    train = index["train"][:MAX_CLASSIC_TILES]
    images = np.asarray(tile_set.images[train])
    train_truth, train_within = np.asarray(tile_set.instances[train]), np.asarray(tile_set.regions[train], bool)
    splits, rows = list(itertools.product(DISTANCES_SOURCE_PX, AREAS_SOURCE_PX)), []
    for sigma in SIGMAS_SOURCE_PX:  # each smoothing's masks made once for all the watershed settings
        reliefs = (watershed_relief(classic_mask(image, sigma * factor)) for image in images)
        sigma_scores = pooled_relief_scores(reliefs, train_truth, train_within,
                                            [(distance * factor, area * factor**2) for distance, area in splits],
                                            f"{len(splits)} classic settings on training tiles, sigma {sigma} source px")
        rows += [{"sigma_px": sigma * factor, "min_distance_px": distance * factor, "min_area_px": area * factor**2,
                  **split_scores} for (distance, area), split_scores in zip(splits, sigma_scores, strict=True)]
    classic_grid = pd.DataFrame(rows).assign(method="classic", tiles="training")
    best = classic_grid.loc[classic_grid.aji.idxmax()]

    # 3. the test tiles, at the profile's settings and at the chosen ones
    probabilities = np.mean([other.test_probabilities() for other in runs], axis=0)  # each run's own arm, as recorded
    test_centres = run.test_centres()  # a centre head's run is measured alone
    test_images = np.asarray(tile_set.images[test])
    profile = scaled_settings(profile_config["instances"], factor)
    results, pairs = [], []
    for method, which, values in ((model_name, "profile", profile), (model_name, "chosen on validation", chosen),
                                  (model_name, "chosen on validation, core share too", with_cores),
                                  ("classic", "profile", profile), ("classic", "chosen on training tiles", best)):
        if method == "classic":
            labels = [classic_nuclei(image, values["sigma_px"], values["min_distance_px"], values["min_area_px"])
                      for image in test_images]
            validation = {}
        else:
            labels = label_tiles(probabilities, np.full(len(test), threshold), values, centres=test_centres)
            val_labels = label_tiles(val_probabilities, np.full(len(val_probabilities), threshold), values,
                                     centres=val_centres)
            validation = scores(truth["val"], val_labels, within["val"], touching)[0]
        test_scores, per_tile = scores(truth["test"], labels, within["test"], touching)
        pairs.append(pd.DataFrame(per_tile, columns=SPLIT_PAIRS_COLUMNS).assign(entry=f"{method}, {which}", tile=test))
        results.append({"method": method, "settings": which,
                        "min distance (source px)": values["min_distance_px"] / factor,
                        "min area (source px)": values["min_area_px"] / factor**2,
                        "core share": values["core_share"] if method == model_name else float("nan"),
                        **test_scores,
                        **{f"validation {key}": validation.get(key, float("nan")) for key in VALIDATION_COLUMNS}})
    weight, sigma, epochs = cfg["train"]["contact_weight"], cfg["train"]["gap_sigma_px"], cfg["train"]["epochs"]
    steps = [other.versions.get("reference_step_ms") for other in runs]
    table = pd.DataFrame(results).assign(run=named, test_tiles=len(test), threshold=threshold,
                                         **{"contact weight": weight, "gap sigma (source px)": sigma,
                                            "centre head": centre_head,
                                            "full-resolution skip": cfg["model"]["full_resolution_skip"],
                                            "encoder scale": cfg["model"]["encoder_scale"],
                                            "encoder shrink": cfg["model"]["encoder_shrink"],
                                            "epochs": epochs,
                                            "seed": run.seed if len(runs) == 1 else " + ".join(str(o.seed) for o in runs),
                                            "training seconds": sum(other.metrics["train_seconds"] for other in runs),
                                            "training reference_step_ms": steps[0] if len(runs) == 1 else
                                            " + ".join(map(str, steps))})
    table.insert(0, "entry", table.method + ", " + table.settings)
    experiment = run.experiment.split("/") if run.experiment else []
    seed_fold = ([f"seeds{'_'.join(str(other.seed) for other in runs)}"] if len(runs) > 1 else
                 [f"seed{run.seed}"] if run.seed else [])  # the default seed alone goes unnamed
    seed_fold += [] if run.record.get("fold") is None else [f"fold{run.record['fold']}"]
    name = "-".join(["instances", run.record["dataset"], paths.setting_name(cfg), *experiment, model_name, *seed_fold])
    target = (f"; trained with the gaps between nuclei weighted up to {1 + weight:g} (the U-Net paper's gap map, sigma "
              f"{sigma:g} source px)" if weight and sigma else
              f"; trained with the contact lines of touching nuclei weighted {1 + weight:g}" if weight else "")
    target += "; the model's markers from its centre head" if centre_head else ""
    target += ("; the input joined to the decoder's last block (`model.full_resolution_skip`)"
               if cfg["model"]["full_resolution_skip"] else "")
    encoder_scale = cfg["model"]["encoder_scale"]
    shrink = cfg["model"]["encoder_shrink"]
    target += (f"; the encoder fed the input shrunk x{encoder_scale:g} (`model.encoder_scale`"
               + (", each pixel block folded into channels: `model.encoder_shrink unshuffle`" if shrink == "unshuffle" else "")
               + "), the output at the input's resolution" if encoder_scale != 1 else "")
    profile_epochs = profile_config["train"]["epochs"]
    cut = ("the model's tiles cut at the run's validation-chosen threshold" if len(runs) == 1 else
           "the runs' probabilities averaged, cut at the mean of their validation-chosen thresholds")
    target += f"; trained {epochs} epochs, not the profile's {profile_epochs}" if epochs != profile_epochs else ""
    csv = save_benchmark(table, name, caption=(
        f"Nuclei as objects on the {len(test)} test tiles of `{named}` (inside the annotated region, at the network "
        f"input{target}; {cut} {threshold:.2f}), at the "
        "profile's watershed settings and at those chosen on validation tiles (the model: markers from "
        "the mask, as in the profiles, or the core share chosen too) or training tiles (the classic pipeline) by AJI; "
        "touching pairs: true nuclei within "
        f"{TOUCHING_GAP_SOURCE_PX} source px of each other, split when both are matched (Fieller's 95% interval over the "
        "tiles holding pairs), merged when one predicted object overlaps both most. `benchmarks/instances.py`."))
    write_text_atomic(csv.with_name(f"{name}-grid.csv"), pd.concat([grid, classic_grid]).to_csv(index=False))
    pairs = pd.concat(pairs)
    write_text_atomic(csv.with_name(f"{name}-pairs.csv"),
                      pairs[pairs["touching pairs"] > 0][["entry", "tile", *SPLIT_PAIRS_COLUMNS]].to_csv(index=False))


if __name__ == "__main__":
    main()
