"""Fitting one model: the epoch loop (accumulation, clipping, non-finite guard), validation, EMA selection,
resumable state, and inference with the selected checkpoint.

Model selection: the EMA (alpha 0.9, eq. 6) of the validation Dice picks the checkpoint. An epoch whose
validation Dice is an outlier (robust z-score |x - median| / (1.4826 MAD + 0.01) above `outlier_z` against the
previous `outlier_window` epochs, at least 3) is flagged and cannot be selected.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, RandomSampler, WeightedRandomSampler
from tqdm.auto import tqdm

from .augment import Augmenter
from .crf import dense_crf
from .dataset import TileDataset
from .evaluate import choose_threshold, predict_tiles, report
from .io import write_text_atomic
from .losses import NEEDS_DISTANCE, loss_function
from .metrics import evaluate
from .models import build_model, model_spec, training_loss


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


def save_atomic(payload: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


@dataclass
class Context:
    """What every stage of a run shares: config, data, the model's recipe, device."""
    cfg: dict[str, Any]
    model_name: str
    seed: int
    tile_set: Any
    edges: np.ndarray | None
    split_index: dict[str, np.ndarray]
    weights: pd.DataFrame  # complexity sampling weights of split_index["train"], in that order
    device: torch.device
    weights_used: str = ""  # set by new_model: ImageNet weights, or why the encoder started from random ones

    @property
    def spec(self):
        return model_spec(self.model_name)

    @property
    def epochs(self) -> int:
        return model_epochs(self.cfg, self.model_name)

    def dataset(self, index: np.ndarray, augmenter: Augmenter | None = None) -> TileDataset:
        needs_distance = bool({training_loss(self.model_name, self.cfg), self.spec.finetune_loss} & NEEDS_DISTANCE)
        return TileDataset(self.tile_set, index, self.edges, self.cfg["model"], augmenter, needs_distance)

    def loss_for_epoch(self, epoch: int):
        """The model's loss; in its last ladder.finetune_epochs epochs, its fine-tuning loss if it has one."""
        name = training_loss(self.model_name, self.cfg)
        if self.spec.finetune_loss and epoch >= self.epochs - self.cfg["ladder"]["finetune_epochs"]:
            name = self.spec.finetune_loss
        return loss_function(name, self.cfg["train"]["bce_on_clamped_logits"])

    def new_model(self) -> torch.nn.Module:
        """The model with its seeded initial weights; what its encoder started from is kept in `weights_used`."""
        torch.manual_seed(self.seed)
        model, self.weights_used = build_model(self.model_name, self.cfg)
        return model.to(self.device)


def model_epochs(cfg: dict[str, Any], model_name: str) -> int:
    """train.epochs, unless ladder.epochs gives another number for this model (a costly one on CPU)."""
    return (cfg["ladder"]["epochs"] or {}).get(model_name) or cfg["train"]["epochs"]


def _mask_and_distance(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A dataset target (B, 1 or 2, H, W) as the mask and, when present, its signed distance map."""
    return y[:, :1], (y[:, 1:] if y.shape[1] > 1 else None)


def _validate(model, loader, device, threshold: float, loss_fn) -> dict[str, float]:
    """Validation loss and pooled Dice, IoU, precision, recall (no TTA)."""
    model.eval()
    losses, preds, masks = [], [], []
    with torch.no_grad():
        for x, y in loader:
            logits = model(x.to(device)).float()
            y = y.to(device)
            losses.append(loss_fn(logits, *_mask_and_distance(y)).item() * len(x))
            preds.append((torch.sigmoid(logits) >= threshold)[:, 0].cpu().numpy())
            masks.append(y[:, 0].cpu().numpy().astype(bool))
    pooled, _ = evaluate(np.concatenate(preds), np.concatenate(masks))
    return {"val_loss": sum(losses) / len(loader.dataset), **{f"val_{k}": v for k, v in pooled.items()}}


def train_one_epoch(model, loader, optimizer, scheduler, scaler, train_cfg: dict[str, Any],
                    device: torch.device, loss_fn=None) -> tuple[list[float], int]:
    """One pass over the loader with gradient accumulation, clipping and the non-finite guard (a batch with a
    non-finite loss, or a step with non-finite gradients, is skipped and counted). Returns losses and skips.
    Targets are (B, 1, H, W) masks, with the signed distance map as a second channel when the loss needs it."""
    loss_fn = loss_fn or loss_function("stabilized", train_cfg["bce_on_clamped_logits"])
    model.train()
    use_amp = device.type == "cuda"
    accumulation = train_cfg["accumulation_steps"]
    losses, skipped = [], 0
    optimizer.zero_grad(set_to_none=True)
    for step, (x, y) in enumerate(loader):
        y = y.to(device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            logits = model(x.to(device))
        loss = loss_fn(logits.float(), *_mask_and_distance(y))
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


def fit(ctx: Context, run: Path, train_index: np.ndarray, epochs: int, initial_state: dict | None = None,
        stop_after_epochs: int | None = None, progress: bool = True, desc: str = "") -> bool:
    """Train a fresh model (or one started from `initial_state`) on `train_index` for `epochs`, validating every
    epoch; writes history.csv and best.pt into `run`, and last.pt after every epoch so that the same call
    resumes where it stopped. Returns whether all epochs are done."""
    train_cfg = ctx.cfg["train"]
    model = ctx.new_model()
    if initial_state is not None:
        model.load_state_dict(initial_state)
    patch_scale = ctx.cfg["ladder"]["patch_scale"] if ctx.spec.patch_sampling else None
    augmenter = (Augmenter(train_cfg, ctx.seed, patch_scale, ctx.cfg["data"]["input_size"])
                 if train_cfg["augment"] else None)
    train_set = ctx.dataset(train_index, augmenter)
    val_loader = DataLoader(ctx.dataset(ctx.split_index["val"]), batch_size=16)
    weight_of = dict(zip(ctx.split_index["train"], ctx.weights["weight"]))
    sample_weights = np.array([weight_of[i] for i in train_index], float)
    batches = -(-len(train_set) // train_cfg["batch_size"])
    drop_last = len(train_set) % train_cfg["batch_size"] == 1  # a batch of one breaks batch norm
    steps_per_epoch = -(-(batches - drop_last) // train_cfg["accumulation_steps"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg["lr_max"], weight_decay=train_cfg["weight_decay"])
    if ctx.spec.stabilized:
        initial_lr = train_cfg["lr_max"] / 25
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=train_cfg["lr_max"], total_steps=epochs * steps_per_epoch,
            pct_start=train_cfg["warmup_fraction"], anneal_strategy="cos", div_factor=25,
            final_div_factor=initial_lr / train_cfg["lr_final"])
    else:  # the stability experiment's other arm: a constant, high learning rate and no clipping
        for group in optimizer.param_groups:
            group["lr"] = ctx.cfg["stability"]["learning_rate"]
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
        train_cfg = dict(train_cfg, clip_norm=float("inf"))
    scaler = torch.amp.GradScaler("cuda", enabled=ctx.device.type == "cuda")

    history: list[dict] = []
    best = {"ema_dice": -1.0, "epoch": -1}
    if (run / "last.pt").is_file():
        state = torch.load(run / "last.pt", map_location=ctx.device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history, best = state["history"], state["best"]

    bar = tqdm(range(len(history), epochs), desc=desc or f"{ctx.model_name} seed {ctx.seed}", unit="epoch",
               initial=len(history), total=epochs, **({} if progress else {"disable": True}))
    for done, epoch in enumerate(bar):
        if stop_after_epochs is not None and done >= stop_after_epochs:
            break
        started = time.perf_counter()
        epoch_seed = ctx.seed * 100_003 + epoch  # everything random in an epoch derives from this: resumable
        torch.manual_seed(epoch_seed)
        if augmenter is not None:
            augmenter.reseed(epoch_seed)
        generator = torch.Generator().manual_seed(epoch_seed)
        sampler = (WeightedRandomSampler(sample_weights.copy(), len(train_set), replacement=True, generator=generator)
                   if train_cfg["sampling"] == "complexity" else RandomSampler(train_set, generator=generator))
        loader = DataLoader(train_set, batch_size=train_cfg["batch_size"], sampler=sampler, drop_last=drop_last)
        loss_fn = ctx.loss_for_epoch(epoch)
        losses, skipped = train_one_epoch(model, loader, optimizer, scheduler, scaler, train_cfg, ctx.device, loss_fn)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               **_validate(model, val_loader, ctx.device, train_cfg["threshold"], loss_fn)}
        previous = history[-1]["ema_dice"] if history else None
        row["ema_dice"] = ema_update(previous, row["val_dice"], train_cfg["ema_alpha"])
        row["outlier"] = is_outlier([h["val_dice"] for h in history], row["val_dice"],
                                    train_cfg["outlier_window"], train_cfg["outlier_z"])
        row["selected"] = (not row["outlier"] and row["ema_dice"] > best["ema_dice"]) if ctx.spec.stabilized else True
        row.update(lr=scheduler.get_last_lr()[0], skipped_steps=skipped, seconds=time.perf_counter() - started)
        if row["selected"]:
            best = {"ema_dice": row["ema_dice"], "epoch": epoch + 1}
            save_atomic({"model": model.state_dict(), "epoch": epoch + 1}, run / "best.pt")
        if skipped:
            tqdm.write(f"epoch {epoch + 1}: skipped {skipped} step(s) with a non-finite loss or gradient")
        history.append(row)
        write_text_atomic(run / "history.csv", pd.DataFrame(history).to_csv(index=False))
        save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                      "history": history, "best": best}, run / "last.pt")
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_dice=f"{row['val_dice']:.3f}",
                        ema=f"{row['ema_dice']:.3f}")
    bar.close()
    return len(history) >= epochs


def best_model(ctx: Context, run: Path) -> torch.nn.Module:
    model = ctx.new_model()
    model.load_state_dict(torch.load(run / "best.pt", map_location=ctx.device, weights_only=True)["model"])
    return model.eval()


def predict(ctx: Context, model: torch.nn.Module, split: str, tta: bool) -> np.ndarray:
    """Probabilities for every tile of a split, refined by the dense CRF for the models that use one."""
    crf = (lambda p, x: dense_crf(p, x[:, :3], **ctx.cfg["ladder"]["crf"])) if ctx.spec.crf else None
    return predict_tiles(model, ctx.dataset(ctx.split_index[split]), ctx.device, tta=tta, refine=crf)


def test_report(ctx: Context, model: torch.nn.Module, run: Path) -> dict[str, Any]:
    """Test scores with TTA as configured (and without, for comparison) at the threshold chosen on validation;
    writes per_image.csv, test_probabilities.npy and threshold_curve.csv into `run`."""
    train_cfg = ctx.cfg["train"]
    threshold = train_cfg["threshold"]
    if train_cfg["threshold_from_validation"]:
        threshold, curve = choose_threshold(predict(ctx, model, "val", train_cfg["tta"]),
                                            ctx.tile_set.masks[ctx.split_index["val"]])
        write_text_atomic(run / "threshold_curve.csv", curve.to_csv(index=False))
    probabilities = predict(ctx, model, "test", train_cfg["tta"])
    summary, per_tile = report(probabilities, ctx.tile_set, ctx.split_index["test"], threshold)
    metrics = {"test": summary, "threshold": threshold,
               "threshold_source": "validation" if train_cfg["threshold_from_validation"] else "config",
               "tta": train_cfg["tta"]}
    if train_cfg["tta"]:
        metrics["test_without_tta"], _ = report(predict(ctx, model, "test", False), ctx.tile_set,
                                                ctx.split_index["test"], threshold)
    np.save(run / "test_probabilities.npy", probabilities.astype(np.float16))
    write_text_atomic(run / "per_image.csv", per_tile.to_csv(index=False))
    return metrics
