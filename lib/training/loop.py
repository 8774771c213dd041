"""Fitting one model: the epoch loop (accumulation, clipping, the non-finite guard), validation, EMA selection and
resumable state. The optimiser and schedule come from `lib.training.recipe`.

Model selection: the EMA (alpha 0.9, eq. 6) of the validation Dice picks the checkpoint. An epoch whose
validation Dice is an outlier (robust z-score |x - median| / (1.4826 MAD + 0.01) above `outlier_z` against the
previous `outlier_window` epochs, at least 3) is flagged and cannot be selected. The unstabilized arm keeps its
last epoch.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, RandomSampler, WeightedRandomSampler
from tqdm.auto import tqdm

from ..data.tiles import TileSet
from ..evaluation.metrics import count_table, pooled
from ..files import save_torch_atomic, write_text_atomic
from ..models import ModelSpec, build_model, model_spec, training_loss
from .augment import Augmenter
from .dataset import TileDataset
from .losses import NEEDS_DISTANCE, LossFn, loss_function
from .recipe import Recipe, build_recipe, drops_last_batch, model_epochs, steps_per_epoch


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


@dataclass
class Context:
    """What every stage of a run shares: config, data, the model's recipe, device."""
    cfg: dict[str, Any]
    model_name: str
    seed: int
    tile_set: TileSet
    edges: np.ndarray | None
    split_index: dict[str, np.ndarray]
    weights: pd.DataFrame  # complexity sampling weights of split_index["train"], in that order
    device: torch.device
    weights_used: str = ""  # set by new_model: ImageNet weights, or why the encoder started from random ones

    @property
    def spec(self) -> ModelSpec:
        return model_spec(self.model_name)

    @property
    def epochs(self) -> int:
        return model_epochs(self.cfg, self.model_name)

    def dataset(self, index: np.ndarray, augmenter: Augmenter | None = None) -> TileDataset:
        """Tiles as this model's inputs and targets (with distance maps where its losses need them)."""
        needs_distance = bool({training_loss(self.model_name, self.cfg), self.spec.finetune_loss} & NEEDS_DISTANCE)
        return TileDataset(self.tile_set, index, self.edges, self.cfg["model"], augmenter, needs_distance)

    def loss_for_epoch(self, epoch: int) -> LossFn:
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


def _mask_and_distance(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A dataset target (B, 1 or 2, H, W) as the mask and, when present, its signed distance map."""
    return y[:, :1], (y[:, 1:] if y.shape[1] > 1 else None)


def validate(model: torch.nn.Module, loader: DataLoader, device: torch.device, threshold: float,
             loss_fn: LossFn) -> dict[str, float]:
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
    scores = pooled(count_table(np.concatenate(preds), np.concatenate(masks)))
    return {"val_loss": sum(losses) / len(loader.dataset), **{f"val_{k}": v for k, v in scores.items()}}


def train_one_epoch(model: torch.nn.Module, loader: Iterable, recipe: Recipe, accumulation: int,
                    device: torch.device, loss_fn: LossFn) -> tuple[list[float], int, int]:
    """One pass over the loader with gradient accumulation, clipping and the non-finite guard (a batch with a
    non-finite loss, or a step with non-finite gradients, is skipped and counted). Targets are (B, 1, H, W)
    masks, with the signed distance map as a second channel when the loss needs it.
    Returns the batch losses, the skipped batches and steps, and the optimiser steps that applied a gradient."""
    model.train()
    use_amp = device.type == "cuda"
    losses, skipped, steps = [], 0, 0
    batches, pending = len(loader), False  # pending: a gradient waits to be applied
    recipe.optimizer.zero_grad(set_to_none=True)
    for step, (x, y) in enumerate(loader):
        y = y.to(device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            logits = model(x.to(device))
        loss = loss_fn(logits.float(), *_mask_and_distance(y))
        if torch.isfinite(loss):
            recipe.scaler.scale(loss / accumulation).backward()
            losses.append(loss.item())
            pending = True
        else:
            skipped += 1
        if (step + 1) % accumulation == 0 or step + 1 == batches:
            recipe.scaler.unscale_(recipe.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_norm)
            if torch.isfinite(norm):
                recipe.scaler.step(recipe.optimizer)
                steps += pending
            else:
                skipped += 1
            pending = False
            recipe.scaler.update()
            recipe.optimizer.zero_grad(set_to_none=True)
            recipe.scheduler.step()
    return losses, skipped, steps


def _sampler(ctx: Context, weights: np.ndarray, samples: int, generator: torch.Generator,
             ) -> WeightedRandomSampler | RandomSampler:
    """Complexity-weighted draws with replacement, or uniform ones (a permutation when an epoch draws exactly
    the training set)."""
    if ctx.cfg["train"]["sampling"] == "complexity":
        return WeightedRandomSampler(weights.copy(), samples, replacement=True, generator=generator)
    return RandomSampler(range(len(weights)), replacement=samples != len(weights), num_samples=samples,
                         generator=generator)


def fit(ctx: Context, run: Path, train_index: np.ndarray, epochs: int, initial_state: dict | None = None,
        stop_after_epochs: int | None = None, progress: bool = True, desc: str = "",
        samples_per_epoch: int | None = None) -> bool:
    """Train a fresh model (or one started from `initial_state`) on `train_index` for `epochs` epochs of
    `samples_per_epoch` draws (default: as many as the training tiles), validating every epoch; writes
    history.csv and best.pt into `run`, and last.pt after every epoch so that the same call resumes where it
    stopped. Returns whether all epochs are done."""
    train_cfg = ctx.cfg["train"]
    model = ctx.new_model()
    if initial_state is not None:
        model.load_state_dict(initial_state)
    patch_scale = ctx.cfg["ladder"]["patch_scale"] if ctx.spec.patch_sampling else None
    augmenter = (Augmenter(train_cfg, ctx.seed, patch_scale, ctx.cfg["data"]["input_size"])
                 if train_cfg["augment"] else None)
    train_set = ctx.dataset(train_index, augmenter)
    val_loader = DataLoader(ctx.dataset(ctx.split_index["val"]), batch_size=16)
    weight_of = dict(zip(ctx.split_index["train"], ctx.weights["weight"], strict=True))
    sample_weights = np.array([weight_of[i] for i in train_index], float)
    samples = samples_per_epoch or len(train_set)
    drop_last = drops_last_batch(samples, train_cfg["batch_size"])
    recipe = build_recipe(model, ctx.cfg, ctx.spec.stabilized, epochs * steps_per_epoch(samples, train_cfg),
                          ctx.device)

    history: list[dict] = []
    best = {"ema_dice": -1.0, "epoch": -1}
    if (run / "last.pt").is_file():
        state = torch.load(run / "last.pt", map_location=ctx.device, weights_only=False)
        model.load_state_dict(state["model"])
        recipe.load_state_dict(state["recipe"])
        history, best = state["history"], state["best"]

    bar = tqdm(range(len(history), epochs), desc=desc or f"{ctx.model_name} seed {ctx.seed}", unit="epoch",
               initial=len(history), total=epochs, disable=not progress)
    for done, epoch in enumerate(bar):
        if stop_after_epochs is not None and done >= stop_after_epochs:
            break
        started = time.perf_counter()
        epoch_seed = ctx.seed * 100_003 + epoch  # everything random in an epoch derives from this: resumable
        torch.manual_seed(epoch_seed)
        if augmenter is not None:
            augmenter.reseed(epoch_seed)
        generator = torch.Generator().manual_seed(epoch_seed)
        loader = DataLoader(train_set, batch_size=train_cfg["batch_size"], drop_last=drop_last,
                            sampler=_sampler(ctx, sample_weights, samples, generator))
        loss_fn = ctx.loss_for_epoch(epoch)
        losses, skipped, steps = train_one_epoch(model, loader, recipe, train_cfg["accumulation_steps"], ctx.device,
                                                 loss_fn)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               **validate(model, val_loader, ctx.device, train_cfg["threshold"], loss_fn)}
        previous = history[-1]["ema_dice"] if history else None
        row["ema_dice"] = ema_update(previous, row["val_dice"], train_cfg["ema_alpha"])
        row["outlier"] = is_outlier([h["val_dice"] for h in history], row["val_dice"],
                                    train_cfg["outlier_window"], train_cfg["outlier_z"])
        row["selected"] = (not row["outlier"] and row["ema_dice"] > best["ema_dice"]) if ctx.spec.stabilized else True
        row.update(lr=recipe.scheduler.get_last_lr()[0], optimizer_steps=steps, skipped_steps=skipped,
                   seconds=time.perf_counter() - started)
        if row["selected"]:
            best = {"ema_dice": row["ema_dice"], "epoch": epoch + 1}
            save_torch_atomic({"model": model.state_dict(), "epoch": epoch + 1}, run / "best.pt")
        if skipped:
            tqdm.write(f"epoch {epoch + 1}: skipped {skipped} step(s) with a non-finite loss or gradient")
        history.append(row)
        write_text_atomic(run / "history.csv", pd.DataFrame(history).to_csv(index=False))
        save_torch_atomic({"model": model.state_dict(), "recipe": recipe.state_dict(), "history": history,
                           "best": best}, run / "last.pt")
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_dice=f"{row['val_dice']:.3f}",
                        ema=f"{row['ema_dice']:.3f}")
    bar.close()
    return len(history) >= epochs


def best_model(ctx: Context, run: Path) -> torch.nn.Module:
    """The run's selected checkpoint, in evaluation mode."""
    model = ctx.new_model()
    model.load_state_dict(torch.load(run / "best.pt", map_location=ctx.device, weights_only=True)["model"])
    return model.eval()
