"""Executed notebooks as Markdown that GitHub renders: each notebook's cells and outputs as `<name>.md`, its images
as PNG files beside it in `<name>_files/` (no base64 in the text), written by nbconvert.

Only the executed copies that `run_all.sh` finished are used (`results/<dataset>/<setting>/notebooks/*.ipynb`; an
interrupted one is still `.ipynb.partial`)."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import nbconvert
import nbformat

from ..paths import RESULTS_ROOT

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def executed_notebooks(root: Path = RESULTS_ROOT) -> dict[tuple[str, str], list[Path]]:
    """(dataset, setting) -> the executed notebooks run_all.sh finished there, in notebook order."""
    found: dict[tuple[str, str], list[Path]] = {}
    for notebook in sorted(Path(root).glob("*/*/notebooks/[0-9][0-9]_*.ipynb")):
        found.setdefault((notebook.parents[2].name, notebook.parents[1].name), []).append(notebook)
    return found


def notebook_markdown(notebook: Path) -> tuple[str, dict[str, bytes]]:
    """The notebook as Markdown, and its output images by file name (`<stem>_files/output_<cell>_<n>.png`)."""
    node = nbformat.read(notebook, as_version=4)
    for cell in node.cells:  # progress lines carry terminal colours, which Markdown would show as garbage
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = _ANSI.sub("", output["text"])
    exporter = nbconvert.MarkdownExporter()
    body, resources = exporter.from_notebook_node(node, resources={"output_files_dir": f"{notebook.stem}_files"})
    return body, resources.get("outputs", {})


def write_notebook_pages(notebooks: list[Path], folder: Path) -> list[Path]:
    """Render the notebooks into `folder`, replacing what was there in one rename: a reader never finds half of the
    old pages and half of the new."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    pages = []
    for notebook in notebooks:
        body, images = notebook_markdown(notebook)
        for name, data in images.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(data)
        (staging / f"{notebook.stem}.md").write_text(body)
        pages.append(folder / f"{notebook.stem}.md")
    old = folder.with_name(f".{folder.name}.old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)
    return pages


def folder_size(folder: Path) -> tuple[int, int]:
    """(files, bytes) under a folder."""
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)
