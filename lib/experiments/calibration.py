"""Calibration of a run's test probabilities: expected calibration error and the reliability table."""
from __future__ import annotations

import numpy as np
import pandas as pd


def calibration(probabilities: np.ndarray, masks: np.ndarray, bins: int) -> tuple[float, pd.DataFrame]:
    """Expected calibration error over all pixels (`bins` equal-width bins of probability) and the reliability
    table (per bin: mean probability, observed frequency of cell pixels, number of pixels)."""
    p, y = np.ravel(probabilities), np.asarray(masks, bool).ravel()
    which = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    confidence = np.bincount(which, weights=p, minlength=bins) / np.maximum(count, 1)
    frequency = np.bincount(which, weights=y, minlength=bins) / np.maximum(count, 1)
    table = pd.DataFrame({"bin low": np.arange(bins) / bins, "mean probability": confidence,
                          "observed frequency": frequency, "pixels": count})
    ece = float(np.sum(count / count.sum() * np.abs(confidence - frequency)))
    return ece, table[table.pixels > 0].reset_index(drop=True)
