"""Test-time augmentation (paper §III-H): the identity and six of the eight symmetries of the square (the
anti-transpose is left out), probabilities averaged after undoing each transform."""
from __future__ import annotations

import torch

# name: (forward, inverse) on (B, C, H, W) tensors
TTA_TRANSFORMS = {
    "identity": (lambda x: x, lambda x: x),
    "horizontal flip": (lambda x: x.flip(-1), lambda x: x.flip(-1)),
    "vertical flip": (lambda x: x.flip(-2), lambda x: x.flip(-2)),
    "rotate 90": (lambda x: x.rot90(1, (-2, -1)), lambda x: x.rot90(-1, (-2, -1))),
    "rotate 180": (lambda x: x.rot90(2, (-2, -1)), lambda x: x.rot90(-2, (-2, -1))),
    "rotate 270": (lambda x: x.rot90(3, (-2, -1)), lambda x: x.rot90(-3, (-2, -1))),
    "transpose": (lambda x: x.transpose(-2, -1), lambda x: x.transpose(-2, -1)),
}


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, x: torch.Tensor, tta: bool) -> torch.Tensor:
    """Sigmoid probabilities (B, C, H, W), C the model's output channels (the mask; the centre map of a model
    with a centre head); with `tta`, averaged over the 7 transforms after undoing each."""
    if not tta:
        return torch.sigmoid(model(x).float())
    return sum(inverse(torch.sigmoid(model(forward(x)).float())) for forward, inverse in TTA_TRANSFORMS.values()
               ) / len(TTA_TRANSFORMS)
