"""Losses by name: the stabilized loss of Algorithm 1 (paper §III-E: 0.5 Dice + 0.3 BCE + 0.2 Tversky,
per-sample overlap terms, adaptive positive weight, clamps) and those of the other ladder models.

Every loss takes (logits, target, distance): (B, 1, H, W) logits and {0,1} targets, and the targets' signed
distance maps (`signed_distance`) for the distance-based losses (None for the others).
- boundary (Kervadec et al. 2019): mean of p * signed distance, so probability outside the cells costs in
  proportion to how far out it lies, and inside the cells it pays back;
- hausdorff (Karimi & Salcudean 2019, distance-transform form): mean of (p - g)^2 (d_g^2 + d_p^2), with d_g, d_p
  the distances to the ground-truth and predicted boundaries;
distances are in units of the tile side, so the terms stay on the scale of Dice. A mask with no cell has no
boundary: every pixel gets distance 1 (the largest), so any predicted cell costs fully.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from scipy import ndimage

EPS = 1e-7
SMOOTH = 1.0
LOGIT_CLAMP = 10.0
POS_WEIGHT_RANGE = (1.0, 50.0)
WEIGHTS = {"dice": 0.5, "bce": 0.3, "tversky": 0.2}
TVERSKY_ALPHA, TVERSKY_BETA = 0.7, 0.3  # weights of false positives and false negatives


def adaptive_pos_weight(target: torch.Tensor) -> torch.Tensor:
    """clamp((1 - r) / r, 1, 50) with r the share of positive pixels in the batch.

    With no positive pixel the positive term of the BCE is zero whatever its weight; the weight is then 1."""
    ratio = target.float().mean()
    if ratio == 0:
        return torch.ones((), device=target.device)
    return ((1 - ratio) / ratio).clamp(*POS_WEIGHT_RANGE)


def stabilized_loss_terms(logits: torch.Tensor, target: torch.Tensor,
                          bce_on_clamped_logits: bool = False) -> dict[str, torch.Tensor]:
    """Each term of Algorithm 1 and their weighted sum (`loss`), for (B, 1, H, W) logits and {0,1} targets.

    BCE takes the raw logits (line 22; `BCEWithLogits` is stable without a clamp, and a clamp would stop the
    gradient of confidently wrong pixels); `bce_on_clamped_logits` switches to the clamped ones."""
    target = target.float()
    clamped = logits.clamp(-LOGIT_CLAMP, LOGIT_CLAMP)
    probs = torch.sigmoid(clamped).clamp(EPS, 1 - EPS)
    dims = tuple(range(1, logits.dim()))
    tp = (probs * target).sum(dims)
    fp = (probs * (1 - target)).sum(dims)
    fn = ((1 - probs) * target).sum(dims)
    dice = (2 * tp + SMOOTH) / (probs.sum(dims) + target.sum(dims) + SMOOTH)
    tversky = (tp + SMOOTH) / (tp + TVERSKY_ALPHA * fp + TVERSKY_BETA * fn + SMOOTH)
    bce = F.binary_cross_entropy_with_logits(clamped if bce_on_clamped_logits else logits, target,
                                             pos_weight=adaptive_pos_weight(target))
    terms = {"dice": 1 - dice.mean(), "bce": bce, "tversky": 1 - tversky.mean()}
    terms["loss"] = sum(WEIGHTS[name] * value for name, value in terms.items())
    return terms


def stabilized_loss(logits: torch.Tensor, target: torch.Tensor, bce_on_clamped_logits: bool = False) -> torch.Tensor:
    """Algorithm 1: L = 0.5 L_dice + 0.3 L_bce + 0.2 L_tversky."""
    return stabilized_loss_terms(logits, target, bce_on_clamped_logits)["loss"]


def unstabilized_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Algorithm 1's mix without its safeguards, for the stability experiment: Dice and Tversky over the whole
    batch, no logit clamp, positive weight (1 - r) / (r + eps) unclamped (huge on nearly empty batches)."""
    target = target.float()
    probs = torch.sigmoid(logits)
    tp, fp, fn = (probs * target).sum(), (probs * (1 - target)).sum(), ((1 - probs) * target).sum()
    dice = 2 * tp / (probs.sum() + target.sum() + EPS)
    tversky = tp / (tp + TVERSKY_ALPHA * fp + TVERSKY_BETA * fn + EPS)
    ratio = target.mean()
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=(1 - ratio) / (ratio + EPS))
    return WEIGHTS["dice"] * (1 - dice) + WEIGHTS["bce"] * bce + WEIGHTS["tversky"] * (1 - tversky)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Distance to the mask's boundary in units of the tile side: negative inside, positive outside."""
    mask = np.asarray(mask, bool)
    if not mask.any() or mask.all():
        return np.full(mask.shape, 1.0 if not mask.any() else -1.0, np.float32)
    outside = ndimage.distance_transform_edt(~mask)
    inside = ndimage.distance_transform_edt(mask)
    return ((outside - (inside - 1) * mask) / mask.shape[-1]).astype(np.float32)


def boundary_loss(logits: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
    return (torch.sigmoid(logits) * distance).mean()


def hausdorff_loss(logits: torch.Tensor, target: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
    probs = torch.sigmoid(logits)
    predicted = (probs.detach() >= 0.5).cpu().numpy()[:, 0]
    predicted_distance = torch.from_numpy(np.stack([np.abs(signed_distance(p)) for p in predicted]))[:, None]
    weight = distance.abs() ** 2 + predicted_distance.to(logits.device) ** 2
    return ((probs - target.float()) ** 2 * weight).mean()


_dice = smp.losses.DiceLoss("binary", from_logits=True)
_focal = smp.losses.FocalLoss("binary", gamma=2.0)
_tversky = smp.losses.TverskyLoss("binary", from_logits=True, alpha=TVERSKY_ALPHA, beta=TVERSKY_BETA)


def _bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target.float())


LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
LOSSES: dict[str, LossFn] = {
    "stabilized": lambda x, y, d: stabilized_loss(x, y),
    "unstabilized": lambda x, y, d: unstabilized_loss(x, y),
    "dice": lambda x, y, d: _dice(x, y),
    "bce": lambda x, y, d: _bce(x, y),
    "tversky": lambda x, y, d: _tversky(x, y),
    "combo": lambda x, y, d: _dice(x, y) + _bce(x, y),                                  # FgFEU-Net
    "hybrid": lambda x, y, d: 0.5 * _dice(x, y) + 0.3 * _focal(x, y) + 0.2 * boundary_loss(x, d),
    "focal_dice": lambda x, y, d: _focal(x, y) + _dice(x, y),                         # Pro_UNeXt
    "focal_dice_hausdorff": lambda x, y, d: _focal(x, y) + _dice(x, y) + hausdorff_loss(x, y, d),
}
NEEDS_DISTANCE = {"hybrid", "focal_dice_hausdorff"}


def loss_function(name: str, bce_on_clamped_logits: bool = False) -> LossFn:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    if name == "stabilized":
        return lambda x, y, d: stabilized_loss(x, y, bce_on_clamped_logits)
    return LOSSES[name]
