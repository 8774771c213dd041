"""The report's pages: Markdown templates (`report/templates/`, Jinja) rendered with every number read from the
pipeline's files (`lib.report.published`) or the profiles, never typed.

One set of templates, two renderings (`Layout`):
- `markdown`: committed, read on GitHub without building anything: `README.md` and `report/*.md`, with links to the
  committed Markdown renderings of executed notebooks (`report/notebooks/`);
- `sphinx`: the sources of the HTML report (`report/_build/source/`), whose notebook pages are the executed
  notebooks themselves (MyST-NB).
An undefined name, or a file, row or column the pipeline did not write, stops the rendering with one line: a stale
or missing value fails the build instead of reaching a reader."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from ..config import load_config
from ..paths import FIGURES_ROOT, REPO_ROOT
from .notebook_pages import folder_size
from .output import p_value
from .published import Published, ReportError, day, duration, fresh_shares, interval, number, relative_link, reported, seed_tables

REPORT_ROOT = REPO_ROOT / "report"
TEMPLATES = REPORT_ROOT / "templates"
BENCHMARKS = "benchmarks"
FIXED_PAGES = ("index.md", "methods.md", "usage.md", "benchmarks.md", "notebooks.md")
# Whose executed notebooks are committed as Markdown: the default main job (`./run_all.sh`).
PUBLISHED_NOTEBOOKS = (("synthetic", "quick"),)


@dataclass(frozen=True)
class Layout:
    """Where one rendering puts its pages, where its pages see figures/, and which notebook pages exist there."""
    flavour: str                     # markdown | sphinx
    pages: Path                      # report pages (index.md, results/, ...)
    figures: Path                    # figures/ as this tree links to it
    readme: Path | None              # README.md (the markdown rendering only)
    notebooks: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (dataset, setting) -> stems
    notebook_suffix: str = ".md"


def markdown_layout() -> Layout:
    """The committed rendering; its notebook pages are the committed Markdown renderings found under report/."""
    found: dict[tuple[str, str], list[str]] = {}
    for page in sorted((REPORT_ROOT / "notebooks").glob("*/*/*.md")):
        found.setdefault((page.parent.parent.name, page.parent.name), []).append(page.stem)
    return Layout("markdown", REPORT_ROOT, FIGURES_ROOT, REPO_ROOT / "README.md", found, ".md")


def sphinx_layout(stage: Path, notebooks: dict[tuple[str, str], list[str]]) -> Layout:
    return Layout("sphinx", stage, stage / "figures", None, notebooks, ".ipynb")


def published_settings() -> list[tuple[str, str]]:
    """(dataset, setting) of every folder of results under figures/ (one that holds only run records, in
    subfolders, as a full-resolution budget point's setting does, has no results of its own)."""
    return sorted((d.parent.name, d.name) for d in FIGURES_ROOT.glob("*/*")
                  if d.is_dir() and d.parent.name != BENCHMARKS and any(path.is_file() for path in d.iterdir()))


def results_page(dataset: str, setting: str) -> str:
    return f"results/{dataset}-{setting}.md"


def runs_page(dataset: str, setting: str) -> str:
    return f"results/{dataset}-{setting}-runs.md"


def page_targets(layout: Layout) -> list[tuple[str, Path, dict[str, Any]]]:
    """(template, output page, extra context) of every page of a rendering."""
    targets = [] if layout.readme is None else [("README.md", layout.readme, {})]
    targets += [(name, layout.pages / name, {}) for name in FIXED_PAGES]
    for dataset, setting in published_settings():
        context = {"dataset": dataset, "setting": setting}
        targets.append(("results.md", layout.pages / results_page(dataset, setting), context))
        if any((FIGURES_ROOT / dataset / setting).glob("03_train-*")):
            targets.append(("runs.md", layout.pages / runs_page(dataset, setting), context))
    return targets


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(number=number, p=p_value, duration=duration, day=day, reported=reported)
    env.globals.update(interval=interval, seed_tables=seed_tables, fresh_shares=fresh_shares)
    return env


def _context(layout: Layout, page: Path, targets: list[Path]) -> dict[str, Any]:
    """What a template may use besides the filters: the published results, links that are checked, the profiles."""

    def link(name: str) -> str:  # another page of the report
        target = layout.pages / name
        if target not in targets:
            raise ReportError(f"{page}: link to '{name}', which is not a page of the report")
        return relative_link(target, page)

    def repo_file(path: str) -> str:  # a file of the repository: a link on GitHub, its name in the HTML report
        if not (REPO_ROOT / path).exists():
            raise ReportError(f"{page}: '{path}' does not exist in the repository")
        return f"`{path}`" if layout.flavour == "sphinx" else f"[`{path}`]({relative_link(REPO_ROOT / path, page)})"

    def notebook(dataset: str, setting: str, stem: str, text: str = "") -> str:
        if stem not in layout.notebooks.get((dataset, setting), []):
            raise ReportError(f"{page}: no executed notebook {dataset}/{setting}/{stem} to link to")
        target = layout.pages / "notebooks" / dataset / setting / f"{stem}{layout.notebook_suffix}"
        return f"[{text or stem}]({relative_link(target, page)})"

    return {
        "sphinx": layout.flavour == "sphinx",
        "results": lambda folder: Published(folder, page, layout.figures),
        "settings": published_settings(),
        "results_page": lambda dataset, setting: link(results_page(dataset, setting)),
        "runs_page": lambda dataset, setting: link(runs_page(dataset, setting)),
        "has_runs_page": lambda dataset, setting: layout.pages / runs_page(dataset, setting) in targets,
        "link": link,
        "repo_file": repo_file,
        "notebook": notebook,
        "notebooks": layout.notebooks,
        "notebook_folder_size": lambda dataset, setting: folder_size(layout.pages / "notebooks" / dataset / setting),
        "config": load_config,
    }


def render_pages(layout: Layout) -> dict[Path, str]:
    """Every page of a rendering as text (nothing is written)."""
    env, targets = _environment(), page_targets(layout)
    paths = [path for _, path, _ in targets]
    pages = {}
    for template, path, extra in targets:
        try:
            pages[path] = env.get_template(template).render(**_context(layout, path, paths), **extra)
        except jinja2.TemplateSyntaxError as error:
            raise ReportError(f"{error.filename}:{error.lineno}: {error.message}") from None
        except jinja2.UndefinedError as error:
            raise ReportError(f"{TEMPLATES / template}: {error}") from None
        except ReportError as error:
            raise ReportError(f"{TEMPLATES / template} -> {path.relative_to(REPO_ROOT)}: {error}") from None
    return pages


def changed_pages(pages: dict[Path, str]) -> dict[Path, str]:
    """The rendered pages whose file does not hold that text yet (missing or different)."""
    return {path: text for path, text in pages.items() if not path.is_file() or path.read_text() != text}


# A decimal number or a percentage in a template's prose is typed by hand, unless the line says it is the paper's
# (95%, the level of every interval, is a convention, not a result).
_TYPED_NUMBER = re.compile(r"(?<![\w.\-/])\d+\.\d+(?![\w/])|(?<![\w.])\d+(?:\.\d+)?\s?%")
_NOT_PROSE = re.compile(r"```.*?```|`[^`\n]*`|\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|\]\([^)]*\)", re.S)


def typed_numbers(text: str) -> list[tuple[int, str]]:
    """(line, number) of every decimal number or percentage typed into prose: outside code, Jinja expressions and
    link targets, on lines that do not label it as the paper's."""
    prose = _NOT_PROSE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    found = []
    for line_number, line in enumerate(prose.splitlines(), start=1):
        if "paper" in text.splitlines()[line_number - 1].lower():
            continue
        found += [(line_number, m.group(0)) for m in _TYPED_NUMBER.finditer(line) if m.group(0) != "95%"]
    return found
