"""Training one model from a config (paper §III-E..H), resumable, with everything recorded next to the result.

    python -m lib.train --config quick --model enhanced --seed 0 [--data PATH] [--force]

writes results/<dataset>/<profile>/<model>/seed<k>/: config.yaml (resolved), versions.json, history.csv
(per epoch), sampling_weights.csv, best.pt (the selected checkpoint), metrics.json (test scores),
per_image.csv (per test tile) and test_probabilities.npy. While a run is unfinished, last.pt holds the full
training state; starting the same command again resumes from it and ends with the same numbers. A finished run
(metrics.json present) is loaded, never retrained, unless --force.

Model selection: the EMA (alpha 0.9, eq. 6) of the validation Dice picks the checkpoint. An epoch whose
validation Dice is an outlier — robust z-score |x - median| / (1.4826 MAD + 0.01) above `outlier_z` against the
previous `outlier_window` epochs (at least 3) — is flagged and cannot be selected.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from torch.utils.data import DataLoader, RandomSampler, WeightedRandomSampler
from tqdm.auto import tqdm

from . import gabor, tiles
from .augment import Augmenter
from .config import REPO_ROOT, dataset_name, load_config
from .dataset import TileDataset
from .evaluate import choose_threshold, predict_tiles, report
from .io import write_json_atomic, write_text_atomic
from .losses import stabilized_loss
from .metrics import evaluate
from .models import build_model, input_channels
from .sampling import complexity_weights

RESULTS_ROOT = REPO_ROOT / "results"


def run_directory(cfg: dict[str, Any], data_dir, model_name: str, seed: int, root: Path = RESULTS_ROOT) -> Path:
    """results/<dataset>/<profile>/<model>/seed<k>/"""
    return Path(root) / dataset_name(data_dir) / cfg["profile"] / model_name / f"seed{seed}"


def ema_update(previous: float | None, value: float, alpha: float) -> float:
    """Eq. 6: EMA_t = alpha EMA_{t-1} + (1 - alpha) value_t, starting at the first value."""
    return value if previous is None else alpha * previous + (1 - alpha) * value


def is_outlier(history: list[float], value: float, window: int, threshold: float) -> bool:
    """Robust z-score of `value` against the last `window` values (needs at least 3)."""
    recent = np.asarray(history[-window:], float)
    if len(recent) < 3:
        return False
    median = np.median(recent)
    mad = np.median(np.abs(recent - median))
    return bool(abs(value - median) / (1.4826 * mad + 0.01) > threshold)


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


def _save_atomic(payload: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _record(cfg, data_dir, model_name: str, seed: int) -> dict[str, Any]:
    return {"model": model_name, "seed": seed, "dataset": dataset_name(data_dir),
            "data_dir": str(Path(data_dir).resolve()) if data_dir else "", "config": cfg}


def _validate(model, loader, device, threshold: float, bce_clamped: bool) -> dict[str, float]:
    """Validation loss and pooled Dice, IoU, precision, recall (no TTA)."""
    model.eval()
    losses, preds, masks = [], [], []
    with torch.no_grad():
        for x, y in loader:
            logits = model(x.to(device)).float()
            losses.append(stabilized_loss(logits, y.to(device), bce_clamped).item() * len(x))
            preds.append((torch.sigmoid(logits) >= threshold)[:, 0].cpu().numpy())
            masks.append(y[:, 0].numpy().astype(bool))
    pooled, _ = evaluate(np.concatenate(preds), np.concatenate(masks))
    return {"val_loss": sum(losses) / len(loader.dataset), **{f"val_{k}": v for k, v in pooled.items()}}


def train_one_epoch(model, loader, optimizer, scheduler, scaler, train_cfg: dict[str, Any],
                    device: torch.device) -> tuple[list[float], int]:
    """One pass over the loader with gradient accumulation, clipping and the non-finite guard (a batch with a
    non-finite loss, or a step with non-finite gradients, is skipped and counted). Returns losses and skips."""
    model.train()
    use_amp = device.type == "cuda"
    accumulation = train_cfg["accumulation_steps"]
    losses, skipped = [], 0
    optimizer.zero_grad(set_to_none=True)
    for step, (x, y) in enumerate(loader):
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            logits = model(x.to(device))
        loss = stabilized_loss(logits.float(), y.to(device), train_cfg["bce_on_clamped_logits"])
        if torch.isfinite(loss):
            scaler.scale(loss / accumulation).backward()
            losses.append(loss.item())
        else:
            skipped += 1
        if (step + 1) % accumulation == 0 or step + 1 == len(loader):
            scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg["clip_norm"])
            if torch.isfinite(norm):
                scaler.step(optimizer)
            else:
                skipped += 1
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
    return losses, skipped


def train(cfg: dict[str, Any], data_dir=None, model_name: str = "enhanced", seed: int = 0, force: bool = False,
          stop_after_epochs: int | None = None, root: Path = RESULTS_ROOT, progress: bool = True) -> Path:
    """Train (or resume, or load) one run; returns its folder. `stop_after_epochs` ends this call early,
    leaving a resumable run (for time-sliced jobs)."""
    run = run_directory(cfg, data_dir, model_name, seed, root)
    record = _record(cfg, data_dir, model_name, seed)
    if (run / "metrics.json").is_file() and not force:
        return run
    if force and run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    if (run / "config.yaml").is_file() and yaml.safe_load((run / "config.yaml").read_text()) != record:
        raise RuntimeError(f"{run} holds an unfinished run with another config; pass --force to start it again")
    write_text_atomic(run / "config.yaml", yaml.safe_dump(record, sort_keys=False))

    model_cfg, train_cfg = cfg["model"], cfg["train"]
    tile_set = tiles.prepare(cfg, data_dir)
    edges = gabor.cached_edge_maps(tile_set, cfg["gabor"]) if input_channels(model_cfg) == 4 else None
    split_index = {split: _subset(tile_set.indices(split), train_cfg[f"max_{'train' if split == 'train' else 'eval'}_tiles"],
                                  cfg["seed"]) for split in ("train", "val", "test")}
    weights = complexity_weights(tile_set.masks[split_index["train"]], train_cfg["small_object_px"],
                                 train_cfg["small_object_weight"])
    weights.insert(0, "tile_id", tile_set.table.tile_id.to_numpy()[split_index["train"]])
    write_text_atomic(run / "sampling_weights.csv", weights.to_csv(index=False))

    torch.manual_seed(seed)
    device = _device(train_cfg["device"])
    model, weights_used = build_model(model_name, model_cfg)
    model.to(device)
    versions = library_versions() | {"device": str(device), "encoder_weights": weights_used}
    write_json_atomic(run / "versions.json", versions)

    augmenter = Augmenter(train_cfg, seed) if train_cfg["augment"] else None
    train_set = TileDataset(tile_set, split_index["train"], edges, model_cfg, augmenter)
    val_loader = DataLoader(TileDataset(tile_set, split_index["val"], edges, model_cfg), batch_size=16)
    batches = -(-len(train_set) // train_cfg["batch_size"])
    steps_per_epoch = -(-batches // train_cfg["accumulation_steps"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg["lr_max"], weight_decay=train_cfg["weight_decay"])
    initial_lr = train_cfg["lr_max"] / 25
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=train_cfg["lr_max"], total_steps=train_cfg["epochs"] * steps_per_epoch,
        pct_start=train_cfg["warmup_fraction"], anneal_strategy="cos", div_factor=25,
        final_div_factor=initial_lr / train_cfg["lr_final"])
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")

    history: list[dict] = []
    best = {"ema_dice": -1.0, "epoch": -1}
    if (run / "last.pt").is_file():
        state = torch.load(run / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history, best = state["history"], state["best"]

    epochs = range(len(history), train_cfg["epochs"])
    bar = tqdm(epochs, desc=f"{model_name} seed {seed}", unit="epoch", initial=len(history),
               total=train_cfg["epochs"], **({} if progress else {"disable": True}))
    for done, epoch in enumerate(bar):
        if stop_after_epochs is not None and done >= stop_after_epochs:
            break
        started = time.perf_counter()
        epoch_seed = seed * 100_003 + epoch  # everything random in an epoch derives from this: resumable
        torch.manual_seed(epoch_seed)
        if augmenter is not None:
            augmenter.reseed(epoch_seed)
        generator = torch.Generator().manual_seed(epoch_seed)
        sampler = (WeightedRandomSampler(weights["weight"].to_numpy().copy(), len(train_set), replacement=True,
                                         generator=generator) if train_cfg["sampling"] == "complexity"
                   else RandomSampler(train_set, generator=generator))
        loader = DataLoader(train_set, batch_size=train_cfg["batch_size"], sampler=sampler)
        losses, skipped = train_one_epoch(model, loader, optimizer, scheduler, scaler, train_cfg, device)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               **_validate(model, val_loader, device, train_cfg["threshold"], train_cfg["bce_on_clamped_logits"])}
        previous = history[-1]["ema_dice"] if history else None
        row["ema_dice"] = ema_update(previous, row["val_dice"], train_cfg["ema_alpha"])
        row["outlier"] = is_outlier([h["val_dice"] for h in history], row["val_dice"],
                                    train_cfg["outlier_window"], train_cfg["outlier_z"])
        row["selected"] = not row["outlier"] and row["ema_dice"] > best["ema_dice"]
        row.update(lr=scheduler.get_last_lr()[0], skipped_steps=skipped, seconds=time.perf_counter() - started)
        if row["selected"]:
            best = {"ema_dice": row["ema_dice"], "epoch": epoch + 1}
            _save_atomic({"model": model.state_dict(), "epoch": epoch + 1}, run / "best.pt")
        if skipped:
            tqdm.write(f"epoch {epoch + 1}: skipped {skipped} step(s) with a non-finite loss or gradient")
        history.append(row)
        write_text_atomic(run / "history.csv", pd.DataFrame(history).to_csv(index=False))
        _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                      "history": history, "best": best}, run / "last.pt")
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_dice=f"{row['val_dice']:.3f}",
                        ema=f"{row['ema_dice']:.3f}")
    bar.close()
    if len(history) < train_cfg["epochs"]:
        return run  # stopped early on purpose: resumable

    model.load_state_dict(torch.load(run / "best.pt", map_location=device, weights_only=True)["model"])
    threshold = train_cfg["threshold"]
    if train_cfg["threshold_from_validation"]:
        val_probabilities = predict_tiles(model, val_loader.dataset, device, tta=train_cfg["tta"])
        threshold, curve = choose_threshold(val_probabilities, tile_set.masks[split_index["val"]])
        write_text_atomic(run / "threshold_curve.csv", curve.to_csv(index=False))
    test_set = TileDataset(tile_set, split_index["test"], edges, model_cfg)
    probabilities = predict_tiles(model, test_set, device, tta=train_cfg["tta"])
    summary, per_tile = report(probabilities, tile_set, split_index["test"], threshold)
    metrics = {"test": summary, "threshold": threshold,
               "threshold_source": "validation" if train_cfg["threshold_from_validation"] else "config",
               "tta": train_cfg["tta"], "selected_epoch": best["epoch"],
               "selected_ema_dice": best["ema_dice"], "train_seconds": float(sum(h["seconds"] for h in history)),
               "n_tiles": {k: len(v) for k, v in split_index.items()}, "encoder_weights": weights_used}
    if train_cfg["tta"]:
        metrics["test_without_tta"], _ = report(predict_tiles(model, test_set, device, tta=False), tile_set,
                                                split_index["test"], threshold)
    np.save(run / "test_probabilities.npy", probabilities.astype(np.float16))
    write_text_atomic(run / "per_image.csv", per_tile.to_csv(index=False))
    write_json_atomic(run / "metrics.json", metrics)  # last: its presence marks the run finished
    (run / "last.pt").unlink()
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
    from .models import MODEL_NAMES
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
