"""Input validation: every bad dataset gets a DatasetError that names the file and the problem."""
import numpy as np
import pytest
from PIL import Image

from lib.data.reading import DatasetError, find_pairs, load_pair, read_mask
from lib.files import write_json_atomic
from tests.conftest import write_pair


def test_pairs_are_matched_by_stem_with_labels(tiny_dataset):
    pairs = find_pairs(tiny_dataset)
    assert len(pairs) == 10
    assert {p.label for p in pairs} == {"benign", "malignant"}
    assert all(p.image_path.stem == p.mask_path.stem for p in pairs)


def test_mixed_extensions_match(tmp_path):
    write_pair(tmp_path, "a", image_ext=".tif", mask_ext=".png")
    (pair,) = find_pairs(tmp_path)
    image, mask = load_pair(pair)
    assert image.shape == (96, 128, 3) and mask.dtype == bool and mask.any()


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        find_pairs(tmp_path / "nowhere")


def test_missing_masks_folder(tmp_path):
    write_pair(tmp_path, "a")
    for f in (tmp_path / "masks").iterdir():
        f.unlink()
    (tmp_path / "masks").rmdir()
    with pytest.raises(DatasetError, match="no masks/ folder"):
        find_pairs(tmp_path)


def test_image_without_mask_names_the_file(tiny_dataset):
    (tiny_dataset / "masks" / "core0_malignant0.png").unlink()
    with pytest.raises(DatasetError, match=r"1 image\(s\) without a mask.*core0_malignant0.png"):
        find_pairs(tiny_dataset)


def test_mask_without_image_names_the_file(tiny_dataset):
    (tiny_dataset / "images" / "core3_benign3.png").unlink()
    with pytest.raises(DatasetError, match=r"mask\(s\) without an image.*core3_benign3.png"):
        find_pairs(tiny_dataset)


def test_empty_images_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        find_pairs(tmp_path)


def test_size_mismatch(tmp_path):
    write_pair(tmp_path, "a")
    Image.fromarray(np.zeros((50, 60), np.uint8)).save(tmp_path / "masks" / "a.png")
    with pytest.raises(DatasetError, match=r"size mismatch for 'a'.*128x96.*60x50"):
        load_pair(find_pairs(tmp_path)[0])


@pytest.mark.parametrize("values", [(0, 128, 255), (0, 1, 2), (0, 1, 255)])
def test_non_binary_mask(tmp_path, values):
    Image.fromarray(np.array([values] * 3, np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(DatasetError, match=r"m.png is not a binary mask"):
        read_mask(tmp_path / "m.png")


@pytest.mark.parametrize("values", [(0, 1), (0, 255), (0,), (255,)])
def test_binary_masks_accepted(tmp_path, values):
    Image.fromarray(np.array([values] * 3, np.uint8)).save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png").sum() == 3 * sum(v > 0 for v in values)


def test_colour_mask_rejected(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "m.png")
    with pytest.raises(DatasetError, match="colour mask"):
        read_mask(tmp_path / "m.png")


def test_unreadable_file(tmp_path):
    write_pair(tmp_path, "a")
    (tmp_path / "images" / "a.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"a.png cannot be read as an image"):
        load_pair(find_pairs(tmp_path)[0])


def test_atomic_json_leaves_no_temporary_file(tmp_path):
    write_json_atomic(tmp_path / "x" / "a.json", {"b": 1})
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["a.json"]
