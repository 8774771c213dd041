"""Apply a trained run to new images of any size: probability maps, masks, overlays and a table of cells.

    python -m lib.inference --run results/<dataset>/<profile>/<model>/seed<k> --input IMAGE_OR_FOLDER \
        --output FOLDER [--tta] [--threshold T] [--device auto|cpu|cuda] [--batch-size N]

Each image is predicted by overlapping windows blended with a Gaussian weight (lib/inference/predict.py).
Writes per image `<stem>_probability.png` (0-255), `<stem>_mask.png` ({0, 255}) and `<stem>_overlay.png`
(prediction outlined in yellow), and `cells.csv`: per image its size, the threshold, the number of cells
(connected components of the mask, 8-connectivity) and their area in pixels (total, mean, smallest, largest).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from ..cli import DEBUG_HELP, run
from ..data.geometry import object_areas
from ..data.reading import IMAGE_SUFFIXES, DatasetError, read_image
from ..device import DEVICES, select_device
from ..files import write_png_atomic, write_text_atomic
from ..progress import progress
from ..report.drawing import outline
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


def cell_row(path: Path, mask: np.ndarray, threshold: float) -> dict[str, object]:
    """One row of cells.csv."""
    areas = object_areas(mask)
    return {"image": path.name, "height": mask.shape[0], "width": mask.shape[1], "threshold": threshold,
            "cells": len(areas), "cell pixels": int(areas.sum()),
            "mean cell area (px)": float(areas.mean()) if len(areas) else float("nan"),
            "smallest cell (px)": int(areas.min()) if len(areas) else 0,
            "largest cell (px)": int(areas.max()) if len(areas) else 0}


def main(argv: list[str] | None = None) -> None:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m lib.inference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="a finished run folder (with best.pt)")
    parser.add_argument("--input", required=True, type=Path, help="an image, or a folder of images")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--tta", action="store_true", help="average the 7 test-time transforms")
    parser.add_argument("--threshold", type=float, default=None,
                        help="default: the run's own, chosen on its validation split for this TTA setting")
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--batch-size", type=int, default=8, help="windows predicted at once")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    args = parser.parse_args(argv)
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise ValueError(f"--threshold must lie between 0 and 1, not {args.threshold}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, not {args.batch_size}")
    paths = image_paths(args.input)
    device = select_device(args.device)
    model, model_name, cfg, metrics = load_run_model(args.run, device)
    precision = run_precision(cfg, device)
    model = precision.prepare(model)
    threshold = metrics["arms"]["tta" if args.tta else "no_tta"]["threshold"] if args.threshold is None else args.threshold
    args.output.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in progress(paths, desc="predicting", unit="image"):
        image = read_image(path)
        probability = predict_image(model, model_name, image, cfg, device, args.tta, metrics["edge_bounds"],
                                    args.batch_size, precision)
        mask = probability >= threshold
        write_png_atomic(args.output / f"{path.stem}_probability.png", (probability * 255).round().astype(np.uint8))
        write_png_atomic(args.output / f"{path.stem}_mask.png", mask.astype(np.uint8) * 255)
        write_png_atomic(args.output / f"{path.stem}_overlay.png", outline(image, mask, colour=(255, 255, 0)))
        rows.append(cell_row(path, mask, threshold))
    write_text_atomic(args.output / "cells.csv", pd.DataFrame(rows).to_csv(index=False))
    print(f"{len(paths)} image(s) -> {args.output} (threshold {threshold:.2f}; cells.csv lists their cells)")


if __name__ == "__main__":
    run(main)
