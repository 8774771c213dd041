"""Atomic writes: every result file is written to a temporary name and renamed, so that a crash or an
interruption never leaves half a file where a finished one is expected."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        handle.write(text)
        tmp = handle.name
    os.replace(tmp, path)


def write_json_atomic(path: str | Path, payload: Any) -> None:
    """JSON (sorted keys, indented) written atomically."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def save_torch_atomic(payload: Any, path: str | Path) -> None:
    """torch.save through a temporary file and a rename (checkpoints)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def write_png_atomic(path: str | Path, pixels: np.ndarray) -> None:
    """An 8-bit image (H, W) or (H, W, 3) saved as PNG through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(pixels).save(tmp, format="PNG")
    os.replace(tmp, path)


@contextlib.contextmanager
def exclusive_lock(path: str | Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (an advisory `flock`, released when the process ends) while the block
    runs; another process asking for it waits, after calling `on_wait`. Two jobs of a study that start the same run
    take turns instead of writing one folder at once (flock needs a local or lock-aware shared file system)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
