"""Benchmark (not a test): how much of a training step is the model's forward and backward pass.

    .venv/bin/python benchmarks/train_overhead.py [--profile quick] [--tiles 64] [--repeats 3]

Times `lib.training.loop.train_one_epoch` (data loading with augmentation and the Gabor channel, weighted sampling,
stabilized loss, accumulation, clipping, guard, OneCycle step) on `--tiles` training tiles, against a bare loop
of forward + backward over the same model, batch size and number of batches with tensors already in memory.
Reports the median of the repeats and the ratio bare / pipeline. Writes figures/benchmarks/train_overhead.md.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from lib import config, paths
from lib.data import tiles
from lib.data.geometry import source_area_to_input
from lib.device import select_precision
from lib.files import write_text_atomic
from lib.inference.inputs import tile_edges
from lib.models import build_model
from lib.training.augment import Augmenter
from lib.training.dataset import TileDataset
from lib.training.loop import train_one_epoch
from lib.training.losses import loss_function, stabilized_loss
from lib.training.recipe import build_recipe
from lib.training.sampling import complexity_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--tiles", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = config.load_config(args.profile)
    train_cfg, model_cfg = cfg["train"], cfg["model"]
    tile_set = tiles.prepare(cfg, None)
    edges, _ = tile_edges(tile_set, "enhanced", cfg)
    index = tile_set.indices("train")[: args.tiles]
    dataset = TileDataset(tile_set, index, edges, model_cfg, Augmenter(train_cfg, 0))
    weights = complexity_weights(tile_set.masks[index], source_area_to_input(train_cfg["small_object_source_px"],
                                                                             cfg["data"]), train_cfg["small_object_weight"])
    torch.manual_seed(0)
    model, _ = build_model("enhanced", cfg)
    device = torch.device("cpu")
    batches = -(-len(dataset) // train_cfg["batch_size"])
    precision = select_precision("fp32", device)
    recipe = build_recipe(model, cfg, stabilized=True, total_steps=(args.repeats + 1) * batches, precision=precision)
    x_shape = (train_cfg["batch_size"], *dataset[0][0].shape)
    bare_batches = [(torch.randn(x_shape), torch.zeros(x_shape[0], 1, *x_shape[2:])) for _ in range(batches)]

    def pipeline():
        sampler = WeightedRandomSampler(weights["weight"].to_numpy().copy(), len(dataset), replacement=True)
        train_one_epoch(model, DataLoader(dataset, batch_size=train_cfg["batch_size"], sampler=sampler), recipe,
                        train_cfg["accumulation_steps"], device, loss_function("stabilized"), precision)

    def bare():
        model.train()
        for x, y in bare_batches:
            stabilized_loss(model(x), y).backward()
        model.zero_grad(set_to_none=True)

    timings = {"pipeline": [], "bare forward+backward": []}
    pipeline()  # warm-up
    for _ in range(args.repeats):
        for name, function in (("pipeline", pipeline), ("bare forward+backward", bare)):
            start = time.perf_counter()
            function()
            timings[name].append((time.perf_counter() - start) / batches)
    median = {name: float(np.median(values)) for name, values in timings.items()}
    ratio = median["bare forward+backward"] / median["pipeline"]
    lines = [f"profile {args.profile}, {len(dataset)} tiles of {x_shape[-1]} px, batch {x_shape[0]}, "
             f"{torch.get_num_threads()} CPU threads",
             *(f"{name}: {1000 * value:.0f} ms per batch (median of {args.repeats})" for name, value in median.items()),
             f"forward+backward share of a training step: {100 * ratio:.1f}%"]
    print("\n".join(lines))
    write_text_atomic(paths.FIGURES_ROOT / "benchmarks" / "train_overhead.md", "\n\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
