"""Benchmark (not a test): does bfloat16 training change a model's test Dice beyond seed noise?

    .venv/bin/python benchmarks/precision_accuracy.py --data PATH [--profile quick] [--model enhanced_region] [--seeds 3]

Trains (or loads, when finished) the model once per seed with `train.precision: fp32` (the profile's runs, where
notebook 03 put them) and once with `bf16` (experiment folder `precision-bf16`), on the single split. Reports per
precision the pooled test Dice of each seed (the model's own area: inside the annotated region when it trains
there), their mean and spread, the training seconds, and the paired difference over test images (per-image Dice
averaged over the seeds; sign-flip interval and p-value). Writes figures/benchmarks/precision_accuracy-<dataset>.csv
and .md. The `train.precision` default stays fp32 unless this shows no loss beyond seed noise.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from lib import config, paths
from lib.evaluation.statistics import paired_comparison
from lib.experiments.ladder import Entry, image_dice
from lib.files import write_text_atomic
from lib.models import loss_area
from lib.training.runs import open_run
from lib.training.train import train

EXPERIMENT = {"fp32": "", "bf16": "precision-bf16"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--model", default="enhanced_region")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    base = config.load_config(args.profile)
    area = loss_area(args.model, base)
    runs = {}
    for precision, experiment in EXPERIMENT.items():
        cfg = config.apply_changes(base, {"train.precision": precision})
        for seed in range(args.seeds):
            train(cfg, args.data, args.model, seed, experiment=experiment)
        runs[precision] = [open_run(cfg, args.data, args.model, seed, experiment) for seed in range(args.seeds)]
    rows = {}
    for precision, found in runs.items():
        dice = [run.pooled_scores(area)["dice"] for run in found]
        rows[precision] = {**{f"Dice seed {seed}": d for seed, d in enumerate(dice)}, "Dice mean": np.mean(dice),
                           "Dice sd over seeds": np.std(dice, ddof=1) if len(dice) > 1 else np.nan,
                           "training seconds (mean)": np.mean([run.metrics["train_seconds"] for run in found]),
                           "device": found[0].versions["device"]}
    per_image = {precision: image_dice(Entry(precision, precision, [run.per_tile for run in found], []), area)
                 for precision, found in runs.items()}
    test = paired_comparison((per_image["bf16"] - per_image["fp32"]).to_numpy())
    table = pd.DataFrame(rows).T
    caption = (f"{args.model}, profile {args.profile}, {args.seeds} seeds, single split; pooled test Dice with TTA, "
               f"{area.replace('_', ' ')}, each run at its validation-chosen threshold. bf16 - fp32 over "
               f"{test['units']} test images (per-image Dice, seed mean): {test['difference']:+.4f} "
               f"[{test['CI low']:.4f}, {test['CI high']:.4f}], sign-flip p = {test['p']:.4f}.")
    print(caption)
    print(table.to_string())
    name = f"precision_accuracy-{paths.dataset_name(args.data)}"
    folder = paths.FIGURES_ROOT / "benchmarks"
    write_text_atomic(folder / f"{name}.csv", table.assign(**{"bf16 - fp32 image Dice": test["difference"],
                                                              "CI low": test["CI low"], "CI high": test["CI high"],
                                                              "p": test["p"], "test images": test["units"]}).to_csv())
    write_text_atomic(folder / f"{name}.md", f"{caption}\n\n{table.to_markdown()}\n")


if __name__ == "__main__":
    main()
