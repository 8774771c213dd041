"""Benchmark (not a test): how many touching nuclei the watershed splits when the mask is the truth, at a run's input.

    .venv/bin/python benchmarks/true_mask.py --run results/<dataset>/<setting>/[<experiment>/]<model>/seed<k>[/fold<f>]

The run gives its tiles, input size and split only; no model is used. The true mask at the network input (the
truth resized as training and scoring resize it, lib/data/tiles.py) is split into nuclei by the watershed that splits
a model's mask (lib/inference/instances.py, markers from the mask), with its minimum distance and area chosen on the
validation tiles' true masks by pooled AJI over `benchmarks/instances.py`'s grid, and scored on the test tiles as
that benchmark scores a model's nuclei, with the same touching pairs (true nuclei within 3 source px). A model whose
mask were the truth would split the pairs this splits: the share is what the mask's shape alone allows at this input
size, so a model that splits fewer loses the necks between nuclei, not the input size. Writes
figures/benchmarks/true_mask-<dataset>-<setting>.csv and .md. Nothing here looks at the test tiles to choose.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from instances import AREAS_SOURCE_PX, DISTANCES_SOURCE_PX, VALIDATION_COLUMNS, scores

from lib import config, paths
from lib.data import tiles
from lib.data.geometry import input_scale
from lib.evaluation.instances import TOUCHING_GAP_SOURCE_PX
from lib.evaluation.scoring import choose_split_settings
from lib.inference.instances import label_tiles, scaled_settings
from lib.report.output import save_benchmark
from lib.training.runs import read_run
from lib.training.train import split_indices

MASK_THRESHOLD = 0.5  # cuts a {0, 1} mask where it is


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path, help="a run whose tiles, input size and split are used")
    args = parser.parse_args()
    run = read_run(args.run)
    cfg = run.record["config"]
    tile_set = tiles.prepare(cfg, run.record["data_dir"] or None)
    factor = input_scale(cfg["data"])
    index = split_indices(tile_set, cfg, run.model, run.record.get("fold"))
    truth = {split: np.asarray(tile_set.instances[index[split]]) for split in ("val", "test")}
    within = {split: np.asarray(tile_set.regions[index[split]], bool) for split in ("val", "test")}
    masks = {split: (labels > 0).astype(np.float32) for split, labels in truth.items()}
    chosen, _ = choose_split_settings(masks["val"], MASK_THRESHOLD, truth["val"], within["val"],
                                      tuple(d * factor for d in DISTANCES_SOURCE_PX),
                                      tuple(a * factor**2 for a in AREAS_SOURCE_PX))
    profile = scaled_settings(config.load_config(cfg["profile"])["instances"], factor)
    touching = TOUCHING_GAP_SOURCE_PX * factor
    rows = []
    for which, values in (("profile", profile), ("chosen on validation", chosen)):
        split_scores = {split: scores(truth[split], label_tiles(masks[split], np.full(len(masks[split]), MASK_THRESHOLD),
                                                                values), within[split], touching)[0]
                        for split in ("val", "test")}
        rows.append({"entry": f"true mask, {which}", "min distance (source px)": values["min_distance_px"] / factor,
                     "min area (source px)": values["min_area_px"] / factor**2, **split_scores["test"],
                     **{f"validation {key}": split_scores["val"][key]
                        for key in VALIDATION_COLUMNS}})
    input_px, tile_px = cfg["data"]["input_size"], cfg["data"]["tile_size"]
    resized = " resized" if input_px != tile_px else ""
    table = pd.DataFrame(rows).assign(**{"input px": input_px, "tile px": tile_px,
                                         "test_tiles": len(index["test"]), "split of": str(args.run)})
    name = "-".join(["true_mask", run.record["dataset"], paths.setting_name(cfg)])
    save_benchmark(table, name, caption=(
        f"The true mask at the {input_px}-px network input (tiles of {tile_px} source px{resized}), split "
        "into nuclei by the watershed that splits a model's mask (markers from the mask), at the profile's settings and "
        "at those chosen on the validation tiles' true masks by AJI, scored inside the annotated region on the test "
        "tiles of the split of "
        f"`{args.run}` (no model used) as `benchmarks/instances.py` scores a model's nuclei: touching pairs are true "
        f"nuclei within {TOUCHING_GAP_SOURCE_PX} source px of each other, split when both are matched (Fieller's 95% "
        "interval over the tiles holding pairs). What the mask's shape alone allows at this input size. "
        "`benchmarks/true_mask.py`."))


if __name__ == "__main__":
    main()
