"""Apply a trained run to new images of any size: nuclei as objects, in the forms other tools read.

    python -m lib.inference --run results/<dataset>/<profile>/<model>/seed<k> --input IMAGE_OR_FOLDER \
        --output FOLDER [--tta] [--threshold T] [--device auto|cpu|cuda] [--batch-size N] [--force]
    python -m lib.inference --classic --input IMAGE_OR_FOLDER --output FOLDER [--profile quick]

Each image is predicted by overlapping windows blended with a Gaussian weight (lib/inference/predict.py), cut at
the threshold, and split into nuclei by a marker-controlled watershed (lib/inference/instances.py; its minimum
distance and area are the profile's `instances` section, in source-image pixels). `--classic` uses no model: the
haematoxylin threshold + watershed pipeline (lib/inference/classic.py), to compare with on your own images; it gives
a mask, not probabilities, so its nuclei's mean probability reads 1.
Writes per image `<stem>_probability.png` (0-255; not with --classic), `<stem>_mask.png` ({0, 255}),
`<stem>_overlay.png` (each nucleus outlined in yellow), `<stem>_labels.tif`, `<stem>_nuclei.geojson` (QuPath) and
`<stem>_nuclei.csv` (lib/inference/outputs.py), and `cells.csv`: per image its size, the threshold, the number of
nuclei and their area in pixels (total, mean, smallest, largest). An output folder that already holds a
`cells.csv` is refused unless --force.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from ..cli import DEBUG_HELP, run
from ..config import PROFILES, load_config
from ..data.reading import IMAGE_SUFFIXES, DatasetError, read_image
from ..device import DEVICES, select_device
from ..files import write_png_atomic, write_text_atomic
from ..progress import progress
from ..report.drawing import outline_nuclei
from .classic import classic_nuclei
from .instances import label_nuclei
from .outputs import write_nuclei
from .predict import load_run_model, predict_image, run_precision


def image_paths(source: Path) -> list[Path]:
    """An image, or every image of a folder (sorted)."""
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    elif source.is_file():
        paths = [source]
    else:
        raise DatasetError(f"{source} does not exist")
    if not paths:
        raise DatasetError(f"{source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return paths


def cell_row(path: Path, labels: np.ndarray, threshold: float) -> dict[str, object]:
    """One row of cells.csv: the nuclei of a label image."""
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    return {"image": path.name, "height": labels.shape[0], "width": labels.shape[1], "threshold": threshold,
            "cells": len(areas), "cell pixels": int(areas.sum()),
            "mean cell area (px)": float(areas.mean()) if len(areas) else float("nan"),
            "smallest cell (px)": int(areas.min()) if len(areas) else 0,
            "largest cell (px)": int(areas.max()) if len(areas) else 0}


def main(argv: list[str] | None = None) -> None:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m lib.inference", description=__doc__.split("\n\n")[0])
    method = parser.add_mutually_exclusive_group(required=True)
    method.add_argument("--run", type=Path, help="a finished run folder (with best.pt)")
    method.add_argument("--classic", action="store_true", help="the haematoxylin threshold + watershed pipeline, no model")
    parser.add_argument("--input", required=True, type=Path, help="an image, or a folder of images")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--tta", action="store_true", help="average the 7 test-time transforms")
    parser.add_argument("--threshold", type=float, default=None,
                        help="default: the run's own, chosen on its validation split for this TTA setting")
    parser.add_argument("--profile", default="quick", choices=PROFILES, help="--classic: whose `instances` settings")
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--batch-size", type=int, default=8, help="windows predicted at once")
    parser.add_argument("--force", action="store_true", help="overwrite the results of an earlier prediction")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    args = parser.parse_args(argv)
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise ValueError(f"--threshold must lie between 0 and 1, not {args.threshold}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, not {args.batch_size}")
    if (args.output / "cells.csv").is_file() and not args.force:
        raise ValueError(f"{args.output} already holds the results of a prediction (cells.csv); pass --force to overwrite them")
    paths = image_paths(args.input)
    if args.classic:
        nuclei = load_config(args.profile)["instances"]
        predict, threshold = None, float("nan")
    else:
        device = select_device(args.device)
        model, model_name, cfg, metrics = load_run_model(args.run, device)
        precision = run_precision(cfg, device)
        model = precision.prepare(model)
        nuclei = load_config(cfg["profile"])["instances"]
        threshold = metrics["arms"]["tta" if args.tta else "no_tta"]["threshold"] if args.threshold is None else args.threshold
        predict = lambda image: predict_image(model, model_name, image, cfg, device, args.tta, metrics["edge_bounds"],
                                              args.batch_size, precision)
    args.output.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in progress(paths, desc="predicting", unit="image"):
        image = read_image(path)
        if predict is None:
            labels = classic_nuclei(image, nuclei["classic_sigma_source_px"], nuclei["min_distance_source_px"],
                                    nuclei["min_area_source_px"])
            probability = (labels > 0).astype(np.float32)
        else:
            probability = predict(image)
            labels = label_nuclei(probability, threshold, nuclei["min_distance_source_px"], nuclei["min_area_source_px"])
            write_png_atomic(args.output / f"{path.stem}_probability.png", (probability * 255).round().astype(np.uint8))
        write_png_atomic(args.output / f"{path.stem}_mask.png", (labels > 0).astype(np.uint8) * 255)
        write_png_atomic(args.output / f"{path.stem}_overlay.png", outline_nuclei(image, labels))
        write_nuclei(args.output, path.stem, labels, probability)
        rows.append(cell_row(path, labels, threshold))
    write_text_atomic(args.output / "cells.csv", pd.DataFrame(rows).to_csv(index=False))
    how = "the classic pipeline" if args.classic else f"threshold {threshold:.2f}"
    print(f"{len(paths)} image(s) -> {args.output} ({how}; cells.csv counts their nuclei, <stem>_nuclei.geojson opens in QuPath)")


if __name__ == "__main__":
    run(main)
