"""A mean-field conditional random field on the probabilities (the multi-scale model's post-processing).

The dense CRF of Kraehenbuehl & Koltun (2011) with Potts compatibility, restricted to a `window` x `window`
neighbourhood so that it runs in plain torch (pydensecrf needs a compiler; it does not install here). Pairwise
kernels between pixel i and neighbour j:
    appearance  w_a exp(-|p_i - p_j|^2 / 2 s_xy^2 - |I_i - I_j|^2 / 2 s_rgb^2)   (like colours agree)
    smoothness  w_s exp(-|p_i - p_j|^2 / 2 s_xy^2)                             (neighbours agree)
each normalised to sum to 1 over the window, so a weight is the largest shift in log-odds a kernel can give.
For two labels one mean-field update is  Q_1 = sigmoid(logit(P) + m_1 - m_0),  m_l = sum_j k(i, j) Q_l(j),
with P the network's probabilities (the unary term). An isolated confident pixel amid background is outvoted.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-6


def _window_kernels(image: torch.Tensor, window: int, spatial_sigma: float,
                    color_sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Appearance and smoothness kernels (B, window^2, H*W), centre excluded, each summing to 1 per pixel."""
    b, c, h, w = image.shape
    radius = window // 2
    offsets = torch.arange(-radius, radius + 1, device=image.device, dtype=image.dtype)
    distance2 = (offsets[:, None] ** 2 + offsets[None, :] ** 2).flatten()
    spatial = torch.exp(-distance2 / (2 * spatial_sigma ** 2))
    spatial[len(spatial) // 2] = 0  # no message from a pixel to itself
    neighbours = F.unfold(image, window, padding=radius).view(b, c, window * window, h * w)
    colour2 = ((neighbours - image.view(b, c, 1, h * w)) ** 2).sum(1)
    inside = F.unfold(torch.ones_like(image[:, :1]), window, padding=radius)  # 0 where the window leaves the tile
    appearance = spatial[None, :, None] * torch.exp(-colour2 / (2 * color_sigma ** 2)) * inside
    smoothness = spatial[None, :, None] * inside
    return (appearance / (appearance.sum(1, keepdim=True) + EPS), smoothness / (smoothness.sum(1, keepdim=True) + EPS))


@torch.no_grad()
def dense_crf(probabilities: torch.Tensor, image: torch.Tensor, iterations: int = 5, window: int = 7,
              spatial_sigma: float = 3.0, color_sigma: float = 0.2, appearance_weight: float = 2.0,
              smoothness_weight: float = 1.0) -> torch.Tensor:
    """Refined probabilities (B, 1, H, W) from probabilities (B, 1, H, W) and the image (B, C, H, W)."""
    b, _, h, w = probabilities.shape
    appearance, smoothness = _window_kernels(image.float(), window, spatial_sigma, color_sigma)
    kernel = appearance_weight * appearance + smoothness_weight * smoothness
    p = probabilities.float().clamp(EPS, 1 - EPS)
    unary = torch.log(p) - torch.log1p(-p)
    q = p
    for _ in range(iterations):
        q_neighbours = F.unfold(q, window, padding=window // 2).view(b, window * window, h * w)
        m1 = (kernel * q_neighbours).sum(1).view(b, 1, h, w)
        m0 = (kernel * (1 - q_neighbours)).sum(1).view(b, 1, h, w)
        q = torch.sigmoid(unary + m1 - m0)
    return q
