"""Reading a dataset folder (`images/<stem>.*` + `masks/<stem>.*`) with input validation.

Every problem raises `DatasetError` naming the file and what is wrong with it, before any work starts.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
LABELS = ("benign", "malignant")


class DatasetError(ValueError):
    """The dataset on disk cannot be used as it is; the message names the file and the problem."""


@dataclass(frozen=True)
class SourcePair:
    """One source image, its mask and its class label (`benign`, `malignant` or `unknown`)."""

    stem: str
    image_path: Path
    mask_path: Path
    label: str


def _files_by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
            continue
        if path.stem in files:
            raise DatasetError(f"{folder}: two files share the stem {path.stem!r}: {files[path.stem].name}, {path.name}")
        files[path.stem] = path
    return files


def _label_for(stem: str, manifest: dict[str, str]) -> str:
    if stem in manifest:
        return manifest[stem]
    found = [label for label in LABELS if label in stem.lower()]
    return found[0] if len(found) == 1 else "unknown"


def _read_manifest(data_dir: Path) -> dict[str, str]:
    """Optional `manifest.csv` with `stem` and `class` columns (the UCSB copy has one)."""
    path = data_dir / "manifest.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"stem", "class"} <= set(rows[0]):
        return {}
    return {row["stem"]: row["class"] for row in rows}


def find_pairs(data_dir: str | Path) -> list[SourcePair]:
    """Match `images/` and `masks/` by stem; every image needs a mask and every mask an image."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"dataset folder {data_dir} does not exist")
    folders = {name: data_dir / name for name in ("images", "masks")}
    for name, folder in folders.items():
        if not folder.is_dir():
            raise DatasetError(f"{data_dir} has no {name}/ folder (expected images/<stem>.png and masks/<stem>.png)")
    images, masks = (_files_by_stem(folder) for folder in folders.values())
    if not images:
        raise DatasetError(f"{folders['images']} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if missing := sorted(set(images) - set(masks)):
        raise DatasetError(f"{len(missing)} image(s) without a mask in {folders['masks']}: "
                           + ", ".join(images[s].name for s in missing[:5]))
    if missing := sorted(set(masks) - set(images)):
        raise DatasetError(f"{len(missing)} mask(s) without an image in {folders['images']}: "
                           + ", ".join(masks[s].name for s in missing[:5]))
    manifest = _read_manifest(data_dir)
    return [SourcePair(stem, images[stem], masks[stem], _label_for(stem, manifest)) for stem in sorted(images)]


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError) as error:
        raise DatasetError(f"{path} cannot be read as an image: {error}") from error
    return image


def read_image(path: str | Path, colour: bool = False) -> np.ndarray:
    """An RGB image as uint8 (H, W, 3). Conversions: 16 bits per channel of RGB to 8 (Pillow keeps the high
    byte); an alpha channel composited over white (transparent = blank glass); grayscale repeated into three
    channels, unless `colour` (prediction of H&E needs colour) makes it an error."""
    path = Path(path)
    image = _open(path)
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "CMYK"):
        raise DatasetError(f"{path} has pixel mode {image.mode!r} (16-bit grayscale or floating point?); expected "
                           "an 8- or 16-bit RGB image")
    if colour and image.mode in ("L", "LA"):
        raise DatasetError(f"{path} is a grayscale image; nuclei are predicted from the colours of H&E (RGB)")
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))


def read_mask(path: str | Path) -> np.ndarray:
    """A binary mask as bool (H, W); values must be {0, 1} or {0, 255}."""
    path = Path(path)
    mask = np.asarray(_open(path))
    if mask.ndim == 3:
        if not (mask[..., :3] == mask[..., :1]).all():
            raise DatasetError(f"{path} is a colour mask; expected one channel with values {{0, 255}} or {{0, 1}}")
        mask = mask[..., 0]
    values = np.unique(mask)
    if not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
        shown = ", ".join(str(v) for v in values[:8]) + (" ..." if len(values) > 8 else "")
        raise DatasetError(f"{path} is not a binary mask: values {shown}; expected {{0, 1}} or {{0, 255}}")
    return mask > 0


def load_pair(pair: SourcePair) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask of one source, checked to have the same size."""
    image, mask = read_image(pair.image_path), read_mask(pair.mask_path)
    if image.shape[:2] != mask.shape:
        raise DatasetError(f"size mismatch for {pair.stem!r}: image {pair.image_path.name} is "
                           f"{image.shape[1]}x{image.shape[0]}, mask {pair.mask_path.name} is {mask.shape[1]}x{mask.shape[0]}")
    return image, mask
