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
# px: above this, component_peaks leaves the search to skimage, whose box-by-box steps hold no full-size temporaries
# (a slide's band); below it (tiles, images), its whole-map filters are faster
FILTERED_PEAKS_MAX_PIXELS = 2**22


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


def component_peaks(relief: np.ndarray, components: np.ndarray, min_distance: int) -> np.ndarray:
    """The markers of `split_relief`: exactly `skimage.feature.peak_local_max(relief, min_distance, labels=components,
    exclude_border=False)` (the same peaks in the same order: by component, then by height), several times faster.

    skimage finds each component's peaks in its own bounding box, a Python step per component, which dominated the
    labelling of tiles holding dozens of nuclei (and training's choice of the nuclei cut, which labels every
    validation tile at every threshold). Here components whose bounding boxes, widened by `min_distance`, do not
    meet share one maximum filter (a footprint over one of them sees nothing of the others, as in skimage, which
    masks the others), so a handful of filters serve a whole tile. As in skimage: candidates are the pixels equal to
    the maximum of their footprint and above the relief's minimum; a component whose every pixel is such a maximum
    (a plateau) gives instead its pixels that a morphological opening removes; candidates are taken by height, ties in
    raster order, and each one kept removes the later ones of its component strictly closer than `min_distance`
    (Chebyshev), a thinning skipped when `min_distance` is 1. A map larger than `FILTERED_PEAKS_MAX_PIXELS` (around
    its components) goes to skimage itself."""
    if not components.any():
        return np.empty((0, 2), dtype=np.intp)
    threshold, size = relief.min(), 2 * min_distance + 1
    # the components' bounding box, widened by the footprint's reach: nothing outside it changes a peak
    window = tuple(slice(max(0, int(lines[0]) - min_distance), int(lines[-1]) + 1 + min_distance) for lines in (
        np.flatnonzero(components.any(axis=1)), np.flatnonzero(components.any(axis=0))))
    relief, components = relief[window], components[window]
    offset = [edge.start for edge in window]
    if relief.size > FILTERED_PEAKS_MAX_PIXELS:
        return peak_local_max(relief, min_distance=min_distance, threshold_abs=threshold, labels=components,
                              exclude_border=False) + offset
    boxes = ndimage.find_objects(components)
    inside = components > 0
    floor = np.finfo(relief.dtype).min  # the relief is a smoothed distance: float
    group = _apart_groups(boxes, min_distance)[components]
    maxima = np.zeros(relief.shape, bool)
    for number in range(group.max() + 1):
        own = group == number
        masked = np.where(own, relief, floor)
        maxima |= own & (masked == ndimage.maximum_filter(masked, size=size, mode="nearest"))
    count = len(boxes) + 1
    plateau = np.bincount(components[maxima], minlength=count) == np.bincount(components[inside], minlength=count)
    candidates = maxima
    if plateau[1:].any():  # the opening of all components is each one's: it acts within 4-neighbours
        candidates = np.where(plateau[components], inside & ~ndimage.binary_opening(inside), maxima)
    candidates = candidates & (relief > threshold)
    found = np.flatnonzero(candidates)
    if not len(found):
        return np.empty((0, 2), dtype=np.intp)
    found = found[np.lexsort((-relief.ravel()[found], components.ravel()[found]))]  # stable: raster order in ties
    coordinates = np.column_stack(np.unravel_index(found, relief.shape)) + offset
    _, starts, counts = np.unique(components.ravel()[found], return_index=True, return_counts=True)
    return np.vstack([_spaced(coordinates[start:start + n], min_distance) for start, n in zip(starts, counts)])


def _apart_groups(boxes: list, min_distance: int) -> np.ndarray:
    """Per component label (index 0: the background, -1), a group number such that no two components of one group
    have bounding boxes within `min_distance` px of each other: a greedy colouring from the top row down, each box
    compared only with the earlier ones that reach down to it (memory linear in the components: a band of a slide
    holds thousands)."""
    labels, edges = zip(*[(label, (box[0].start, box[0].stop, box[1].start, box[1].stop))
                          for label, box in enumerate(boxes, start=1) if box is not None])
    order = np.argsort([top for top, *_ in edges], kind="stable")
    edges = np.array(edges)[order]
    reach = int((edges[:, 1] - edges[:, 0]).max()) + min_distance  # an earlier box starting higher cannot be near
    taken = np.full(len(edges), -1)
    for index, (top, bottom, left, right) in enumerate(edges):
        first = int(np.searchsorted(edges[:, 0], top - reach))
        earlier = edges[first:index]
        near = ((earlier[:, 1] + min_distance > top) & (earlier[:, 0] < bottom + min_distance)
                & (earlier[:, 3] + min_distance > left) & (earlier[:, 2] < right + min_distance))
        used = set(taken[first:index][near].tolist())
        taken[index] = next(n for n in range(len(edges)) if n not in used)
    group = np.full(len(boxes) + 1, -1)
    group[np.array(labels)[order]] = taken
    return group


def _spaced(candidates: np.ndarray, min_distance: int) -> np.ndarray:
    """Greedy thinning of one component's candidates, sorted by height: each kept one removes the later ones
    strictly closer than `min_distance` (Chebyshev); none when `min_distance` is 1 (skimage's rule)."""
    if min_distance <= 1 or len(candidates) < 2:
        return candidates
    kept: list[int] = []
    for index, point in enumerate(candidates):
        if all(np.abs(candidates[k] - point).max() >= min_distance for k in kept):
            kept.append(index)
    return candidates[kept]


def split_relief(flooded: WatershedRelief, min_distance_px: float, min_area_px: float) -> np.ndarray:
    """Labelled nuclei (int32, 0 = background) of a `WatershedRelief` (module docstring, steps 2-4)."""
    mask, components, relief = flooded
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    peaks = component_peaks(relief, components, max(1, int(round(min_distance_px))))
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
