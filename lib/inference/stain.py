"""Stain normalisation at prediction (`predict --stain-reference IMAGE_OR_FOLDER`).

Another lab's H&E differs in hue and strength from the training images'. Macenko's method (torchstain's numpy
implementation) estimates an image's haematoxylin and eosin vectors and concentrations in optical density and
rebuilds the image with a reference's vectors and concentration range, so that the model sees the staining it was
trained on; the reference is an image of the training set, or a folder of them (their pixels pooled). Each input is
normalised as a whole (its own stain vectors estimated once), before windows are cut.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torchstain.numpy.normalizers import NumpyMacenkoNormalizer

from ..data.reading import IMAGE_SUFFIXES, DatasetError, read_image

REFERENCE_PIXELS = 2**20  # a folder's staining is estimated on at most this many pixels, taken evenly from its images


def reference_pixels(reference: Path) -> np.ndarray:
    """The RGB pixels (N, 1, 3) whose staining is the target: an image's, or those of every image of a folder (a
    training set), taken at an even stride so that each image counts by its size and the total stays bounded."""
    if reference.is_dir():
        paths = sorted(p for p in reference.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not paths:
            raise DatasetError(f"{reference} holds no images to take the stain reference from")
    else:
        paths = [reference]
    pixels = [read_image(path, colour=True).reshape(-1, 1, 3) for path in paths]
    stride = max(1, sum(len(p) for p in pixels) // REFERENCE_PIXELS)
    return np.concatenate([p[::stride] for p in pixels])


class StainNormaliser:
    """Macenko normalisation to the staining of one reference image."""

    def __init__(self, reference: Path):
        self.reference = Path(reference)
        self._normaliser = NumpyMacenkoNormalizer()
        _estimated(self._normaliser.fit, reference_pixels(self.reference), self.reference)

    def __call__(self, image: np.ndarray, path: Path) -> np.ndarray:
        """`image` (H, W, 3) uint8 with the reference's staining; DatasetError naming `path` when its stain
        cannot be estimated."""
        return _estimated(lambda rgb: self._normaliser.normalize(rgb, stains=False)[0], image, path)


def _estimated(step: Callable[[np.ndarray], Any], image: np.ndarray, path: Path) -> Any:
    """`step(image)`, with a failed stain estimate (an empty or degenerate set of stained pixels: NaN, division by
    zero, empty percentiles) raised as one DatasetError naming the file instead of a garbled image."""
    with warnings.catch_warnings(), np.errstate(divide="raise", invalid="raise"):
        warnings.simplefilter("error", RuntimeWarning)
        try:
            return step(image)
        except (ValueError, IndexError, FloatingPointError, RuntimeWarning, np.linalg.LinAlgError) as error:
            raise DatasetError(f"{path}: its H&E stain cannot be estimated for normalisation ({error}); too "
                               "little stained tissue?") from error
