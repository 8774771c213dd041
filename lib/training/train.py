"""Training one run (paper §III-E..H): prepare the tiles, choose the training tiles, train (or resume, or load),
evaluate the selected checkpoint on the test split, and record everything next to the result
(`lib.training.runs` describes the folder). Same seed, same numbers on the CPU.

Which tiles train (`train.training_pool`; the split itself is `lib.data.tiling`'s):
- `train_split`: the training split, or a seeded subset of `train.max_train_tiles` tiles of it;
- `with_test_image_tiles` (leakage measurement): a seeded half of every test image's tiles replaces as many
  training tiles and leaves the test set; the other half is the test set, shared with `train_split` runs;
- `without_test_slides` (slide-leakage measurement): the same number of training tiles, drawn only from
  training images on slides (`data.slide_pattern`) that hold no test image.
Training inside the annotated region (`train.loss_area: annotated_region`) leaves out the training tiles without a
region pixel: they carry no supervision. Validation and test use every tile of their split unless
`train.max_eval_tiles` takes a seeded subset.
Both arms of the test evaluation are kept: with the 7-transform TTA and without, each at the threshold with
the best pooled Dice on the validation tiles for that arm (`train.threshold_from_validation`; inside the annotated
region when the loss looks only there); `train.tta` says which arm is the run's result.
"""
from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from ..data import tiles
from ..data.geometry import source_area_to_input
from ..data.reading import DatasetError
from ..data.scale import dataset_mpp, median_diameter_px
from ..device import machine_description, select_device, select_precision
from ..evaluation.scoring import THRESHOLD_GRID, choose_nuclei_cut, choose_threshold, score_split
from ..experiments.efficiency import reference_step_ms
from ..files import exclusive_lock, write_json_atomic, write_text_atomic
from ..inference.inputs import tile_edges
from ..inference.instances import scaled_settings
from ..inference.predict import WindowPredictor, predict_tiles, predict_windows, refiner
from ..models import build_model, loss_area, model_spec, training_loss
from ..paths import RESULTS_ROOT, data_folder, run_directory
from . import active_learning, distributed
from .loop import Context, best_model, fit
from .model_card import write_model_card
from .runs import ARMS, check_current, library_versions, read_run, run_folds, run_record
from .sampling import complexity_weights

POOLS = ("train_split", "with_test_image_tiles", "without_test_slides")
LOSS_AREAS = ("whole_tile", "annotated_region")
LEAK_SHARE = 0.5  # share of each test image's tiles that the leaky pool trains on


class PoolTooSmallError(ValueError):
    """The training pool holds fewer tiles than the budget: a property of the data, split and budget, so the
    run cannot be trained as asked (a study reports it as not measured)."""


def subset(index: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """All of `index`, or a seeded random subset of `limit` tiles, in tile order."""
    if limit is None or limit >= len(index):
        return index
    return np.sort(np.random.default_rng(seed).choice(index, limit, replace=False))


def split_indices(tile_set: tiles.TileSet, cfg: dict[str, Any], model_name: str = "enhanced",
                  fold: int | None = None) -> dict[str, np.ndarray]:
    """Tiles of each split a run trains, selects and is tested on (module docstring), in the single split or in
    fold `fold` of the cross-validation."""
    train_cfg, seed, table = cfg["train"], cfg["seed"], tile_set.table
    split = {name: tile_set.indices(name, fold) for name in ("train", "val", "test")}
    area = loss_area(model_name, cfg)
    if area not in LOSS_AREAS:
        raise ValueError(f"unknown train.loss_area {area!r} ({' or '.join(LOSS_AREAS)})")
    if area == "annotated_region":  # a tile without a region pixel carries no supervision
        split["train"] = split["train"][table.region_pixels.iloc[split["train"]].to_numpy() > 0]
    chosen = {"train": subset(split["train"], train_cfg["max_train_tiles"], seed),
              "val": subset(split["val"], train_cfg["max_eval_tiles"], seed),
              "test": subset(split["test"], train_cfg["max_eval_tiles"], seed)}
    pool, rng = train_cfg["training_pool"], np.random.default_rng([seed, 1])
    if pool == "with_test_image_tiles":
        test = table.iloc[chosen["test"]]
        leaked = np.sort(np.concatenate([rng.choice(part.index.to_numpy(), int(LEAK_SHARE * len(part)), replace=False)
                                         for _, part in test.groupby("source", sort=True)]))
        if len(leaked) >= len(chosen["train"]):
            raise ValueError(f"the leaky pool would replace all {len(chosen['train'])} training tiles")
        kept = np.sort(rng.choice(chosen["train"], len(chosen["train"]) - len(leaked), replace=False))
        chosen["train"] = np.sort(np.concatenate([kept, leaked]))
        chosen["test"] = np.setdiff1d(chosen["test"], leaked)
    elif pool == "without_test_slides":
        test_slides = set(table.slide.iloc[chosen["test"]])
        candidates = split["train"][~table.slide.iloc[split["train"]].isin(test_slides).to_numpy()]
        if len(candidates) < len(chosen["train"]):
            where = "" if fold is None else f" in fold {fold}"
            raise PoolTooSmallError(f"only {len(candidates)} training tiles{where} lie on slides without a test "
                                    f"image; the budget needs {len(chosen['train'])} (lower train.max_train_tiles)")
        chosen["train"] = subset(candidates, len(chosen["train"]), seed)
    elif pool != "train_split":
        raise ValueError(f"unknown train.training_pool {pool!r} ({', '.join(POOLS)})")
    return chosen


def check_pool(cfg: dict[str, Any], data_dir: str | Path | None, model_name: str = "enhanced") -> None:
    """Raise PoolTooSmallError unless every fold's training pool meets the budget, so that a study learns it
    before training any fold of a run it cannot finish."""
    tile_set = tiles.prepare(cfg, data_dir)
    for fold in run_folds(cfg):
        split_indices(tile_set, cfg, model_name, fold)


def evaluate_run(ctx: Context, model: torch.nn.Module, run: Path, progress: bool = True) -> dict[str, Any]:
    """Test scores of both arms (with and without TTA), each at its own validation-chosen threshold; writes
    test_probabilities-<arm>.npy (test_centres-<arm>.npy too for a model with a centre head) and
    threshold_curve-<arm>.csv, and per_tile.csv of the run's own arm."""
    train_cfg, refine = ctx.cfg["train"], refiner(ctx.model_name, ctx.cfg)
    val, test = ctx.split_index["val"], ctx.split_index["test"]
    arms = {}
    for tta, arm in ARMS.items():
        threshold, source = train_cfg["threshold"], "config"
        label = f"{ctx.model_name} seed {ctx.seed}, {'with' if tta else 'without'} TTA" if progress else None
        if train_cfg["threshold_from_validation"]:
            probabilities = predict_tiles(model, ctx.dataset(val), ctx.device, tta, refine,
                                          desc=label and f"{label}: validation (threshold)", precision=ctx.precision)
            threshold, curve = choose_threshold(probabilities, ctx.tile_set.masks[val],
                                                ctx.tile_set.regions[val] if ctx.in_region else None)
            source = "validation"
            write_text_atomic(run / f"threshold_curve-{arm}.csv", curve.to_csv(index=False))
        maps = predict_tiles(model, ctx.dataset(test), ctx.device, tta, refine, desc=label and f"{label}: test",
                             precision=ctx.precision, every_channel=True)
        summary, per_tile = score_split(maps[:, 0], ctx.tile_set, test, threshold)
        np.save(run / f"test_probabilities-{arm}.npy", maps[:, 0].astype(np.float16))
        if maps.shape[1] > 1:
            np.save(run / f"test_centres-{arm}.npy", maps[:, 1].astype(np.float16))
        if tta == train_cfg["tta"]:
            write_text_atomic(run / "per_tile.csv", per_tile.to_csv(index=False))
        arms[arm] = {"threshold": threshold, "threshold_source": source, "test": summary}
    own = arms[ARMS[train_cfg["tta"]]]
    return {"tta": train_cfg["tta"], "threshold": own["threshold"], "test": own["test"], "arms": arms}


# The nuclei threshold's grid: the upper half of the pixel threshold's (below 0.5 a cut widens nuclei into each other).
NUCLEI_THRESHOLDS = tuple(t for t in THRESHOLD_GRID if t >= 0.5)


def validation_tiles_at_source(cfg: dict[str, Any], data_dir: str | Path | None, model_name: str,
                               fold: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A run's validation tiles at the source resolution (`data.tile_size`, as a new image comes to predict):
    images, true nuclei and annotated regions."""
    source = tiles.prepare({**cfg, "data": {**cfg["data"], "input_size": cfg["data"]["tile_size"]}}, data_dir)
    index = split_indices(source, cfg, model_name, fold)["val"]
    return (np.asarray(source.images[index]), np.asarray(source.instances[index]),
            np.asarray(source.regions[index], bool))


def nuclei_cuts_on_validation(ctx: Context, model: torch.nn.Module, bounds: dict[str, float],
                              data_dir: str | Path | None, fold: int | None, run: Path,
                              progress: bool = True) -> dict[str, dict[str, Any]]:
    """Per arm, the threshold `python -m lib.inference` cuts this run's nuclei at and the watershed's minimum marker
    distance it splits them with (`instances.threshold_from_validation`): the pixel threshold is chosen for Dice at
    the network input, but predict labels nuclei at the image's own pixels, from the probability resized back, where
    a contact between two nuclei is blurred. So each validation tile is predicted as a new image is
    (`WindowPredictor`), labelled with the profile's watershed settings but for the distance, and the pair of
    `NUCLEI_THRESHOLDS` x `instances.min_distance_choices_source_px` whose nuclei score the best pooled AJI is chosen
    (inside the annotated region for a region-trained model), never on the test split; writes
    nuclei_threshold_curve-<arm>.csv. Validation tiles without a true nucleus leave the pixel threshold and the
    profile's distance, and say so."""
    images, truth, regions = validation_tiles_at_source(ctx.cfg, data_dir, ctx.model_name, fold)
    settings = scaled_settings(ctx.cfg["instances"], 1.0)  # the tiles are at source resolution
    model, chosen = ctx.precision.prepare(model), {}
    for tta, arm in ARMS.items():
        predictor = WindowPredictor(model, ctx.model_name, ctx.cfg, ctx.device, tta, bounds, precision=ctx.precision)
        label = f"{ctx.model_name} seed {ctx.seed}, {'with' if tta else 'without'} TTA: validation (nuclei threshold)"
        maps = predict_windows(predictor, images, label if progress else None)
        try:
            threshold, distance, curve = choose_nuclei_cut(
                maps[..., 0], NUCLEI_THRESHOLDS, tuple(ctx.cfg["instances"]["min_distance_choices_source_px"]), truth,
                regions if ctx.in_region else None, settings, maps[..., 1] if maps.shape[-1] > 1 else None)
        except ValueError:
            chosen[arm] = {"nuclei_threshold_source": "pixel threshold (no true nucleus in the validation tiles)"}
            continue
        write_text_atomic(run / f"nuclei_threshold_curve-{arm}.csv", curve.to_csv(index=False))
        chosen[arm] = {"nuclei_threshold": threshold, "nuclei_min_distance_source_px": distance,
                       "nuclei_threshold_source": "validation"}
    return chosen


def training_scale(tile_set: tiles.TileSet, train_index: np.ndarray, data_dir: str | Path | None) -> dict[str, Any]:
    """What a run records of its training images' scale (lib/data/scale.py): the dataset's pixel size (None when
    unknown) and the median diameter of the training tiles' nuclei in source pixels."""
    train_ids = tile_set.table.tile_id.to_numpy()[train_index]
    areas = tile_set.objects.area_px[tile_set.objects.tile_id.isin(train_ids)]
    return {"mpp": dataset_mpp(data_folder(data_dir)), "nucleus_diameter_px": median_diameter_px(areas.to_numpy())}


def train(cfg: dict[str, Any], data_dir: str | Path | None = None, model_name: str = "enhanced", seed: int = 0,
          force: bool = False, stop_after_epochs: int | None = None, root: Path = RESULTS_ROOT,
          progress: bool = True, experiment: str = "", fold: int | None = None) -> Path:
    """Train (or resume, or load) one run; returns its folder. `stop_after_epochs` ends this call early, leaving
    a resumable run (time-sliced jobs); `experiment` names a sub-folder for runs of a modified config; `fold` is
    the fold of a cross-validation (`data.folds` > 1 needs one). A lock beside the folder makes a second process
    that starts the same run wait for the first (and then find it finished); under torchrun the ranks train it
    together (lib/training/distributed.py)."""
    folds = cfg["data"]["folds"]
    if (folds > 1) != (fold is not None):
        raise ValueError(f"data.folds is {folds}: " + (f"name the fold to train (0 to {folds - 1})" if folds > 1
                                                       else "there are no folds to name"))
    run = run_directory(cfg, data_dir, model_name, seed, root, experiment, fold)
    ranks = distributed.ranks()
    lock = (exclusive_lock(run.with_name(f".{run.name}.lock"),
                           lambda: print(f"waiting: another process is training {run}", flush=True))
            if ranks.main else contextlib.nullcontext())
    with lock:
        ranks.barrier()  # the other ranks follow once rank 0 holds the run
        return _train_locked(cfg, data_dir, model_name, seed, force, stop_after_epochs, progress, fold, run, ranks)


def _train_locked(cfg: dict[str, Any], data_dir: str | Path | None, model_name: str, seed: int, force: bool,
                  stop_after_epochs: int | None, progress: bool, fold: int | None, run: Path,
                  ranks: distributed.Ranks) -> Path:
    spec = model_spec(model_name)
    if spec.active_learning and ranks.world > 1:
        raise ValueError("active learning trains in rounds on growing subsets: run it in one process, not torchrun")
    if force and run.exists() and ranks.main:
        shutil.rmtree(run)
    ranks.barrier()
    check_current(run, cfg, data_dir, model_name)
    if (run / "metrics.json").is_file():
        return run
    train_cfg = cfg["train"]
    if ranks.main and not cfg["model"]["allow_random_init"]:
        build_model(model_name, cfg)  # weights that cannot be had stop the run here, before the tiles are prepared
    tile_set = tiles.prepare(cfg, data_dir) if ranks.main else None
    ranks.barrier()  # rank 0 prepares the tiles and the edge maps, the others then read them
    tile_set = tile_set or tiles.prepare(cfg, data_dir)
    edges, bounds = tile_edges(tile_set, model_name, cfg) if ranks.main else (None, {})
    ranks.barrier()
    if not ranks.main:
        edges, bounds = tile_edges(tile_set, model_name, cfg)
    split_index = split_indices(tile_set, cfg, model_name, fold)
    for split, index in split_index.items():
        if not np.asarray(tile_set.masks[index]).any():
            raise DatasetError(f"the {split} tiles of {tile_set.root} hold no cell pixel: nothing to "
                               f"{'learn' if split == 'train' else 'score'} (check the split or max_*_tiles)")
    small_px = source_area_to_input(train_cfg["small_object_source_px"], cfg["data"])
    weights = complexity_weights(tile_set.masks[split_index["train"]], small_px, train_cfg["small_object_weight"])
    weights.insert(0, "tile_id", tile_set.table.tile_id.to_numpy()[split_index["train"]])
    if ranks.main:
        run.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run / "config.yaml", yaml.safe_dump(run_record(cfg, data_dir, model_name, seed, fold),
                                                              sort_keys=False))
        write_text_atomic(run / "sampling_weights.csv", weights.to_csv(index=False))
    device = select_device(train_cfg["device"])
    if device.type == "cuda" and ranks.world > 1:
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    ctx = Context(cfg, model_name, seed, tile_set, edges, split_index, weights, device,
                  select_precision(train_cfg["precision"], device), ranks)

    if spec.active_learning:
        finished = active_learning.run_rounds(ctx, run, stop_after_epochs, progress)
    else:
        finished = fit(ctx, run, split_index["train"], ctx.epochs, None, stop_after_epochs, progress and ranks.main)
    if not finished or not ranks.main:
        ranks.barrier()
        return run  # stopped early on purpose (resumable), or a rank that only trains

    model = best_model(ctx, run)
    # the machine's speed beside the run's seconds (machines of one kind differ 2-4x); a CPU measure, so CPU runs only
    with torch.random.fork_rng():  # it seeds torch: the evaluation below draws as it would without it
        step_ms = round(reference_step_ms()) if ctx.device.type == "cpu" else None
    write_json_atomic(run / "versions.json", library_versions() | {"device": str(ctx.device),
                                                                    "machine": machine_description(ctx.device),
                                                                    "reference_step_ms": step_ms,
                                                                    "encoder_weights": ctx.weights_used,
                                                                    "processes": ranks.world})
    history = pd.read_csv(run / "history.csv")
    selected = history[history.selected.astype(bool)].iloc[-1]
    metrics = {**evaluate_run(ctx, model, run, progress), "selected_epoch": int(selected.epoch),
               "selected_ema_dice": float(selected.ema_dice), "train_seconds": float(history.seconds.sum()),
               "optimizer_steps": int(history.optimizer_steps.sum()),
               "n_tiles": {k: len(v) for k, v in split_index.items()}, "encoder_weights": ctx.weights_used,
               "loss": training_loss(model_name, cfg), "epochs": ctx.epochs, "edge_bounds": bounds,
               "parameters": sum(p.numel() for p in model.parameters()),
               "scale": training_scale(tile_set, split_index["train"], data_dir)}
    if cfg["instances"]["threshold_from_validation"]:
        started = time.perf_counter()
        for arm, nuclei in nuclei_cuts_on_validation(ctx, model, bounds, data_dir, fold, run, progress).items():
            metrics["arms"][arm].update(nuclei)
        metrics["nuclei_cut_seconds"] = time.perf_counter() - started  # beside train_seconds: what the choice costs
    write_json_atomic(run / "metrics.json", metrics)  # its presence marks the run finished
    (run / "last.pt").unlink(missing_ok=True)
    write_model_card(read_run(run))
    ranks.barrier()
    return run
