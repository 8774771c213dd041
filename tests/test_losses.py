"""The stabilized loss against values computed by hand (Algorithm 1)."""
import math

import numpy as np
import pytest
import torch

from lib.training.losses import adaptive_pos_weight, stabilized_loss, stabilized_loss_terms


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_two_pixel_example_by_hand():
    logits = torch.tensor([2.0, -1.0]).view(1, 1, 1, 2)
    target = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    p1, p2 = _sigmoid(2.0), _sigmoid(-1.0)
    tp, fp, fn = p1, p2, 1 - p1
    dice = (2 * tp + 1) / (p1 + p2 + 1 + 1)
    tversky = (tp + 1) / (tp + 0.7 * fp + 0.3 * fn + 1)
    pos_weight = 1.0  # r = 0.5: (1 - r) / r = 1
    bce = (-pos_weight * math.log(p1) - math.log(1 - p2)) / 2
    terms = stabilized_loss_terms(logits, target)
    assert terms["dice"].item() == pytest.approx(1 - dice, rel=1e-6)
    assert terms["tversky"].item() == pytest.approx(1 - tversky, rel=1e-6)
    assert terms["bce"].item() == pytest.approx(bce, rel=1e-6)
    assert terms["loss"].item() == pytest.approx(0.5 * (1 - dice) + 0.3 * bce + 0.2 * (1 - tversky), rel=1e-6)


def test_dice_is_per_sample_not_over_the_batch():
    logits = torch.tensor([[3.0, 3.0], [-3.0, -3.0]]).view(2, 1, 1, 2)
    target = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(2, 1, 1, 2)
    p, q = _sigmoid(3.0), _sigmoid(-3.0)
    per_sample = [(2 * 2 * p + 1) / (2 * p + 2 + 1), 1 / (2 * q + 1)]
    assert stabilized_loss_terms(logits, target)["dice"].item() == pytest.approx(1 - sum(per_sample) / 2, rel=1e-6)


def test_adaptive_pos_weight_and_its_clamps():
    assert adaptive_pos_weight(torch.tensor([1.0, 0, 0, 0])).item() == pytest.approx(3.0)
    assert adaptive_pos_weight(torch.tensor([1.0] + [0.0] * 199)).item() == 50.0   # 199 clamped to 50
    assert adaptive_pos_weight(torch.tensor([1.0, 1, 1, 0])).item() == 1.0          # 1/3 clamped to 1
    assert adaptive_pos_weight(torch.zeros(8)).item() == 1.0                        # no positive pixel


def test_all_background_batch_and_extreme_logits_stay_finite():
    target = torch.zeros(2, 1, 8, 8)
    for value in (-1e4, 0.0, 1e4, float("1e30")):
        logits = torch.full((2, 1, 8, 8), value, requires_grad=True)
        loss = stabilized_loss(logits, target)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    # a confident, correct all-background prediction costs almost nothing
    assert stabilized_loss(torch.full((2, 1, 8, 8), -20.0), target).item() < 0.01


def test_raw_logits_keep_the_bce_gradient_of_confidently_wrong_pixels():
    target = torch.zeros(1, 1, 2, 2)
    target[0, 0, 0, 0] = 1
    logits = torch.full((1, 1, 2, 2), 15.0, requires_grad=True)  # wrong on 3 pixels, beyond the clamp
    stabilized_loss(logits, target).backward()
    assert logits.grad[0, 0, 1, 1] > 0
    clamped = torch.full((1, 1, 2, 2), 15.0, requires_grad=True)
    stabilized_loss(clamped, target, bce_on_clamped_logits=True).backward()
    assert clamped.grad[0, 0, 1, 1] == 0


@pytest.mark.parametrize("name", ["stabilized", "unstabilized", "dice", "bce", "tversky", "combo", "hybrid",
                                  "focal_dice", "focal_dice_hausdorff"])
def test_a_pixel_outside_the_annotated_region_changes_no_gradient(name):
    from lib.training.losses import loss_function, signed_distance
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 8, 8, requires_grad=True)
    target = (torch.rand(2, 1, 8, 8) > 0.7).float()
    valid = torch.zeros(2, 1, 8, 8)
    valid[..., :4, :] = 1                                   # the region: the top half of each tile
    distance = torch.from_numpy(np.stack([signed_distance(t[0].numpy().astype(bool)) for t in target]))[:, None]
    loss = loss_function(name)(logits, target, distance, valid)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad[..., 4:, :].abs().max() == 0       # outside: no gradient
    assert logits.grad[..., :4, :].abs().max() > 0                                  # inside: supervision
    changed = target.clone()
    changed[..., 4:, :] = 1 - changed[..., 4:, :]           # any label outside the region
    assert torch.allclose(loss_function(name)(logits, changed, distance, valid), loss)


def test_without_a_region_the_losses_are_the_whole_tile_losses():
    from lib.training.losses import loss_function
    torch.manual_seed(1)
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.7).float()
    for name in ("stabilized", "dice", "focal_dice"):
        everywhere = loss_function(name)(logits, target, None, torch.ones_like(target))
        assert torch.allclose(loss_function(name)(logits, target, None, None), everywhere, atol=1e-6)


def test_the_centre_head_learns_the_centre_map_inside_the_region_and_unweighted():
    from lib.training.loop import _loss
    from lib.training.losses import centre_loss, loss_function
    torch.manual_seed(2)
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    target = {"mask": (torch.rand(2, 1, 8, 8) > 0.7).float(), "centre": torch.rand(2, 1, 8, 8),
              "valid": torch.ones(2, 1, 8, 8)}
    target["valid"][..., 4:, :] = 0
    target["valid"][..., 0, :] = 11                        # a contact line's weight is for the mask only
    loss = _loss(loss_function("stabilized"), logits, target)
    assert torch.allclose(loss, loss_function("stabilized")(logits[:, :1], target["mask"], None, target["valid"])
                          + centre_loss(logits[:, 1:], target["centre"], target["valid"]))
    loss.backward()
    assert logits.grad[:, 1, :4].abs().min() > 0 and logits.grad[:, 1, 4:].abs().max() == 0
    exact = torch.logit(target["centre"].clamp(1e-4, 1 - 1e-4))
    assert centre_loss(exact, target["centre"]) < centre_loss(exact + 1, target["centre"])  # its minimum: the map itself
    inside = target["valid"][..., :4, :] > 0
    assert torch.allclose(centre_loss(logits[:, 1:].detach(), target["centre"], target["valid"]),
                          torch.nn.functional.binary_cross_entropy_with_logits(
                              logits[:, 1:, :4].detach(), target["centre"][..., :4, :], reduction="none")[inside].mean())
