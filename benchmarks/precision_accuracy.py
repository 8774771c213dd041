"""Benchmark (not a test): does bfloat16 training change the models' test Dice beyond seed noise?

    .venv/bin/python benchmarks/precision_accuracy.py --data PATH [--profile quick] [--models enhanced_region]
        [--seeds 3] [--folds 1]

Trains (or loads, when finished) every model, seed and fold once with `train.precision: fp32` and once with `bf16`,
each in the setting run_all.sh gives it (`quick[-cv<K>]/` and `quick[-cv<K>]-bf16/`), so the runs of
`./run_all.sh --folds 5` and `./run_all.sh --folds 5 --precision bf16` are compared without training again.
Reports per model and precision the pooled test Dice of each seed inside the annotated region (where Table II judges
the models; the whole tile on fully annotated data), their mean and spread, and the training seconds (a run's,
summed over the folds; mean over the seeds); per model the paired difference bf16 - fp32 over the test images
(per-image Dice averaged over the seeds; sign-flip interval and p-value, Holm over the models). Writes
figures/benchmarks/precision_accuracy-<dataset>-<setting>.csv and .md. The CPU profiles' `train.precision` stays fp32
unless this shows no loss beyond seed noise.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from lib import config, paths
from lib.evaluation.statistics import holm, paired_comparison
from lib.experiments.ladder import Entry, image_dice
from lib.files import write_text_atomic
from lib.training.runs import open_run, run_folds
from lib.training.train import train

PRECISIONS = ("fp32", "bf16")
AREA = "annotated_region"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--models", default="enhanced_region", help="comma-separated")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--folds", type=int, default=1)
    args = parser.parse_args()
    base = config.apply_changes(config.load_config(args.profile), {"data.folds": args.folds})
    rows, tests = [], []
    for model in args.models.split(","):
        runs = {}
        for precision in PRECISIONS:
            cfg = config.apply_changes(base, {"train.precision": precision})
            for seed in range(args.seeds):
                for fold in run_folds(cfg):
                    train(cfg, args.data, model, seed, fold=fold)
            runs[precision] = [open_run(cfg, args.data, model, seed) for seed in range(args.seeds)]
            dice = [run.pooled_scores(AREA)["dice"] for run in runs[precision]]
            rows.append({"model": model, "precision": precision, "setting": paths.setting_name(cfg),
                         **{f"Dice seed {seed}": d for seed, d in enumerate(dice)},
                         "Dice mean": np.mean(dice), "Dice sd over seeds": np.std(dice, ddof=1) if len(dice) > 1 else np.nan,
                         "training seconds (mean)": np.mean([run.metrics["train_seconds"] for run in runs[precision]]),
                         "device": runs[precision][0].versions["device"]})
        per_image = {precision: image_dice(Entry(precision, precision, [run.per_tile for run in found], []), AREA)
                     for precision, found in runs.items()}
        tests.append({"model": model, **paired_comparison((per_image["bf16"] - per_image["fp32"]).to_numpy())})
    comparisons = pd.DataFrame(tests).rename(columns={"difference": "bf16 - fp32 image Dice", "units": "test images"})
    comparisons["Holm p"] = holm(comparisons.p.to_numpy())
    table = pd.DataFrame(rows).merge(comparisons, on="model")
    setting = paths.setting_name(base)
    caption = (f"profile {args.profile}, {args.seeds} seed(s), {'single split' if args.folds == 1 else f'{args.folds} folds'}; "
               "pooled test Dice with TTA inside the annotated region, each run (fold) at its validation-chosen "
               "threshold. bf16 - fp32: per-image Dice (seed mean), sign-flip 95% interval, p, Holm over the models.")
    print(caption)
    print(table.to_string())
    name = f"precision_accuracy-{paths.dataset_name(args.data)}-{setting}"
    folder = paths.FIGURES_ROOT / "benchmarks"
    write_text_atomic(folder / f"{name}.csv", table.to_csv(index=False))
    write_text_atomic(folder / f"{name}.md", f"{caption}\n\n{table.to_markdown(index=False)}\n")


if __name__ == "__main__":
    main()
