"""Apply a trained run to new images: probability maps, masks and overlays.

    python -m lib.predict --run results/<dataset>/<profile>/<model>/seed<k> --input IMAGE_OR_FOLDER \
        --output FOLDER [--tta] [--threshold 0.5]

Each image is cut into tiles exactly as in training (tile size, stride, resizing to the input size, Gabor
channel of the resized tile), predicted, and stitched back at full resolution (overlaps averaged). Writes
`<stem>_probability.png` (0-255), `<stem>_mask.png` ({0, 255}) and `<stem>_overlay.png` (prediction outlined).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from PIL import Image
from tqdm.auto import tqdm

from . import gabor
from .augment import predict_probabilities
from .crf import dense_crf
from .dataset import TileDataset
from .evaluate import predict_tiles
from .io import IMAGE_SUFFIXES, DatasetError, read_image
from .models import build_model, input_channels, model_spec
from .plots import outline
from .tiling import tile_grid


def load_model(run: Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """The selected checkpoint of a run, and the run's config."""
    record = yaml.safe_load((run / "config.yaml").read_text())
    if not (run / "best.pt").is_file():
        raise FileNotFoundError(f"{run} has no best.pt: train the run first")
    cfg = record["config"]
    model, _ = build_model(record["model"], dict(cfg, model=dict(cfg["model"], encoder_weights="none")))  # the
    # checkpoint holds every weight
    model.load_state_dict(torch.load(run / "best.pt", map_location=device, weights_only=True)["model"])
    return model.to(device).eval(), dict(cfg, model_name=record["model"])


def run_test_predictions(run: dict, tile_set, tta: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, tile indices) of a run's test tiles; stored ones (with the run's TTA setting), or
    recomputed from its checkpoint when `tta` asks for the other setting."""
    position = {tile_id: i for i, tile_id in enumerate(tile_set.table.tile_id)}
    index = np.array([position[t] for t in run["per_image"].tile_id])
    if tta is None or tta == run["metrics"]["tta"]:
        return np.load(run["dir"] / "test_probabilities.npy").astype(np.float32), index
    device = torch.device("cpu")
    model, cfg = load_model(run["dir"], device)
    edges = gabor.cached_edge_maps(tile_set, cfg["gabor"]) if cfg["model"]["input_variant"] != "drop" else None
    return predict_tiles(model, TileDataset(tile_set, index, edges, cfg["model"]), device, tta), index


def _input_tensor(tile: np.ndarray, cfg: dict) -> torch.Tensor:
    """The network input of one tile, as in lib/dataset.py (edge map computed here: new images have no cache)."""
    model_cfg = cfg["model"]
    rgb = (tile.astype(np.float32) / 255 - np.asarray(model_cfg["input_mean"], np.float32)) / np.asarray(
        model_cfg["input_std"], np.float32)
    channels = [rgb]
    if input_channels(cfg["model_name"], cfg) == 4:
        edge = gabor.normalise(gabor.raw_edge_map(tile, cfg["gabor"]))
        channels.append(((edge - 0.5) / 0.5)[..., None])
    return torch.from_numpy(np.concatenate(channels, -1).transpose(2, 0, 1).copy())[None]


def predict_image(model: torch.nn.Module, image: np.ndarray, cfg: dict, device: torch.device, tta: bool) -> np.ndarray:
    """Full-resolution probability map (H, W) of one RGB image."""
    data_cfg = cfg["data"]
    tile, size = data_cfg["tile_size"], data_cfg["input_size"]
    height, width = image.shape[:2]
    pad_y, pad_x = max(0, tile - height), max(0, tile - width)
    padded = cv2.copyMakeBorder(image, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT_101) if pad_y or pad_x else image
    total = np.zeros(padded.shape[:2], np.float32)
    count = np.zeros(padded.shape[:2], np.float32)
    for y, x in tile_grid(*padded.shape[:2], tile, data_cfg["stride"]):
        crop = cv2.resize(padded[y:y + tile, x:x + tile], (size, size), interpolation=cv2.INTER_AREA)
        inputs = _input_tensor(crop, cfg).to(device)
        probability = predict_probabilities(model, inputs, tta)
        if model_spec(cfg["model_name"]).crf:
            probability = dense_crf(probability, inputs[:, :3], **cfg["ladder"]["crf"])
        probability = probability[0, 0].cpu().numpy()
        total[y:y + tile, x:x + tile] += cv2.resize(probability, (tile, tile), interpolation=cv2.INTER_LINEAR)
        count[y:y + tile, x:x + tile] += 1
    return (total / count)[:height, :width]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lib.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="a finished run folder (with best.pt)")
    parser.add_argument("--input", required=True, type=Path, help="an image, or a folder of images")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--tta", action="store_true", help="average the 7 test-time transforms")
    parser.add_argument("--threshold", type=float, default=None, help="default: the threshold the run used on its test split")
    args = parser.parse_args(argv)
    if args.input.is_dir():
        paths = sorted(p for p in args.input.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    elif args.input.is_file():
        paths = [args.input]
    else:
        raise DatasetError(f"{args.input} does not exist")
    if not paths:
        raise DatasetError(f"{args.input} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, cfg = load_model(args.run, device)
    if args.threshold is None:  # the run's own: chosen on its validation split, or the config's
        threshold = json.loads((args.run / "metrics.json").read_text()).get("threshold", cfg["train"]["threshold"])
    else:
        threshold = args.threshold
    args.output.mkdir(parents=True, exist_ok=True)
    for path in tqdm(paths, desc="predicting", unit="image"):
        image = read_image(path)
        probability = predict_image(model, image, cfg, device, args.tta)
        mask = probability >= threshold
        Image.fromarray((probability * 255).round().astype(np.uint8)).save(args.output / f"{path.stem}_probability.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(args.output / f"{path.stem}_mask.png")
        Image.fromarray(outline(image, mask, colour=(255, 255, 0))).save(args.output / f"{path.stem}_overlay.png")
    print(f"{len(paths)} image(s) -> {args.output}")


if __name__ == "__main__":
    main()
