"""Benchmark (not a test): do two runs split different shares of the same touching nuclei? A paired test on the
test tiles that `benchmarks/instances.py` scored for each run.

    .venv/bin/python benchmarks/pairs_split.py --baseline instances-synthetic-quick-contact_weight-10-enhanced \\
        --compare instances-synthetic-quick-contact_weight-10-enhanced-seed1 \\
                  instances-synthetic-quick-contact_weight-10-epochs-24-enhanced [--entry "<entry>"]

Each run's entry (default: its watershed settings and core share chosen on validation) is read from
figures/benchmarks/<name>-pairs.csv (per test tile: touching pairs, split, merged); the runs must share their test
tiles and pairs. For each compared run: the share split, the paired difference to the baseline with the sign-flip
interval over the tiles holding pairs (`lib.evaluation.statistics.paired_share_difference`), the p-value and Holm's
adjustment over the comparisons. Another seed of the baseline's setting shows how far a seed alone moves the share.
Writes figures/benchmarks/pairs_split-<baseline without "instances-">.csv and .md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from lib.evaluation.statistics import holm, paired_share_difference, verdict
from lib.report.output import FIGURES_ROOT, save_benchmark
from lib.training.runs import read_run

ENTRY = "chosen on validation, core share too"


def read_pairs(name: str, entry: str) -> tuple[pd.Series, pd.DataFrame]:
    """A run's row of its instances table and its entry's per-tile pairs, indexed by tile."""
    folder = FIGURES_ROOT / "benchmarks"
    table_path, pairs_path = folder / f"{name}.csv", folder / f"{name}-pairs.csv"
    for path in (table_path, pairs_path):
        if not path.exists():
            raise SystemExit(f"error: {path} not found; run benchmarks/instances.py on that run (it writes both)")
    table = pd.read_csv(table_path, index_col="entry")
    found = table[(table.method != "classic") & (table.settings == entry)]
    if found.empty:
        raise SystemExit(f"error: {table_path} has no model entry '{entry}'")
    pairs = pd.read_csv(pairs_path)
    return found.iloc[0], pairs[pairs.entry == found.index[0]].set_index("tile").sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="an instances table's name, without .csv")
    parser.add_argument("--compare", required=True, nargs="+", help="instances tables to compare with it")
    parser.add_argument("--entry", default=ENTRY)
    args = parser.parse_args()
    base_row, base = read_pairs(args.baseline, args.entry)
    base_step = read_run(Path(base_row["run"])).versions.get("reference_step_ms")
    rows = []
    for name in args.compare:
        row, other = read_pairs(name, args.entry)
        if not (base.index.equals(other.index) and np.array_equal(base["touching pairs"], other["touching pairs"])):
            raise SystemExit(f"error: {name} was scored on other test tiles or pairs than {args.baseline}")
        test = paired_share_difference(base["touching pairs"], base["split"], other["split"])
        rows.append({"entry": name, "run": row["run"], "epochs": row["epochs"], "seed": row["seed"],
                     "touching pairs split": test["share B"], "baseline split": test["share A"],
                     "difference": test["difference"], "CI low": test["CI low"], "CI high": test["CI high"],
                     "p": test["p"], "tiles": test["units"], "touching pairs": test["items"],
                     "training seconds": row["training seconds"],
                     "training reference_step_ms": read_run(Path(row["run"])).versions.get("reference_step_ms"),
                     "baseline training reference_step_ms": base_step})
    table = pd.DataFrame(rows)
    table["p (Holm)"] = holm(table.p.to_numpy())
    table["verdict"] = [verdict(d, p) for d, p in zip(table.difference, table["p (Holm)"], strict=True)]
    table["verdict"] = table.verdict.replace({"supported": "splits more", "contradicted": "splits fewer"})
    save_benchmark(table, f"pairs_split-{args.baseline.removeprefix('instances-')}", caption=(
        f"Touching pairs split on the test tiles by each run against `{args.baseline}` (`{base_row['run']}`, "
        f"{base_row['epochs']:.0f} epochs, seed {base_row['seed']:.0f}; the entry '{args.entry}' of each): the share "
        "of the same true pairs (nuclei within 3 source px) that each run splits, the paired difference (run minus "
        "baseline) with the sign-flip test and its 95% interval over the tiles holding pairs (a tile's pairs are not "
        "independent), Holm's adjustment over the runs compared; `inconclusive` unless the adjusted p < 0.05. "
        "Training seconds and training reference_step_ms: those of the machine that trained each run (and the "
        "baseline), from the run's versions.json. `benchmarks/pairs_split.py`."))


if __name__ == "__main__":
    main()
