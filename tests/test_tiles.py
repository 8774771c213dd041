"""Preparing tiles: layout on disk, split without leakage, caching and atomic writes."""
import numpy as np
import pytest

from lib.data import tiles
from lib.data.reading import DatasetError
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
    # true nuclei: the mask's connected components, resized with the mask, their union the mask
    assert np.array_equal(np.asarray(tile_set.instances) > 0, np.asarray(tile_set.masks) > 0)
    per_tile = [len(np.unique(labels)) - 1 for labels in tile_set.instances]
    assert max(per_tile) >= 1 and sum(per_tile) >= tile_set.table.n_objects.sum() * 0.9


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


def test_grouping_by_slide_keeps_a_slide_in_one_split(tmp_path, tiny_config):
    for slide in range(5):
        for i in range(2):
            write_pair(tmp_path / "slides", f"tma{slide}_01_{'benign' if i else 'malignant'}{i}", seed=slide * 2 + i)
    tiny_config["data"].update(group_by="slide", split_proportions=[3, 1, 1])
    table = tiles.prepare(tiny_config, tmp_path / "slides", root=tmp_path / "prepared").table
    assert table.slide.nunique() == 5 and (table.group == table.slide).all()
    assert table.groupby("slide").split.nunique().max() == 1
    assert table.drop_duplicates("slide").split.value_counts().to_dict() == {"train": 3, "val": 1, "test": 1}


def test_too_few_groups_for_a_split(tmp_path, tiny_config):
    for i in range(2):
        write_pair(tmp_path / "two", f"s{i}", seed=i)
    with pytest.raises(DatasetError, match=r"2 group\(s\) of source images \(data.group_by: image\) cannot fill"):
        tiles.prepare(tiny_config, tmp_path / "two", root=tmp_path / "prepared")
    assert not (tmp_path / "prepared" / "two").exists() or not any((tmp_path / "prepared" / "two").iterdir())


def test_a_zero_proportion_still_gets_a_group(tiny_dataset, tiny_config, tmp_path):
    tiny_config["data"]["split_proportions"] = [1, 1, 0]  # 5/5/0 of the images would leave test empty
    table = tiles.prepare(tiny_config, tiny_dataset, root=tmp_path / "prepared").table
    assert table.drop_duplicates("source").split.value_counts()["test"] >= 1  # refilled from the largest


def test_a_dataset_without_any_cell_is_refused(tmp_path, tiny_config):
    from PIL import Image
    for i in range(4):
        write_pair(tmp_path / "empty", f"s{i}", seed=i)
        Image.fromarray(np.zeros((96, 128), np.uint8)).save(tmp_path / "empty" / "masks" / f"s{i}.png")
    with pytest.raises(DatasetError, match=r"empty/masks: no mask holds a single foreground pixel"):
        tiles.prepare(tiny_config, tmp_path / "empty", root=tmp_path / "prepared")


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
