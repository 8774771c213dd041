"""Apply a trained run to new images of any size: nuclei as objects, in the forms other tools read.

    python -m lib.inference --run results/<dataset>/<profile>/<model>/seed<k> [RUN ...] --input IMAGE_OR_FOLDER \\
        --output FOLDER [--mpp X | --mpp auto | --magnification M] [--stain-reference REF] [--tta] \\
        [--threshold T] [--min-distance PX] [--min-area PX] [--device auto|cpu|cuda] [--batch-size N] [--force]
    python -m lib.inference --classic --input IMAGE_OR_FOLDER --output FOLDER [--profile quick]

Scale: a model sees nuclei at the size it was trained on. `--mpp X` (µm per pixel of the input) or `--magnification
M` (40x = 0.25 µm/px) rescales the input to the run's training scale when the run's dataset states its pixel size;
`--mpp auto` estimates the scale by a scan over zooms (the zoom at which the median diameter of an image's predicted
mask's connected components first reaches the training masks', recorded in the run; predicted without TTA, which
hardly changes the sizes, even with `--tta`), prints each image's estimate and uses their median for all the images
of the call (one scanner: call it once per scanner); with neither, a slide's own metadata is used, else the images
are taken to be at the training scale (one warning line says so). Outputs are always in the input's pixels
(lib/data/scale.py).

Stain: `--stain-reference REF` (an image of the training set, or a folder of them) normalises each input's H&E
staining to the reference's by Macenko's method before prediction (lib/inference/stain.py); overlays show the input
as it was.

Several runs (`--run A B ...`: one recipe trained from other seeds) are averaged, as nnU-Net averages its folds'
models: each window's probabilities are the runs' mean, cut at the mean of their nuclei thresholds; the runs must share
their windows, maps, recorded scale and profile (lib/inference/predict.py's EnsemblePredictor).

Each image is predicted by overlapping windows blended with a Gaussian weight (lib/inference/predict.py); windows of
blank glass are not predicted. The probability is cut at the run's nuclei threshold (chosen in training for the best
AJI of its validation tiles' nuclei, predicted as new images; a run that recorded none: its pixel threshold; or
`--threshold`) and split into nuclei by a marker-controlled watershed (lib/inference/instances.py; the minimum
marker distance chosen with that threshold, or the profile's for a run that recorded none; the minimum area from the
profile's `instances` section; or `--min-distance` and `--min-area`; in source-image pixels, rescaled with the
image). `--classic` uses no model: the haematoxylin threshold + watershed pipeline (lib/inference/classic.py), at
the images' own pixels, to compare with on your own images; it gives a mask, not probabilities, so its nuclei's mean
probability reads 1.

Writes per image `<stem>_labels.tif`, `<stem>_nuclei.geojson` (QuPath) and `<stem>_nuclei.csv`
(lib/inference/outputs.py); for images held in memory also `<stem>_probability.png` (0-255; not with --classic),
`<stem>_mask.png` ({0, 255}) and `<stem>_overlay.png` (each nucleus outlined in yellow). A TIFF or slide larger than
`instances.whole_image_max_megapixels` is predicted band by band in bounded memory and gets the first three only
(lib/inference/slides.py). `cells.csv` has per image its size, the scale used, the threshold, the marker distance,
the number of nuclei, their density per mm² of image (when the pixel size is known), their area in pixels and the
stain reference (if any). An output folder that already holds a `cells.csv` is refused unless --force; every file is
written whole or not at all.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..cli import DEBUG_HELP, run
from ..config import PROFILES, load_config
from ..data.geometry import object_areas
from ..data.reading import IMAGE_SUFFIXES, DatasetError, read_image
from ..data.scale import median_diameter_px, mpp_of_magnification, positive_number, scanned_zoom
from ..device import DEVICES, select_device
from ..files import write_png_atomic, write_text_atomic
from ..progress import progress
from ..report.drawing import outline_nuclei
from ..training.runs import prediction_instances, prediction_threshold
from .classic import classic_nuclei
from .instances import label_maps, scaled_settings
from .outputs import write_nuclei
from .predict import EnsemblePredictor, Predictor, WindowPredictor, load_run_model, predict_image, predict_maps, run_precision
from .slides import SLIDE_SUFFIXES, SlideReader, stream_nuclei, write_streamed_nuclei
from .stain import StainNormaliser

AUTO_REGION = 2048  # px: `--mpp auto` estimates a large image's scale on its central region of this size


def image_paths(source: Path) -> list[Path]:
    """An image, or every image of a folder (sorted)."""
    suffixes = set(IMAGE_SUFFIXES) | set(SLIDE_SUFFIXES)
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith("."))
    elif source.is_file():
        paths = [source]
    else:
        raise DatasetError(f"{source} does not exist")
    if not paths:
        raise DatasetError(f"{source} holds no images ({', '.join(sorted(suffixes))})")
    return paths


def cell_row(path: Path, areas: np.ndarray, height: int, width: int, threshold: float, min_distance_px: float,
             zoom: float, mpp: float | None) -> dict[str, object]:
    """One row of cells.csv: the nuclei of one image, given their areas (px) and the watershed's marker distance."""
    mm2 = height * width * mpp**2 / 1e6 if mpp else float("nan")
    return {"image": path.name, "height": height, "width": width,
            "pixel size (µm)": mpp if mpp else float("nan"), "zoom": zoom, "threshold": threshold,
            "min marker distance (px)": min_distance_px, "cells": len(areas), "cells per mm²": len(areas) / mm2,
            "cell pixels": int(areas.sum()),
            "mean cell area (px)": float(areas.mean()) if len(areas) else float("nan"),
            "smallest cell (px)": int(areas.min()) if len(areas) else 0,
            "largest cell (px)": int(areas.max()) if len(areas) else 0}


@dataclass
class Scale:
    """How the inputs relate to the run's training images (lib/data/scale.py)."""

    mpp: float | None           # the inputs' pixel size as given (None: not given)
    auto: bool                  # estimate the images' zoom by a scan over zooms
    training_mpp: float | None  # the run's
    training_diameter_px: float | None

    def zoom(self, image_mpp: float | None) -> float:
        """The zoom of an image of known (or given) pixel size; 1 when there is no scale to go by."""
        if image_mpp is None or self.training_mpp is None:
            return 1.0
        return image_mpp / self.training_mpp


def parse_scale(args: argparse.Namespace, metrics: dict) -> Scale:
    """The scale options checked against what the run (or the runs, which agree on it) recorded."""
    named = " + ".join(map(str, args.run))
    recorded = metrics.get("scale") or {"mpp": None, "nucleus_diameter_px": None}
    auto = args.mpp == "auto"
    mpp = None
    if args.mpp is not None and not auto:
        mpp = positive_number(args.mpp, "--mpp")
    if args.magnification is not None:
        mpp = mpp_of_magnification(positive_number(args.magnification, "--magnification"))
    if auto and recorded["nucleus_diameter_px"] is None:
        raise ValueError(f"--mpp auto needs the training nuclei's size, which {named} does not record (trained "
                         "before runs recorded their scale); train it again, or give --mpp")
    if mpp is not None and recorded["mpp"] is None:
        raise ValueError(f"{named} was trained on images of unknown pixel size (its dataset has no dataset.yaml "
                         "with `mpp`), so --mpp and --magnification cannot be related to it; use --mpp auto")
    return Scale(mpp, auto, recorded["mpp"], recorded["nucleus_diameter_px"])


def main(argv: list[str] | None = None) -> None:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m lib.inference", description=__doc__.split("\n\n")[0])
    method = parser.add_mutually_exclusive_group(required=True)
    method.add_argument("--run", type=Path, nargs="+",
                        help="a finished run folder (with best.pt), or several of one recipe, averaged")
    method.add_argument("--classic", action="store_true", help="the haematoxylin threshold + watershed pipeline, no model")
    parser.add_argument("--input", required=True, type=Path, help="an image, a slide, or a folder of them")
    parser.add_argument("--output", required=True, type=Path,
                        help="the folder for the outputs (one holding a cells.csv is refused unless --force)")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--mpp", help="the images' pixel size in µm, or 'auto' to estimate their scale")
    scale.add_argument("--magnification", help="the images' objective magnification (40x = 0.25 µm/px)")
    parser.add_argument("--stain-reference", type=Path, default=None,
                        help="normalise each input's H&E staining to this image's or folder's (Macenko): training images")
    parser.add_argument("--tta", action="store_true", help="average the 7 test-time transforms")
    parser.add_argument("--threshold", type=float, default=None,
                        help="default: the run's nuclei threshold for this TTA setting, chosen on its validation "
                             "split (runs that recorded none: their pixel threshold; several runs: the mean)")
    parser.add_argument("--profile", default="quick", choices=PROFILES, help="--classic: whose `instances` settings")
    parser.add_argument("--min-distance", help="the watershed's minimum distance between two nuclei's markers, in the "
                        "run's training pixels (--classic: the images'); default: the run's, chosen with its nuclei "
                        "threshold on its validation split (runs that recorded none, --classic: the profile's "
                        "instances.min_distance_source_px)")
    parser.add_argument("--min-area", help="objects smaller than this many px (as --min-distance) are dropped; "
                        "default: the profile's instances.min_area_source_px")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="auto: a GPU when there is one")
    parser.add_argument("--batch-size", type=int, default=8, help="windows predicted at once")
    parser.add_argument("--force", action="store_true", help="overwrite the results of an earlier prediction")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    args = parser.parse_args(argv)
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise ValueError(f"--threshold must lie between 0 and 1, not {args.threshold}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, not {args.batch_size}")
    split_settings = {key: positive_number(value, flag) for key, value, flag in (
        ("min_distance_source_px", args.min_distance, "--min-distance"),
        ("min_area_source_px", args.min_area, "--min-area")) if value is not None}
    if args.classic and (args.mpp or args.magnification):
        raise ValueError("--classic works at the images' own pixels: --mpp and --magnification apply to a --run")
    if (args.output / "cells.csv").is_file() and not args.force:
        raise ValueError(f"{args.output} already holds the results of a prediction (cells.csv); pass --force to overwrite them")
    paths = image_paths(args.input)
    normalise = StainNormaliser(args.stain_reference) if args.stain_reference else None
    if args.classic:
        rows = predict_classic(paths, args.output, load_config(args.profile)["instances"] | split_settings, normalise)
        how = "the classic pipeline"
    else:
        rows = predict_run(paths, args, normalise, split_settings)
        how = f"threshold {rows[0]['threshold']:.2f}"
    stain = args.stain_reference.name if args.stain_reference else ""
    rows = [row | {"stain reference": stain} for row in rows]
    write_text_atomic(args.output / "cells.csv", pd.DataFrame(rows).to_csv(index=False))
    print(f"{len(paths)} image(s) -> {args.output} ({how}; cells.csv counts their nuclei, <stem>_nuclei.geojson opens in QuPath)")


def write_image_outputs(folder: Path, path: Path, image: np.ndarray, labels: np.ndarray, probability: np.ndarray,
                        mpp: float | None, with_probability: bool) -> np.ndarray:
    """Every output of an image held in memory; returns its nuclei's areas (px)."""
    folder.mkdir(parents=True, exist_ok=True)
    if with_probability:
        write_png_atomic(folder / f"{path.stem}_probability.png", (probability * 255).round().astype(np.uint8))
    write_png_atomic(folder / f"{path.stem}_mask.png", (labels > 0).astype(np.uint8) * 255)
    write_png_atomic(folder / f"{path.stem}_overlay.png", outline_nuclei(image, labels))
    return write_nuclei(folder, path.stem, labels, probability, mpp)["area (px)"].to_numpy()


def predict_classic(paths: list[Path], output: Path, nuclei: dict,
                    normalise: StainNormaliser | None) -> list[dict[str, object]]:
    rows = []
    for path in progress(paths, desc="predicting", unit="image"):
        image = read_image(path, colour=True)
        labels = classic_nuclei(normalise(image, path) if normalise else image, nuclei["classic_sigma_source_px"],
                                nuclei["min_distance_source_px"], nuclei["min_area_source_px"])
        areas = write_image_outputs(output, path, image, labels, (labels > 0).astype(np.float32), None, False)
        rows.append(cell_row(path, areas, *labels.shape, float("nan"), nuclei["min_distance_source_px"], 1.0, None))
    return rows


def predict_run(paths: list[Path], args: argparse.Namespace, normalise: StainNormaliser | None,
                split_settings: dict[str, float]) -> list[dict[str, object]]:
    """The runs' predictions of `paths` (`split_settings`: the watershed's settings given instead of the profile's)."""
    device = select_device(args.device)
    loaded = [load_run_model(run, device) for run in args.run]
    cfg, metrics = loaded[0][2:]
    for other, (_, _, run_cfg, run_metrics) in zip(args.run[1:], loaded[1:], strict=True):
        if run_metrics.get("scale") != metrics.get("scale") or run_cfg["profile"] != cfg["profile"]:
            raise ValueError(f"{other} and {args.run[0]} record another scale or profile: runs averaged together "
                             "must be trained on one dataset with one profile")
    scale = parse_scale(args, metrics)
    runs_metrics = [run_metrics for *_, run_metrics in loaded]
    nuclei = prediction_instances(runs_metrics, args.tta, load_config(cfg["profile"])["instances"]) | split_settings

    def cut_at(tta: bool) -> float:  # the threshold given, else the runs' nuclei threshold for this TTA setting
        return prediction_threshold(runs_metrics, tta, nuclei=True) if args.threshold is None else args.threshold

    threshold = cut_at(args.tta)
    members = []
    for model, model_name, run_cfg, run_metrics in loaded:
        precision = run_precision(run_cfg, device)  # each run predicts in the precision it trained in
        members.append(WindowPredictor(precision.prepare(model), model_name, run_cfg, device, args.tta,
                                       run_metrics["edge_bounds"], args.batch_size, precision,
                                       min_tissue_share=nuclei["min_tissue_share"], glass_gray=nuclei["glass_gray"]))

    def predictor_with(tta: bool) -> Predictor:
        chosen = tuple(replace(member, tta=tta) for member in members)
        return chosen[0] if len(chosen) == 1 else EnsemblePredictor(chosen)

    base = predictor_with(args.tta)

    def split(zoom: float) -> tuple[float, float]:  # the watershed's distance and area in the input's pixels
        settings = scaled_settings(nuclei, 1 / zoom)
        return settings["min_distance_px"], settings["min_area_px"]

    def labelled(predictor: Predictor, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        maps = predict_maps(predictor, image)  # the probability, and the centre map of a model with a centre head
        return maps[..., 0], label_maps(maps, threshold, *split(predictor.zoom), nuclei["core_share"])

    def opened(path: Path) -> tuple[np.ndarray | None, np.ndarray | None, SlideReader | None]:
        """The image as read (None: a large one, read band by band), as the network sees it, and its slide reader."""
        reader = SlideReader(path) if path.suffix.lower() in SLIDE_SUFFIXES else None
        if reader is not None and reader.height * reader.width > nuclei["whole_image_max_megapixels"] * 1e6:
            if normalise:
                raise ValueError(f"{path}: predicted band by band (above instances.whole_image_max_megapixels), and "
                                 "--stain-reference normalises images held whole; predict it without, or a region of it")
            return None, None, reader
        image = read_image(path, colour=True)
        return image, normalise(image, path) if normalise else image, reader

    auto_zoom_all = None
    if scale.auto:  # the images of one call share a scale (one scanner): the median of their estimates; each is
        # read again to be predicted (holding them all until then would not bound memory). The scan measures the
        # mask's component sizes, which TTA hardly moves, so it predicts without TTA (a seventh of the passes), cut at
        # the runs' threshold for that
        scanner, scan_threshold = predictor_with(False), cut_at(False)
        zooms = [auto_zoom(path, *opened(path)[1:], scanner, scale, scan_threshold, lambda zoom: split(zoom)[1])
                 for path in progress(paths, desc="estimating the scale", unit="image")]
        auto_zoom_all = float(np.median(zooms))
        print(f"--mpp auto: zoom {auto_zoom_all:.2f} for the {len(paths)} image(s), the median of their estimates",
              file=sys.stderr)
    warned = False
    rows = []
    for path in progress(paths, desc="predicting", unit="image"):
        image, seen, reader = opened(path)
        large = image is None
        height, width = (reader.height, reader.width) if large else image.shape[:2]
        mpp = scale.mpp if scale.mpp is not None else (float(reader.mpp) if large and reader.mpp else None)
        zoom = scale.zoom(mpp)
        if auto_zoom_all is not None:
            zoom = auto_zoom_all
            mpp = scale.training_mpp * zoom if scale.training_mpp else None
        elif mpp is None and not warned:
            print("warning: no --mpp or --magnification given: the images are taken to be at the training images' "
                  "scale (use --mpp auto to estimate it)", file=sys.stderr)
            warned = True
        predictor = replace(base, zoom=zoom)
        if large:
            bands = stream_nuclei(predictor, height, width, reader.rows, threshold, *split(zoom), nuclei["band_rows"],
                                  round(nuclei["band_margin_source_px"] / zoom), mpp, desc=path.name,
                                  core_share=nuclei["core_share"])
            args.output.mkdir(parents=True, exist_ok=True)
            areas = write_streamed_nuclei(args.output, path.stem, bands, height, width)
        else:
            probability, labels = labelled(predictor, seen)
            areas = write_image_outputs(args.output, path, image, labels, probability, mpp, True)
        rows.append(cell_row(path, areas, height, width, threshold, split(zoom)[0], zoom, mpp))
    return rows


def auto_zoom(path: Path, image: np.ndarray | None, reader: SlideReader | None, base: Predictor, scale: Scale,
              threshold: float, min_area_px: Callable[[float], float]) -> float:
    """`--mpp auto`: the zoom at which one image's predicted nuclei come out at the training nuclei's size, found by
    a scan over zooms (lib/data/scale.py). Both sizes are measured alike: connected components of a mask (the
    training masks'; a pass's, above its threshold, specks under the minimum area at that zoom dropped), so
    touching nuclei count as one on both sides, and a nucleus that the watershed would cut still counts whole."""
    if image is None:  # a large image: its central region
        top = max(0, reader.height // 2 - AUTO_REGION // 2)
        image = reader.rows(top, min(reader.height, top + AUTO_REGION))
        left = max(0, image.shape[1] // 2 - AUTO_REGION // 2)
        image = image[:, left:left + AUTO_REGION]

    def training_px_at(zoom: float) -> float:
        areas = object_areas(predict_image(replace(base, zoom=zoom), image) >= threshold)
        return median_diameter_px(areas[areas >= min_area_px(zoom)]) * zoom

    zoom, passes, reached = scanned_zoom(training_px_at, scale.training_diameter_px)
    print(f"{path.name}: predicted nuclei {'reach' if reached else 'come nearest to'} the training nuclei's "
          f"{scale.training_diameter_px:.1f} px at zoom {zoom:.2f} ({passes} passes)", file=sys.stderr)
    return zoom


if __name__ == "__main__":
    run(main)
