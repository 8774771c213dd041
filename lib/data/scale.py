"""The physical scale of images: a dataset's pixel size, its nuclei's size, and how an input relates to them.

- A dataset states its pixel size in µm per pixel (`mpp`) in an optional `dataset.yaml` beside its `images/`
  (`mpp: 0.25`); without one it is unknown (`None`). data/README.md lists the known datasets' values (UCSB states
  none; the MoNuSeg images are 40x, about 0.25).
- A magnification M is converted with the usual scanner convention 40x = 0.25 µm/px, i.e. mpp = 10 / M.
- Every run records its training nuclei's median equivalent diameter in source pixels (the connected components
  of the training tiles' masks, so touching nuclei merged by the annotation count as one): it is what
  `predict --mpp auto` compares a new image's first-pass nuclei with.
- `zoom` is the size of one input pixel in training pixels (input mpp / training mpp): an input at 0.25 µm/px
  seen by a model trained at 0.35 µm/px has zoom 0.71, and its windows are cut 1 / 0.71 times larger.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml

from .reading import DatasetError

MPP_AT_1X = 10.0  # µm per pixel at magnification 1x, so that 40x = 0.25 µm/px
ZOOM_LIMITS = (0.25, 4.0)  # an estimated zoom outside these is clipped: the first pass found no usable nuclei


def positive_number(text: str, what: str) -> float:
    """`text` as a positive finite number, else ValueError naming `what`."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a positive number, not {text!r}")
    return value


def mpp_of_magnification(magnification: float) -> float:
    """µm per pixel of an objective magnification (module docstring)."""
    return MPP_AT_1X / magnification


def dataset_mpp(data_dir: str | Path | None) -> float | None:
    """A dataset's pixel size from its `dataset.yaml` (None: the file or its `mpp` is absent, or null)."""
    if data_dir is None:
        return None
    path = Path(data_dir) / "dataset.yaml"
    if not path.is_file():
        return None
    try:
        value = (yaml.safe_load(path.read_text()) or {}).get("mpp")
    except (yaml.YAMLError, AttributeError) as error:
        raise DatasetError(f"{path} is not a YAML mapping with an `mpp` key: {error}") from error
    if value is None:
        return None
    try:
        return positive_number(str(value), "mpp")
    except ValueError as error:
        raise DatasetError(f"{path}: {error}") from error


def median_diameter_px(areas: np.ndarray) -> float:
    """Median equivalent diameter (px) of objects of the given areas (px); NaN when there are none."""
    areas = np.asarray(areas, float)
    return float(np.median(np.sqrt(4 * areas / np.pi))) if len(areas) else float("nan")


def estimated_zoom(first_pass_diameter_px: float, training_diameter_px: float) -> float:
    """The zoom that brings nuclei of the first pass's median diameter to the training nuclei's, clipped to
    ZOOM_LIMITS; 1 when the first pass found none."""
    if not (math.isfinite(first_pass_diameter_px) and first_pass_diameter_px > 0):
        return 1.0
    return float(np.clip(training_diameter_px / first_pass_diameter_px, *ZOOM_LIMITS))
