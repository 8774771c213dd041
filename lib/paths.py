"""Where everything lives: profiles, prepared tiles, runs, executed notebooks and figures.

    configs/<profile>.yaml                                  the profiles
    data/prepared/<dataset>/<key>/                          prepared tiles (lib.data.tiles)
    results/<dataset>/<setting>/[<experiment>/]<model>/seed<k>/[fold<f>/]   one training run (lib.training)
    results/<dataset>/<setting>/notebooks/                  executed notebooks and their logs (run_all.sh)
    figures/<dataset>/<setting>/budget-*/<model>/seed<k>/[fold<f>/]   a budget sweep run's record (notebook 09)
    figures/<dataset>/<setting>/                            figures and tables, named after their notebook
                                                            (run_all.sh; a notebook run by hand writes them to
                                                            results/<dataset>/<setting>/figures/ instead)

The setting is the profile's name (`quick`), `quick-cv5` for a 5-fold cross-validation, whose runs (one
folder per fold), notebooks and figures live apart from the single split's, and a suffix for each training setting
of `SETTING_AXES` that differs from the profile file's: the input size of a budget point (`run_all.sh --input-size
256`: `quick-in256`) and the precision (`--precision bf16`: `quick-cv5-bf16`). Such runs are not the profile's, so
they never meet its runs as stale ones. (The training epochs are no such axis: the stability and ablation experiments
set `train.epochs` to their own budgets, so a config's epochs do not tell which setting it belongs to; the budget
sweep names its epochs in its experiment folders instead, `budget-e<epochs>[-<variant>]/`, lib/experiments/budget.py.)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"
PREPARED_ROOT = REPO_ROOT / "data" / "prepared"
RESULTS_ROOT = REPO_ROOT / "results"
FIGURES_ROOT = REPO_ROOT / "figures"
SYNTHETIC = "synthetic"
# Training settings that make a setting of their own when they differ from the profile file's: the dotted key, the
# run_all.sh (and study) option that sets it, and how the setting's name shows its value, in this order.
SETTING_AXES = (("data.input_size", "--input-size", "in{}"), ("train.precision", "--precision", "{}"))


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


def setting_name(cfg: dict[str, Any]) -> str:
    """The profile's name, with `-cv<K>` for a K-fold cross-validation (`data.folds`) and a suffix for each setting
    of `SETTING_AXES` that is not the profile file's (`setting_changes`)."""
    folds = cfg["data"]["folds"]
    name = cfg["profile"] if folds == 1 else f"{cfg['profile']}-cv{folds}"
    changes = setting_changes(cfg)
    return "-".join([name] + [label.format(changes[key]) for key, _, label in SETTING_AXES if key in changes])


def setting_changes(cfg: dict[str, Any]) -> dict[str, Any]:
    """The settings of `SETTING_AXES` whose value in `cfg` is not the profile file's, by dotted key."""
    from .config import profile_changes  # here, not above: lib.config reads its files from this module's paths

    changes = profile_changes(cfg)
    return {dotted: changes[dotted] for dotted, _, _ in SETTING_AXES if dotted in changes}


def setting_directory(cfg: dict[str, Any], data_dir: str | Path | None, root: Path = RESULTS_ROOT) -> Path:
    """<root>/<dataset>/<setting>: everything a setting trains and executes (runs, notebooks)."""
    return Path(root) / dataset_name(data_dir) / setting_name(cfg)


def figures_dir(cfg: dict[str, Any], data_dir: str | Path | None) -> Path:
    """Where a notebook saves its figures and tables, created on demand: `figures/<dataset>/<profile>/` when
    run_all.sh executes it (REPRO_PUBLISH_FIGURES=1: the committed figures change only through run_all.sh), else
    `results/<dataset>/<profile>/figures/`, ignored by git, so that a notebook run by hand leaves the tree clean."""
    if os.environ.get("REPRO_PUBLISH_FIGURES") == "1":
        path = setting_directory(cfg, data_dir, FIGURES_ROOT)
    else:
        path = setting_directory(cfg, data_dir) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def records_roots() -> list[Path]:
    """Where notebook 09 writes run records (the first) and reads them (each in turn): `figures/` when run_all.sh
    publishes, else `results/records/`, then the published `figures/` (lib.experiments.records). A record lives
    where its run would, with this root in place of `results/`."""
    if os.environ.get("REPRO_PUBLISH_FIGURES") == "1":
        return [FIGURES_ROOT]
    return [RESULTS_ROOT / "records", FIGURES_ROOT]


def run_directory(cfg: dict[str, Any], data_dir: str | Path | None, model_name: str, seed: int,
                  root: Path = RESULTS_ROOT, experiment: str = "", fold: int | None = None) -> Path:
    """results/<dataset>/<setting>/[<experiment>/]<model>/seed<k>/[fold<f>/] (experiments: stability, ablations,
    whose config differs from the profile's; folds: the runs of a cross-validation)."""
    folder = setting_directory(cfg, data_dir, root) / experiment / model_name / f"seed{seed}"
    return folder if fold is None else folder / f"fold{fold}"
