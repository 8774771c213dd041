"""What a cell is and where its boundary lies: one definition for Table I, sampling, metrics, cases and plots.

- A cell (object) is a connected component of a binary mask under 8-connectivity: pixels touching at a corner
  belong to the same object (Table I's objects are Fig. 3's cells).
- A mask's boundary is the set of mask pixels with a 4-neighbour outside the mask. The tile edge is not a
  boundary: a cell cut by the tile continues beyond it.
- The boundary band of width w holds every pixel within w px (Euclidean) of a boundary pixel, on either side.
- Two touching nuclei of an instance label image meet along a contact line: the pixels of either nucleus with an
  8-neighbour of another nonzero label (two pixels wide, one on each side).
- The gap map of an instance label image is the U-Net paper's (Ronneberger et al. 2015, eq. 2, without its class
  balance): exp(-(d1 + d2)^2 / (2 sigma^2)) at each pixel outside the nuclei, d1 and d2 its distances to the nearest
  and second-nearest nucleus; near 1 in the narrow gaps between close nuclei, near 0 in open background.
- The centre map of an instance label image gives each nucleus pixel its distance to the nucleus' own edge (other
  nuclei and background count as outside; the tile edge does not), divided by the nucleus' largest (Naylor et al.
  2019's normalised distance map): 1 at each nucleus' centre, falling towards its edge, so that two touching nuclei
  have two peaks and a valley between them however they touch; 0 outside the nuclei.
- Sizes in source-image pixels convert to the network input by the ratio of input size to tile size (areas by its
  square).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

EIGHT_CONNECTED = np.ones((3, 3), bool)
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)
PIXEL_CLASSES = ("boundary", "interior", "background")


def label_objects(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (8-connectivity): an integer label image (0 = background) and their count."""
    return ndimage.label(np.asarray(mask, bool), structure=EIGHT_CONNECTED)


def object_areas(mask: np.ndarray) -> np.ndarray:
    """Pixel areas of the objects of a binary mask, in label order."""
    labels, count = label_objects(mask)
    return np.bincount(labels.ravel(), minlength=count + 1)[1:]


def centroids(mask: np.ndarray) -> np.ndarray:
    """(row, column) centre of mass of every object, (n, 2)."""
    labels, count = label_objects(mask)
    return np.array(ndimage.center_of_mass(np.asarray(mask, bool), labels, range(1, count + 1))).reshape(-1, 2)


def small_object_mask(mask: np.ndarray, small_px: float) -> np.ndarray:
    """The pixels of the objects smaller than `small_px` px."""
    labels, _ = label_objects(mask)
    areas = np.concatenate([[0], object_areas(mask)])
    return (labels > 0) & (areas[labels] < small_px)


def contact_lines(instances: np.ndarray) -> np.ndarray:
    """The pixels where touching nuclei of an instance label image meet (module docstring): those with an
    8-neighbour of another nonzero label."""
    instances = np.asarray(instances)
    lowest_neighbour = ndimage.minimum_filter(np.where(instances > 0, instances, instances.max() + 1),
                                              footprint=EIGHT_CONNECTED, mode="nearest")
    highest_neighbour = ndimage.maximum_filter(instances, footprint=EIGHT_CONNECTED, mode="nearest")
    return (instances > 0) & ((lowest_neighbour < instances) | (highest_neighbour > instances))


def gap_map(instances: np.ndarray, sigma_px: float) -> np.ndarray:
    """The gap map (module docstring) of an instance label image, float32, 0 inside the nuclei and everywhere when
    fewer than two nuclei are present; `sigma_px` in px of this image."""
    instances = np.asarray(instances)
    labels = np.unique(instances[instances > 0])
    if len(labels) < 2:
        return np.zeros(instances.shape, np.float32)
    distances = np.stack([ndimage.distance_transform_edt(instances != label) for label in labels])
    nearest_two = np.partition(distances, 1, axis=0)[:2].sum(0)
    return np.where(instances > 0, 0, np.exp(-nearest_two**2 / (2 * sigma_px**2))).astype(np.float32)


def centre_map(instances: np.ndarray) -> np.ndarray:
    """The centre map (module docstring) of an instance label image, float32 in [0, 1]."""
    instances = np.asarray(instances)
    out = np.zeros(instances.shape, np.float32)
    for label, box in enumerate(ndimage.find_objects(instances), start=1):
        if box is None:
            continue
        box = tuple(slice(max(0, s.start - 1), min(n, s.stop + 1)) for s, n in zip(box, instances.shape, strict=True))
        inside = instances[box] == label  # one pixel of margin: the nucleus' edge is outside it, but not the tile's
        distance = ndimage.distance_transform_edt(inside) if not inside.all() else np.ones(inside.shape)
        out[box][inside] = distance[inside] / distance[inside].max()
    return out


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a 4-neighbour outside the mask (the tile edge does not count)."""
    mask = np.asarray(mask, bool)
    return mask & ~ndimage.binary_erosion(mask, structure=FOUR_CONNECTED, border_value=1)


def distance_to_boundary(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) of every pixel to the nearest boundary pixel; infinite without a boundary."""
    edge = mask_boundary(mask)
    if not edge.any():
        return np.full(edge.shape, np.inf)
    return ndimage.distance_transform_edt(~edge)


def boundary_band(mask: np.ndarray, width: float) -> np.ndarray:
    """Pixels within `width` px of the mask's boundary, inside or outside the mask."""
    return distance_to_boundary(mask) <= width


def pixel_classes(mask: np.ndarray, band: float) -> np.ndarray:
    """0 = boundary band (`band` px), 1 = cell interior beyond it, 2 = background beyond it."""
    mask = np.asarray(mask, bool)
    classes = np.where(mask, 1, 2)
    classes[boundary_band(mask, band)] = 0
    return classes


def input_scale(data_cfg: dict[str, Any]) -> float:
    """Network-input px per source-image px (tiles of `tile_size` px resized to `input_size`): lengths in source px
    scale by it, areas by its square."""
    return data_cfg["input_size"] / data_cfg["tile_size"]


def source_area_to_input(area_px: float, data_cfg: dict[str, Any]) -> float:
    """An area in source-image pixels at the network input."""
    return area_px * input_scale(data_cfg) ** 2
