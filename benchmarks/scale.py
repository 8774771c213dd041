"""Benchmark (not a test): does prediction survive a change of scale? A run's own test images, rescaled.

    .venv/bin/python benchmarks/scale.py --run results/<dataset>/<setting>/<model>/seed<k> [--factors 0.7 1.4]

The run's test source images (and their masks, nearest-neighbour) are resized by each factor, as if scanned at
another magnification, and predicted with `python -m lib.inference` twice: taken as the training scale (no
option) and with `--mpp auto` (the scale estimated by a scan over zooms), and the unscaled images once as the
reference. Scored with `lib.evaluation.predicted` inside the annotated region (its dilation scaled with the image):
pixel Dice and object F1, AJI, PQ pooled over the images. Writes figures/benchmarks/scale-<dataset>.csv.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from lib.data.reading import find_pairs, load_pair
from lib.evaluation.predicted import median_zoom, score_predictions
from lib.inference import __main__ as predict_cli
from lib.report.output import save_benchmark
from lib.training.runs import read_run


def rescaled_dataset(pairs: list, factor: float, folder: Path) -> Path:
    """The pairs resized by `factor` (images by area or linear interpolation, masks nearest) under `folder`."""
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for pair in pairs:
        image, mask = load_pair(pair)
        size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
        shrink = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        Image.fromarray(cv2.resize(image, size, interpolation=shrink)).save(folder / "images" / f"{pair.stem}.png")
        Image.fromarray(cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_NEAREST)).save(
            folder / "masks" / f"{pair.stem}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--factors", type=float, nargs="+", default=[0.7, 1.4])
    parser.add_argument("--tta", action="store_true")
    args = parser.parse_args()
    run = read_run(args.run)
    data_dir = Path(run.record["data_dir"])
    dilation = run.record["config"]["data"]["region_dilation"]
    tested = set(run.per_tile.source)
    pairs = [pair for pair in find_pairs(data_dir) if pair.stem in tested]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for factor in [1.0, *args.factors]:
            data = rescaled_dataset(pairs, factor, Path(work) / f"x{factor}")
            for handling, flags in (("none", []), ("--mpp auto", ["--mpp", "auto"])):
                if factor == 1.0 and flags:
                    continue
                out = Path(work) / f"out{factor}{'auto' if flags else ''}"
                predict_cli.main(["--run", str(args.run), "--input", str(data / "images"), "--output", str(out),
                                  *flags, *(["--tta"] if args.tta else [])])
                rows.append({"factor": factor, "scale handling": handling, "zoom (median)": median_zoom(out),
                             **score_predictions(data, out, round(dilation * factor))})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    reference = table[table.factor == 1.0].iloc[0]
    for metric in ("pixel Dice", "object_f1"):
        table[f"{metric} - unscaled"] = table[metric] - reference[metric]
    table = table.assign(run=str(args.run), test_images=len(pairs))
    table.insert(0, "entry", "x" + table.factor.astype(str) + ", scale: " + table["scale handling"])
    save_benchmark(table, f"scale-{run.record['dataset']}", caption=(
        f"The {len(pairs)} test images of `{args.run}` resized by each factor and predicted taken as the training scale "
        f"or with `--mpp auto`, {'with' if args.tta else 'without'} TTA at the run's threshold for that arm (chosen on its "
        "validation tiles): pixel Dice and object scores inside the annotated region, pooled over the images, and "
        "their difference to the unscaled images'. `benchmarks/scale.py`."))


if __name__ == "__main__":
    main()
