"""The pipeline a pathologist already has, with no training: the haematoxylin channel by colour deconvolution
(Ruifrok and Johnston, `skimage.color.rgb2hed`), smoothed, cut at its Otsu threshold, touching nuclei split by
the same distance-transform watershed as the models' (`instances.split_nuclei`). This is how QuPath's built-in
cell detection works, and the baseline every trained model has to beat."""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.color import rgb2hed
from skimage.filters import threshold_otsu

from .instances import split_nuclei


def haematoxylin(image: np.ndarray) -> np.ndarray:
    """The haematoxylin optical density of an RGB image (H, W): high where nuclei stain."""
    return rgb2hed(np.asarray(image)[..., :3])[..., 0]


def classic_mask(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Nuclei pixels: the smoothed haematoxylin density above its Otsu threshold (none on a flat image)."""
    density = ndimage.gaussian_filter(haematoxylin(image), sigma=sigma_px)
    if np.ptp(density) == 0:
        return np.zeros(density.shape, bool)
    return density > threshold_otsu(density)


def classic_nuclei(image: np.ndarray, sigma_px: float, min_distance_px: float, min_area_px: float) -> np.ndarray:
    """Labelled nuclei (int32, 0 = background) of an RGB image, without training (module docstring)."""
    return split_nuclei(classic_mask(image, sigma_px), min_distance_px, min_area_px)
