"""The Gabor bank: kernels as OpenCV builds them, three implementations that agree, equivariance, caching."""
import cv2
import numpy as np
import pytest
import torch

from lib import config
from lib.data import synthetic, tiles
from lib.edges import gabor
from tests.conftest import UCSB

CFG = config.load_config("smoke")["gabor"]


def _normalised(responses: np.ndarray) -> np.ndarray:
    return gabor.normalise(responses.max(0))


def test_bank_is_24_kernels_in_wavelength_major_order():
    bank = gabor.gabor_bank(CFG)
    assert bank.shape == (24, 61, 61)
    assert gabor.orientations_deg(8).tolist() == [0, 22.5, 45, 67.5, 90, 112.5, 135, 157.5]
    expected = gabor.gabor_kernel(61, 5.0, np.deg2rad(67.5), 10, 0.5, 0.0)
    assert np.array_equal(bank[1 * 8 + 3], expected)


@pytest.mark.parametrize("theta", [0.0, 22.5, 90.0, 157.5])
@pytest.mark.parametrize("wavelength", [4, 10, 20])
@pytest.mark.parametrize("psi", [0.0, np.pi / 2])
def test_kernels_match_cv2_getGaborKernel(theta, wavelength, psi):
    ours = gabor.gabor_kernel(61, 5.0, np.deg2rad(theta), wavelength, 0.5, psi)
    theirs = cv2.getGaborKernel((61, 61), 5.0, np.deg2rad(theta), wavelength, 0.5, psi, ktype=cv2.CV_64F)
    # OpenCV stores G(-x, -y) at (x, y): the same kernel rotated by 180 degrees (identical when psi = 0).
    np.testing.assert_allclose(ours, theirs[::-1, ::-1], atol=1e-12)


def test_even_kernel_size_is_rejected():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        gabor.gabor_bank(dict(CFG, kernel_size=60))


def _real_tiles() -> list[np.ndarray]:
    plans = synthetic.plan_tiles([10, 3, 3], 0.4, [0.044, 0.043, 0.045], 0)
    found = [synthetic.render_tile(next(p for p in plans if p.cell_share > 0), 192, 0, 1.5)[0]]
    if UCSB.is_dir():
        from lib.data.reading import read_image
        found.append(read_image(sorted((UCSB / "images").iterdir())[0])[100:292, 200:456])
    return found


@pytest.mark.parametrize("source", ["random", "tile"])
def test_fft_and_torch_agree_with_the_opencv_reference(source):
    bank = gabor.gabor_bank(CFG)
    images = ([np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)]
              if source == "random" else _real_tiles())
    for image in images:
        gray = gabor.to_gray(image, "luminance")
        reference = gabor.responses_opencv(gray, bank)
        fft = gabor.responses_fft(gray, bank)
        with torch.no_grad():
            batched = gabor.responses_torch(torch.from_numpy(np.stack([gray, gray]))[:, None], bank).numpy()
        assert fft.shape == reference.shape == batched[0].shape
        np.testing.assert_allclose(_normalised(fft), _normalised(reference), atol=1e-4)
        np.testing.assert_allclose(_normalised(batched[1]), _normalised(reference), atol=1e-4)
        for implementation in gabor.IMPLEMENTATIONS:
            edge = gabor.normalise(gabor.raw_edge_map(image, dict(CFG, implementation=implementation)))
            np.testing.assert_allclose(edge, _normalised(reference), atol=1e-4)


def test_edge_map_is_equivariant_to_flips_and_right_angles():
    """The bank holds t and 180 - t and t + 90, so flipping or rotating the tile flips or rotates the map:
    this is why augmentation may transform the cached channel instead of recomputing it."""
    image = _real_tiles()[0]
    edge = gabor.raw_edge_map(image, CFG)
    np.testing.assert_allclose(gabor.raw_edge_map(image[:, ::-1], CFG), edge[:, ::-1], atol=1e-3)
    np.testing.assert_allclose(gabor.raw_edge_map(image[::-1], CFG), edge[::-1], atol=1e-3)
    np.testing.assert_allclose(gabor.raw_edge_map(np.rot90(image), CFG), np.rot90(edge), atol=1e-3)


def test_hematoxylin_grayscale_keeps_nuclei_dark():
    image = _real_tiles()[0]
    luminance, hema = gabor.to_gray(image, "luminance"), gabor.to_gray(image, "hematoxylin")
    assert hema.shape == luminance.shape and 0 <= hema.min() and hema.max() <= 1
    assert np.corrcoef(luminance.ravel(), hema.ravel())[0, 1] > 0.3
    with pytest.raises(ValueError, match="unknown gabor.grayscale 'hsv'"):
        gabor.to_gray(image, "hsv")


def test_normalisation_per_image_and_per_dataset():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
    images[3] //= 4  # a dark, low-contrast tile
    per_image, bounds = gabor.edge_maps(images, CFG, progress=False)
    assert bounds == {} and np.allclose(per_image.min((1, 2)), 0) and np.allclose(per_image.max((1, 2)), 1)
    per_dataset, bounds = gabor.edge_maps(images, dict(CFG, normalisation="per_dataset"), np.array([0, 1]),
                                          progress=False)
    assert bounds["low"] < bounds["high"] and per_dataset.min() >= 0 and per_dataset.max() <= 1
    assert per_dataset[3].max() < per_dataset[0].max()  # contrast between tiles is kept


def test_edge_maps_are_cached_and_keyed_by_parameters_and_pixels(tiny_dataset, tiny_config, tmp_path, monkeypatch):
    tile_set = tiles.prepare(tiny_config, tiny_dataset, root=tmp_path / "prepared")
    first, bounds = gabor.cached_edge_maps(tile_set, CFG)
    assert first.shape == tile_set.masks.shape and first.dtype == np.float16 and bounds == {}
    calls = []
    monkeypatch.setattr(gabor, "edge_maps", lambda *a, **k: calls.append(1))
    again, _ = gabor.cached_edge_maps(tile_set, dict(CFG, implementation="torch"))  # same maps, any implementation
    assert np.array_equal(first, again) and calls == []
    assert gabor.cache_key(CFG, tile_set.root / "images.npy") != gabor.cache_key(dict(CFG, sigma=4.0),
                                                                                 tile_set.root / "images.npy")


def test_pixel_classes_and_boundary_auc_on_a_disc():
    from lib.data.geometry import pixel_classes
    yy, xx = np.mgrid[0:40, 0:40]
    mask = (yy - 20) ** 2 + (xx - 20) ** 2 < 10 ** 2
    classes = pixel_classes(mask, band=2)
    assert classes[20, 20] == 1 and classes[0, 0] == 2 and classes[20, 10] == 0 and classes[20, 9] == 0
    assert classes[20, 7] == 2  # 3 px outside the edge: background
    assert set(np.unique(classes[mask])) == {0, 1}
