"""Where everything lives: profiles, prepared tiles, runs, executed notebooks and figures.

    configs/<profile>.yaml                                  the profiles
    data/prepared/<dataset>/<key>/                          prepared tiles (lib.data.prepare)
    results/<dataset>/<profile>/[<experiment>/]<model>/seed<k>/    one training run (lib.training)
    results/<dataset>/<profile>/notebooks/                  executed notebooks and their logs (run_all.sh)
    figures/<dataset>/<profile>/                            figures and tables, named after their notebook
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"
PREPARED_ROOT = REPO_ROOT / "data" / "prepared"
RESULTS_ROOT = REPO_ROOT / "results"
FIGURES_ROOT = REPO_ROOT / "figures"
SYNTHETIC = "synthetic"


def data_folder(data_dir: str | Path | None) -> Path | None:
    """The dataset folder a user named, or None for the embedded synthetic dataset. A relative path is taken
    from the working directory when it exists there, else from the repository root (a notebook runs in
    `notebooks/`, so `data/ucsb` must not mean `notebooks/data/ucsb`)."""
    if data_dir in (None, "", SYNTHETIC):
        return None
    path = Path(data_dir).expanduser()
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path
    return path.resolve()


def dataset_name(data_dir: str | Path | None) -> str:
    """`synthetic` for the embedded dataset, else the data folder's name (used in result paths)."""
    folder = data_folder(data_dir)
    return SYNTHETIC if folder is None else folder.name


def figures_dir(cfg: dict[str, Any], data_dir: str | Path | None) -> Path:
    """`figures/<dataset>/<profile>/`, created on demand."""
    path = FIGURES_ROOT / dataset_name(data_dir) / cfg["profile"]
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_directory(cfg: dict[str, Any], data_dir: str | Path | None, model_name: str, seed: int,
                  root: Path = RESULTS_ROOT, experiment: str = "") -> Path:
    """results/<dataset>/<profile>/[<experiment>/]<model>/seed<k>/ (experiments: stability, ablations, whose
    config differs from the profile's)."""
    return Path(root) / dataset_name(data_dir) / cfg["profile"] / experiment / model_name / f"seed{seed}"
