"""Model size and cost: parameters, floating-point operations of one forward pass (torch's FLOP counter),
inference latency, throughput and peak memory."""
from __future__ import annotations

import multiprocessing
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import load_config
from ..inference.tta import predict_probabilities
from ..models import MODELS, build_untrained, input_channels
from ..progress import progress


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of model(x) (a multiply-add counts 2), for the whole batch."""
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def model_costs(cfg: dict[str, Any], models: list[str], size: int | None = None) -> pd.DataFrame:
    """Parameters (millions) and GFLOPs per image at `size` px (default: the profile's input size)."""
    size = size or cfg["data"]["input_size"]
    rows = []
    for name in models:
        model = build_untrained(name, cfg)  # costs do not depend on the weights
        x = torch.zeros(1, input_channels(name, cfg), size, size)
        rows.append({"model": MODELS[name].label, "parameters (M)": sum(p.numel() for p in model.parameters()) / 1e6,
                     f"GFLOPs per {size}px image": forward_flops(model, x) / 1e9})
    return pd.DataFrame(rows).set_index("model")


def time_inference(model: torch.nn.Module, x: torch.Tensor, tta: bool, warmup: int, repeats: int) -> list[float]:
    """Seconds per image of `repeats` timed predictions (after `warmup` untimed ones), synchronised on CUDA."""
    cuda = x.device.type == "cuda"
    times = []
    for step in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        predict_probabilities(model, x, tta)
        if cuda:
            torch.cuda.synchronize()
        if step >= warmup:
            times.append((time.perf_counter() - start) / len(x))
    return times


def peak_resident_bytes() -> int:
    """This process's peak resident memory: VmHWM on Linux (reset by exec, unlike ru_maxrss, which a spawned
    process inherits from its parent), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def reset_peak_memory() -> None:
    """Start a new peak-resident-memory window (Linux: writing 5 to /proc/self/clear_refs resets VmHWM), so
    that a measurement sees the peak of what follows, not that of importing the libraries."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the peak stays the process's


def _measure_model(name: str, cfg: dict[str, Any], device: str) -> list[dict[str, Any]]:
    """Latency rows of one model (runs in a fresh process, so that its peak memory is its own)."""
    settings = cfg["efficiency"]
    torch.manual_seed(0)
    model = build_untrained(name, cfg).to(device).eval()
    rows = []
    for size in dict.fromkeys([cfg["data"]["input_size"], *settings["sizes"]]):
        x = torch.randn(settings["batch_size"], input_channels(name, cfg), size, size, device=device)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        reset_peak_memory()
        for tta in (False, True):
            times = np.array(time_inference(model, x, tta, settings["warmup"], settings["repeats"]))
            rows.append({"model": MODELS[name].label, "size (px)": size, "TTA": tta,
                         "median ms per image": 1000 * np.median(times),
                         "IQR ms": 1000 * (np.percentile(times, 75) - np.percentile(times, 25)),
                         "images per second": 1 / np.median(times)})
        peak = torch.cuda.max_memory_allocated() if device == "cuda" else peak_resident_bytes()
        for row in rows[-2:]:
            row["peak memory (MB)" if device == "cpu" else "peak VRAM (MB)"] = peak / 2 ** 20
    return rows


def latency_table(cfg: dict[str, Any], models: list[str], device: str = "cpu") -> pd.DataFrame:
    """Inference cost of every model at the profile's input size and at `efficiency.sizes`, with and without
    TTA: median and interquartile range of `repeats` timed batches after `warmup`. Each model is measured in a
    fresh process; on CPU, peak memory is the process's peak resident set while predicting at that size (the
    interpreter, libraries and weights included, so compare models with each other), on CUDA the peak
    allocated VRAM."""
    context = multiprocessing.get_context("spawn")
    rows = []
    for name in progress(models, desc="timing", unit="model"):
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            rows += pool.submit(_measure_model, name, cfg, device).result()
    return pd.DataFrame(rows)


def timed_ms(function: Callable[[], object], repeats: int) -> np.ndarray:
    """Milliseconds of `repeats` calls of `function` after one untimed warm-up call (plans, caches, thread pools)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * np.array(times)


def training_step_ms(cfg: dict[str, Any], name: str, steps: int = 5) -> float:
    """The median milliseconds of one training step (forward, backward, optimiser; fp32) of a model, untrained, on a
    batch of the profile's batch size at its input size, after one warm-up step."""
    torch.manual_seed(0)
    model = build_untrained(name, cfg).train()
    optimizer = torch.optim.AdamW(model.parameters())
    batch, size = cfg["train"]["batch_size"], cfg["data"]["input_size"]
    x, y = torch.randn(batch, input_channels(name, cfg), size, size), (torch.rand(batch, 1, size, size) > 0.9).float()

    def step() -> None:
        torch.nn.functional.binary_cross_entropy_with_logits(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return float(np.median(timed_ms(step, steps)))


def reference_step_ms(steps: int = 5) -> float:
    """This machine's speed, for reading its timings: one training step of the quick profile's Enhanced network
    (UNet++ on Lite0, untrained) on a batch of 4 128-px tiles (`training_step_ms`). Machines of one kind differ 2-4x;
    timings are reported beside it."""
    return training_step_ms(load_config("quick"), "enhanced", steps)
