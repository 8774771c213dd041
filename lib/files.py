"""Atomic writes: every result file is written to a temporary name and renamed, so that a crash or an
interruption never leaves half a file where a finished one is expected."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


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
