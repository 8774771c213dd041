"""The whole study as a list of independent training runs, for a cluster's scheduler or several GPUs.

    python -m lib.experiments.study --profile quick [--data PATH] [--folds K] [--seeds N] [--models a,b]
        [--precision P] [--input-size N] [--budget] [--all | --check]

prints one self-contained command per training run that `./run_all.sh` would make with the same options — the
ladder of notebook 03 (every model, seed and fold), the stability arms and learning-rate sweep of notebook 05, the
ablation variants of notebook 07 (every seed and fold; a variant whose pool cannot meet the budget is named on
stderr and left out, as notebook 07 leaves it out), and with `--budget` the budget sweep of notebook 09 (every arm,
point, seed and fold; `./run_all.sh --budget`) — skipping the runs that are finished and current (`--all`
lists every run). Each command is the `python -m lib.training ...` a person would type: the profile, the data
folder, the model, seed and fold, the experiment folder, and every setting the experiment changes as
`--set section.key=value`. Runs write their own folders atomically and take a lock, so jobs can run in any order
and at once; afterwards `./run_all.sh` with the same options finds every run and only executes the notebooks.
`--check` compares the finished runs on disk with the list instead, and fails naming every run that is missing
or that the list does not hold (run_tests.sh checks this after the smoke notebooks).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..cli import DEBUG_HELP, run
from ..config import apply_changes, load_config
from ..device import PRECISIONS
from ..paths import RESULTS_ROOT, data_folder, run_directory, setting_directory
from ..training.runs import is_finished_and_current, run_folds
from ..training.train import PoolTooSmallError, check_pool
from . import ablations, budget, stability


@dataclass(frozen=True)
class Job:
    """One training run: model, seed, fold, the experiment folder and the settings it changes."""
    model: str
    seed: int
    fold: int | None = None
    experiment: str = ""
    changes: dict[str, Any] = field(default_factory=dict)

    def config(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """The config this run trains with: the profile file's with the job's changes, as its command rebuilds it
        (not `cfg`, whose fold count the stability runs on the single split do not share)."""
        return apply_changes(load_config(cfg["profile"]), self.changes)

    def command(self, profile: str, data_dir: str | Path | None) -> str:
        """The shell command that trains this run."""
        words = [".venv/bin/python", "-m", "lib.training", "--config", profile, "--model", self.model,
                 "--seed", str(self.seed)]
        folder = data_folder(data_dir)
        words += [] if folder is None else ["--data", str(folder)]
        words += [] if self.fold is None else ["--fold", str(self.fold)]
        words += [] if not self.experiment else ["--experiment", self.experiment]
        for key, value in self.changes.items():
            words += ["--set", f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"]
        return " ".join(shlex.quote(word) for word in words)


def _changes(base: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    """The training settings in which `variant` differs from the profile (`runs` says what to train, not how)."""
    return {f"{section}.{key}": value for section, values in variant.items() if isinstance(values, dict)
            and section != "runs" for key, value in values.items() if base[section].get(key) != value}


def study_jobs(cfg: dict[str, Any], data_dir: str | Path | None, with_budget: bool = False) -> list[Job]:
    """Every training run of the study, in the order run_all.sh makes them (notebooks 03, 05, 07, and 09 with
    `with_budget`); an ablation variant whose training pool cannot meet the budget on this data is left out, as
    notebook 07 leaves it out."""
    base = load_config(cfg["profile"])
    jobs = [Job(model, seed, fold, "", _changes(base, cfg)) for model in cfg["runs"]["models"]
            for seed in range(cfg["runs"]["seeds"]) for fold in run_folds(cfg)]
    arms = stability.experiment_config(cfg)
    jobs += [Job(model, seed, None, stability.EXPERIMENT, _changes(base, arms))
             for model in stability.ARMS.values() for seed in range(cfg["stability"]["seeds"])]
    jobs += [Job(stability.ARMS["unstabilized"], 0, None, stability.sweep_experiment(rate),
                 _changes(base, stability.experiment_config(cfg, rate))) for rate in cfg["stability"]["lr_sweep"]]
    for name in ablations.ABLATIONS:
        variant = ablations.ablation_config(cfg, name)
        try:
            check_pool(variant, data_dir)
        except PoolTooSmallError as error:
            print(f"# ablation {name}: not measured: {error}", file=sys.stderr)
            continue
        jobs += [Job("enhanced", seed, fold, ablations.experiment_name(name), _changes(base, variant))
                 for seed in range(cfg["ablations"]["seeds"]) for fold in run_folds(variant)]
    if with_budget:
        jobs += [Job(budget.ARMS[arm][0], seed, fold, point.experiment(arm), _changes(base, point.config(cfg, arm)))
                 for point, arm, seed, fold in budget.sweep(cfg)]
    return jobs


def is_done(job: Job, cfg: dict[str, Any], data_dir: str | Path | None) -> bool:
    """Whether the run is finished and trained with this config (a stale run is not done: it needs --force)."""
    return is_finished_and_current(run_folder(job, cfg, data_dir), job.config(cfg), data_dir, job.model)


def run_folder(job: Job, cfg: dict[str, Any], data_dir: str | Path | None, root: Path = RESULTS_ROOT) -> Path:
    """Where a job's run lives."""
    return run_directory(job.config(cfg), data_dir, job.model, job.seed, root, job.experiment, job.fold)


def check(cfg: dict[str, Any], data_dir: str | Path | None, results: Path = RESULTS_ROOT,
          with_budget: bool = False) -> None:
    """Raise (ValueError) unless the finished runs under the setting's results are exactly the study's jobs (the
    budget sweep's runs are compared only `with_budget`)."""
    jobs = study_jobs(cfg, data_dir, with_budget)
    expected = {run_folder(job, cfg, data_dir, results) for job in jobs}
    root = setting_directory(cfg, data_dir, results)
    found = {path.parent for path in root.rglob("metrics.json")
             if with_budget or not budget.in_sweep(path.relative_to(root))}
    # Experiments that train in another setting (the stability runs on the single split) are looked for in their
    # experiment's folder there, not in that setting's ladder.
    elsewhere = {(setting_directory(job.config(cfg), data_dir, results), job.experiment) for job in jobs if job.experiment}
    found |= {path.parent for other, experiment in elsewhere if other != root
              for path in (other / experiment).rglob("metrics.json")}
    missing, extra = sorted(expected - found), sorted(found - expected)
    if missing or extra:
        raise ValueError(f"the job list and the runs on disk differ: {len(missing)} listed but not finished "
                         f"({', '.join(map(str, missing[:3]))}), {len(extra)} finished but not listed "
                         f"({', '.join(map(str, extra[:3]))})")
    print(f"the {len(expected)} runs of the job list are the finished runs under {root}")


def main(argv: list[str] | None = None) -> None:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m lib.experiments.study", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick", help="profile name (smoke, quick, paper, recommended)")
    parser.add_argument("--data", default="", help="dataset folder; default: the embedded synthetic dataset")
    parser.add_argument("--folds", type=int, default=None, help="K-fold cross-validation (default: the profile's)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per model (default: runs.seeds)")
    parser.add_argument("--models", default="", help="comma-separated (default: runs.models)")
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="train.precision (default: the profile's)")
    parser.add_argument("--input-size", type=int, default=None, help="data.input_size: a budget point's input size")
    parser.add_argument("--budget", action="store_true", help="the budget sweep's runs too (notebook 09)")
    parser.add_argument("--all", action="store_true", help="list finished runs too")
    parser.add_argument("--check", action="store_true", help="compare the list with the finished runs on disk")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    args = parser.parse_args(argv)
    cfg = load_config(args.profile)
    changes = {"data.folds": args.folds} if args.folds else {}
    changes |= {"runs.seeds": args.seeds} if args.seeds else {}
    changes |= {"runs.models": args.models.split(",")} if args.models else {}
    changes |= {"train.precision": args.precision} if args.precision else {}
    changes |= {"data.input_size": args.input_size} if args.input_size else {}
    cfg = apply_changes(cfg, changes)
    data_dir = args.data or None
    if args.check:
        check(cfg, data_dir, with_budget=args.budget)
        return
    for job in study_jobs(cfg, data_dir, args.budget):
        if args.all or not is_done(job, cfg, data_dir):
            print(job.command(args.profile, data_dir))
    sys.stdout.flush()


if __name__ == "__main__":
    run(main)

