"""Prediction of whole images of any size: overlapping windows, Gaussian blending, a known answer."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import ndimage

from lib import config
from lib.inference.predict import EnsemblePredictor, WindowPredictor, gaussian_weight, predict_image


class DarkIsCell(torch.nn.Module):
    """A 'network' whose answer is known: logits grow as the normalised RGB gets darker."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -20 * x.mean(1, keepdim=True)


class DarkIsCellWithCentres(DarkIsCell):
    """Two outputs, as a model with a centre head has: the dark pixels, and a centre map highest where the darkness
    around a pixel is (a 5 x 5 mean of it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dark = super().forward(x)
        return torch.cat([dark, torch.nn.functional.avg_pool2d(dark, 5, 1, 2, count_include_pad=False)], 1)


class FaintlyDarkIsCell(torch.nn.Module):
    """Another known answer, less sure than `DarkIsCell`: a second run that errs elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1 - 4 * x.mean(1, keepdim=True)


def _discs(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:height, :width]
    mask = np.zeros((height, width), bool)
    for cy, cx in ((20, 30), (75, 140), (130, 60), (40, 190), (140, 185)):
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < 9 ** 2
    image = np.where(mask[..., None], 40, 230).astype(np.uint8).repeat(3, -1)
    return image, mask


def test_a_large_image_of_an_odd_size_is_predicted_whole():
    cfg = config.load_config("smoke")
    cfg["data"].update(tile_size=64, stride=48, input_size=32)
    image, mask = _discs(151, 203)                      # neither a multiple of the window nor of the stride
    probability = predict_image(WindowPredictor(DarkIsCell(), "unet", cfg, torch.device("cpu"), tta=True, bounds={},
                                                batch_size=5), image)
    assert probability.shape == mask.shape and 0 <= probability.min() and probability.max() <= 1
    predicted = probability >= 0.5
    iou = (predicted & mask).sum() / (predicted | mask).sum()
    far = ndimage.distance_transform_edt(~mask) > 2   # no prediction farther than 2 px from a cell
    assert iou > 0.9 and not predicted[far].any()


def test_an_image_smaller_than_a_window_is_padded():
    cfg = config.load_config("smoke")
    cfg["data"].update(tile_size=64, stride=64, input_size=64)
    image, mask = _discs(151, 203)
    small, small_mask = image[:50, :40], mask[:50, :40]
    probability = predict_image(WindowPredictor(DarkIsCell(), "unet", cfg, torch.device("cpu"), tta=False, bounds={}),
                                small)
    assert probability.shape == (50, 40) and np.array_equal(probability >= 0.5, small_mask)


def test_the_blending_weight_peaks_in_the_middle_and_never_vanishes():
    weight = gaussian_weight(64)
    assert weight.max() == 1 and weight.min() > 0 and weight[31:33, 31:33].min() == weight.max()
    assert weight[0, 0] < weight[0, 32] < weight[16, 32] < weight[32, 32]


def test_runs_averaged_give_the_mean_of_their_probabilities_at_any_zoom():
    cfg = config.load_config("smoke")
    cfg["data"].update(tile_size=64, stride=48, input_size=32)
    image, _ = _discs(151, 203)
    members = [WindowPredictor(network, "unet", cfg, torch.device("cpu"), tta=False, bounds={})
               for network in (DarkIsCell(), FaintlyDarkIsCell())]
    for zoom in (1.0, 0.5):
        alone = [predict_image(replace(member, zoom=zoom), image) for member in members]
        assert np.abs(alone[0] - alone[1]).max() > 0.1                      # the runs disagree somewhere
        averaged = predict_image(EnsemblePredictor(tuple(members), zoom=zoom), image)
        assert np.allclose(averaged, (alone[0] + alone[1]) / 2, atol=1e-6)


def test_runs_that_cut_other_windows_are_not_averaged():
    cfg = config.load_config("smoke")
    other = dict(cfg, data=dict(cfg["data"], input_size=cfg["data"]["input_size"] * 2))
    members = tuple(WindowPredictor(DarkIsCell(), "unet", run_cfg, torch.device("cpu"), tta=False, bounds={})
                    for run_cfg in (cfg, other))
    with pytest.raises(ValueError, match="data.input_size"):
        EnsemblePredictor(members)
