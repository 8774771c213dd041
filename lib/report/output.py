"""Saving what the README shows: figures as PNG, tables as CSV (full precision: the README copies from these)
and Markdown (rounded, for reading), under `figures/<dataset>/<profile>/`, named after their notebook.

The Markdown is for people: an interval stands in one column beside its value (`0.557 [0.414, 0.647]`), a p-value
below 0.001 reads `< 0.001` (never `0.0`), an undefined or absent value is a dash, and a multi-level index reads as
one label."""
from __future__ import annotations

import math
import numbers
import os
import re
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from ..files import write_text_atomic
from ..paths import FIGURES_ROOT


def save_figure(fig: plt.Figure, folder: Path, name: str) -> Path:
    """PNG at 120 dpi, written atomically; the notebook still shows the figure inline."""
    path = Path(folder) / f"{name}.png"
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    os.replace(tmp, path)
    return path


P_COLUMN = re.compile(r"^(.* )?(Holm )?p( vs .*)?$")  # p, Holm p, p vs U-Net, Holm p vs U-Net, aji - U-Net Holm p


def undefined(value: Any) -> bool:
    """A value that is missing or NaN: said or shown as such, never as 0."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def p_value(p: Any) -> str:
    """A p-value for people: three decimals, and `< 0.001` below that (never `0.000`)."""
    if undefined(p):
        return "undefined"
    return "< 0.001" if float(p) < 0.001 else f"{float(p):.3f}"


def _with_intervals(frame: pd.DataFrame, digits: int) -> pd.DataFrame:
    """Each `<x> CI low` / `<x> CI high` pair folded into the column before it as `value [low, high]`."""
    columns, out = list(frame.columns), {}
    skip = set()
    for i, column in enumerate(columns):
        if column in skip:
            continue
        low = columns[i + 1] if i + 1 < len(columns) else None
        high = columns[i + 2] if i + 2 < len(columns) else None
        if low is not None and high is not None and str(low).endswith("CI low") and str(high).endswith("CI high"):
            label = str(low)[: -len("low")].strip()
            label = label[len(str(column)):].strip() if label.startswith(str(column)) else label
            out[f"{column} [{label}]"] = [
                "—" if pd.isna(v) else f"{v:.{digits}f} [{a:.{digits}f}, {b:.{digits}f}]"
                for v, a, b in zip(frame[column], frame[low], frame[high], strict=True)]
            skip |= {low, high}
        else:
            out[column] = frame[column]
    return pd.DataFrame(out, index=frame.index)


def markdown_table(frame: pd.DataFrame, digits: int = 2, caption: str = "") -> str:
    """The table as Markdown for reading (module docstring), under its caption when it has one."""
    shown = frame.copy()
    for column in shown.select_dtypes(object).columns:  # numbers beside None: printed as numbers
        values = shown[column].dropna()
        if len(values) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
            shown[column] = shown[column].astype(float)
    if isinstance(shown.index, pd.MultiIndex):
        shown.index = [" · ".join(str(level) for level in key) for key in shown.index]
    for column in [c for c in shown.columns if P_COLUMN.match(str(c))]:
        shown[column] = [value if value != value else p_value(value) for value in shown[column]]  # NaN stays a dash
    numeric = shown.select_dtypes("number").columns
    shown[numeric] = shown[numeric].round(digits)
    shown = _with_intervals(shown, digits)
    for column in [c for c in shown.select_dtypes(float).columns if "paper" not in str(c)]:  # the paper's as published
        # fixed decimals even beside a dash, which makes the column text to tabulate
        shown[column] = [value if pd.isna(value) else f"{value:.{digits}f}" for value in shown[column]]
    shown = shown.astype(object).where(shown.notna(), "—")
    table = shown.to_markdown(floatfmt=f".{digits}f").replace(" nan ", " — ") + "\n"
    return f"{caption}\n\n{table}" if caption else table


def table_files(folder: Path, name: str) -> tuple[Path, Path]:
    """The CSV and Markdown files of the table `name` in `folder` (`save_table`)."""
    csv = Path(folder) / f"{name}.csv"  # not with_suffix: a name may hold a dot (an experiment's p0.5)
    return csv, csv.with_name(f"{name}.md")


def save_table(frame: pd.DataFrame, folder: Path, name: str, digits: int = 2, caption: str = "") -> Path:
    """The table as CSV (full precision) and Markdown (`markdown_table`, with the caption: what is measured,
    where, over which tiles, at which threshold), written atomically."""
    csv, markdown = table_files(folder, name)
    write_text_atomic(csv, frame.to_csv())
    write_text_atomic(markdown, markdown_table(frame, digits, caption))
    return csv


def remove_table(folder: Path, name: str) -> list[Path]:
    """Deletes the files of a table `save_table` wrote, those that exist; returns them."""
    found = [path for path in table_files(folder, name) if path.exists()]
    for path in found:
        path.unlink()
    return found


def save_benchmark(table: pd.DataFrame, name: str, caption: str) -> Path:
    """A benchmark's table (benchmarks/*.py), one row per `entry`, stamped with this machine's reference training
    step and the time it finished, printed, and written to figures/benchmarks/<name> (`save_table`)."""
    from ..experiments.efficiency import reference_step_ms  # here only: it builds and steps a network

    table = table.assign(reference_step_ms=round(reference_step_ms()), finished_utc=time.strftime("%Y-%m-%d %H:%M"))
    print(table.round(3).to_string(index=False))
    return save_table(table.set_index("entry"), FIGURES_ROOT / "benchmarks", name, digits=3, caption=caption)
