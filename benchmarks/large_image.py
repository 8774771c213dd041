"""Benchmark (not a test): a whole-slide-sized image predicted band by band, on this machine.

    .venv/bin/python benchmarks/large_image.py --run results/<dataset>/<setting>/<model>/seed<k> \
        [--size 20000] [--tta-size 4096] [--check-size 3072] [--work /tmp/large_image]

Assembles a tiled TIFF of `--size` x `--size` px from the synthetic generator's tiles (rotated and flipped copies
of a pool of them) on a round piece of tissue surrounded by blank glass, like a slide, and predicts it with
`python -m lib.inference` (its band-by-band path, lib/inference/slides.py), measuring the wall time, the
throughput in megapixels per second and the process's peak resident memory (VmHWM, reset after the image is
written). TTA is timed on a `--tta-size` image. A `--check-size` image is predicted both whole and band by band (the
library's two paths),
and their nuclei compared: the same nuclei pixels, one to one (none duplicated, none cut). Writes
figures/benchmarks/large_image.csv and .md, with the machine and its reference training step.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from lib import config, paths
from lib.data import synthetic
from lib.experiments.efficiency import reference_step_ms
from lib.report.output import save_table

POOL = 48  # distinct synthetic tiles the image is assembled from
TILE = 256


def write_slide(path: Path, size: int, seed: int = 0) -> float:
    """A size x size RGB tiled TIFF: tissue (synthetic tiles) inside a disc of 0.45 x size radius, glass around it.
    Written tile by tile (bounded memory); returns the share of glass."""
    plans = [p for p in synthetic.plan_tiles([POOL, 3, 3], 0.6, [0.06, 0.04, 0.04], seed) if p.split == "train"]
    pool = [synthetic.render_tile(plan, TILE, seed, 1.5)[0] for plan in plans]
    rng = np.random.default_rng(seed)
    centre, radius = size / 2, 0.45 * size

    def tiles():
        for y in range(0, size, TILE):
            for x in range(0, size, TILE):
                tile = np.rot90(pool[rng.integers(len(pool))], rng.integers(4))
                yy, xx = np.mgrid[y:y + TILE, x:x + TILE]
                glass = np.hypot(yy + 0.5 - centre, xx + 0.5 - centre) > radius
                yield np.where(glass[..., None], rng.integers(236, 246, (TILE, TILE, 1), dtype=np.uint8), tile)

    tifffile.imwrite(path, tiles(), shape=(size, size, 3), dtype=np.uint8, tile=(TILE, TILE), photometric="rgb",
                     compression="zlib", bigtiff=size * size * 3 >= 2**31)
    return 1 - np.pi * radius**2 / size**2


def predict(run: Path, image: Path, out: Path, *flags: str) -> dict[str, float]:
    """`python -m lib.inference` in a fresh process: its wall seconds, peak resident memory and nuclei."""
    code = ("import sys, time; from lib.experiments.efficiency import peak_resident_bytes, reset_peak_memory; "
            "from lib.inference.__main__ import main; reset_peak_memory(); t = time.perf_counter(); "
            "main(sys.argv[1:]); print('MEASURED', time.perf_counter() - t, peak_resident_bytes())")
    result = subprocess.run([sys.executable, "-c", code, "--run", str(run), "--input", str(image), "--output", str(out),
                             "--force", *flags], capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"error: predicting {image} failed:\n{result.stderr[-2000:]}")
    seconds, peak = map(float, result.stdout.split("MEASURED")[-1].split())
    cells = pd.read_csv(out / "cells.csv").iloc[0]
    return {"seconds": seconds, "peak resident memory (GB)": peak / 1e9, "nuclei": int(cells["cells"])}


def matched(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """Nuclei of `a` paired with distinct nuclei of `b`, and the smallest IoU of a nucleus of `a` with its best
    match in `b`."""
    both = (a > 0) & (b > 0)
    pairs = pd.DataFrame({"a": a[both], "b": b[both]}).value_counts().rename("shared").reset_index()
    best = pairs.sort_values("shared", ascending=False).drop_duplicates("a")
    sizes_a, sizes_b = np.bincount(a.ravel()), np.bincount(b.ravel())
    iou = best.shared / (sizes_a[best.a] + sizes_b[best.b] - best.shared)
    return best.b.nunique(), float(iou.min()) if len(iou) else float("nan")


def whole_against_bands(run: Path, image_path: Path, size: int) -> dict[str, object]:
    """The same image predicted whole and band by band with the run (library calls, as predict makes them):
    their nuclei compared."""
    import torch

    from lib.inference.instances import label_nuclei
    from lib.inference.predict import WindowPredictor, load_run_model, predict_image, run_precision
    from lib.inference.slides import stream_nuclei

    write_slide(image_path, size, seed=1)
    image = tifffile.imread(image_path)
    device = torch.device("cpu")
    model, name, cfg, metrics = load_run_model(run, device)
    precision = run_precision(cfg, device)
    settings = config.load_config(cfg["profile"])["instances"]
    predictor = WindowPredictor(precision.prepare(model), name, cfg, device, False, metrics["edge_bounds"], 8,
                                precision, min_tissue_share=settings["min_tissue_share"],
                                glass_gray=settings["glass_gray"])
    threshold = metrics["arms"]["no_tta"]["threshold"]
    split = settings["min_distance_source_px"], settings["min_area_source_px"]
    whole = label_nuclei(predict_image(predictor, image), threshold, *split, settings["core_share"])
    banded = np.zeros_like(whole)
    for band in stream_nuclei(predictor, size, size, lambda top, bottom: image[top:bottom], threshold, *split,
                              settings["band_rows"], settings["band_margin_source_px"],
                              core_share=settings["core_share"]):
        banded[band.top:band.top + len(band.labels)] = band.labels
    paired, smallest_iou = matched(whole, banded)
    return {"image (px)": f"{size} x {size}", "nuclei whole": int(whole.max()), "nuclei band by band": int(banded.max()),
            "paired one to one": paired, "same nuclei pixels": bool(np.array_equal(whole > 0, banded > 0)),
            "smallest IoU of a pair": smallest_iou, "band rows": settings["band_rows"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--tta-size", type=int, default=4096)
    parser.add_argument("--check-size", type=int, default=3072)
    parser.add_argument("--work", type=Path, default=Path("/tmp/large_image"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size, flags in ((args.size, []), (args.tta_size, ["--tta"])):
        image = args.work / f"slide{size}.tif"
        if not image.is_file():
            print(f"writing {image} ...", flush=True)
            glass = write_slide(image, size)
        else:
            glass = 1 - np.pi * 0.45**2
        measured = predict(args.run, image, args.work / f"out{size}{'-tta' if flags else ''}", *flags)
        rows.append({"image (px)": f"{size} x {size}", "TTA": bool(flags), **measured,
                     "megapixels per second": size * size / 1e6 / measured["seconds"], "glass share": glass})
        print(rows[-1], flush=True)

    check = whole_against_bands(args.run, args.work / f"slide{args.check_size}.tif", args.check_size)
    print(check, flush=True)

    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, reference training step "
               f"{reference_step_ms():.0f} ms (lib.experiments.efficiency)")
    table = pd.DataFrame(rows).assign(finished_utc=time.strftime("%Y-%m-%d %H:%M"))
    table.insert(0, "entry", table["image (px)"] + table.TTA.map({True: ", TTA", False: ""}))
    folder = paths.REPO_ROOT / "figures" / "benchmarks"
    save_table(table.set_index("entry"), folder, "large_image", digits=3, caption=(
        f"A slide-like tiled TIFF (synthetic tissue on a disc, glass around) predicted by `python -m lib.inference "
        f"--run {args.run}` (band by band above `instances.whole_image_max_megapixels`, whole below): wall seconds, "
        f"throughput and peak resident memory of the process. {machine}. `benchmarks/large_image.py`."))
    save_table(pd.DataFrame([check]).set_index("image (px)"), folder, "large_image-check", digits=3, caption=(
        "The same image predicted whole and band by band (the library's two paths): nuclei of each, how many pair "
        "one to one, whether the nuclei pixels are the same, and the smallest IoU of a pair."))


if __name__ == "__main__":
    main()
