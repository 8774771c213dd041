"""Tiling, annotated regions and splits."""
import numpy as np
import pandas as pd
import pytest

from lib.data.geometry import object_areas
from lib.data.tiling import (
    annotated_region,
    group_labels,
    group_of,
    group_split,
    slide_of,
    split_counts,
    tile_grid,
    tile_origins,
)


def test_tile_origins_cover_the_image_and_snap_to_the_edge():
    assert tile_origins(896, 256, 256) == [0, 256, 512, 640]
    assert tile_origins(768, 256, 256) == [0, 256, 512]
    assert tile_origins(768, 512, 128) == [0, 128, 256]
    assert len(tile_grid(768, 896, 256, 256)) == 12
    with pytest.raises(ValueError, match="larger than the image"):
        tile_origins(100, 128, 64)


def test_split_counts_sum_and_never_empty():
    assert split_counts(829, [599, 130, 100]) == [599, 130, 100]
    assert split_counts(58, [599, 130, 100]) == [42, 9, 7]
    assert split_counts(3, [599, 130, 100]) == [1, 1, 1]
    for n in range(3, 40):
        counts = split_counts(n, [0.7, 0.2, 0.1])
        assert sum(counts) == n and min(counts) >= 1


def test_group_split_is_stratified_deterministic_and_seeded():
    groups = pd.DataFrame({"group": [f"g{i}" for i in range(58)], "label": ["benign"] * 32 + ["malignant"] * 26})
    split = group_split(groups, [599, 130, 100], seed=0)
    assert split == group_split(groups, [599, 130, 100], seed=0)
    assert split != group_split(groups, [599, 130, 100], seed=1)
    table = groups.assign(split=groups.group.map(split))
    counts = table.groupby(["split", "label"]).size()
    assert table.split.value_counts().to_dict() == {"train": 42, "val": 9, "test": 7}
    for part in ("train", "val", "test"):  # each split within one source image of the class balance
        expected = table.split.eq(part).sum() * 32 / 58
        assert abs(counts[part, "benign"] - expected) <= 1


def test_slides_group_images_and_unmatched_stems_stand_alone():
    pattern = "^([^_]+_[^_]+)_"
    assert slide_of("ytma49_042403_benign1", pattern) == "ytma49_042403"
    assert slide_of("synthetic_0001", pattern) == "synthetic_0001"  # no match: its own slide
    stems = pd.Series(["ytma10_010704_benign1", "ytma10_010704_malignant1", "ytma12_010804_benign2"])
    data_cfg = {"group_by": "slide", "slide_pattern": pattern}
    assert group_of(stems, data_cfg).tolist() == ["ytma10_010704", "ytma10_010704", "ytma12_010804"]
    assert group_of(stems, dict(data_cfg, group_by="image")).equals(stems)
    labels = group_labels(group_of(stems, data_cfg), pd.Series(["benign", "malignant", "benign"]))
    assert labels.set_index("group").label.to_dict() == {"ytma10_010704": "mixed", "ytma12_010804": "benign"}
    with pytest.raises(ValueError, match="unknown data.group_by 'patient'"):
        group_of(stems, dict(data_cfg, group_by="patient"))


def test_annotated_region_holds_the_cells_and_their_hull():
    mask = np.zeros((64, 64), bool)
    mask[10:14, 10:14] = mask[40:44, 40:44] = True
    region = annotated_region(mask, dilation=3)
    assert region[mask].all()
    assert region[25, 25]  # between the two cells: inside the convex hull
    assert not region[5, 60] and not region[60, 5]
    assert region.sum() > annotated_region(mask, dilation=0).sum()
    assert not annotated_region(np.zeros((8, 8), bool), 3).any()


def test_object_areas_use_8_connectivity():
    mask = np.zeros((10, 10), bool)
    mask[1, 1] = mask[2, 2] = True  # diagonal neighbours: one object
    mask[6:8, 6:9] = True
    assert sorted(object_areas(mask).tolist()) == [2, 6]
