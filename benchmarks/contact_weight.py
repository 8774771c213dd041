"""Benchmark (not a test): which gap weight (`train.contact_weight`) splits touching nuclei, chosen on validation.

    .venv/bin/python -m lib.training --config quick --model enhanced --experiment contact_weight-<w> \\
        --set train.contact_weight=<w>                     # for each weight tried (0: the profile's own run)
    .venv/bin/python -m lib.training --config quick --model enhanced --experiment contact_weight-<w>-gap_sigma-<s> \\
        --set train.contact_weight=<w> --set train.gap_sigma_px=<s>   # the U-Net paper's gap map instead of the lines
    .venv/bin/python benchmarks/instances.py --run results/synthetic/quick/[contact_weight-<w>/]enhanced/seed0
    .venv/bin/python benchmarks/contact_weight.py [--dataset synthetic] [--setting quick] [--model enhanced]

Reads what `benchmarks/instances.py` wrote for the profile's run and for each `contact_weight-<w>[-gap_sigma-<s>]` experiment run
(its entry with the watershed settings and core share chosen on validation tiles) with its training seconds, and
chooses the variant with the largest share of *validation* touching pairs split, validation AJI breaking ties; the
test columns are read, never chosen on. Writes figures/benchmarks/contact_weight-<dataset>-<setting>-<model>.csv and .md.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from lib.report.output import FIGURES_ROOT, save_table
from lib.training.runs import read_run

ENTRY = "chosen on validation, core share too"
VARIANT = re.compile(r"\d+(-gap_sigma-\d+)?")  # experiments that change only these (not the head, not the epochs)
COLUMNS = ("validation touching pairs", "validation touching pairs split", "validation aji", "touching pairs",
           "touching pairs split", "touching pairs split CI low", "touching pairs split CI high", "touching pairs merged",
           "object_f1", "aji", "pq", "core share", "min distance (source px)", "run", "reference_step_ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--setting", default="quick")
    parser.add_argument("--model", default="enhanced")
    args = parser.parse_args()
    folder = FIGURES_ROOT / "benchmarks"
    names = [f"instances-{args.dataset}-{args.setting}-{args.model}.csv",
             *(path.name for path in folder.glob(f"instances-{args.dataset}-{args.setting}-contact_weight-*-{args.model}.csv")
               if VARIANT.fullmatch(path.name.split("-contact_weight-")[1].removesuffix(f"-{args.model}.csv")))]
    rows = []
    for name in names:
        table = pd.read_csv(folder / name, index_col="entry")
        if "contact weight" not in table or "validation touching pairs split" not in table:
            raise SystemExit(f"error: {folder / name} comes from an older benchmarks/instances.py (no validation "
                             "columns); run it again on that run")
        row = table.loc[f"{args.model}, {ENTRY}"]
        run = read_run(Path(row["run"]))
        train = run.record["config"]["train"]  # settings added since a table was written read as their old value
        rows.append({"contact weight": train["contact_weight"], "gap sigma (source px)": train["gap_sigma_px"],
                     **{column: row[column] for column in COLUMNS}, "training seconds": run.metrics["train_seconds"]})
    table = pd.DataFrame(rows).sort_values(["contact weight", "gap sigma (source px)"], ignore_index=True)
    best = table.sort_values(["validation touching pairs split", "validation aji"], ascending=False).index[0]
    table["chosen"] = table.index == best
    table.insert(0, "entry", "weight " + table["contact weight"].map("{:g}".format)
                 + table["gap sigma (source px)"].map(lambda sigma: f", gap map sigma {sigma:g}" if sigma else ""))
    save_table(table.set_index("entry"), folder, f"contact_weight-{args.dataset}-{args.setting}-{args.model}", digits=3,
               caption=(f"The `{args.setting}` {args.model} model on `{args.dataset}` trained with each gap weight "
                        "(`train.contact_weight`; 0: the profile's run) on the contact lines of touching nuclei or, "
                        "with a gap map sigma (`train.gap_sigma_px`), on every gap between nuclei as the U-Net paper "
                        "weighs them, its watershed settings and core share chosen on validation tiles by AJI: "
                        "touching pairs split on the validation and test tiles (the test share "
                        "with Fieller's 95% interval over the tiles holding pairs), and the test tiles' object scores "
                        "(inside the annotated region, at the network input), and each run's training wall time on the "
                        "machine that trained it (reference_step_ms: that of the machine that scored the run; runs trained on "
                        "machines of different kinds differ by more than their seeds would). The variant is chosen "
                        "by the share of validation pairs split (validation AJI breaking ties), never on test. "
                        "`benchmarks/contact_weight.py` over `benchmarks/instances.py`."))
    print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
