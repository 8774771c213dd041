"""Train one run from the command line (the same as notebook 03):

    python -m lib.training --config quick --model enhanced --seed 0 [--data PATH] [--fold F]
        [--experiment NAME] [--set section.key=value ...] [--force]

writes results/<dataset>/<setting>/[<experiment>/]<model>/seed<k>/[fold<f>/] (lib/training/runs.py describes it).
`--set` changes a setting of the profile (repeatable; the value is read as YAML), `--experiment` names the
sub-folder of a run whose settings differ from the profile's (the study's job list writes both,
lib/experiments/study.py), and `--fold` picks the fold of a cross-validation (`--set data.folds=K`). Starting the
same command again resumes an unfinished run and loads a finished one; --force trains it again;
--stop-after-epochs N trains N more epochs and stops (for jobs with a time limit). Two processes that start the
same run take turns: the second waits for the first and then finds the run finished. Under
`torchrun --nproc_per_node N -m lib.training ...` the N processes train the run together (data-parallel,
lib/training/distributed.py).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import DEBUG_HELP, run
from ..config import apply_changes, load_config, parse_setting
from ..models import MODEL_NAMES
from ..paths import RESULTS_ROOT
from .distributed import ranks
from .runs import read_run
from .train import train


def main(argv: list[str] | None = None) -> None:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m lib.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="quick", help="profile name (smoke, quick, paper, recommended) or a YAML file")
    parser.add_argument("--model", default="enhanced", choices=MODEL_NAMES)
    parser.add_argument("--seed", type=int, default=0, help="training seed (the split uses the config's seed)")
    parser.add_argument("--data", default="", help="dataset folder; default: the embedded synthetic dataset")
    parser.add_argument("--fold", type=int, default=None, help="the fold to train when data.folds > 1")
    parser.add_argument("--experiment", default="", help="sub-folder for a run whose settings differ from the profile's")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="change one setting of the profile (repeatable)")
    parser.add_argument("--force", action="store_true", help="retrain even if a finished run exists")
    parser.add_argument("--stop-after-epochs", type=int, default=None, metavar="N",
                        help="train N more epochs and stop, resumable (for jobs with a time limit)")
    parser.add_argument("--results", type=Path, default=RESULTS_ROOT, help="where runs go (default: results/)")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    args = parser.parse_args(argv)
    cfg = apply_changes(load_config(args.config), dict(parse_setting(text) for text in args.settings))
    folder = train(cfg, args.data or None, args.model, args.seed, force=args.force, root=args.results,
                   experiment=args.experiment, fold=args.fold, stop_after_epochs=args.stop_after_epochs)
    if not ranks().main:  # under torchrun, rank 0 reports
        return
    if not (folder / "metrics.json").is_file():
        print(f"{folder}: stopped after {args.stop_after_epochs} epoch(s); the same command resumes it")
        return
    finished = read_run(folder)
    for area in ("whole_tile", "annotated_region"):
        pooled = finished.pooled_scores(area)
        print(f"{finished.folder}: test Dice {pooled['dice']:.4f} ({area.replace('_', ' ')}, pooled over the test "
              f"tiles, {'with' if finished.metrics['tta'] else 'without'} TTA, threshold {finished.threshold():.2f})")


if __name__ == "__main__":
    run(main)
