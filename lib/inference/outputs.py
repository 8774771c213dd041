"""What prediction writes about nuclei, in the forms other tools read:

- `<stem>_labels.tif`: the label image, int32, 0 = background, nucleus k = k (tifffile, zlib-compressed);
- `<stem>_nuclei.geojson`: a GeoJSON FeatureCollection that QuPath imports (File > Import objects): one Polygon
  per nucleus in full-resolution pixel coordinates (x to the right, y down, through the centres of its boundary
  pixels), `objectType: "detection"`, and measurements (area in px, and in µm² when the pixel size is known;
  mean probability);
- `<stem>_nuclei.csv`: one row per nucleus (id, centroid, bounding box, area, perimeter, equivalent diameter,
  eccentricity, mean probability). The three describe the same nuclei under the same ids.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import tifffile
from skimage.measure import regionprops_table

from ..files import write_text_atomic

NUCLEUS_COLUMNS = {"label": "id", "centroid-0": "centroid y (px)", "centroid-1": "centroid x (px)",
                   "bbox-0": "top (px)", "bbox-1": "left (px)", "bbox-2": "bottom (px)", "bbox-3": "right (px)",
                   "area": "area (px)", "perimeter": "perimeter (px)",
                   "equivalent_diameter_area": "equivalent diameter (px)", "eccentricity": "eccentricity",
                   "intensity_mean": "mean probability"}
PROPERTIES = ("label", "centroid", "bbox", "area", "perimeter", "equivalent_diameter_area", "eccentricity", "intensity_mean")


def nucleus_table(labels: np.ndarray, probability: np.ndarray, mpp: float | None = None) -> pd.DataFrame:
    """One row per nucleus (module docstring), with its area in µm² when `mpp` (µm per pixel) is known."""
    table = pd.DataFrame(regionprops_table(labels, intensity_image=np.asarray(probability, np.float32),
                                           properties=PROPERTIES))
    table = table.rename(columns=NUCLEUS_COLUMNS)[list(NUCLEUS_COLUMNS.values())]
    if mpp is not None:
        table["area (µm²)"] = table["area (px)"] * mpp**2
    return table


def nucleus_polygon(labels: np.ndarray, nucleus: int, top: int, left: int, bottom: int, right: int) -> list[list[float]]:
    """The outer contour of one nucleus as a closed ring of [x, y] in the image's pixel coordinates."""
    crop = np.pad((labels[top:bottom, left:right] == nucleus).astype(np.uint8), 1)
    contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    ring = max(contours, key=cv2.contourArea)[:, 0, :].astype(float) + [left - 1, top - 1]
    if len(ring) < 3:  # a one- or two-pixel-wide object: its pixels' outline instead of their centre line
        y, x = np.argwhere(crop)[0] + [top - 1, left - 1]
        ring = np.array([[x - 0.5, y - 0.5], [x + 0.5, y - 0.5], [x + 0.5, y + 0.5], [x - 0.5, y + 0.5]])
    return [*ring.tolist(), ring[0].tolist()]


def nuclei_features(labels: np.ndarray, table: pd.DataFrame, dy: int = 0) -> list[dict[str, Any]]:
    """One GeoJSON Feature per nucleus of `table` (module docstring); `labels` and the table's coordinates are of
    a band whose first row is image row `dy`."""
    features = []
    for values in table.to_dict("records"):
        measurements = {"Area px": float(values["area (px)"]), "Mean probability": float(values["mean probability"])}
        if "area (µm²)" in values:
            measurements["Area µm^2"] = float(values["area (µm²)"])
        ring = nucleus_polygon(labels, int(values["id"]), *(int(values[key]) for key in
                                                             ("top (px)", "left (px)", "bottom (px)", "right (px)")))
        features.append({"type": "Feature", "id": str(int(values["id"])),
                         "geometry": {"type": "Polygon", "coordinates": [[[x, y + dy] for x, y in ring]]},
                         "properties": {"objectType": "detection", "name": f"nucleus {int(values['id'])}",
                                        "measurements": measurements}})
    return features


def nuclei_geojson(labels: np.ndarray, table: pd.DataFrame) -> dict[str, Any]:
    """A FeatureCollection of the nuclei of `table` (module docstring)."""
    return {"type": "FeatureCollection", "features": nuclei_features(labels, table)}


def write_labels_tiff(path: Path, labels: np.ndarray) -> None:
    """The label image as an int32 TIFF, written through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tifffile.imwrite(tmp, np.asarray(labels, np.int32), compression="zlib")
    os.replace(tmp, path)


def write_nuclei(folder: Path, stem: str, labels: np.ndarray, probability: np.ndarray, mpp: float | None = None) -> pd.DataFrame:
    """Write the label TIFF, the GeoJSON and the per-nucleus CSV of one image; returns the table."""
    table = nucleus_table(labels, probability, mpp)
    write_labels_tiff(Path(folder) / f"{stem}_labels.tif", labels)
    write_text_atomic(Path(folder) / f"{stem}_nuclei.geojson", json.dumps(nuclei_geojson(labels, table)))
    write_text_atomic(Path(folder) / f"{stem}_nuclei.csv", table.to_csv(index=False))
    return table
