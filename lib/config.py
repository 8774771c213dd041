"""Run configuration: the profile files in `configs/` (smoke, quick, paper) and where results go."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"
PROFILES = ("smoke", "quick", "paper")
SYNTHETIC = "synthetic"


class ConfigError(ValueError):
    """A profile file or a parameter is missing or malformed."""


def load_config(profile_or_path: str | Path) -> dict[str, Any]:
    """Read a profile by name (`quick`) or a YAML file by path; the result is a plain nested dict."""
    path = Path(profile_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CONFIG_DIR / f"{profile_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (profiles: {', '.join(PROFILES)})")
    with open(path) as handle:
        cfg = yaml.safe_load(handle)
    if not isinstance(cfg, dict) or "profile" not in cfg:
        raise ConfigError(f"config file {path} must be a mapping with a 'profile' key")
    return cfg


def resolve(profile: str, **sections: Any) -> dict[str, Any]:
    """The config a notebook runs with: papermill-injected sections (`-f configs/X.yaml`) win;
    sections left at None are read from the profile file, so a notebook also runs by hand."""
    cfg = load_config(profile)
    for name, value in sections.items():
        if value is not None:
            if name not in cfg:
                raise ConfigError(f"unknown config section {name!r} for profile {profile!r}")
            cfg[name] = copy.deepcopy(value)
    return cfg


def with_budget(cfg: dict[str, Any], section: str) -> dict[str, Any]:
    """A copy of `cfg` training on `section`'s budget (its `max_train_tiles` and `epochs`; null keeps train's):
    the experiments of notebooks 05 and 07 use one budget for all their runs."""
    cfg = copy.deepcopy(cfg)
    for key in ("max_train_tiles", "epochs"):
        if cfg[section][key] is not None:
            cfg["train"][key] = cfg[section][key]
    return cfg


def dataset_name(data_dir: str | Path | None) -> str:
    """`synthetic` for the embedded dataset, else the data folder's name (used in result paths)."""
    if data_dir in (None, "", SYNTHETIC):
        return SYNTHETIC
    return Path(data_dir).resolve().name


def figures_dir(cfg: dict[str, Any], data_dir: str | Path | None) -> Path:
    """`figures/<dataset>/<profile>/`, created on demand."""
    path = REPO_ROOT / "figures" / dataset_name(data_dir) / cfg["profile"]
    path.mkdir(parents=True, exist_ok=True)
    return path
