"""From a probability map (or a mask) to nuclei: one integer label per nucleus, touching nuclei split.

A marker-controlled watershed, the split QuPath's cell detection and the classic pipelines use:
1. the mask is the probability at or above the threshold, its holes filled;
2. markers are the peaks of the mask's distance transform (smoothed by a Gaussian of sigma 1 px, so that a ragged
   outline does not make several peaks in one nucleus) at least `min_distance_px` apart: two touching round nuclei
   have two distance peaks and a saddle between them. With `core_share` < 1 the peaks are those of the distance
   transform of the cores, the pixels whose probability is at least 1 - core_share x (1 - threshold): a network
   is less sure on the thin gap between touching nuclei than inside them, so the cores of a pair that the mask
   merges without a neck are often apart (a tenth of the mask's distance is added, so that a component with no
   core still has a peak, and the flooding below runs from the cores across the rest of the mask). A model with a
   centre head (`model.centre_head`) predicts each nucleus' normalised distance to its own edge: its centre map
   replaces the mask's distance transform, so that touching nuclei are told apart by what the network saw, not
   only by the mask's shape;
3. the watershed of the negative distance from those markers, restricted to the mask, draws the line between
   touching nuclei where the mask narrows;
4. objects under `min_area_px` are dropped (specks are not nuclei), and the labels are renumbered 1..n.
A mask component without a marker (a thin sliver) keeps one label of its own. Sizes are in pixels of the map given.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import relabel_sequential, watershed

from ..data.geometry import EIGHT_CONNECTED, input_scale

MASK_DISTANCE_SHARE = 0.1  # of the mask's distance transform, added to the cores' (module docstring, step 2)


class WatershedRelief(NamedTuple):
    """What the watershed floods, before its settings (module docstring, steps 1-2); shared by every marker distance
    and minimum area tried on one mask (`split_relief`)."""

    mask: np.ndarray  # bool, holes filled
    components: np.ndarray  # int32, its 8-connected components
    relief: np.ndarray  # the smoothed distance whose peaks are the markers


def watershed_relief(mask: np.ndarray, cores: np.ndarray | None = None,
                     centre: np.ndarray | None = None) -> WatershedRelief:
    """The `WatershedRelief` of a binary mask; `cores` and `centre` as in `split_nuclei`."""
    mask = ndimage.binary_fill_holes(np.asarray(mask, bool))
    if not mask.any():
        return WatershedRelief(mask, np.zeros(mask.shape, np.int32), np.zeros(mask.shape))
    components, _ = ndimage.label(mask, structure=EIGHT_CONNECTED)
    distance = ndimage.distance_transform_edt(mask)
    if centre is not None:
        distance = np.where(mask, centre, 0)
    elif cores is not None:
        cores = ndimage.binary_fill_holes(np.asarray(cores, bool) & mask)
        distance = ndimage.distance_transform_edt(cores) + MASK_DISTANCE_SHARE * distance
    return WatershedRelief(mask, components, ndimage.gaussian_filter(distance, sigma=1.0))


def split_relief(flooded: WatershedRelief, min_distance_px: float, min_area_px: float) -> np.ndarray:
    """Labelled nuclei (int32, 0 = background) of a `WatershedRelief` (module docstring, steps 2-4)."""
    mask, components, relief = flooded
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    peaks = peak_local_max(relief, min_distance=max(1, int(round(min_distance_px))), labels=components,
                           exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    unmarked = np.setdiff1d(np.unique(components[mask]), np.unique(components[tuple(peaks.T)]))
    if unmarked.size:  # a component with no peak keeps a label of its own
        for n, position in enumerate(ndimage.maximum_position(relief, components, unmarked), start=len(peaks) + 1):
            markers[position] = n
    labels = watershed(-relief, markers, mask=mask)
    areas = np.bincount(labels.ravel())
    labels[areas[labels] < min_area_px] = 0
    return relabel_sequential(labels)[0].astype(np.int32)


def split_nuclei(mask: np.ndarray, min_distance_px: float, min_area_px: float,
                 cores: np.ndarray | None = None, centre: np.ndarray | None = None) -> np.ndarray:
    """Labelled nuclei (int32, 0 = background) of a binary mask (module docstring, steps 1-4); `cores`: a binary
    mask of the surest pixels whose distance transform gives the markers (None: the mask's own); `centre`: a
    predicted centre map that replaces the distance transform (with it, `cores` is not used)."""
    return split_relief(watershed_relief(mask, cores, centre), min_distance_px, min_area_px)


def nuclei_relief(probability: np.ndarray, threshold: float, core_share: float = 1.0,
                  centre: np.ndarray | None = None) -> WatershedRelief:
    """The `WatershedRelief` of a probability map cut at `threshold`, with markers from its cores when
    `core_share` < 1, or from a predicted `centre` map (module docstring)."""
    if not 0 < core_share <= 1:
        raise ValueError(f"core_share must lie in (0, 1], not {core_share}")
    probability = np.asarray(probability)
    cores = None if core_share == 1 else probability >= 1 - core_share * (1 - threshold)
    return watershed_relief(probability >= threshold, cores, centre)


def label_nuclei(probability: np.ndarray, threshold: float, min_distance_px: float, min_area_px: float,
                 core_share: float = 1.0, centre: np.ndarray | None = None) -> np.ndarray:
    """Labelled nuclei (int32) of a probability map cut at `threshold` (`nuclei_relief`, `split_relief`)."""
    return split_relief(nuclei_relief(probability, threshold, core_share, centre), min_distance_px, min_area_px)


def label_maps(maps: np.ndarray, threshold: float, min_distance_px: float, min_area_px: float,
               core_share: float = 1.0) -> np.ndarray:
    """`label_nuclei` of a predicted image's maps (H, W, C), `lib.inference.predict.predict_maps`' channels: the
    probability, and the centre map of a model with a centre head."""
    return label_nuclei(maps[..., 0], threshold, min_distance_px, min_area_px, core_share,
                        maps[..., 1] if maps.shape[-1] > 1 else None)


def label_tiles(probabilities: np.ndarray, thresholds: np.ndarray, settings: dict,
                within: np.ndarray | None = None, centres: np.ndarray | None = None) -> list[np.ndarray]:
    """`label_nuclei` on each tile of a stack (N, H, W), cut at its own threshold, with `settings` at the tiles'
    scale (`settings_at_input`); `within` (N, H, W): an area per tile outside which nothing is predicted (the
    annotated region's nuclei); `centres` (N, H, W): the tiles' predicted centre maps, if any."""
    if within is not None:
        probabilities = np.where(np.asarray(within, bool), probabilities, np.float32(0))
    centres = [None] * len(probabilities) if centres is None else centres
    return [label_nuclei(probability, threshold, settings["min_distance_px"], settings["min_area_px"],
                         settings["core_share"], centre)
            for probability, threshold, centre in zip(probabilities, thresholds, centres, strict=True)]


def scaled_settings(settings: dict, factor: float) -> dict[str, float]:
    """The profile's `instances` settings (source-image px) at another scale, `factor` px per source px:
    distances scale with it, areas with its square; the core share has no scale."""
    return {"min_distance_px": settings["min_distance_source_px"] * factor,
            "min_area_px": settings["min_area_source_px"] * factor**2, "core_share": settings["core_share"],
            "sigma_px": settings["classic_sigma_source_px"] * factor}


def settings_at_input(cfg: dict) -> dict[str, float]:
    """The `instances` settings at the network input of prepared tiles (resized from `data.tile_size` to
    `data.input_size`)."""
    return scaled_settings(cfg["instances"], input_scale(cfg["data"]))
