"""The device a model runs on and the precision it computes in: one rule for training, evaluation, prediction and
timing (`train.device`, `train.precision`).

Precision (`train.precision`):
- `fp32`: full precision, channels-first (the CPU profiles' default; what every run recorded before the setting
  existed did on the CPU);
- `bf16`: bfloat16 autocast and channels-last memory on the CPU or a GPU (bf16 keeps fp32's exponent range, so
  no loss scaling is needed); on a CPU without native bfloat16 arithmetic it is emulated, many times slower than
  fp32, and a warning says so;
- `fp16`: float16 autocast with a gradient scaler, on a GPU only;
- `auto`: fp16 on a GPU; on a CPU bf16 where it has native bfloat16 arithmetic (AVX-512 BF16 or AMX), else fp32.
Losses, metrics and optimiser state stay in fp32 in every mode.
"""
from __future__ import annotations

import contextlib
import os
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def select_device(setting: str) -> torch.device:
    """`auto`: CUDA when there is a GPU, else the CPU; `cpu` or `cuda` as named."""
    if setting not in DEVICES:
        raise ValueError(f"unknown device {setting!r} (choose {', '.join(DEVICES)})")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no GPU here")
    return torch.device(setting)


def machine_description(device: torch.device | None = None) -> str:
    """What a timing was measured on, recorded beside it: the GPU's name on CUDA, else the CPU cores this process may
    use and the CPU's model (machines of one kind still differ 2-4x; the reference step says how fast this one is)."""
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                 platform.processor() or "unknown CPU")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores, {model}"


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX tiles)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


@dataclass(frozen=True)
class Precision:
    """How a model computes on one device: autocast type (None: fp32), memory format, gradient scaling."""
    name: str
    device_type: str
    dtype: torch.dtype | None = None
    channels_last: bool = False
    scaler: bool = False

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of this precision (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def prepare(self, tensor_or_model: torch.Tensor | torch.nn.Module) -> torch.Tensor | torch.nn.Module:
        """A model or a (B, C, H, W) batch in this precision's memory format."""
        return tensor_or_model.to(memory_format=torch.channels_last) if self.channels_last else tensor_or_model


def select_precision(setting: str, device: torch.device) -> Precision:
    """The precision `setting` means on `device` (module docstring)."""
    if setting not in PRECISIONS:
        raise ValueError(f"unknown precision {setting!r} (choose {', '.join(PRECISIONS)})")
    cuda = device.type == "cuda"
    if setting == "auto":
        setting = "fp16" if cuda else ("bf16" if cpu_has_fast_bf16() else "fp32")
    if setting == "fp16" and not cuda:
        raise ValueError("precision fp16 needs a GPU; on a CPU use bf16 or fp32")
    if setting == "fp32":
        return Precision("fp32", device.type)
    if setting == "bf16":
        if not cuda and not cpu_has_fast_bf16():
            warnings.warn("precision bf16 on a CPU without native bfloat16 arithmetic (AVX-512 BF16 or AMX) is emulated, "
                          "many times slower than fp32; precision auto chooses fp32 on this CPU", RuntimeWarning,
                          stacklevel=2)
        return Precision("bf16", device.type, torch.bfloat16, channels_last=True)
    return Precision("fp16", device.type, torch.float16, scaler=True)
