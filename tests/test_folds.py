"""Cross-validation by group: every source image tested exactly once, no image in two splits of a fold."""
import numpy as np
import pandas as pd
import pytest

from lib.data import tiles
from lib.data.tiling import fold_split, group_folds


def _groups(n: int = 58) -> pd.DataFrame:
    return pd.DataFrame({"group": [f"g{i:02d}" for i in range(n)], "label": ["benign"] * 32 + ["malignant"] * (n - 32)})


def test_every_group_is_in_exactly_one_test_fold_and_folds_are_stratified():
    groups = _groups()
    fold_of = group_folds(groups, 5, seed=0)
    assert group_folds(groups, 5, seed=0) == fold_of != group_folds(groups, 5, seed=1)   # deterministic, seeded
    tested = []
    for fold in range(5):
        split = fold_split(groups, fold_of, fold, [599, 130, 100], seed=0)
        tested += [group for group, name in split.items() if name == "test"]
        names = pd.Series(split)
        assert set(names) == {"train", "val", "test"}
        assert abs((names == "val").sum() / (names != "test").sum() - 130 / 729) < 0.05
        benign = groups.set_index("group").label.eq("benign")
        assert abs(benign[names[names == "test"].index].mean() - 32 / 58) < 0.1      # classes in proportion
    assert sorted(tested) == sorted(groups.group)                                     # each exactly once
    with pytest.raises(ValueError, match="cannot fill 70 folds"):
        group_folds(groups, 70, seed=0)


def test_folds_of_prepared_tiles_keep_every_image_in_one_split(tiny_dataset, tiny_config, tmp_path):
    tiny_config["data"]["folds"] = 5
    tile_set = tiles.prepare(tiny_config, tiny_dataset, root=tmp_path / "prepared")
    seen = []
    for fold in range(5):
        splits = pd.Series(tile_set.splits(fold), index=tile_set.table.source)
        assert splits.groupby(level=0).nunique().max() == 1                              # no image in two splits
        seen += sorted(set(tile_set.table.source[tile_set.indices("test", fold)]))
    assert sorted(seen) == sorted(tile_set.table.source.unique())
    with pytest.raises(ValueError, match="fold 5 does not exist"):
        tile_set.indices("test", 5)
    assert np.array_equal(tile_set.indices("test"), np.flatnonzero(tile_set.table.split == "test"))
