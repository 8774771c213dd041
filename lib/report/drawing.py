"""Drawing on images: mask outlines, the linear contrast stretch of Fig. 3, and the colour-blind-safe colours
(Okabe-Ito) every overlay uses."""
from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries

from ..data.geometry import mask_boundary

# Okabe & Ito's palette, distinguishable with every common colour-vision deficiency.
# Yellow and vermillion differ in lightness where red and green would merge.
TRUE_POSITIVE = (0.94, 0.89, 0.26)    # yellow
FALSE_POSITIVE = (0.84, 0.37, 0.00)   # vermillion
FALSE_NEGATIVE = (0.00, 0.45, 0.70)   # blue
REGION = (1.00, 1.00, 1.00)           # white: the annotated region's outline


def outline(image: np.ndarray, mask: np.ndarray, colour: tuple = (0, 255, 0)) -> np.ndarray:
    """The image with the mask's boundary pixels (`lib.data.geometry.mask_boundary`) painted in `colour`."""
    out = np.array(image, copy=True)
    out[mask_boundary(mask)] = colour
    return out


def contrast_stretch(image: np.ndarray, low: float = 1, high: float = 99) -> np.ndarray:
    """Linear stretch of each channel between its `low` and `high` percentiles, to [0, 1]."""
    image = np.asarray(image, np.float32)
    lo, hi = np.percentile(image, low, axis=(0, 1)), np.percentile(image, high, axis=(0, 1))
    return np.clip((image - lo) / np.maximum(hi - lo, 1e-6), 0, 1)


def outline_nuclei(image: np.ndarray, labels: np.ndarray, colour: tuple = (255, 255, 0)) -> np.ndarray:
    """The image with every nucleus of a label image outlined, the line between touching nuclei included."""
    out = np.array(image, copy=True)
    out[find_boundaries(labels, mode="inner")] = colour
    return out
