"""Images larger than memory (whole slides, large TIFFs): nuclei predicted in bounded memory, written as they come.

A slide is read a row of windows at a time (`tiffslide`, which opens pyramidal slides and plain TIFFs alike, by
region of level 0). The windows are those of the whole image (`WindowPredictor`'s grid, the last row and column
snapped to the edge), predicted once each and blended with the same Gaussian weight into a rolling buffer, so the
probability of every pixel is the one the whole image would give. Nuclei are labelled in horizontal bands of
`band_rows` rows, each labelled with `margin` rows of context above and below; a band keeps the nuclei whose
centroid lies in its own rows. Every nucleus thus comes out once (one centroid, one band) and whole (its pixels
beyond the band's rows are in the context), as long as it is less than `margin` px tall. Label rows are final,
and written, once no later band can reach them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.reading import DatasetError
from ..data.tiling import tile_origins
from ..progress import progress
from .instances import label_maps
from .outputs import nuclei_features, nucleus_table
from .predict import Predictor, gaussian_weight, predict_maps

SLIDE_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".scn", ".bif")
TIFF_TILE = 256  # rows and columns of one tile of the written label TIFF; band_rows is a multiple of it


class SlideReader:
    """Level 0 of a slide or large TIFF, read by rows (tiffslide)."""

    def __init__(self, path: Path):
        import tiffslide

        self.path = Path(path)
        try:
            self.slide = tiffslide.TiffSlide(self.path)
            self.width, self.height = self.slide.dimensions
        except Exception as error:  # tiffslide raises what tifffile and zarr raise: every one means "unreadable"
            raise DatasetError(f"{self.path} cannot be read as a slide: {error}") from error
        self.mpp = self.slide.properties.get("tiffslide.mpp-x")

    def rows(self, top: int, bottom: int) -> np.ndarray:
        """Rows [top, bottom) of level 0 as uint8 RGB (alpha, if any, dropped)."""
        region = self.slide.read_region((0, top), 0, (self.width, bottom - top), as_array=True)
        if region.dtype != np.uint8 or region.ndim != 3 or region.shape[2] not in (3, 4):
            raise DatasetError(f"{self.path} holds {region.dtype} pixels of shape {region.shape[2:]}; expected "
                               "8-bit RGB")
        return region[..., :3]


@dataclass
class Band:
    """What one step of `stream_nuclei` makes final: nuclei (table and GeoJSON features, in the image's
    coordinates) and the label rows [top, top + len(labels))."""

    nuclei: pd.DataFrame
    features: list[dict]
    top: int
    labels: np.ndarray


def _band_nuclei(maps: np.ndarray, region_top: int, core: tuple[int, int], first_id: int, threshold: float,
                 min_distance_px: float, min_area_px: float, mpp: float | None,
                 core_share: float) -> tuple[np.ndarray, pd.DataFrame, list]:
    """Label one band (its maps, `predict_maps`' channels) with its context; keep the nuclei whose centroid row
    lies in `core` (image rows), numbered from `first_id`. Returns the kept labels (region-sized, 0 elsewhere), their
    table and features."""
    labels = label_maps(maps, threshold, min_distance_px, min_area_px, core_share)
    table = nucleus_table(labels, maps[..., 0], mpp)
    rows = table["centroid y (px)"] + region_top
    kept = table[(rows >= core[0]) & (rows < core[1])]
    lookup = np.zeros(len(table) + 1, np.int32)
    lookup[kept["id"].to_numpy()] = np.arange(first_id, first_id + len(kept))
    labels = lookup[labels]
    kept = kept.assign(id=lookup[kept["id"].to_numpy()])
    features = nuclei_features(labels, kept, dy=region_top)
    for column in ("centroid y (px)", "top (px)", "bottom (px)"):
        kept[column] += region_top
    return labels, kept.reset_index(drop=True), features


def stream_nuclei(predictor: Predictor, height: int, width: int, read_rows: Callable[[int, int], np.ndarray],
                  threshold: float, min_distance_px: float, min_area_px: float, band_rows: int, margin: int,
                  mpp: float | None = None, desc: str | None = None, core_share: float = 1.0) -> Iterator[Band]:
    """Nuclei of an image of any size, band by band (module docstring); `read_rows(top, bottom)` gives its RGB
    rows. Label rows are yielded in blocks of whole TIFF_TILE rows (the last block excepted)."""
    if band_rows % TIFF_TILE:
        raise ValueError(f"band_rows must be a multiple of {TIFF_TILE}, not {band_rows}")
    window, stride = predictor.window, predictor.stride
    if height < window or width < window:  # a small image: whole, padded as predict_image does
        labels, nuclei, features = _band_nuclei(predict_maps(predictor, read_rows(0, height)), 0, (0, height), 1,
                                                threshold, min_distance_px, min_area_px, mpp, core_share)
        yield Band(nuclei, features, 0, labels)
        return
    ys, xs = tile_origins(height, window, stride), tile_origins(width, window, stride)
    weight = gaussian_weight(window)
    total = np.zeros((0, width, predictor.channels), np.float32)
    weights = np.zeros((0, width), np.float32)
    buffer_top = 0                            # image row of the probability buffers' first row
    labels = np.zeros((0, width), np.int32)   # label rows not yet written, from image row `emitted`
    emitted, band_top, next_id = 0, 0, 1
    for i, y in enumerate(progress(ys, desc=desc, unit="window row", disable=desc is None)):
        rows = read_rows(y, y + window)
        grow = y + window - (buffer_top + len(total))
        if grow > 0:
            total = np.concatenate([total, np.zeros((grow, *total.shape[1:]), np.float32)])
            weights = np.concatenate([weights, np.zeros((grow, width), np.float32)])
        for x, maps in zip(xs, predictor([rows[:, x:x + window] for x in xs]), strict=True):
            total[y - buffer_top:y - buffer_top + window, x:x + window] += weight[..., None] * maps
            weights[y - buffer_top:y - buffer_top + window, x:x + window] += weight
        final = ys[i + 1] if i + 1 < len(ys) else height  # no later window reaches rows above this
        while band_top < height and final >= min(height, band_top + band_rows + margin):
            core = (band_top, min(height, band_top + band_rows))
            region = (max(0, core[0] - margin), min(height, core[1] + margin))
            maps = (total[region[0] - buffer_top:region[1] - buffer_top]
                    / weights[region[0] - buffer_top:region[1] - buffer_top, :, None])
            kept, nuclei, features = _band_nuclei(maps, region[0], core, next_id, threshold,
                                                  min_distance_px, min_area_px, mpp, core_share)
            next_id += len(nuclei)
            grow = region[1] - (emitted + len(labels))
            if grow > 0:
                labels = np.concatenate([labels, np.zeros((grow, width), np.int32)])
            target = labels[region[0] - emitted:region[1] - emitted]
            free = (kept > 0) & (target == 0)  # a pixel claimed by two bands' nuclei stays with the first
            target[free] = kept[free]
            band_top = core[1]
            # rows above the next band's context are final: write them (whole TIFF tiles), drop what no band needs
            done = height if band_top >= height else (band_top - margin) // TIFF_TILE * TIFF_TILE
            if done > emitted:
                yield Band(nuclei, features, emitted, labels[:done - emitted])
                labels, emitted = labels[done - emitted:], done
            else:
                yield Band(nuclei, features, emitted, labels[:0])
            keep_from = max(buffer_top, band_top - margin)
            total, weights = total[keep_from - buffer_top:], weights[keep_from - buffer_top:]
            buffer_top = keep_from


def _label_tiles(bands: Iterator[Band], width: int, on_nuclei: Callable[[Band], None]) -> Iterator[np.ndarray]:
    """The TIFF tiles (row-major, edge tiles padded with 0) of the label rows that `bands` yield, calling
    `on_nuclei` with every band as it comes."""
    pending = np.zeros((0, width), np.int32)
    last = None
    for band in bands:
        on_nuclei(band)
        pending = np.concatenate([pending, band.labels])
        last = band
        while len(pending) >= TIFF_TILE:
            yield from _row_of_tiles(pending[:TIFF_TILE], width)
            pending = pending[TIFF_TILE:]
    if last is not None and len(pending):
        yield from _row_of_tiles(pending, width)


def _row_of_tiles(rows: np.ndarray, width: int) -> Iterator[np.ndarray]:
    for x in range(0, width, TIFF_TILE):
        tile = np.zeros((TIFF_TILE, TIFF_TILE), np.int32)
        block = rows[:, x:x + TIFF_TILE]
        tile[:block.shape[0], :block.shape[1]] = block
        yield tile


def write_streamed_nuclei(folder: Path, stem: str, bands: Iterator[Band], height: int, width: int) -> np.ndarray:
    """Write `<stem>_labels.tif` (tiled, zlib), `<stem>_nuclei.geojson` and `<stem>_nuclei.csv` (as
    lib/inference/outputs.py describes them) while the bands come, each through a temporary file renamed at the
    end, so that an interrupted prediction leaves nothing half-written. Returns the nuclei's areas (px)."""
    import json
    import os

    import tifffile

    folder = Path(folder)
    paths = {kind: folder / f"{stem}_{kind}" for kind in ("labels.tif", "nuclei.geojson", "nuclei.csv")}
    tmp = {kind: path.with_name(f".{path.name}.tmp") for kind, path in paths.items()}
    areas: list[np.ndarray] = []
    try:
        with open(tmp["nuclei.geojson"], "w") as geojson, open(tmp["nuclei.csv"], "w", newline="") as table:
            geojson.write('{"type": "FeatureCollection", "features": [')
            written = {"features": 0, "header": False}

            def on_nuclei(band: Band) -> None:
                band.nuclei.to_csv(table, index=False, header=not written["header"])
                written["header"] = True
                for feature in band.features:
                    geojson.write(("," if written["features"] else "") + json.dumps(feature))
                    written["features"] += 1
                areas.append(band.nuclei["area (px)"].to_numpy())

            tiles = _label_tiles(bands, width, on_nuclei)
            tifffile.imwrite(tmp["labels.tif"], tiles, shape=(height, width), dtype=np.int32,
                             tile=(TIFF_TILE, TIFF_TILE), compression="zlib", bigtiff=height * width * 4 >= 2**31)
            for _ in tiles:  # tifffile stops at the last tile; let the bands after it be written too
                pass
            geojson.write("]}")
        for kind, path in paths.items():
            os.replace(tmp[kind], path)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    return np.concatenate(areas) if areas else np.zeros(0)
