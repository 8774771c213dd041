"""Benchmark (not a test): does H&E stain augmentation in training help, on UCSB and on images from elsewhere?

    .venv/bin/python benchmarks/stain_augmentation.py --data PATH [--profile quick] [--folds 5] [--probability 0.5]
        [--baseline-experiment ""] [--external ../shared/data/monuseg_other_organs]

Trains (or loads, when finished) the region-trained Enhanced model, seed 0, on every fold with
`train.stain_augmentation` = `--probability` (albumentations' HEStain, a random preset of stain vectors per tile;
experiment folder `stain_augmentation-p<probability>`), and reads the same model, seed and budget without it from
`--baseline-experiment` ("" = the runs of `./run_all.sh --folds K`; the budget sweep's `budget-e<epochs>` at the
profile's own input size and epochs holds the same config, and a run of another config is refused). Reports each
arm's Dice inside the annotated region pooled over the out-of-fold test tiles (Fieller's 95% interval over the
images), the paired per-image difference (sign-flip 95% interval and p: one comparison, no correction), and the
training seconds; with `--external`, each arm's fold-0 run predicted on those images as a user would (no TTA, taken
as the training scale) and scored: pixel Dice, object F1 at IoU 0.5, AJI, PQ (one run each: no interval). Nothing is
tuned on the external set. Writes figures/benchmarks/stain_augmentation-<dataset>-<setting>.csv and .md with the
machine's reference step; the profiles' default (`stain_augmentation: 0.0`) follows what it shows.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from lib import config, paths
from lib.evaluation.predicted import predict_and_score
from lib.evaluation.statistics import paired_comparison
from lib.experiments.ladder import Entry, image_dice, pooled_dice
from lib.report.output import save_benchmark
from lib.training.runs import open_run, run_folds
from lib.training.train import train

MODEL, SEED, AREA = "enhanced_region", 0, "annotated_region"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--probability", type=float, default=0.5)
    parser.add_argument("--baseline-experiment", default="")
    parser.add_argument("--external", type=Path, help="a dataset to report generalisation on (never tuned on)")
    args = parser.parse_args()
    base = config.apply_changes(config.load_config(args.profile), {"data.folds": args.folds})
    augmented = config.apply_changes(base, {"train.stain_augmentation": args.probability})
    experiment = f"stain_augmentation-p{args.probability:g}"
    for fold in run_folds(augmented):
        train(augmented, args.data, MODEL, SEED, experiment=experiment, fold=fold)
    arms = {"none": open_run(base, args.data, MODEL, SEED, args.baseline_experiment),
            f"HEStain p={args.probability:g}": open_run(augmented, args.data, MODEL, SEED, experiment)}
    entries = {name: Entry(name, name, [run.per_tile], []) for name, run in arms.items()}
    test = paired_comparison((image_dice(entries[list(arms)[1]], AREA) - image_dice(entries["none"], AREA)).to_numpy())
    rows = []
    for name, run in arms.items():
        row = {"stain augmentation": name, "folder": str(run.folder.relative_to(paths.REPO_ROOT)),
               **pooled_dice(entries[name], AREA), "training seconds": run.metrics["train_seconds"]}
        if name != "none":
            row |= {"image Dice - none": test["difference"], "difference CI low": test["CI low"],
                    "difference CI high": test["CI high"], "p": test["p"], "test images": test["units"]}
        if args.external:
            external, _ = predict_and_score(["--run", str(run.fold_runs[0].folder)], args.external)
            row |= {f"{args.external.name} {key}": external[key]
                    for key in ("pixel Dice", "object_f1", "aji", "pq", "images")}
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows)
    table.insert(0, "entry", "stain augmentation: " + table["stain augmentation"])
    save_benchmark(table, f"stain_augmentation-{paths.dataset_name(args.data)}-{paths.setting_name(base)}", caption=(
        f"The region-trained Enhanced model (seed 0, profile {args.profile}, {args.folds} folds) with and without H&E "
        "stain augmentation in training: Dice inside the annotated region pooled over the out-of-fold test tiles "
        "(Fieller 95% CI over images), the paired per-image difference (sign-flip 95% CI, p), training seconds"
        + (f"; on `{args.external.name}` (never tuned on), each arm's fold-0 run as a user predicts it (no TTA, "
           "training scale): pixel Dice, object F1, AJI, PQ" if args.external else "")
        + ". `benchmarks/stain_augmentation.py`."))


if __name__ == "__main__":
    main()
