"""Inference over tiles and test metrics, on whole tiles and inside the annotated region."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from .augment import predict_probabilities
from .metrics import evaluate

METRICS = ("dice", "iou", "precision", "recall")
THRESHOLD_GRID = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))


def predict_tiles(model: torch.nn.Module, dataset, device: torch.device, tta: bool, batch_size: int = 16,
                  refine=None) -> np.ndarray:
    """Probabilities (N, H, W) float32 for every item of a dataset (no augmentation), in order;
    `refine(probabilities, x)` post-processes each batch (the dense CRF)."""
    model.eval()
    out = []
    for x, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        probabilities = predict_probabilities(model, x.to(device), tta).float()
        if refine is not None:
            probabilities = refine(probabilities, x.to(device))
        out.append(probabilities[:, 0].cpu().numpy())
    return np.concatenate(out)


def choose_threshold(probabilities: np.ndarray, masks: np.ndarray) -> tuple[float, pd.DataFrame]:
    """The probability threshold with the best pooled Dice on these (validation) tiles, and the whole curve.

    Losses with a large positive weight (Algorithm 1 clamps it at 50) shift probabilities up, so 0.5 is not
    the natural cut; choosing it on validation tiles never looks at the test split."""
    masks = np.asarray(masks)
    curve = pd.DataFrame({"threshold": THRESHOLD_GRID,
                          "val_dice": [evaluate(probabilities >= t, masks)[0]["dice"] for t in THRESHOLD_GRID]})
    return float(curve.threshold[curve.val_dice.idxmax()]), curve


def report(probabilities: np.ndarray, tile_set, index: np.ndarray, threshold: float) -> tuple[dict, pd.DataFrame]:
    """Pooled and mean-over-tiles scores, whole tile and annotated region, plus a per-tile table."""
    preds = probabilities >= threshold
    masks, regions = np.asarray(tile_set.masks[index]), np.asarray(tile_set.regions[index])
    summary, per_tile = {}, tile_set.table.iloc[index][["tile_id", "source", "split", "has_cells"]].reset_index(drop=True)
    for area, within in (("whole_tile", None), ("annotated_region", regions)):
        pooled, tiles = evaluate(preds, masks, within)
        summary[area] = {"pooled": pooled, "mean_over_tiles": tiles[list(METRICS)].mean().to_dict()}
        per_tile = per_tile.join(tiles.add_prefix(f"{area}_"))
    return summary, per_tile


def metrics_frame(metrics: dict) -> pd.DataFrame:
    """metrics.json's test scores as a table: rows (area, aggregation), columns Dice, IoU, precision, recall."""
    rows = {(area.replace("_", " "), how.replace("_", " ")): values
            for area, by_how in metrics["test"].items() for how, values in by_how.items()}
    return pd.DataFrame(rows).T[list(METRICS)]
