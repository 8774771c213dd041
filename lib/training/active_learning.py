"""Active learning by Monte-Carlo Dropout (Table II, "Att-UNet + AL"): train on a labelled subset, score the
unlabelled training tiles by uncertainty, label the most uncertain, repeat.

- start: a seeded random `al_initial_fraction` of the training tiles is labelled;
- budget: the same optimiser steps as every other rung. The model's epochs are split over the `al_rounds + 1`
  rounds (8 -> 3, 3, 2), and an epoch of a round draws as many tiles (with replacement, from the labelled ones)
  as the whole training set holds, so that each epoch has the other models' number of steps. Each round is
  warm-started from the previous round's selected checkpoint, in `round<r>/` (resumable like any run);
- acquisition: `al_mc_passes` forward passes with dropout on; a pixel's uncertainty is the variance of its
  probability over the passes, a tile's score the mean over its pixels; the `al_acquire_fraction` most
  uncertain tiles are labelled (the ground truth is never used to choose);
- analysis (uses the ground truth, never the choice): where the acquired tiles' uncertainty lies: within 3 px of a
  cell boundary, cell interior, or background (the paper: 67% of high-uncertainty regions were background).
Outputs: al_rounds.csv (labelled tiles, validation and test Dice per round: the learning curve),
al_acquired.csv (every acquired tile, its score and uncertainty shares), history.csv over all rounds.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.geometry import PIXEL_CLASSES, pixel_classes
from ..device import Precision
from ..evaluation.metrics import count_table, pooled
from ..files import write_text_atomic
from ..inference.predict import predict_batch, predict_tiles, refiner
from ..progress import progress as progress_bar
from .loop import Context, best_model, fit

BOUNDARY_BAND_PX = 3


def round_epochs(epochs: int, rounds: int) -> list[int]:
    """The model's epochs split as evenly as possible over the rounds, earlier rounds first (at least 1 each)."""
    return [max(1, epochs // rounds + (r < epochs % rounds)) for r in range(rounds)]


def mc_dropout_variance(model: torch.nn.Module, dataset: Dataset, device: torch.device, passes: int,
                        seed: int, desc: str | None = None, precision: Precision | None = None) -> np.ndarray:
    """Per-pixel variance (N, H, W) of the probability over `passes` forward passes with dropout active."""
    model.eval()
    for module in model.modules():
        if isinstance(module, (torch.nn.Dropout, torch.nn.Dropout2d)):
            module.train()
    torch.manual_seed(seed)
    out = []
    with torch.no_grad():
        batches = DataLoader(dataset, batch_size=16, shuffle=False)
        for x, _ in progress_bar(batches, desc=desc, unit="batch", leave=False, disable=desc is None):
            samples = torch.stack([predict_batch(model, x.to(device), False, None, precision)[:, 0] for _ in range(passes)])
            out.append(samples.var(0).cpu().numpy())
    model.eval()
    return np.concatenate(out)


def uncertainty_shares(variance: np.ndarray, masks: np.ndarray) -> pd.DataFrame:
    """Per tile, the share of its total uncertainty on boundary (within 3 px), interior and background pixels."""
    rows = []
    for v, mask in zip(variance, masks):
        classes = pixel_classes(mask, BOUNDARY_BAND_PX)
        total = v.sum() or 1.0
        rows.append({f"share_{name}": float(v[classes == code].sum() / total) for code, name in enumerate(PIXEL_CLASSES)})
    return pd.DataFrame(rows)


def _epochs_done(run: Path) -> int:
    return len(pd.read_csv(run / "history.csv")) if (run / "history.csv").is_file() else 0


def run_rounds(ctx: Context, run: Path, stop_after_epochs: int | None = None, progress: bool = True) -> bool:
    """All rounds (resuming a partial one); returns whether they are finished. The final round's selected
    checkpoint becomes the run's best.pt."""
    ladder, train_index = ctx.cfg["ladder"], ctx.split_index["train"]
    rng = np.random.default_rng(ctx.seed)
    labelled = np.sort(rng.choice(train_index, max(1, round(ladder["al_initial_fraction"] * len(train_index))),
                                  replace=False))
    acquire = max(1, round(ladder["al_acquire_fraction"] * len(train_index)))
    epochs_per_round = round_epochs(ctx.epochs, ladder["al_rounds"] + 1)
    phases = len(epochs_per_round)
    state, rounds, acquired, histories = None, [], [], []
    budget = stop_after_epochs
    for r, epochs in enumerate(epochs_per_round):
        round_dir = run / f"round{r}"
        round_dir.mkdir(exist_ok=True)
        before = _epochs_done(round_dir)
        finished = fit(ctx, round_dir, labelled, epochs, state, budget, progress,
                       desc=f"{ctx.model_name} seed {ctx.seed} round {r + 1}/{phases} ({len(labelled)} tiles)",
                       samples_per_epoch=len(train_index))
        if budget is not None:
            budget -= _epochs_done(round_dir) - before
        if not finished:
            return False
        model = best_model(ctx, round_dir)
        state = model.state_dict()
        probabilities = predict_tiles(model, ctx.dataset(ctx.split_index["test"]), ctx.device, False,
                                      refiner(ctx.model_name, ctx.cfg), precision=ctx.precision)
        test_dice = pooled(count_table(probabilities >= ctx.cfg["train"]["threshold"],
                                       ctx.tile_set.masks[ctx.split_index["test"]]))["dice"]
        history = pd.read_csv(round_dir / "history.csv").assign(round=r + 1)
        histories.append(history)
        rounds.append({"round": r + 1, "labelled_tiles": len(labelled), "epochs": epochs,
                       "val_dice": float(history.val_dice[history.selected.astype(bool)].iloc[-1]),
                       "test_dice_no_tta": test_dice})
        if r + 1 == phases:
            break
        pool = np.setdiff1d(train_index, labelled)
        if len(pool) == 0:
            break
        variance = mc_dropout_variance(model, ctx.dataset(pool), ctx.device, ladder["al_mc_passes"], ctx.seed + r,
                                       f"MC-Dropout acquisition after round {r + 1}" if progress else None, ctx.precision)
        scores = variance.mean(axis=(1, 2))
        chosen = np.argsort(-scores, kind="stable")[:acquire]
        table = uncertainty_shares(variance[chosen], ctx.tile_set.masks[pool[chosen]])
        table.insert(0, "round", r + 1)
        table.insert(1, "tile_id", ctx.tile_set.table.tile_id.to_numpy()[pool[chosen]])
        table.insert(2, "mean_variance", scores[chosen])
        acquired.append(table)
        labelled = np.sort(np.concatenate([labelled, pool[chosen]]))

    history = pd.concat(histories, ignore_index=True)
    history["epoch"] = np.arange(1, len(history) + 1)
    history["selected"] = history.selected.astype(bool) & (history["round"] == history["round"].max())
    write_text_atomic(run / "history.csv", history.to_csv(index=False))
    write_text_atomic(run / "al_rounds.csv", pd.DataFrame(rounds).to_csv(index=False))
    write_text_atomic(run / "al_acquired.csv", pd.concat(acquired, ignore_index=True).to_csv(index=False)
                      if acquired else "round,tile_id,mean_variance\n")
    shutil.copyfile(run / f"round{len(histories) - 1}" / "best.pt", run / "best.pt")
    return True
