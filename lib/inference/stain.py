"""Stain normalisation at prediction (`predict --stain-reference IMAGE`).

Another lab's H&E differs in hue and strength from the training images'. Macenko's method (torchstain's numpy
implementation) estimates an image's haematoxylin and eosin vectors and concentrations in optical density and
rebuilds the image with a reference image's vectors and concentration range, so that the model sees the staining
it was trained on; the reference should be an image of the training set. Each input is normalised as a whole
(its own stain vectors estimated once), before windows are cut.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torchstain.numpy.normalizers import NumpyMacenkoNormalizer

from ..data.reading import DatasetError, read_image


class StainNormaliser:
    """Macenko normalisation to the staining of one reference image."""

    def __init__(self, reference: Path):
        self.reference = Path(reference)
        self._normaliser = NumpyMacenkoNormalizer()
        _estimated(self._normaliser.fit, read_image(self.reference, colour=True), self.reference)

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
