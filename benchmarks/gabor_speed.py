"""Benchmark (not a test): milliseconds per tile of the Gabor edge map, per implementation.

    .venv/bin/python benchmarks/gabor_speed.py [--sizes 128 256 512] [--repeats 10]

Reports the median and the spread (min-max) over repeats after one warm-up, and the speed-up over the naive
per-filter cv2.filter2D loop (`opencv`). Writes figures/benchmarks/gabor_speed.csv and .md.
"""
from __future__ import annotations

import argparse
import os
import platform

import numpy as np
import pandas as pd
import torch

from lib import config, paths
from lib.edges import gabor
from lib.experiments.efficiency import timed_ms
from lib.files import write_text_atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    cfg = config.load_config("quick")["gabor"]
    bank = gabor.gabor_bank(cfg)
    rows = []
    for size in args.sizes:
        image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
        for implementation in gabor.IMPLEMENTATIONS:
            settings = dict(cfg, implementation=implementation)
            ms = timed_ms(lambda image=image, settings=settings: gabor.raw_edge_map(image, settings, bank), args.repeats)
            rows.append({"tile": f"{size}x{size}", "implementation": implementation, "device": "cpu",
                         "median_ms": np.median(ms), "min_ms": ms.min(), "max_ms": ms.max()})
        if torch.cuda.is_available():
            gray = torch.from_numpy(gabor.to_gray(image, cfg["grayscale"]))[None, None].cuda()

            def on_gpu(gray=gray):
                gabor.responses_torch(gray, bank).amax(1)
                torch.cuda.synchronize()
            ms = timed_ms(on_gpu, args.repeats)
            rows.append({"tile": f"{size}x{size}", "implementation": "torch", "device": "cuda",
                         "median_ms": np.median(ms), "min_ms": ms.min(), "max_ms": ms.max()})
    table = pd.DataFrame(rows)
    naive = table[table.implementation == "opencv"].set_index("tile")["median_ms"]
    table["speed-up vs naive loop"] = naive.loc[table["tile"]].to_numpy() / table["median_ms"]
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
               f"({torch.get_num_threads()} threads), kernel {cfg['kernel_size']} px, 24 filters")
    print(machine)
    print(table.round(1).to_string(index=False))
    folder = paths.REPO_ROOT / "figures" / "benchmarks"
    write_text_atomic(folder / "gabor_speed.csv", table.to_csv(index=False))
    write_text_atomic(folder / "gabor_speed.md", f"{machine}\n\n{table.round(1).to_markdown(index=False)}\n")


if __name__ == "__main__":
    main()
