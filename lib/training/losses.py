"""Losses by name: the stabilized loss of Algorithm 1 (paper §III-E: 0.5 Dice + 0.3 BCE + 0.2 Tversky,
per-sample overlap terms, adaptive positive weight, clamps) and those of the other ladder models.

Every loss takes (logits, target, distance, valid): (B, 1, H, W) logits and {0,1} targets, the targets' signed
distance maps (`signed_distance`) for the distance-based losses (None for the others), and `valid`, the pixels
that carry supervision (None: all of them). Training inside the annotated region (`train.loss_area:
annotated_region`, nnU-Net's ignore label) passes the region as `valid`: a pixel outside it changes no loss and no
gradient, and a tile without a region pixel carries no supervision at all. Above 1, `valid` weighs a pixel
(`train.contact_weight`) in the losses that average over pixels here; smp's Dice, focal and Tversky losses read it
only as valid or not.
- boundary (Kervadec et al. 2019): mean of p * signed distance, so probability outside the cells costs in
  proportion to how far out it lies, and inside the cells it pays back;
- hausdorff (Karimi & Salcudean 2019, distance-transform form): mean of (p - g)^2 (d_g^2 + d_p^2), with d_g, d_p
  the distances to the ground-truth and predicted boundaries;
distances are in units of the tile side, so the terms stay on the scale of Dice. A mask with no cell has no
boundary: every pixel gets distance 1 (the largest), so any predicted cell costs fully.
A model with a centre head (`model.centre_head`) adds `centre_loss` on its second channel: the binary cross-entropy
of its logits against the centre map (lib/data/geometry.py, values in [0, 1]), over the pixels that carry
supervision, unweighted (the contact weight is for the mask).
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
IGNORE = -1.0  # the target value smp's losses skip (their ignore_index)

Valid = torch.Tensor | None


def _mean(values: torch.Tensor, valid: Valid) -> torch.Tensor:
    """Mean over the valid pixels (all of them when `valid` is None); 0 when there is none."""
    if valid is None:
        return values.mean()
    return (values * valid).sum() / valid.sum().clamp_min(1)


def adaptive_pos_weight(target: torch.Tensor, valid: Valid = None) -> torch.Tensor:
    """clamp((1 - r) / r, 1, 50) with r the share of positive pixels among the (valid) pixels of the batch.

    With no positive pixel the positive term of the BCE is zero whatever its weight; the weight is then 1."""
    ratio = _mean(target.float(), valid)
    if ratio == 0:
        return torch.ones((), device=target.device)
    return ((1 - ratio) / ratio).clamp(*POS_WEIGHT_RANGE)


def _bce(logits: torch.Tensor, target: torch.Tensor, valid: Valid = None,
         pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy on the logits, averaged over the valid pixels."""
    if valid is None:
        return F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=pos_weight)
    losses = F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=pos_weight, reduction="none")
    return _mean(losses, valid)


def stabilized_loss_terms(logits: torch.Tensor, target: torch.Tensor, bce_on_clamped_logits: bool = False,
                          valid: Valid = None) -> dict[str, torch.Tensor]:
    """Each term of Algorithm 1 and their weighted sum (`loss`), for (B, 1, H, W) logits and {0,1} targets.

    BCE takes the raw logits (line 22; `BCEWithLogits` is stable without a clamp, and a clamp would stop the
    gradient of confidently wrong pixels); `bce_on_clamped_logits` switches to the clamped ones. With `valid`,
    the overlap terms count only valid pixels and average over the samples that have one."""
    target = target.float()
    clamped = logits.clamp(-LOGIT_CLAMP, LOGIT_CLAMP)
    probs = torch.sigmoid(clamped).clamp(EPS, 1 - EPS)
    counted, truth = (probs, target) if valid is None else (probs * valid, target * valid)
    dims = tuple(range(1, logits.dim()))
    tp = (counted * truth).sum(dims)
    fp = (counted * (1 - target)).sum(dims)
    fn = ((1 - probs) * truth).sum(dims)
    dice = (2 * tp + SMOOTH) / (counted.sum(dims) + truth.sum(dims) + SMOOTH)
    tversky = (tp + SMOOTH) / (tp + TVERSKY_ALPHA * fp + TVERSKY_BETA * fn + SMOOTH)
    supervised = torch.ones_like(dice, dtype=torch.bool) if valid is None else valid.sum(dims) > 0
    bce = _bce(clamped if bce_on_clamped_logits else logits, target, valid, adaptive_pos_weight(target, valid))
    terms = {"dice": 1 - dice[supervised].mean() if supervised.any() else dice.sum() * 0,
             "bce": bce,
             "tversky": 1 - tversky[supervised].mean() if supervised.any() else tversky.sum() * 0}
    terms["loss"] = sum(WEIGHTS[name] * value for name, value in terms.items())
    return terms


def stabilized_loss(logits: torch.Tensor, target: torch.Tensor, bce_on_clamped_logits: bool = False,
                    valid: Valid = None) -> torch.Tensor:
    """Algorithm 1: L = 0.5 L_dice + 0.3 L_bce + 0.2 L_tversky."""
    return stabilized_loss_terms(logits, target, bce_on_clamped_logits, valid)["loss"]


def unstabilized_loss(logits: torch.Tensor, target: torch.Tensor, valid: Valid = None) -> torch.Tensor:
    """Algorithm 1's mix without its safeguards, for the stability experiment: Dice and Tversky over the whole
    batch, no logit clamp, positive weight (1 - r) / (r + eps) unclamped (huge on nearly empty batches)."""
    target = target.float()
    probs = torch.sigmoid(logits)
    counted, truth = (probs, target) if valid is None else (probs * valid, target * valid)
    tp, fp, fn = (counted * truth).sum(), (counted * (1 - target)).sum(), ((1 - probs) * truth).sum()
    dice = 2 * tp / (counted.sum() + truth.sum() + EPS)
    tversky = tp / (tp + TVERSKY_ALPHA * fp + TVERSKY_BETA * fn + EPS)
    ratio = _mean(target, valid)
    bce = _bce(logits, target, valid, pos_weight=(1 - ratio) / (ratio + EPS))
    return WEIGHTS["dice"] * (1 - dice) + WEIGHTS["bce"] * bce + WEIGHTS["tversky"] * (1 - tversky)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Distance to the mask's boundary in units of the tile side: negative inside, positive outside."""
    mask = np.asarray(mask, bool)
    if not mask.any() or mask.all():
        return np.full(mask.shape, 1.0 if not mask.any() else -1.0, np.float32)
    outside = ndimage.distance_transform_edt(~mask)
    inside = ndimage.distance_transform_edt(mask)
    return ((outside - (inside - 1) * mask) / mask.shape[-1]).astype(np.float32)


def boundary_loss(logits: torch.Tensor, distance: torch.Tensor, valid: Valid = None) -> torch.Tensor:
    """Mean of p * signed distance over the valid pixels (Kervadec et al. 2019)."""
    return _mean(torch.sigmoid(logits) * distance, valid)


def hausdorff_loss(logits: torch.Tensor, target: torch.Tensor, distance: torch.Tensor, valid: Valid = None) -> torch.Tensor:
    """Mean of (p - g)^2 (d_g^2 + d_p^2) over the valid pixels (Karimi & Salcudean 2019)."""
    probs = torch.sigmoid(logits)
    predicted = (probs.detach() >= 0.5).cpu().numpy()[:, 0]
    predicted_distance = torch.from_numpy(np.stack([np.abs(signed_distance(p)) for p in predicted]))[:, None]
    weight = distance.abs() ** 2 + predicted_distance.to(logits.device) ** 2
    return _mean((probs - target.float()) ** 2 * weight, valid)


_dice = smp.losses.DiceLoss("binary", from_logits=True, ignore_index=IGNORE)
_focal = smp.losses.FocalLoss("binary", gamma=2.0, ignore_index=IGNORE)
_tversky = smp.losses.TverskyLoss("binary", from_logits=True, alpha=TVERSKY_ALPHA, beta=TVERSKY_BETA,
                                  ignore_index=IGNORE)

def centre_loss(logits: torch.Tensor, centre: torch.Tensor, valid: Valid = None) -> torch.Tensor:
    """Cross-entropy of the centre head's logits against the centre map (module docstring)."""
    return _bce(logits, centre, None if valid is None else (valid > 0).float())


def _ignoring(target: torch.Tensor, valid: Valid) -> torch.Tensor:
    """The target as smp's losses read it: IGNORE where a pixel carries no supervision."""
    return target if valid is None else torch.where(valid > 0, target.float(), torch.full_like(target.float(), IGNORE))


LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"], torch.Tensor]
LOSSES: dict[str, LossFn] = {
    "stabilized": lambda x, y, d, v: stabilized_loss(x, y, valid=v),
    "unstabilized": lambda x, y, d, v: unstabilized_loss(x, y, v),
    "dice": lambda x, y, d, v: _dice(x, _ignoring(y, v)),
    "bce": lambda x, y, d, v: _bce(x, y, v),
    "tversky": lambda x, y, d, v: _tversky(x, _ignoring(y, v)),
    "combo": lambda x, y, d, v: _dice(x, _ignoring(y, v)) + _bce(x, y, v),                         # FgFEU-Net
    "hybrid": lambda x, y, d, v: (0.5 * _dice(x, _ignoring(y, v)) + 0.3 * _focal(x, _ignoring(y, v))
                                  + 0.2 * boundary_loss(x, d, v)),
    "focal_dice": lambda x, y, d, v: _focal(x, _ignoring(y, v)) + _dice(x, _ignoring(y, v)),      # Pro_UNeXt
    "focal_dice_hausdorff": lambda x, y, d, v: (_focal(x, _ignoring(y, v)) + _dice(x, _ignoring(y, v))
                                                + hausdorff_loss(x, y, d, v)),
}
NEEDS_DISTANCE = {"hybrid", "focal_dice_hausdorff"}


def loss_function(name: str, bce_on_clamped_logits: bool = False) -> LossFn:
    """The loss of this name (`LOSSES`), as (logits, target, distance, valid) -> scalar."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    if name == "stabilized":
        return lambda x, y, d, v: stabilized_loss(x, y, bce_on_clamped_logits, v)
    return LOSSES[name]
