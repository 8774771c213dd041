"""The HTML report: Sphinx with MyST-NB and the book theme (`report/conf.py`), built from the sphinx rendering of the
pages and the executed notebooks as they are (no re-execution), and checked as a reader's browser would see it.

    report/_build/source/   the staged sources: pages, figures/ (a link to the repository's), notebooks/*.ipynb
    report/_build/html/     the built report; index.html is its first page
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..files import write_text_atomic
from ..paths import FIGURES_ROOT
from .notebook_pages import executed_notebooks
from .pages import REPORT_ROOT, changed_pages, render_pages, sphinx_layout

BUILD = REPORT_ROOT / "_build"
STAGE = BUILD / "source"
HTML = BUILD / "html"


def stage_sources(stage: Path = STAGE) -> Path:
    """Lay out the Sphinx sources: rendered pages, a link to figures/, and every finished executed notebook. Files
    that did not change keep their time stamps (Sphinx then rebuilds only what changed); files that are no longer
    sources are removed."""
    stage.mkdir(parents=True, exist_ok=True)
    if not (stage / "figures").is_symlink():
        (stage / "figures").symlink_to(FIGURES_ROOT, target_is_directory=True)
    wanted, notebooks = set(), {}
    for (dataset, setting), paths in executed_notebooks().items():
        for path in paths:
            target = stage / "notebooks" / dataset / setting / path.name
            if not target.is_file() or target.stat().st_mtime != path.stat().st_mtime:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
            wanted.add(target)
        notebooks[(dataset, setting)] = [path.stem for path in paths]
    pages = render_pages(sphinx_layout(stage, notebooks))
    for path, text in changed_pages(pages).items():
        write_text_atomic(path, text)
    wanted |= pages.keys()
    for path in stage.rglob("*"):
        if path.is_file() and not path.is_relative_to(stage / "figures") and path not in wanted:
            path.unlink()
    return stage


def build_html(stage: Path = STAGE, html: Path = HTML) -> Path:
    """sphinx-build with warnings as errors (a broken reference or a missing image fails); returns index.html."""
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", "-c", str(REPORT_ROOT),
               str(stage), str(html)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"sphinx-build failed:\n{result.stderr.strip()}")
    return html / "index.html"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.ids |= {value for key, value in attrs if key in ("id", "name") and value}
        for key in ("href", "src"):
            if found.get(key) and not (tag == "link" and found.get("rel") in ("preconnect", "dns-prefetch")):
                self.links.append(found[key])


def broken_links(html: Path = HTML) -> list[str]:
    """Every link or image of the built report that leads nowhere: a missing file, or a missing anchor in one of
    the report's own pages. Links to other sites are not followed (none may be needed to read the report)."""
    parsed = {}
    for page in sorted(Path(html).rglob("*.html")):
        if "_static" in page.relative_to(html).parts:  # the theme's own template fragments, not pages
            continue
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        parsed[page.resolve()] = parser
    problems = []
    for page, parser in parsed.items():
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith(("//", "mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{page.relative_to(Path(html).resolve())}: {link} (no such file)")
            elif parts.fragment and target in parsed and unquote(parts.fragment) not in parsed[target].ids:
                problems.append(f"{page.relative_to(Path(html).resolve())}: {link} (no such anchor)")
    return problems


def browser_check(index: Path, screenshot: Path, chromium: str = "/usr/bin/chromium") -> list[str]:
    """Open the report's first page in headless Chromium (Playwright driving the system's browser), save a
    screenshot, and say what a reader would miss: the headline table's rows, or a figure that does not load."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.goto(index.resolve().as_uri(), wait_until="load")
        rows = page.locator("#headline table tbody tr").count()
        images = page.evaluate("[...document.querySelectorAll('article img')].map(i => [i.getAttribute('src'),"
                               " i.complete && i.naturalWidth > 0])")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=False)
        browser.close()
    problems = [] if rows >= 2 else [f"{index}: the headline table shows {rows} rows"]
    problems += [] if images else [f"{index}: no figure on the page"]
    problems += [f"{index}: figure {src} does not load" for src, loaded in images if not loaded]
    return problems
