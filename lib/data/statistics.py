"""Dataset statistics: the paper's Table I for any prepared tile set, object sizes and what counts as small."""
from __future__ import annotations

import pandas as pd

from ..report.paper import TABLE1
from .tiles import TileSet
from .tiling import SPLITS


def table1(tiles: TileSet) -> pd.DataFrame:
    """Table I rows for each split of the prepared tiles (statistics at tile resolution)."""
    columns = {}
    for split in SPLITS:
        part = tiles.table[tiles.table["split"] == split]
        positive = part[part["has_cells"]]
        share = positive["cell_pixels"] / positive["tile_pixels"]
        columns[split] = [len(part), len(positive), len(part) - len(positive),
                          100 * share.mean() if len(positive) else float("nan"),
                          100 * part["cell_pixels"].sum() / part["tile_pixels"].sum()]
    return pd.DataFrame(columns, index=TABLE1.index)


def table1_with_paper(tiles: TileSet) -> pd.DataFrame:
    """Measured Table I next to the paper's, with the relative difference in percent."""
    ours, frame = table1(tiles), pd.DataFrame(index=TABLE1.index)
    for split in SPLITS:
        frame[split] = ours[split]
        frame[f"{split} (paper)"] = TABLE1[split]
        frame[f"{split} diff %"] = 100 * (ours[split] - TABLE1[split]) / TABLE1[split]
    return frame


def object_size_summary(tiles: TileSet) -> pd.DataFrame:
    """Object areas per split (px at tile resolution, i.e. source-image pixels): count and quantiles."""
    return tiles.objects.groupby("split")["area_px"].describe(percentiles=[0.1, 0.5, 0.9]).reindex(SPLITS)


def small_object_shares(tiles: TileSet, small_source_px: float) -> pd.DataFrame:
    """Per split: the share of objects under `small_source_px` source-image pixels, and the share of tiles with
    cells that hold at least one such object (those weigh x1.5 in complexity sampling)."""
    objects = tiles.objects.assign(small=tiles.objects["area_px"] < small_source_px)
    with_small = set(objects.loc[objects.small, "tile_id"])
    rows = {}
    for split in SPLITS:
        part = objects[objects["split"] == split]
        positive = tiles.table[(tiles.table["split"] == split) & tiles.table["has_cells"]]
        rows[split] = {"objects": len(part), "small objects (%)": 100 * part.small.mean() if len(part) else float("nan"),
                       "tiles with cells": len(positive),
                       "tiles with cells holding a small object (%)":
                           100 * positive.tile_id.isin(with_small).mean() if len(positive) else float("nan")}
    return pd.DataFrame(rows).T
