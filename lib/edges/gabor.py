"""The "quantum-inspired" edge channel (paper §III-D, eq. 4): the maximum response of a 24-filter Gabor bank.

G(x, y) = exp(-(x'^2 + g^2 y'^2) / (2 s^2)) cos(2 pi x' / l + psi), x' = x cos t + y sin t, y' = -x sin t + y cos t,
with 8 orientations t (0 to 157.5 degrees), wavelengths l in {4, 10, 20} px, s = 5, g = 0.5.

What the paper leaves open is a config value (`gabor:` in configs/*.yaml), with these defaults:
- `psi: 0`: even (cosine) kernels. Their response to a dark disc is symmetric about its centre.
- `kernel_size: 61`: the envelope has sd s/g = 10 px along y', so +-3 sd needs 61 px; smaller kernels cut it.
- `grayscale: luminance` (ITU-R BT.601 weights, as cv2.cvtColor); `hematoxylin` uses colour deconvolution.
- `normalisation: per_image`: min-max of each edge map to [0, 1]; `per_dataset` uses the 0.5/99.5
  percentiles of the training tiles' raw maps, clipped, so contrast between tiles is kept.
- `response: max`: the maximum signed response, as the paper says. Even kernels have a positive mean, so
  this map also follows brightness; `max_abs` takes the largest magnitude instead.
- The kernels are applied as correlation (cv2.filter2D's convention) with reflect-101 borders.

Three implementations give the same raw responses (tests: 1e-4 after normalisation):
`opencv` (a per-filter cv2.filter2D loop, the reference), `fft` (one forward DFT of the tile, 24 products with
cached kernel spectra and 24 inverse DFTs; the CPU default) and `torch` (conv2d over the whole bank at once;
use it on a GPU).
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import rgb2hed

from ..data.tiles import TileSet
from ..files import write_json_atomic
from ..progress import progress as progress_bar

IMPLEMENTATIONS = ("fft", "torch", "opencv")


def orientations_deg(count: int) -> np.ndarray:
    """Evenly spaced orientations over half a turn: 0, 22.5, ..., 157.5 for 8."""
    return np.arange(count) * 180.0 / count


def gabor_kernel(size: int, sigma: float, theta: float, wavelength: float, gamma: float, psi: float) -> np.ndarray:
    """One kernel of eq. 4 (theta in radians), float64, `size` x `size`, x to the right and y down."""
    half = size // 2
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    x_rot = x * np.cos(theta) + y * np.sin(theta)
    y_rot = -x * np.sin(theta) + y * np.cos(theta)
    return np.exp(-(x_rot ** 2 + gamma ** 2 * y_rot ** 2) / (2 * sigma ** 2)) * np.cos(2 * np.pi * x_rot / wavelength + psi)


def gabor_bank(cfg: dict[str, Any]) -> np.ndarray:
    """The bank (n_wavelengths * n_orientations, k, k), ordered wavelength-major: index = w * n_orient + o."""
    if cfg["kernel_size"] % 2 == 0:
        raise ValueError(f"gabor.kernel_size must be odd, got {cfg['kernel_size']}")
    return np.stack([gabor_kernel(cfg["kernel_size"], cfg["sigma"], np.deg2rad(theta), wavelength,
                                  cfg["gamma"], cfg["psi"])
                     for wavelength in cfg["wavelengths"] for theta in orientations_deg(cfg["orientations"])])


def to_gray(image: np.ndarray, mode: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) to float32 in [0, 1]: `luminance`, or `hematoxylin` (inverted, nuclei dark)."""
    if mode == "luminance":
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    if mode == "hematoxylin":
        hema = rgb2hed(image)[..., 0]
        hema = (hema - hema.min()) / (np.ptp(hema) + 1e-12)
        return (1 - hema).astype(np.float32)  # nuclei dark, as in the luminance image
    raise ValueError(f"unknown gabor.grayscale {mode!r} (luminance or hematoxylin)")


def responses_opencv(gray: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Reference: one cv2.filter2D (correlation, reflect-101 borders) per kernel; (n_kernels, H, W)."""
    return np.stack([cv2.filter2D(gray.astype(np.float64), cv2.CV_64F, kernel, borderType=cv2.BORDER_REFLECT_101)
                     for kernel in bank]).astype(np.float32)


@lru_cache(maxsize=8)
def _kernel_spectra(bank_bytes: bytes, shape: tuple[int, ...], fft_shape: tuple[int, int]) -> list[np.ndarray]:
    """OpenCV (CCS-packed) spectra of the flipped kernels zero-padded to the FFT size, cached per bank and size."""
    bank = np.frombuffer(bank_bytes).reshape(shape)
    spectra = []
    for kernel in bank:
        padded = np.zeros(fft_shape, np.float32)
        padded[: shape[1], : shape[2]] = kernel[::-1, ::-1]  # correlation = convolution with the flipped kernel
        spectra.append(cv2.dft(padded))
    return spectra


def responses_fft(gray: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Same as `responses_opencv` through the frequency domain: one forward DFT of the reflect-padded tile,
    then per kernel a spectrum product and an inverse real DFT (OpenCV's DFT: ~3x faster than pocketfft here)."""
    size = bank.shape[-1]
    half = size // 2
    padded = cv2.copyMakeBorder(gray.astype(np.float32), half, half, half, half, cv2.BORDER_REFLECT_101)
    fft_shape = tuple(cv2.getOptimalDFTSize(n) for n in padded.shape)
    canvas = np.zeros(fft_shape, np.float32)
    canvas[: padded.shape[0], : padded.shape[1]] = padded
    spectrum = cv2.dft(canvas)
    height, width = gray.shape
    out = np.empty((len(bank), height, width), np.float32)
    for i, kernel_spectrum in enumerate(_kernel_spectra(bank.tobytes(), bank.shape, fft_shape)):
        full = cv2.idft(cv2.mulSpectrums(spectrum, kernel_spectrum, 0), flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
        out[i] = full[size - 1: size - 1 + height, size - 1: size - 1 + width]  # the lag that wrap-around spares
    return out


def responses_torch(gray: torch.Tensor, bank: np.ndarray) -> torch.Tensor:
    """Batched: (B, 1, H, W) -> (B, n_kernels, H, W) with one conv2d over the whole bank (reflect padding)."""
    weight = torch.as_tensor(bank, dtype=gray.dtype, device=gray.device)[:, None]
    half = bank.shape[-1] // 2
    return F.conv2d(F.pad(gray, (half, half, half, half), mode="reflect"), weight)


def combine(responses: np.ndarray, mode: str, axis: int = 0) -> np.ndarray:
    """Collapse responses along `axis`: `max` (signed, the paper) or `max_abs` (largest magnitude)."""
    if mode == "max":
        return responses.max(axis)
    if mode == "max_abs":
        return np.abs(responses).max(axis)
    raise ValueError(f"unknown gabor.response {mode!r} (max or max_abs)")


def raw_edge_map(image: np.ndarray, cfg: dict[str, Any], bank: np.ndarray | None = None) -> np.ndarray:
    """Maximum response over the bank (not normalised), float32 (H, W)."""
    bank = gabor_bank(cfg) if bank is None else bank
    gray = to_gray(image, cfg["grayscale"])
    implementation = cfg["implementation"]
    if implementation == "fft":
        responses = responses_fft(gray, bank)
    elif implementation == "opencv":
        responses = responses_opencv(gray, bank)
    elif implementation == "torch":
        with torch.no_grad():
            responses = responses_torch(torch.from_numpy(gray)[None, None], bank)[0].numpy()
    else:
        raise ValueError(f"unknown gabor.implementation {implementation!r} ({', '.join(IMPLEMENTATIONS)})")
    return combine(responses, cfg["response"])


def normalise(raw: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Min-max to [0, 1]: per image (bounds None) or with fixed bounds (per dataset), clipped."""
    low = float(raw.min()) if low is None else low
    high = float(raw.max()) if high is None else high
    return np.clip((raw - low) / max(high - low, 1e-12), 0, 1).astype(np.float32)


def dataset_bounds(raw: np.ndarray) -> dict[str, float]:
    """`per_dataset` bounds: the 0.5 and 99.5 percentiles of the training tiles' raw maps."""
    low, high = np.percentile(raw, [0.5, 99.5])
    return {"low": float(low), "high": float(high)}


def normalised_edge_map(raw: np.ndarray, cfg: dict[str, Any], bounds: dict[str, float]) -> np.ndarray:
    """A raw map normalised as the config says: its own min-max (`per_image`) or the dataset's bounds."""
    if cfg["normalisation"] == "per_image":
        return normalise(raw)
    if cfg["normalisation"] == "per_dataset":
        if not bounds:
            raise ValueError("gabor.normalisation per_dataset needs the training tiles' bounds")
        return normalise(raw, bounds["low"], bounds["high"])
    raise ValueError(f"unknown gabor.normalisation {cfg['normalisation']!r} (per_image or per_dataset)")


def edge_maps(images: np.ndarray, cfg: dict[str, Any], train_index: np.ndarray | None = None,
              progress: bool = True) -> tuple[np.ndarray, dict[str, float]]:
    """Normalised edge maps (N, H, W) of a stack of RGB tiles, and the bounds (`per_dataset`; else empty)."""
    bank = gabor_bank(cfg)
    iterator = progress_bar(images, desc="Gabor edge maps", unit="tile", disable=not progress)
    raw = np.stack([raw_edge_map(image, cfg, bank) for image in iterator])
    bounds = (dataset_bounds(raw if train_index is None else raw[train_index])
              if cfg["normalisation"] == "per_dataset" else {})
    return np.stack([normalised_edge_map(r, cfg, bounds) for r in raw]), bounds


def cache_key(cfg: dict[str, Any], images_path: Path) -> str:
    """Hash of the bank's parameters (not the implementation: all agree) and of the tiles' pixels."""
    params = {k: v for k, v in cfg.items() if k != "implementation"}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    with open(images_path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def cached_edge_maps(tile_set: TileSet, cfg: dict[str, Any]) -> tuple[np.ndarray, dict[str, float]]:
    """Edge maps of every tile of a prepared set and their normalisation bounds, computed once and kept beside
    the tiles: `<prepared>/edges-<key>.npy` (float16, memory-mapped) with `edges-<key>.json` (parameters, bounds).
    """
    key = cache_key(cfg, tile_set.root / "images.npy")
    path = tile_set.root / f"edges-{key}.npy"
    if not path.is_file():
        maps, bounds = edge_maps(np.asarray(tile_set.images), cfg, tile_set.indices("train"))
        tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npy")  # per process: jobs sharing the tiles may race
        np.save(tmp, maps.astype(np.float16))
        write_json_atomic(path.with_suffix(".json"), {"gabor": cfg, "bounds": bounds})
        tmp.replace(path)
    return np.load(path, mmap_mode="r"), json.loads(path.with_suffix(".json").read_text())["bounds"]
