"""One definition of a cell and of a boundary, used everywhere."""
import numpy as np

from lib.data import geometry
from lib.data.tiles import _tile_rows
from lib.experiments.cases import case_table
from lib.training.sampling import mask_statistics


def _diagonal_cells() -> np.ndarray:
    mask = np.zeros((32, 32), bool)
    mask[4, 4] = mask[5, 5] = True      # touching at a corner: one cell under 8-connectivity, two under 4
    mask[10:14, 10:14] = True
    mask[20:22, 25:28] = True
    return mask


def test_table1_fig3_and_sampling_count_the_same_cells_on_the_same_mask():
    mask = _diagonal_cells()
    rows, objects = _tile_rows(mask[None], min_cell_pixels=1)
    fig3 = case_table(mask[None], mask[None], np.ones_like(mask)[None], ["t"], [mask.astype(np.int32)])
    assert rows[0]["n_objects"] == len(objects) == int(fig3.cells[0]) == mask_statistics(mask[None]).objects[0] == 3
    assert sorted(geometry.object_areas(mask).tolist()) == [2, 6, 16]


def test_the_tile_edge_is_not_a_boundary():
    mask = np.zeros((8, 8), bool)
    mask[:, :4] = True                   # a cell cut by the tile's left edge
    boundary = geometry.mask_boundary(mask)
    assert boundary[:, 3].all() and not boundary[:, 0].any() and boundary.sum() == 8
    assert not geometry.mask_boundary(np.ones((8, 8), bool)).any()


def test_boundary_band_and_pixel_classes():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    band = geometry.boundary_band(mask, 2)
    assert band[5, 10] and band[7, 10] and not band[8, 10] and band[3, 10] and not band[2, 10]
    classes = geometry.pixel_classes(mask, 2)
    assert classes[10, 10] == 1 and classes[0, 0] == 2 and classes[5, 10] == 0
    assert not geometry.boundary_band(np.zeros((4, 4), bool), 3).any()


def test_small_objects_and_source_areas():
    mask = _diagonal_cells()
    small = geometry.small_object_mask(mask, 7)
    assert small.sum() == 2 + 6 and not small[10:14, 10:14].any()
    assert geometry.source_area_to_input(50, {"tile_size": 256, "input_size": 128}) == 12.5


def test_contact_lines_lie_between_touching_nuclei_only():
    instances = np.zeros((10, 12), np.int32)
    instances[1:6, 1:4], instances[1:6, 4:7] = 1, 2      # two nuclei sharing a vertical border
    instances[1:4, 9:11] = 3                              # alone, two px from its neighbour
    instances[7:9, 1:3], instances[9, 3] = 4, 5           # touching at a corner only
    lines = geometry.contact_lines(instances)
    assert lines[1:6, 3:5].all() and lines[8, 2] and lines[9, 3] and lines.sum() == 10 + 2  # one px on each side
    assert not lines[instances == 3].any() and not lines[7, 1]
    separated = (instances > 0) & ~lines
    assert geometry.label_objects(separated)[1] == 4      # the pair splits, two px apart; the others keep their body
    assert not geometry.contact_lines(np.zeros((4, 4), np.int32)).any()


def test_the_gap_map_is_high_between_close_nuclei_and_nil_inside_and_far_away():
    instances = np.zeros((12, 30), np.int32)
    instances[3:9, 2:8], instances[3:9, 10:16] = 1, 2     # two background columns (8, 9) between them
    instances[3:9, 24:28] = 3                             # eight px from its neighbour
    gaps = geometry.gap_map(instances, sigma_px=2.5)
    assert np.allclose(gaps[5, 8:10], np.exp(-(1 + 2) ** 2 / (2 * 2.5**2)))  # d1 + d2 = 3 px in the gap
    assert not gaps[instances > 0].any()                                      # nuclei keep their own weight
    assert gaps[5, 8] > 10 * gaps[5, 20] and gaps[0, 0] < 1e-3                 # the wide gap and open background: little
    assert not geometry.gap_map(np.where(instances == 1, 1, 0), 2.5).any()    # one nucleus: no gap


def test_the_centre_map_peaks_once_in_each_nucleus_and_dips_where_two_touch():
    instances = np.zeros((12, 24), np.int32)
    instances[2:9, 2:9], instances[2:9, 9:16] = 1, 2      # two 7 x 7 squares sharing an edge
    instances[0:3, 20:24] = 3                             # cut by the tile's top and right edges
    centre = geometry.centre_map(instances)
    assert centre.dtype == np.float32 and not centre[instances == 0].any()
    assert centre[5, 5] == centre[5, 12] == 1 and (centre[instances == 1] == 1).sum() == 1  # one peak each
    assert centre[5, 8] < 0.5 and centre[5, 9] < 0.5                                       # a valley where they touch
    assert centre[0, 23] == 1 and centre[2, 20] < centre[0, 23]   # the tile edge is not the nucleus' edge
