"""The embedded default dataset: H&E-like tiles generated deterministically from a seed (SPEC §1).

Rendering follows the Beer-Lambert law: each pixel's optical density is a sum of stain concentrations
times stain vectors (haematoxylin, eosin, and a brown-black vector for artifacts), RGB = 255 exp(-OD).

Only *target* nuclei are annotated. Every tile also holds distractors that a colour threshold cannot
tell apart from targets: lymphocytes (smaller, rounder, darker), stromal nuclei (elongated), pale
nuclei (same size, homogeneous, pinker), debris (irregular, brown-black), tissue folds and lumina.
Targets are vesicular: a dark rim, speckled chromatin and a nucleolus; some have low contrast. The
annotation of each target follows a smoothly jittered copy of the rendered contour (annotator noise), and is
known as an instance: each tile comes with a label image (nucleus k = k), whose union is the mask. Where two
touching targets' jittered annotations overlap, the pixel stays with the one drawn first. Positive tiles use one of
five arrangements: `scatter` or the four configurations of the paper's Fig. 3 (the dense ones leave gaps under 3 px
between cells, so that splitting touching nuclei is tested against real instances).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.stats import lognorm

from ..report.paper import FIG3_CASES
from .tiling import SPLITS

GENERATOR_VERSION = 1
FIG3_CELLS = {name: case["cells"] for name, case in FIG3_CASES.items()}
MIN_SHARE, MAX_SHARE = 0.001, 0.20  # cells cover 0.1% to 20% of a positive tile

_HEMATOXYLIN = np.array([0.65, 0.70, 0.29])
_EOSIN = np.array([0.07, 0.99, 0.11])
_DEBRIS = np.array([0.45, 0.60, 0.75])


@dataclass(frozen=True)
class TilePlan:
    """What one synthetic tile will contain, decided before any pixel is drawn."""

    index: int
    split: str
    cell_share: float  # 0 for a tile without target cells
    configuration: str  # "none", "scatter" or a key of FIG3_CELLS


def _shares_with_mean(n: int, mean: float) -> np.ndarray:
    """`n` log-normal quantiles (sigma 0.9), clipped to [MIN_SHARE, MAX_SHARE], scaled to the given mean.

    Quantiles instead of random draws keep every split's mean on target even with 40 positive tiles.
    """
    quantiles = lognorm.ppf((np.arange(n) + 0.5) / n, s=0.9)
    low, high = 1e-5, 1.0
    for _ in range(60):  # bisection on the scale factor
        scale = (low + high) / 2
        if np.clip(scale * quantiles, MIN_SHARE, MAX_SHARE).mean() < mean:
            low = scale
        else:
            high = scale
    return np.clip(scale * quantiles, MIN_SHARE, MAX_SHARE)


def plan_tiles(counts: list[int], positive_share: float, cell_shares: list[float], seed: int) -> list[TilePlan]:
    """Decide, per split, which tiles hold cells, how much and in which arrangement."""
    rng = np.random.default_rng([seed, 0])
    plans: list[TilePlan] = []
    for split, count, mean_share in zip(SPLITS, counts, cell_shares):
        n_positive = round(count * positive_share)
        shares = _shares_with_mean(n_positive, mean_share)
        configurations = np.array(["scatter"] * n_positive, dtype=object)
        # Fig. 3 arrangements go to tiles of mid-range cell share, where their cell counts give plausible sizes.
        mid = [i for i in np.argsort(shares) if 0.02 <= shares[i] <= 0.08]
        per_config = max(1, n_positive // 12)
        chosen = rng.permutation(mid)[: per_config * len(FIG3_CELLS)]
        for k, i in enumerate(chosen):
            configurations[i] = list(FIG3_CELLS)[k % len(FIG3_CELLS)]
        positive = rng.permutation(count)[:n_positive]
        share_of = dict(zip(positive.tolist(), zip(shares, configurations)))
        for local in range(count):
            share, configuration = share_of.get(local, (0.0, "none"))
            plans.append(TilePlan(len(plans), split, float(share), str(configuration)))
    return plans


def _radius_profile(rng: np.random.Generator, irregularity: float) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic amplitudes and phases (k = 2..4) that make a contour irregular."""
    return rng.uniform(0, irregularity, 3), rng.uniform(0, 2 * np.pi, 3)


def _contour(theta: np.ndarray, amplitudes: np.ndarray, phases: np.ndarray) -> np.ndarray:
    return 1 + sum(a * np.cos(k * theta + p) for k, a, p in zip((2, 3, 4), amplitudes, phases))


class _Canvas:
    """Stain concentration maps of one tile, plus its annotation."""

    def __init__(self, size: int, rng: np.random.Generator):
        self.size, self.rng, self.scale = size, rng, size / 256
        self.hema = np.zeros((size, size))
        self.eosin = np.zeros((size, size))
        self.debris = np.zeros((size, size))
        self.instances = np.zeros((size, size), dtype=np.uint16)  # the annotation, one label per target
        self.annotated = 0

    def _window(self, cy: float, cx: float, reach: float):
        y0, y1 = max(0, int(cy - reach)), min(self.size, int(cy + reach) + 2)
        x0, x1 = max(0, int(cx - reach)), min(self.size, int(cx + reach) + 2)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        return (slice(y0, y1), slice(x0, x1)), yy - cy, xx - cx

    def blob(self, cy: float, cx: float, a: float, b: float, angle: float, *, kind: str, strength: float,
             irregularity: float = 0.05, jitter: float = 0.0) -> None:
        """Draw one elliptical object; `kind` sets its texture, `jitter` > 0 also annotates it."""
        rng = self.rng
        window, dy, dx = self._window(cy, cx, max(a, b) * 1.4 + jitter + 3)
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        rho, theta = np.hypot(u, v), np.arctan2(v, u)
        ellipse = a * b / np.sqrt((b * np.cos(theta)) ** 2 + (a * np.sin(theta)) ** 2)
        radius = ellipse * _contour(theta, *_radius_profile(rng, irregularity))
        depth = rho / radius
        alpha = np.clip((1 - depth) * radius / (0.8 * self.scale + 0.4) + 0.5, 0, 1)  # soft, ~1 px edge
        if kind == "target":  # vesicular nucleus: dark rim, speckled chromatin, one nucleolus
            speckle = ndimage.gaussian_filter(rng.normal(size=alpha.shape), 0.7 * self.scale)
            texture = (0.55 + 0.55 * np.clip(depth, 0, 1) ** 3) * (1 + 2.0 * speckle)
            ny, nx = rng.uniform(-0.3, 0.3, 2) * min(a, b)
            texture += 0.6 * np.exp(-((dy - ny) ** 2 + (dx - nx) ** 2) / (2 * (0.9 * self.scale) ** 2))
            self.eosin[window] += 0.15 * alpha
        elif kind == "pale":  # homogeneous, pinker nucleus of another cell type
            texture = np.ones_like(alpha)
            self.eosin[window] += 0.35 * alpha
        else:
            texture = np.ones_like(alpha)
        target = self.debris if kind == "debris" else self.hema
        target[window] = np.maximum(target[window], strength * alpha * np.clip(texture, 0.2, None))
        if jitter > 0:  # the annotator's contour: smooth, zero-mean deviation of at most `jitter` px
            k = np.arange(1, 4)[:, None, None]
            wave = (rng.normal(size=(3, 1, 1)) * np.cos(k * theta + rng.uniform(0, 2 * np.pi, (3, 1, 1)))).sum(0)
            wave *= jitter * rng.uniform(0.3, 1.0) / (np.abs(wave).max() + 1e-9)
            self.annotated += 1
            annotation = self.instances[window]  # a view: writing it writes the tile's labels
            annotation[(rho < radius + wave) & (annotation == 0)] = self.annotated

    def background(self):
        """Eosin-stained stroma with fibres, optional lumen, and faint haematoxylin."""
        rng, size, scale = self.rng, self.size, self.scale
        smooth = ndimage.gaussian_filter(rng.normal(size=(size, size)), 10 * scale)
        fibres = ndimage.gaussian_filter(rng.normal(size=(size, size)), (0.8 * scale, 6 * scale))
        if rng.random() < 0.5:
            fibres = fibres.T
        self.eosin += np.clip(0.32 + 6 * smooth + 2 * fibres, 0.05, 0.8)
        if rng.random() < 0.25:  # lumen: an empty, almost white region
            window, dy, dx = self._window(*rng.uniform(0, size, 2), 60 * scale)
            a, b = rng.uniform(20, 50, 2) * scale
            self.eosin[window] *= np.where((dy / a) ** 2 + (dx / b) ** 2 < 1, 0.15, 1.0)
        if rng.random() < 0.12:  # tissue fold: a darker band across the tile
            yy, xx = np.mgrid[0:size, 0:size]
            line = yy - (rng.uniform(0.2, 0.8) * size + 0.3 * size * np.sin(xx / size * rng.uniform(2, 6)))
            band = np.exp(-(line / (rng.uniform(3, 6) * scale)) ** 2)
            self.eosin += 0.45 * band
            self.hema += 0.20 * band
        self.hema += 0.04 + 0.02 * rng.random((size, size))

    def render(self) -> np.ndarray:
        """RGB uint8 with per-tile stain variation, slight blur and sensor noise."""
        rng = self.rng
        vectors = []
        for base in (_HEMATOXYLIN, _EOSIN, _DEBRIS):
            vector = np.clip(base + rng.normal(0, 0.04, 3), 0.01, None)
            vectors.append(vector / np.linalg.norm(vector))
        gain = rng.uniform(0.8, 1.2, 3)
        density = sum(g * c[..., None] * v for g, c, v in zip(gain, (self.hema, self.eosin, self.debris), vectors))
        rgb = 255 * np.exp(-density)
        rgb = ndimage.gaussian_filter(rgb, (0.6 * self.scale, 0.6 * self.scale, 0))
        rgb += rng.normal(0, 3, rgb.shape)
        return np.clip(rgb, 0, 255).astype(np.uint8)


def _free(placed: list[tuple[float, float, float]], cy: float, cx: float, r: float, gap: float) -> bool:
    return all(np.hypot(cy - y, cx - x) >= r + q + gap for y, x, q in placed)


def _place_targets(canvas: _Canvas, plan: TilePlan, jitter: float) -> list[tuple[float, float, float]]:
    """Draw the target cells of a positive tile; returns (y, x, radius) of each."""
    rng, size, scale = canvas.rng, canvas.size, canvas.scale
    area = plan.cell_share * size * size
    if plan.configuration == "scatter":
        count = int(np.clip(round(area / (np.pi * (rng.uniform(6, 11) * scale) ** 2)), 1, 40))
    else:
        count = FIG3_CELLS[plan.configuration]
    sizes = rng.uniform(0.8, 1.2, count)
    if plan.configuration == "dense_large":
        sizes[: count // 3] *= 1.7  # a third of the cells are large
    radii = sizes * np.sqrt(area / (np.pi * np.sum(sizes ** 2)))
    order = np.argsort(-radii)  # big first: they are hardest to fit
    centre = rng.uniform(0.35, 0.65, 2) * size
    ring = (np.sqrt(count) * radii.mean() * 1.3 if plan.configuration == "distributed_cluster"
            else size * rng.uniform(0.25, 0.32))
    placed: list[tuple[float, float, float]] = []
    for rank, i in enumerate(order):
        r = radii[i]
        margin = r + 2
        for attempt in range(400):
            if plan.configuration == "scatter":
                cy, cx = rng.uniform(margin, size - margin, 2)
                gap = rng.uniform(0.5, 3) if attempt < 200 and rng.random() < 0.2 else 3 * scale
            elif plan.configuration == "sparse_ring":
                angle = 2 * np.pi * (rank + rng.uniform(-0.15, 0.15)) / count
                cy, cx = centre + ring * np.array([np.sin(angle), np.cos(angle)]) + rng.normal(0, 2 * scale, 2)
                gap = 3 * scale
            elif plan.configuration == "distributed_cluster":
                angle, dist = rng.uniform(0, 2 * np.pi), ring * np.sqrt(rng.random())
                cy, cx = centre + dist * np.array([np.sin(angle), np.cos(angle)])
                gap = rng.uniform(1, 4) * scale
            else:  # dense: walk outward from the centre until the cell fits, leaving gaps under 3 px
                angle, dist = rng.uniform(0, 2 * np.pi), attempt * 0.6 * scale
                cy, cx = centre + dist * np.array([np.sin(angle), np.cos(angle)])
                gap = rng.uniform(0.3, 2.5)
            inside = margin <= cy <= size - margin and margin <= cx <= size - margin
            if inside and _free(placed, cy, cx, r, gap):
                break
        else:
            continue  # no room left: the tile gets one cell fewer
        aspect = rng.uniform(1.0, 1.5)
        low_contrast = rng.random() < 0.15
        canvas.blob(cy, cx, r * np.sqrt(aspect), r / np.sqrt(aspect), rng.uniform(0, np.pi), kind="target",
                    strength=rng.uniform(0.35, 0.5) if low_contrast else rng.uniform(0.75, 1.0),
                    irregularity=0.06, jitter=jitter * scale)
        placed.append((cy, cx, r * np.sqrt(aspect)))
    return placed


def _place_distractors(canvas: _Canvas, occupied: list[tuple[float, float, float]]) -> None:
    """Unannotated objects: differ from targets in size, shape, texture or stain, never by colour alone."""
    rng, size, scale = canvas.rng, canvas.size, canvas.scale
    kinds = (["lymphocyte"] * rng.integers(4, 22) + ["stromal"] * rng.integers(2, 9)
             + ["pale"] * rng.integers(1, 6) + ["debris"] * (rng.integers(1, 4) if rng.random() < 0.35 else 0))
    for kind in kinds:
        if kind == "lymphocyte":
            a = b = rng.uniform(2.5, 4.0) * scale
            strength, irregularity = rng.uniform(1.2, 1.6), 0.03
        elif kind == "stromal":
            a, b = rng.uniform(6, 11) * scale, rng.uniform(1.5, 2.5) * scale
            strength, irregularity = rng.uniform(0.8, 1.1), 0.05
        elif kind == "pale":
            a, b = rng.uniform(5, 9) * scale, rng.uniform(4, 7) * scale
            strength, irregularity = rng.uniform(0.3, 0.45), 0.05
        else:
            a, b = rng.uniform(3, 10, 2) * scale
            strength, irregularity = rng.uniform(0.8, 1.6), 0.25
        for _ in range(50):
            cy, cx = rng.uniform(0, size, 2)
            if _free(occupied, cy, cx, max(a, b), 2 * scale):
                break
        else:
            continue
        canvas.blob(cy, cx, a, b, rng.uniform(0, np.pi), kind=kind, strength=strength, irregularity=irregularity)
        occupied.append((cy, cx, max(a, b)))


def render_tile(plan: TilePlan, size: int, seed: int, jitter: float) -> tuple[np.ndarray, np.ndarray, int]:
    """One tile from its plan: RGB uint8 (size, size, 3), the annotated instances (uint16, 0 = background; their
    union is the mask), and the number of target cells."""
    canvas = _Canvas(size, np.random.default_rng([seed, 1, plan.index]))
    canvas.background()
    targets = _place_targets(canvas, plan, jitter) if plan.cell_share > 0 else []
    _place_distractors(canvas, list(targets))
    return canvas.render(), canvas.instances, len(targets)


def generate(counts: list[int], positive_share: float, cell_shares: list[float], size: int, seed: int,
             jitter: float, progress: Callable[[list], Iterable] | None = None,
             ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The whole synthetic dataset: images (N, size, size, 3), instance labels (N, size, size; > 0 is the mask),
    and a tile table."""
    plans = plan_tiles(counts, positive_share, cell_shares, seed)
    images = np.empty((len(plans), size, size, 3), np.uint8)
    instances = np.empty((len(plans), size, size), np.uint16)
    rows = []
    for plan in progress(plans) if progress else plans:
        images[plan.index], instances[plan.index], n_cells = render_tile(plan, size, seed, jitter)
        rows.append({"split": plan.split, "configuration": plan.configuration, "target_cells": n_cells})
    return images, instances, pd.DataFrame(rows)
