"""Fitting one model: the epoch loop (accumulation, clipping, the non-finite guard), validation, EMA selection and
resumable state. The optimiser and schedule come from `lib.training.recipe`, the precision from `lib.device`.
Training inside the annotated region (`train.loss_area: annotated_region`) passes the region to the loss as the
pixels that carry supervision, and scores the validation tiles inside it too.

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

from ..data.geometry import input_scale
from ..data.tiles import TileSet
from ..device import Precision
from ..evaluation.metrics import count_table, pooled
from ..files import save_torch_atomic, write_text_atomic
from ..models import ModelSpec, build_model, has_centre_head, loss_area, model_spec, training_loss
from ..progress import progress as progress_bar
from .augment import Augmenter
from .dataset import TileDataset
from .distributed import SINGLE, Ranks, per_rank_accumulation, wrap
from .losses import NEEDS_DISTANCE, LossFn, centre_loss, loss_function
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
    precision: Precision
    ranks: Ranks = SINGLE  # the processes of a data-parallel run (one by default)
    weights_used: str = ""  # set by new_model: ImageNet weights, or why the encoder started from random ones

    @property
    def spec(self) -> ModelSpec:
        return model_spec(self.model_name)

    @property
    def epochs(self) -> int:
        return model_epochs(self.cfg, self.model_name)

    @property
    def in_region(self) -> bool:
        """Whether the loss and the validation scores look only inside the annotated region."""
        return loss_area(self.model_name, self.cfg) == "annotated_region"

    def dataset(self, index: np.ndarray, augmenter: Augmenter | None = None) -> TileDataset:
        """Tiles as this model's inputs and targets (distance maps where its losses need them, the annotated
        region where the loss looks only there, the gaps' weights with `train.contact_weight`, the centre map
        with `model.centre_head`)."""
        needs_distance = bool({training_loss(self.model_name, self.cfg), self.spec.finetune_loss} & NEEDS_DISTANCE)
        train = self.cfg["train"]
        return TileDataset(self.tile_set, index, self.edges, self.cfg["model"], augmenter, needs_distance,
                           self.in_region, train["contact_weight"], train["gap_sigma_px"] * input_scale(self.cfg["data"]),
                           has_centre_head(self.model_name, self.cfg))

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
        return self.precision.prepare(model.to(self.device))


def _loss(loss_fn: LossFn, logits: torch.Tensor, target: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss of a batch of logits against a dataset target (`lib.training.dataset`), in fp32: the model's loss
    on the mask channel, plus the centre loss on the centre head's channel where the model has one."""
    logits = logits.float()
    loss = loss_fn(logits[:, :1], target["mask"], target.get("distance"), target.get("valid"))
    return loss + centre_loss(logits[:, 1:], target["centre"], target.get("valid")) if "centre" in target else loss


def validate(model: torch.nn.Module, loader: DataLoader, device: torch.device, threshold: float,
             loss_fn: LossFn, precision: Precision) -> dict[str, float]:
    """Validation loss and pooled Dice, IoU, precision, recall (no TTA); inside the targets' `valid` pixels
    when they have them."""
    model.eval()
    losses, preds, masks, valid = [], [], [], []
    with torch.no_grad():
        for x, target in loader:
            with precision.autocast():
                logits = model(precision.prepare(x.to(device))).float()
            target = {name: value.to(device) for name, value in target.items()}
            losses.append(_loss(loss_fn, logits, target).item() * len(x))
            preds.append((torch.sigmoid(logits) >= threshold)[:, 0].cpu().numpy())
            masks.append(target["mask"][:, 0].cpu().numpy().astype(bool))
            valid.append(target["valid"][:, 0].cpu().numpy().astype(bool) if "valid" in target else None)
    within = None if valid[0] is None else np.concatenate(valid)
    scores = pooled(count_table(np.concatenate(preds), np.concatenate(masks), within))
    return {"val_loss": sum(losses) / len(loader.dataset), **{f"val_{k}": v for k, v in scores.items()}}


def _zero_backward(model: torch.nn.Module) -> None:
    """A backward pass that adds nothing, so that every rank of a data-parallel run stays in step."""
    sum(parameter.sum() for parameter in model.parameters() if parameter.requires_grad).mul(0).backward()


def train_one_epoch(model: torch.nn.Module, loader: Iterable, recipe: Recipe, accumulation: int,
                    device: torch.device, loss_fn: LossFn, precision: Precision,
                    desc: str | None = None, ranks: Ranks = SINGLE) -> tuple[list[float], int, int]:
    """One pass over the loader with gradient accumulation, clipping and the non-finite guard (a batch with a
    non-finite loss, or a step with non-finite gradients, is skipped and counted). Targets are dataset targets
    (`lib.training.dataset`); a batch without a pixel that carries supervision is passed over (no loss). With
    several ranks, a batch is skipped on all of them when it is skipped on one.
    Returns the batch losses, the skipped batches and steps, and the optimiser steps that applied a gradient.
    With `desc`, a progress bar over the batches shows the running loss."""
    model.train()
    losses, skipped, steps = [], 0, 0
    batches, pending = len(loader), False  # pending: a gradient waits to be applied
    recipe.optimizer.zero_grad(set_to_none=True)
    bar = progress_bar(loader, desc=desc, unit="batch", leave=False, disable=desc is None)
    for step, (x, target) in enumerate(bar):
        target = {name: value.to(device) for name, value in target.items()}
        supervised = "valid" not in target or bool(target["valid"].any())  # a batch without supervision adds nothing
        if supervised or ranks.world > 1:
            with precision.autocast():
                logits = model(precision.prepare(x.to(device)))
            loss = _loss(loss_fn, logits, target)
            finite = bool(torch.isfinite(loss))
            if ranks.all_agree(supervised and finite, device):
                recipe.scaler.scale(loss / accumulation).backward()
                losses.append(loss.item())
                pending = True
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
            else:
                skipped += supervised
                if ranks.world > 1:
                    _zero_backward(model)
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
    bar.close()
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
    train_cfg, ranks = ctx.cfg["train"], ctx.ranks
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
    samples -= samples % ranks.world                 # every rank draws as many tiles
    accumulation = per_rank_accumulation(train_cfg["accumulation_steps"], ranks.world)
    rank_cfg = dict(train_cfg, accumulation_steps=accumulation)
    drop_last = drops_last_batch(samples // ranks.world, train_cfg["batch_size"])
    recipe = build_recipe(model, ctx.cfg, ctx.spec.stabilized,
                          epochs * steps_per_epoch(samples // ranks.world, rank_cfg), ctx.precision)
    trained = wrap(model, ranks, ctx.device)         # the model itself with one process

    history: list[dict] = []
    best = {"ema_dice": -1.0, "epoch": -1}
    if (run / "last.pt").is_file():
        state = torch.load(run / "last.pt", map_location=ctx.device, weights_only=False)
        model.load_state_dict(state["model"])
        recipe.load_state_dict(state["recipe"])
        history, best = state["history"], state["best"]

    name = desc or f"{ctx.model_name} seed {ctx.seed}"
    bar = progress_bar(range(len(history), epochs), desc=name, unit="epoch", initial=len(history), total=epochs,
                       disable=not progress)
    finished = len(history)
    for done, epoch in enumerate(bar):
        if stop_after_epochs is not None and done >= stop_after_epochs:
            break
        started = time.perf_counter()
        epoch_seed = ctx.seed * 100_003 + epoch  # everything random in an epoch derives from this: resumable
        torch.manual_seed(epoch_seed)
        if augmenter is not None:
            augmenter.reseed(epoch_seed)
        generator = torch.Generator().manual_seed(epoch_seed)
        sampler = _sampler(ctx, sample_weights, samples, generator)
        if ranks.world > 1:                          # the same draws on every rank, a disjoint share each
            sampler = ranks.share(np.fromiter(sampler, int)).tolist()
        loader = DataLoader(train_set, batch_size=train_cfg["batch_size"], drop_last=drop_last, sampler=sampler)
        loss_fn = ctx.loss_for_epoch(epoch)
        losses, skipped, steps = train_one_epoch(trained, loader, recipe, accumulation, ctx.device, loss_fn,
                                                 ctx.precision,
                                                 f"{name}, epoch {epoch + 1}/{epochs}" if progress else None, ranks)
        finished += 1
        if not ranks.main:                           # only rank 0 validates, selects and writes
            continue
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               **validate(model, val_loader, ctx.device, train_cfg["threshold"], loss_fn, ctx.precision)}
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
            bar.write(f"epoch {epoch + 1}: skipped {skipped} step(s) with a non-finite loss or gradient")
        history.append(row)
        write_text_atomic(run / "history.csv", pd.DataFrame(history).to_csv(index=False))
        save_torch_atomic({"model": model.state_dict(), "recipe": recipe.state_dict(), "history": history,
                           "best": best}, run / "last.pt")
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_dice=f"{row['val_dice']:.3f}",
                        ema=f"{row['ema_dice']:.3f}")
        if progress:  # one line per epoch in the log, beside the bar
            bar.write(f"{name}, epoch {epoch + 1}/{epochs}: train loss {row['train_loss']:.4f}, validation Dice "
                      f"(pooled, threshold {train_cfg['threshold']}, {loss_area(ctx.model_name, ctx.cfg).replace('_', ' ')}) "
                      f"{row['val_dice']:.4f}, EMA "
                      f"{row['ema_dice']:.4f}{', selected' if row['selected'] else ''}; {row['seconds']:.0f} s")
    bar.close()
    ranks.barrier()                                  # rank 0's files are written before anyone reads them
    return finished >= epochs


def best_model(ctx: Context, run: Path) -> torch.nn.Module:
    """The run's selected checkpoint, in evaluation mode."""
    model = ctx.new_model()
    model.load_state_dict(torch.load(run / "best.pt", map_location=ctx.device, weights_only=True)["model"])
    return model.eval()
