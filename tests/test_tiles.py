"""Preparing tiles: layout on disk, split without leakage, caching and atomic writes."""
import numpy as np
import pytest

from lib import tiles
from lib.io import DatasetError
from tests.conftest import UCSB, write_pair


def test_prepare_writes_tiles_split_and_arrays(tiny_dataset, tiny_config, tmp_path):
    tile_set = tiles.prepare(tiny_config, tiny_dataset, root=tmp_path / "prepared")
    table = tile_set.table
    assert len(table) == 10 * 6  # 96x128 with 64-px tiles every 32 px: 2 rows x 3 columns
    assert tile_set.images.shape == (60, 32, 32, 3) and tile_set.images.dtype == np.uint8
    assert tile_set.masks.shape == (60, 32, 32) and set(np.unique(tile_set.masks)) <= {0, 1}
    assert table.groupby("source").split.nunique().max() == 1  # no source image in two splits
    assert table.drop_duplicates("source").split.value_counts().to_dict() == {"train": 6, "val": 2, "test": 2}
    assert {"tile_id", "source", "label", "y", "x", "split", "cell_pixels", "has_cells"} <= set(table.columns)
    assert (table.cell_pixels <= table.region_pixels).all()  # every annotated pixel lies in the region
    assert (tile_set.root / "tiles.csv").is_file() and (tile_set.root / "objects.csv").is_file()


def test_prepare_reuses_the_cache_and_leaves_no_temporary_folders(tiny_dataset, tiny_config, tmp_path):
    first = tiles.prepare(tiny_config, tiny_dataset, root=tmp_path / "prepared")
    stamp = (first.root / "meta.json").stat().st_mtime_ns
    second = tiles.prepare(tiny_config, tiny_dataset, root=tmp_path / "prepared")
    assert second.root == first.root and (second.root / "meta.json").stat().st_mtime_ns == stamp
    assert [p.name for p in first.root.parent.iterdir()] == [first.root.name]


def test_changed_data_or_config_gets_a_new_preparation(tiny_dataset, tiny_config, tmp_path):
    key = tiles.preparation_key(tiny_config, tiny_dataset)
    write_pair(tiny_dataset, "core0_malignant0", seed=99)  # same name, new pixels
    assert tiles.preparation_key(tiny_config, tiny_dataset) != key
    tiny_config["seed"] = 1
    assert tiles.preparation_key(tiny_config, tiny_dataset) != key


def test_leaky_protocol_is_explicit(tiny_dataset, tiny_config, tmp_path):
    tiny_config["data"]["split_protocol"] = "random_tile_leaky"
    table = tiles.prepare(tiny_config, tiny_dataset, root=tmp_path / "prepared").table
    assert table.groupby("source").split.nunique().max() > 1
    tiny_config["data"]["split_protocol"] = "by_magic"
    with pytest.raises(DatasetError, match="unknown split_protocol 'by_magic'"):
        tiles.prepare(tiny_config, tiny_dataset, root=tmp_path / "prepared")


def test_too_few_sources_for_a_group_split(tmp_path, tiny_config):
    for i in range(2):
        write_pair(tmp_path / "two", f"s{i}", seed=i)
    with pytest.raises(DatasetError, match="2 source image.*cannot fill train, val and test"):
        tiles.prepare(tiny_config, tmp_path / "two", root=tmp_path / "prepared")
    assert not (tmp_path / "prepared" / "two").exists() or not any((tmp_path / "prepared" / "two").iterdir())


def test_a_zero_proportion_still_gets_a_tile(tiny_dataset, tiny_config, tmp_path):
    tiny_config["data"]["split_proportions"] = [1, 1, 0]
    tiny_config["data"]["split_protocol"] = "random_tile_leaky"
    tiny_config["data"]["tile_size"] = 96  # 2 tiles per image, 20 in all: 10/10/0 would leave test empty
    table = tiles.prepare(tiny_config, tiny_dataset, root=tmp_path / "prepared").table
    assert (table.split == "test").sum() >= 1  # split_counts refills an empty split from the largest


def test_empty_split_is_an_error(tmp_path, tiny_config):
    write_pair(tmp_path / "one", "only", size=(64, 64))
    tiny_config["data"]["split_protocol"] = "random_tile_leaky"  # one tile cannot fill three splits
    with pytest.raises(DatasetError, match="split 'val' of dataset 'one' is empty"):
        tiles.prepare(tiny_config, tmp_path / "one", root=tmp_path / "prepared")


def test_image_smaller_than_a_tile(tiny_dataset, tiny_config, tmp_path):
    tiny_config["data"]["tile_size"] = 200
    with pytest.raises(DatasetError, match="smaller than the tile size 200"):
        tiles.prepare(tiny_config, tiny_dataset, root=tmp_path / "prepared")


@pytest.mark.slow
@pytest.mark.skipif(not UCSB.is_dir(), reason="the UCSB dataset is not beside the checkout (../shared/data)")
def test_ucsb_group_split(tmp_path):
    from lib import config
    tile_set = tiles.prepare(config.load_config("smoke"), UCSB, root=tmp_path)
    table = tile_set.table
    assert table.source.nunique() == 58 and len(table) == 58 * 12
    assert table.groupby("source").split.nunique().max() == 1
    per_split = table.drop_duplicates("source").groupby(["split", "label"]).size()
    assert per_split.to_dict() == {("test", "benign"): 4, ("test", "malignant"): 3, ("train", "benign"): 23,
                                   ("train", "malignant"): 19, ("val", "benign"): 5, ("val", "malignant"): 4}
    assert 0.2 < table.has_cells.mean() < 0.45
