"""Shared fixtures: small generated datasets in the `images/` + `masks/` layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib import config, paths

UCSB = paths.REPO_ROOT.parent / "shared" / "data" / "ucsb_breast_cancer_cells"


def write_pair(root: Path, stem: str, size=(96, 128), seed=0, image_ext=".png", mask_ext=".png") -> None:
    """One H&E-ish image with two dark discs and its {0,255} mask."""
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width]
    mask = np.zeros(size, bool)
    for cy, cx in rng.uniform(16, min(size) - 16, (2, 2)):
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < 8 ** 2
    image = np.where(mask[..., None], [90, 60, 140], [230, 180, 210]) + rng.normal(0, 4, (height, width, 3))
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / "images" / f"{stem}{image_ext}")
    Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"{stem}{mask_ext}")


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """Ten 96x128 sources, 5 benign and 5 malignant."""
    root = tmp_path / "tiny"
    for i in range(10):
        write_pair(root, f"core{i}_{'benign' if i % 2 else 'malignant'}{i}", seed=i)
    return root


@pytest.fixture
def tiny_config() -> dict:
    """The smoke profile with tiles that fit the tiny dataset."""
    cfg = config.load_config("smoke")
    cfg["data"].update(tile_size=64, stride=32, input_size=32, min_cell_pixels=4, region_dilation=4,
                       split_proportions=[6, 2, 2])
    return cfg
