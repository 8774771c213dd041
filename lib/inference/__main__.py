"""Apply a trained run to new images: probability maps, masks and overlays.

    python -m lib.inference --run results/<dataset>/<profile>/<model>/seed<k> --input IMAGE_OR_FOLDER \
        --output FOLDER [--tta] [--threshold T] [--device auto|cpu|cuda]

Writes `<stem>_probability.png` (0-255), `<stem>_mask.png` ({0, 255}) and `<stem>_overlay.png` (prediction
outlined) per image.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..data.reading import IMAGE_SUFFIXES, DatasetError, read_image
from ..device import DEVICES, select_device
from ..report.drawing import outline
from .predict import load_run_model, predict_image


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
    args = parser.parse_args(argv)
    paths = image_paths(args.input)
    device = select_device(args.device)
    model, model_name, cfg, metrics = load_run_model(args.run, device)
    arm = metrics["arms"]["tta" if args.tta else "no_tta"]
    threshold = arm["threshold"] if args.threshold is None else args.threshold
    args.output.mkdir(parents=True, exist_ok=True)
    for path in tqdm(paths, desc="predicting", unit="image"):
        image = read_image(path)
        probability = predict_image(model, model_name, image, cfg, device, args.tta, metrics["edge_bounds"])
        mask = probability >= threshold
        Image.fromarray((probability * 255).round().astype(np.uint8)).save(args.output / f"{path.stem}_probability.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(args.output / f"{path.stem}_mask.png")
        Image.fromarray(outline(image, mask, colour=(255, 255, 0))).save(args.output / f"{path.stem}_overlay.png")
    print(f"{len(paths)} image(s) -> {args.output} (threshold {threshold:.2f})")


if __name__ == "__main__":
    main()
