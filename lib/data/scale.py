"""The physical scale of images: a dataset's pixel size, its nuclei's size, and how an input relates to them.

- A dataset states its pixel size in µm per pixel (`mpp`) in an optional `dataset.yaml` beside its `images/`
  (`mpp: 0.25`); without one it is unknown (`None`). data/README.md lists the known datasets' values (UCSB states
  none; the MoNuSeg images are 40x, about 0.25).
- A magnification M is converted with the usual scanner convention 40x = 0.25 µm/px, i.e. mpp = 10 / M.
- Every run records its training nuclei's median equivalent diameter in source pixels (the connected components
  of the training tiles' masks, so touching nuclei merged by the annotation count as one): it is what
  `predict --mpp auto` brings a new image's predicted nuclei to.
- `zoom` is the size of one input pixel in training pixels (input mpp / training mpp): an input at 0.25 µm/px
  seen by a model trained at 0.35 µm/px has zoom 0.71, and its windows are cut 1 / 0.71 times larger.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from .reading import DatasetError

MPP_AT_1X = 10.0  # µm per pixel at magnification 1x, so that 40x = 0.25 µm/px
SCAN_ZOOMS = tuple(0.25 * 2 ** (k / 2) for k in range(9))  # `--mpp auto` tries 0.25 to 4 in steps of √2


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


def scanned_zoom(training_px_at: Callable[[float], float], training_diameter_px: float) -> tuple[float, int, bool]:
    """`--mpp auto`: the zoom at which an image's predicted nuclei, measured in training pixels, first grow to the
    training nuclei's size, the number of passes it took, and whether they reached it. `training_px_at(zoom)`
    predicts the image at `zoom` and returns its nuclei's median diameter in training pixels (NaN: none found). The
    zooms of SCAN_ZOOMS are tried upwards until one measures at least the training size after one that measured
    less; the answer is interpolated between the two (linear in log zoom and log diameter). Without such a crossing:
    the scanned zoom that came nearest.

    Why a scan rather than one pass's ratio: a network outlines nuclei near the size it learned, so one pass at the
    wrong scale understates the change (an enlarged nucleus comes out smaller, or cut into pieces). As the zoom
    rises the nuclei look larger until, far above the right zoom, the network cuts them into pieces (smaller
    again); far below it, neighbours merge (larger): hence the first crossing from below."""
    target = math.log(training_diameter_px)
    tried: list[tuple[float, float]] = []  # (log zoom, log diameter) of the passes with nuclei
    for passes, zoom in enumerate(SCAN_ZOOMS, start=1):
        diameter = training_px_at(zoom)
        if not (math.isfinite(diameter) and diameter > 0):
            continue
        point = (math.log(zoom), math.log(diameter))
        if tried and tried[-1][1] < target <= point[1]:
            (z0, d0), (z1, d1) = tried[-1], point
            return math.exp(z0 + (target - d0) * (z1 - z0) / (d1 - d0)), passes, True
        tried.append(point)
    if not tried:
        return 1.0, len(SCAN_ZOOMS), False
    return math.exp(min(tried, key=lambda point: abs(point[1] - target))[0]), len(SCAN_ZOOMS), False
