"""The model ladder: every model builds and trains a step, the parts each paper names are there, and the
pieces written here (losses, CRF, MC-Dropout) behave as documented."""
import functools
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from lib import config
from lib.data import tiles
from lib.inference.crf import dense_crf
from lib.models import MODEL_NAMES, MODELS, build_model, input_channels
from lib.report.ladder_plots import dice_distributions
from lib.training import active_learning, train
from lib.training.losses import LOSSES, boundary_loss, hausdorff_loss, loss_function, signed_distance
from lib.training.recipe import steps_per_epoch

SMOKE = config.load_config("smoke")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_runs_forward_and_backward(name):
    model, weights = build_model(name, SMOKE)
    assert isinstance(weights, str) and weights
    x = torch.randn(2, input_channels(name, SMOKE), 64, 64)
    out = model(x)
    assert out.shape == (2, 1, 64, 64)
    loss = loss_function("dice")(out, (x[:, :1] > 0).float(), None, None)
    loss.backward()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].weight.grad.abs().sum() > 0 and convs[-1].weight.grad.abs().sum() > 0  # input to output


def _count(model, type_name: str) -> int:
    return sum(type(m).__name__ == type_name for m in model.modules())


def test_each_model_has_what_its_paper_names():
    depth = SMOKE["ladder"]["depth"]
    build = {name: build_model(name, SMOKE)[0] for name in MODEL_NAMES if name != "enhanced"}
    assert _count(build["unet"], "AttentionGate") == 0 and _count(build["unet"], "SEModule") == 0
    assert _count(build["attention_unet"], "AttentionGate") == depth          # spatial, on every skip
    assert _count(build["attention_unet"], "SEModule") == depth               # channel, after every decoder level
    assert _count(build["attention_unet_al"], "Dropout2d") > 0
    assert _count(build["multiscale_attention_unet"], "ASPP") == 1
    assert MODELS["multiscale_attention_unet"].crf and MODELS["multiscale_attention_unet"].patch_sampling
    fgfeu = build["fgfeu_net"]
    assert sum(isinstance(m, torch.nn.Conv2d) for m in fgfeu.stages.modules()) == 10  # VGG16's first ten convs
    assert fgfeu.encoder_dropout.p == 0.07 and _count(fgfeu.blocks, "Dropout2d") == 3
    unext = build["pro_unext"]
    assert _count(unext, "EdgeResidual") == 4 and _count(unext, "ShiftedMLP") == 2
    first = unext.encoder[0](torch.zeros(1, 3, 32, 32))
    assert first.shape[-2:] == (32, 32) and first.shape[1] == SMOKE["ladder"]["first_block_channels"]
    assert MODELS["pro_unext"].finetune_loss == "focal_dice_hausdorff"


def test_signed_distance_by_hand():
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    sd = signed_distance(mask) * 8
    assert sd[2, 2] == 0 and sd[3, 3] == -1 and sd[1, 2] == 1 and sd[0, 2] == 2
    assert np.all(signed_distance(np.zeros((4, 4), bool)) == 1.0)  # no cell: every pixel is far outside


def test_boundary_and_hausdorff_losses_reward_the_right_answer():
    target = torch.zeros(1, 1, 16, 16)
    target[..., 4:12, 4:12] = 1
    distance = torch.from_numpy(signed_distance(target[0, 0].numpy().astype(bool)))[None, None]
    right, wrong = (target * 2 - 1) * 8, -(target * 2 - 1) * 8
    assert boundary_loss(right, distance) < 0 < boundary_loss(wrong, distance)
    assert hausdorff_loss(right, target, distance) < 1e-3 < hausdorff_loss(wrong, target, distance)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_is_finite_with_gradients(name):
    logits = (torch.randn(2, 1, 16, 16) * 20).requires_grad_()
    target = (torch.rand(2, 1, 16, 16) > 0.8).float()
    target[1] = 0  # an empty tile
    distance = torch.from_numpy(np.stack([signed_distance(t[0].numpy().astype(bool)) for t in target]))[:, None]
    loss = loss_function(name)(logits, target, distance, None)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="unknown loss 'l7'"):
        loss_function("l7")


def test_crf_removes_an_isolated_false_pixel_and_keeps_a_cell():
    image = torch.zeros(1, 3, 32, 32)
    image[..., 8:20, 8:20] = 1.0               # a bright cell
    probabilities = torch.full((1, 1, 32, 32), 0.05)
    probabilities[..., 8:20, 8:20] = 0.9
    probabilities[..., 26, 26] = 0.9           # one confident pixel on plain background
    refined = dense_crf(probabilities, image)
    assert refined[0, 0, 26, 26] < 0.5 and (refined[0, 0, 9:19, 9:19] > 0.5).all()
    assert (refined[0, 0, :4, :4] < 0.5).all()


def test_active_learning_splits_the_epochs_over_its_rounds():
    assert active_learning.round_epochs(8, 3) == [3, 3, 2] and active_learning.round_epochs(3, 3) == [1, 1, 1]
    assert sum(active_learning.round_epochs(200, 3)) == 200


def test_mc_dropout_variance_needs_dropout_and_shares_add_up():
    dataset = [(torch.randn(3, 16, 16), torch.zeros(1, 16, 16)) for _ in range(3)]
    with_dropout = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Dropout2d(0.5),
                                       torch.nn.Conv2d(8, 1, 1))
    variance = active_learning.mc_dropout_variance(with_dropout, dataset, torch.device("cpu"), 6, seed=0)
    assert variance.shape == (3, 16, 16) and variance.mean() > 0
    assert not with_dropout[1].training  # left in eval mode
    plain = torch.nn.Conv2d(3, 1, 1)
    assert active_learning.mc_dropout_variance(plain, dataset, torch.device("cpu"), 6, seed=0).max() == 0
    masks = np.zeros((3, 16, 16), bool)
    masks[:, 4:10, 4:10] = True
    shares = active_learning.uncertainty_shares(variance, masks)
    assert np.allclose(shares.sum(axis=1), 1.0) and list(shares.columns) == [
        "share_boundary", "share_interior", "share_background"]


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "enhanced"])
def test_every_ladder_model_trains_end_to_end(name, tiny_dataset, tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(tiles, "prepare", functools.partial(tiles.prepare, root=tmp_path / "prepared"))
    tiny_config["train"].update(epochs=3, max_train_tiles=None, max_eval_tiles=None)
    tiny_config["ladder"].update(finetune_epochs=1, al_rounds=2)
    run = train.train(tiny_config, tiny_dataset, name, seed=0, root=tmp_path / "results", progress=False)
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["test"]["whole_tile"]["pooled"]["dice"] <= 1
    # every rung, active learning included, takes the same optimiser steps
    assert metrics["optimizer_steps"] == 3 * steps_per_epoch(metrics["n_tiles"]["train"], tiny_config["train"])
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 3 and history.selected.any()
    if name == "attention_unet_al":
        rounds = pd.read_csv(run / "al_rounds.csv")
        assert rounds.labelled_tiles.is_monotonic_increasing and len(rounds) == 3
        acquired = pd.read_csv(run / "al_acquired.csv")
        assert acquired.tile_id.is_unique and len(acquired) == rounds.labelled_tiles.diff().sum()


def test_the_per_tile_figure_is_drawn_the_same_each_time():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"model": ["U-Net", "Enhanced"] * 20, "Dice": rng.uniform(0, 1, 40),
                          "cell share": rng.uniform(0.01, 0.5, 40), "area": "annotated region"})
    drawn = []
    for _ in range(2):
        before = np.random.get_state()[1].copy()
        figure, buffer = dice_distributions(frame), io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
        drawn.append(buffer.getvalue())
        assert np.array_equal(np.random.get_state()[1], before)  # the caller's generator untouched
    assert drawn[0] == drawn[1]
