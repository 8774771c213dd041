"""Complexity weights from mask statistics."""
import numpy as np
import pytest

from lib.training.sampling import complexity_weights


def test_weights_rank_complex_tiles_higher_and_boost_small_objects():
    masks = np.zeros((4, 32, 32), bool)
    masks[1, 4:20, 4:20] = True                       # one large object
    for y in range(2, 30, 7):                          # many medium objects
        masks[2, y:y + 4, 2:6] = masks[2, y:y + 4, 20:24] = True
    masks[3, 5:20, 5:20] = True
    masks[3, 28, 28] = True                           # a large object and a 1-px one
    table = complexity_weights(masks, small_object_px=10, small_object_weight=1.5)
    assert table.weight[0] == 1.0                      # no cells
    assert table.weight[2] > table.weight[1]           # more objects, more boundary, smaller objects
    assert table.has_small_object.tolist() == [False, False, False, True]
    ranks = table.loc[3, ["rank_objects", "rank_boundary", "rank_smallness"]].mean()
    assert table.weight[3] == pytest.approx(1.5 * (1 + ranks))
    assert table.objects.tolist() == [0, 1, 8, 2]
    assert (table.weight <= 3.0).all() and (table.weight >= 1.0).all()
