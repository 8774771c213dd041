"""What the report reads: the files the pipeline published under `figures/<dataset>/<setting>/` (tables as CSV at
full precision with a rounded Markdown copy beside them, figures as PNG) and `figures/benchmarks/`.

Values are looked up by file, row and column, so that a file, row or column that is missing stops the build with
one line naming it: the report never shows a hole, a default or a number typed by hand."""
from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from ..paths import FIGURES_ROOT
from .output import undefined


class ReportError(ValueError):
    """A value or file the report needs is missing: one line that names it."""


def relative_link(target: Path, page: Path) -> str:
    """The link from a page to a file, as a relative POSIX path (GitHub and Sphinx both resolve it)."""
    return Path(os.path.relpath(target, page.parent)).as_posix()


@cache
def _read_csv(path: Path, mtime: float) -> pd.DataFrame:  # mtime: a file rewritten during a build is read again
    return pd.read_csv(path)


def read_table(path: Path) -> pd.DataFrame:
    """A published CSV (every column as written; the first column is the row label)."""
    if not path.is_file():
        raise ReportError(f"{path}: missing (the report reads it; ./run_all.sh writes it)")
    return _read_csv(path, path.stat().st_mtime)


class Published:
    """The published files of one folder under figures/ (a dataset's setting, or benchmarks), as one page sees
    them: figure links are relative to that page, through `figures_link`, where the page's tree sees figures/."""

    def __init__(self, folder: str, page: Path, figures_link: Path, root: Path = FIGURES_ROOT) -> None:
        self.name, self.folder = folder, Path(root) / folder
        self.page, self.figures_link, self.root = page, figures_link, Path(root)
        if not self.folder.is_dir():
            raise ReportError(f"{self.folder}: missing (no published results for {folder})")
        self.shown: set[str] = set()  # stems already on the page; `remaining` lists the rest

    def exists(self, stem: str) -> bool:
        return any((self.folder / f"{stem}{suffix}").is_file() for suffix in (".csv", ".md", ".png"))

    def notebook_numbers(self) -> list[str]:
        """The numbers of the notebooks whose wall time this setting recorded (run_all.sh's run_times.csv)."""
        names = self.frame("run_times")["notebook"].astype(str)
        return sorted({name[:2] for name in names if name[:2].isdigit()})

    def frame(self, stem: str) -> pd.DataFrame:
        return read_table(self.folder / f"{stem}.csv")

    def rows(self, stem: str) -> list[dict[str, Any]]:
        """Every row of a table as a dict (for loops in a template)."""
        return self.frame(stem).to_dict("records")

    def _labelled(self, stem: str, label: str) -> pd.DataFrame:
        frame = self.frame(stem)
        return frame[frame.iloc[:, 0].astype(str) == label]

    def has_row(self, stem: str, label: str) -> bool:
        return self.exists(stem) and not self._labelled(stem, label).empty

    def row(self, stem: str, label: str) -> dict[str, Any]:
        """The row whose first column is `label`."""
        found = self._labelled(stem, label)
        if found.empty:
            frame = self.frame(stem)
            raise ReportError(f"{self.folder / stem}.csv: no row '{label}' (rows: {', '.join(map(str, frame.iloc[:, 0]))})")
        return found.iloc[0].to_dict()

    def value(self, stem: str, label: str, column: str) -> Any:
        row = self.row(stem, label)
        if column not in row:
            raise ReportError(f"{self.folder / stem}.csv: no column '{column}' (columns: {', '.join(row)})")
        return row[column]

    def _shown(self, stem: str, suffix: str) -> Path:
        """A published file the page shows (marked as shown), or ReportError when the pipeline did not write it."""
        path = self.folder / f"{stem}{suffix}"
        if not path.is_file():
            raise ReportError(f"{path}: missing (the report shows it; ./run_all.sh writes it)")
        self.shown.add(stem)
        return path

    def table(self, stem: str) -> str:
        """The rounded Markdown table the pipeline wrote beside the CSV, caption included."""
        return self._shown(stem, ".md").read_text().strip() + "\n"

    def figure(self, stem: str, alt: str = "") -> str:
        """A Markdown image of `<stem>.png`, linked relative to the page."""
        path = self._shown(stem, ".png")
        target = self.figures_link / path.relative_to(self.root)
        return f"![{alt or stem.replace('_', ' ')}]({relative_link(target, self.page)})"

    def remaining(self, prefix: str) -> list[tuple[str, str]]:
        """(stem, "table" | "figure") of every published file starting with `prefix` that the page has not shown
        yet, tables first: so that every table and figure of a setting reaches the report."""
        stems = {p.stem: p.suffix for p in self.folder.iterdir() if p.name.startswith(prefix) and p.suffix in (".md", ".png")}
        kinds = [(stem, "table" if suffix == ".md" else "figure") for stem, suffix in stems.items() if stem not in self.shown]
        return sorted(kinds, key=lambda item: (item[1] != "table", item[0]))


def number(value: Any, digits: int = 3) -> str:
    """A measured value for prose: fixed digits; undefined (missing, NaN) is said, never shown as 0."""
    if undefined(value):
        return "undefined"
    if isinstance(value, int | float) and float(value).is_integer() and digits == 0:
        return f"{int(value)}"
    shown = f"{float(value):.{digits}f}"
    return shown.removeprefix("-") if float(shown) == 0 else shown  # a tiny negative rounds to 0, not "-0"


def interval(value: Any, low: Any, high: Any, digits: int = 3) -> str:
    """`value [low, high]`."""
    return f"{number(value, digits)} [{number(low, digits)}, {number(high, digits)}]"


def seed_tables(name: str, seeds: int = 5) -> list[str]:
    """The names of the tables a benchmark writes for one recipe's runs of seeds 0 .. seeds-1: the default seed goes
    unnamed, the others end in `-seedN` (as benchmarks/instances.py names them)."""
    return [name] + [f"{name}-seed{seed}" for seed in range(1, seeds)]


def fresh_shares(rows: list[dict[str, Any]], baseline: str) -> dict[str, float]:
    """The share of touching pairs each run of a benchmarks/pairs_split.py comparison splits, by its instances table's
    name: the baseline's (every row holds it) and each compared run's."""
    return {baseline: rows[0]["baseline split"], **{row["entry"]: row["touching pairs split"] for row in rows}}


def duration(seconds: Any) -> str:
    """Seconds as people read them: `45 s`, `12 min`, `2.1 h`."""
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def day(utc: Any) -> str:
    """The day of a UTC time the pipeline wrote (`2026-12-02T15:25:59Z` or `2026-12-02 15:25`): `2026-12-02`."""
    text = str(utc)
    if not re.match(r"\d{4}-\d{2}-\d{2}([T ]|$)", text):
        raise ReportError(f"'{text}' is not a UTC time of the form YYYY-MM-DD[THH:MM...]")
    return text[:10]


def reported(value: Any, digits: int = 1) -> str:
    """A value someone else reported (the paper's column): a dash where they report none."""
    return "—" if undefined(value) else number(value, digits)
