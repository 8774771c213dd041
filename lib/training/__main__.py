"""Train one run from the command line (the same as notebook 03):

    python -m lib.training --config quick --model enhanced --seed 0 [--data PATH] [--force]

writes results/<dataset>/<profile>/<model>/seed<k>/ (lib/training/runs.py describes it). Starting the same
command again resumes an unfinished run and loads a finished one; --force trains it again.
"""
from __future__ import annotations

import argparse

from ..config import load_config
from ..models import MODEL_NAMES
from .runs import read_run
from .train import train


def main(argv: list[str] | None = None) -> None:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m lib.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="quick", help="profile name (smoke, quick, paper) or a YAML file")
    parser.add_argument("--model", default="enhanced", choices=MODEL_NAMES)
    parser.add_argument("--seed", type=int, default=0, help="training seed (the split uses the config's seed)")
    parser.add_argument("--data", default="", help="dataset folder; default: the embedded synthetic dataset")
    parser.add_argument("--force", action="store_true", help="retrain even if a finished run exists")
    args = parser.parse_args(argv)
    run = read_run(train(load_config(args.config), args.data or None, args.model, args.seed, force=args.force))
    for area in ("whole_tile", "annotated_region"):
        pooled = run.metrics["test"][area]["pooled"]
        print(f"{run.folder}: test Dice {pooled['dice']:.4f} ({area.replace('_', ' ')}, pooled over the test "
              f"tiles, {'with' if run.metrics['tta'] else 'without'} TTA, threshold {run.threshold():.2f})")


if __name__ == "__main__":
    main()
