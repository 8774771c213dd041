"""Images larger than memory: streamed band by band, the same nuclei as the image predicted whole, none
duplicated or cut at a band's border, and outputs that describe the same nuclei."""
import json

import numpy as np
import pytest
import tifffile
import torch
from shapely.geometry import shape

from lib import config
from lib.data.reading import DatasetError
from lib.inference.instances import label_nuclei
from lib.inference.predict import WindowPredictor, predict_image, predict_maps
from lib.inference.slides import SlideReader, stream_nuclei, write_streamed_nuclei
from tests.test_predict import DarkIsCell, DarkIsCellWithCentres


def nuclei_image(height, width, seed=0):
    """Dark discs (nuclei, radius 5-9 px, some touching) on pale tissue, with a band of blank glass."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    mask = np.zeros((height, width), bool)
    for _ in range(height * width // 900):
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(5, 10)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
    image = np.where(mask[..., None], 60, 200).astype(np.uint8).repeat(3, -1)
    image[:, width - 100:] = 245  # glass: its windows are not predicted
    image[:, width - 100:][mask[:, width - 100:]] = 245
    return image


def predictor(min_tissue_share=0.0, centre_head=False):
    cfg = config.load_config("smoke")
    cfg["data"].update(tile_size=64, stride=48, input_size=32)
    cfg["model"].update(centre_head=centre_head, input_variant="drop")  # the Enhanced model on RGB: no edge bounds
    return WindowPredictor(DarkIsCellWithCentres() if centre_head else DarkIsCell(), "enhanced", cfg,
                           torch.device("cpu"), tta=False, bounds={}, batch_size=16, min_tissue_share=min_tissue_share,
                           glass_gray=0.9)


def assemble(bands, height, width):
    labels, tables = np.zeros((height, width), np.int32), []
    for band in bands:
        labels[band.top:band.top + len(band.labels)] = band.labels
        tables.append(band.nuclei)
    return labels, tables


def matched(a, b):
    """For each nucleus of `a`, the nucleus of `b` sharing most of its pixels, and their IoU."""
    both = (a > 0) & (b > 0)
    overlap = np.zeros((a.max() + 1, b.max() + 1), np.int64)
    np.add.at(overlap, (a[both], b[both]), 1)
    best = overlap[1:].argmax(1)
    sizes_a, sizes_b = np.bincount(a.ravel())[1:], np.bincount(b.ravel(), minlength=b.max() + 1)
    shared = overlap[1:][np.arange(len(best)), best]
    return best, shared / (sizes_a + sizes_b[best] - shared)


@pytest.mark.parametrize("centre_head", [False, True])
def test_streamed_bands_give_the_nuclei_of_the_whole_image_once_and_whole(centre_head):
    image = nuclei_image(1100, 700)
    maps = predict_maps(predictor(centre_head=centre_head), image)
    assert maps.shape == (*image.shape[:2], 1 + centre_head)
    whole = label_nuclei(maps[..., 0], 0.5, 6, 20, centre=maps[..., 1] if centre_head else None)
    bands = stream_nuclei(predictor(centre_head=centre_head), *image.shape[:2], lambda top, bottom: image[top:bottom],
                          0.5, 6, 20, band_rows=256, margin=40)
    streamed, tables = assemble(bands, *image.shape[:2])
    assert len(tables) >= 4                                    # several bands, so several borders were crossed
    assert np.array_equal(whole > 0, streamed > 0)             # the same nuclei pixels
    # one to one, each the same object: nothing duplicated, nothing cut (touching nuclei may trade a pixel
    # column on their watershed line, where the flooding's ties break in another order)
    best, iou = matched(whole, streamed)
    assert streamed.max() == whole.max() == len(set(best)) and iou.min() > 0.8
    ids = np.concatenate([table["id"].to_numpy() for table in tables])
    assert sorted(ids) == list(range(1, streamed.max() + 1))


class Counting(DarkIsCell):
    windows = 0

    def forward(self, x):
        Counting.windows += len(x)
        return super().forward(x)


def test_glass_windows_are_skipped_and_give_no_nuclei():
    image = nuclei_image(300, 400)
    counts = []
    for share in (0.0, 0.05):
        Counting.windows = 0
        skipping = predictor(min_tissue_share=share)
        skipping.model = Counting()
        probability = predict_image(skipping, image)
        counts.append(Counting.windows)
    assert counts[1] < counts[0] and probability[:, -60:].max() < 1e-6 and probability[:, :250].max() > 0.9


def test_the_written_tiff_geojson_and_table_agree(tmp_path):
    image = nuclei_image(600, 500, seed=1)
    bands = stream_nuclei(predictor(), *image.shape[:2], lambda top, bottom: image[top:bottom], 0.5, 6, 20,
                          band_rows=256, margin=40)
    areas = write_streamed_nuclei(tmp_path, "big", bands, *image.shape[:2])
    labels = tifffile.imread(tmp_path / "big_labels.tif")
    assert labels.shape == image.shape[:2] and labels.dtype == np.int32
    features = json.loads((tmp_path / "big_nuclei.geojson").read_text())["features"]
    assert len(features) == len(areas) == labels.max() == len(np.unique(labels)) - 1
    for feature in features[::7]:
        nucleus = int(feature["id"])
        ys, xs = np.nonzero(labels == nucleus)
        polygon = shape(feature["geometry"])
        assert polygon.is_valid and polygon.contains(shape({"type": "Point", "coordinates": [xs.mean(), ys.mean()]}))
        assert abs(polygon.area - len(ys)) < 0.5 * np.sqrt(len(ys)) * 4  # the outline through boundary-pixel centres
    assert not list(tmp_path.glob(".*tmp"))


def test_a_tiled_tiff_is_read_by_rows_and_an_unreadable_one_named(tmp_path):
    image = nuclei_image(300, 260)
    tifffile.imwrite(tmp_path / "slide.tif", image, tile=(128, 128), compression="zlib")
    reader = SlideReader(tmp_path / "slide.tif")
    assert (reader.height, reader.width) == (300, 260) and np.array_equal(reader.rows(100, 164), image[100:164])
    (tmp_path / "broken.tif").write_bytes(b"II*\x00 not a tiff")
    with pytest.raises(DatasetError, match="broken.tif cannot be read"):
        SlideReader(tmp_path / "broken.tif")
