"""Training one model from a config (paper §III-E..H), resumable, with everything recorded next to the result.

    python -m lib.train --config quick --model enhanced --seed 0 [--data PATH] [--force]

writes results/<dataset>/<profile>/<model>/seed<k>/: config.yaml (resolved), versions.json, history.csv
(per epoch), sampling_weights.csv, best.pt (the selected checkpoint), metrics.json (test scores),
per_image.csv (per test tile) and test_probabilities.npy. While a run is unfinished, last.pt holds the full
training state; starting the same command again resumes from it and ends with the same numbers. A finished run
(metrics.json present) is loaded, never retrained, unless --force. The epoch loop and model selection live in
lib/fitting.py; the active-learning model trains in rounds (lib/active_learning.py).
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from . import active_learning, gabor, tiles
from .config import REPO_ROOT, dataset_name, load_config
from .fitting import Context, best_model, fit, model_epochs, test_report
from .io import write_json_atomic, write_text_atomic
from .models import MODEL_NAMES, input_channels, model_spec, training_loss
from .sampling import complexity_weights

RESULTS_ROOT = REPO_ROOT / "results"


def run_directory(cfg: dict[str, Any], data_dir, model_name: str, seed: int, root: Path = RESULTS_ROOT,
                  experiment: str = "") -> Path:
    """results/<dataset>/<profile>/<model>/seed<k>/, or .../<experiment>/<model>/seed<k>/ for runs of an
    experiment (stability, ablations) whose config differs from the profile's."""
    return Path(root) / dataset_name(data_dir) / cfg["profile"] / experiment / model_name / f"seed{seed}"


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


def _subset(index: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """All of `index`, or a seeded random subset of `limit` tiles (smoke profile), in tile order."""
    if limit is None or limit >= len(index):
        return index
    return np.sort(np.random.default_rng(seed).choice(index, limit, replace=False))


def _device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


RUN_SECTIONS = ("profile", "seed", "data", "gabor", "model", "train", "ladder", "stability")


def run_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of a config a training run depends on (not `runs`, which says what run_all trains, nor the
    sections of the notebooks that only read runs)."""
    return {key: value for key, value in cfg.items() if key in RUN_SECTIONS}


def model_run_config(cfg: dict[str, Any], model_name: str) -> dict[str, Any]:
    """run_config as one model's training reads it: ladder.epochs resolved to this model's epochs, and the
    `stability` section only where it sets the learning rate (the unstabilized arm), so that another model's
    epoch exception or notebook 05's budget does not make this model's runs stale."""
    config = run_config(cfg)
    ladder = {key: value for key, value in config["ladder"].items() if key != "epochs"}
    stability = {} if model_spec(model_name).stabilized else {"learning_rate": config["stability"]["learning_rate"]}
    return {**config, "ladder": ladder, "stability": stability,
            "train": {**config["train"], "epochs": model_epochs(cfg, model_name)}}


def changed_settings(recorded: dict[str, Any], cfg: dict[str, Any], model_name: str) -> list[str]:
    """The dotted config keys whose values a run recorded with `recorded` would train with differently
    under `cfg` (empty: the run is this config's)."""
    def flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        items: dict[str, Any] = {}
        for key, value in config.items():
            items.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return items
    before, after = flat(model_run_config(recorded, model_name)), flat(model_run_config(cfg, model_name))
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def _record(cfg, data_dir, model_name: str, seed: int) -> dict[str, Any]:
    return {"model": model_name, "seed": seed, "dataset": dataset_name(data_dir),
            "data_dir": str(Path(data_dir).resolve()) if data_dir else "", "config": run_config(cfg)}


def train(cfg: dict[str, Any], data_dir=None, model_name: str = "enhanced", seed: int = 0, force: bool = False,
          stop_after_epochs: int | None = None, root: Path = RESULTS_ROOT, progress: bool = True,
          experiment: str = "") -> Path:
    """Train (or resume, or load) one run; returns its folder. `stop_after_epochs` ends this call early,
    leaving a resumable run (for time-sliced jobs); `experiment` names a sub-folder for runs of a modified config."""
    spec = model_spec(model_name)
    run = run_directory(cfg, data_dir, model_name, seed, root, experiment)
    record = _record(cfg, data_dir, model_name, seed)
    if force and run.exists():
        shutil.rmtree(run)
    if (run / "config.yaml").is_file():
        recorded = yaml.safe_load((run / "config.yaml").read_text())
        changed = changed_settings(recorded["config"], cfg, model_name)
        changed += ["data_dir"] if recorded["data_dir"] != record["data_dir"] else []
        if changed:
            state = "a finished" if (run / "metrics.json").is_file() else "an unfinished"
            raise RuntimeError(f"{run} holds {state} run of another config (changed: {', '.join(changed)}); "
                               "pass --force to train it again")
    if (run / "metrics.json").is_file():
        return run
    run.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run / "config.yaml", yaml.safe_dump(record, sort_keys=False))

    train_cfg = cfg["train"]
    tile_set = tiles.prepare(cfg, data_dir)
    edges = gabor.cached_edge_maps(tile_set, cfg["gabor"]) if input_channels(model_name, cfg) == 4 else None
    limits = {"train": train_cfg["max_train_tiles"], "val": train_cfg["max_eval_tiles"],
              "test": train_cfg["max_eval_tiles"]}
    split_index = {split: _subset(tile_set.indices(split), limit, cfg["seed"]) for split, limit in limits.items()}
    for split, index in split_index.items():
        if len(index) == 0:
            raise ValueError(f"the {split} split of {tile_set.root} is empty: no tiles to train or evaluate on")
    weights = complexity_weights(tile_set.masks[split_index["train"]], train_cfg["small_object_px"],
                                 train_cfg["small_object_weight"])
    weights.insert(0, "tile_id", tile_set.table.tile_id.to_numpy()[split_index["train"]])
    write_text_atomic(run / "sampling_weights.csv", weights.to_csv(index=False))
    ctx = Context(cfg, model_name, seed, tile_set, edges, split_index, weights, _device(train_cfg["device"]))

    if spec.active_learning:
        finished = active_learning.run_rounds(ctx, run, stop_after_epochs, progress)
    else:
        finished = fit(ctx, run, split_index["train"], ctx.epochs, None, stop_after_epochs, progress)
    if not finished:
        return run  # stopped early on purpose: resumable

    model = best_model(ctx, run)
    write_json_atomic(run / "versions.json", library_versions() | {"device": str(ctx.device),
                                                                    "encoder_weights": ctx.weights_used})
    history = pd.read_csv(run / "history.csv")
    selected = history[history.selected.astype(bool)].iloc[-1]
    metrics = {**test_report(ctx, model, run), "selected_epoch": int(selected.epoch),
               "selected_ema_dice": float(selected.ema_dice), "train_seconds": float(history.seconds.sum()),
               "n_tiles": {k: len(v) for k, v in split_index.items()}, "encoder_weights": ctx.weights_used,
               "loss": training_loss(model_name, cfg), "epochs": ctx.epochs,
               "parameters": sum(p.numel() for p in model.parameters())}
    write_json_atomic(run / "metrics.json", metrics)  # last: its presence marks the run finished
    (run / "last.pt").unlink(missing_ok=True)
    return run


def load_run(run: str | Path) -> dict[str, Any]:
    """A finished run's record: config, versions, history, metrics and per-tile table."""
    run = Path(run)
    if not (run / "metrics.json").is_file():
        raise FileNotFoundError(f"{run} is not a finished run (no metrics.json); train it first")
    return {"dir": run, "record": yaml.safe_load((run / "config.yaml").read_text()),
            "versions": json.loads((run / "versions.json").read_text()),
            "history": pd.read_csv(run / "history.csv"), "metrics": json.loads((run / "metrics.json").read_text()),
            "per_image": pd.read_csv(run / "per_image.csv"),
            "weights": pd.read_csv(run / "sampling_weights.csv")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lib.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="quick", help="profile name (smoke, quick, paper) or a YAML file")
    parser.add_argument("--model", default="enhanced", choices=MODEL_NAMES)
    parser.add_argument("--seed", type=int, default=0, help="training seed (the split uses the config's seed)")
    parser.add_argument("--data", default="", help="dataset folder; default: the embedded synthetic dataset")
    parser.add_argument("--force", action="store_true", help="retrain even if a finished run exists")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    run = train(cfg, args.data or None, args.model, args.seed, force=args.force)
    metrics = json.loads((run / "metrics.json").read_text())
    dice = metrics["test"]["whole_tile"]["pooled"]["dice"]
    print(f"{run}: test Dice {dice:.4f} (whole tile, pooled{', TTA' if metrics['tta'] else ''})")


if __name__ == "__main__":
    main()
