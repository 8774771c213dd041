"""The stabilized loss of Algorithm 1 (paper §III-E): 0.5 Dice + 0.3 BCE + 0.2 Tversky, per-sample overlap
terms, adaptive positive weight, clamps."""
from __future__ import annotations

import torch
import torch.nn.functional as F

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
