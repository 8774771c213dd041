"""Build the report from what the pipeline wrote (`./run_all.sh` calls this at its end; `--report-only` alone).

    python -m lib.report                 README.md and report/*.md from figures/ (and the default job's notebooks as
                                         Markdown when its executed copies are all there), then the HTML report
    python -m lib.report --no-html       the Markdown only
    python -m lib.report --html-only     the HTML only, leaving README.md and report/ as they are (the tests)
    python -m lib.report --check         exit 1 if README.md or a page under report/ differs from a fresh rendering
    python -m lib.report --check-site    after a build: every link and image of the HTML resolves, and the first
                                         page, opened in headless Chromium, shows the headline table and its figures
"""
from __future__ import annotations

import argparse
import sys

from ..cli import DEBUG_HELP, run
from ..files import write_text_atomic
from ..paths import REPO_ROOT
from .notebook_pages import executed_notebooks, write_notebook_pages
from .pages import PUBLISHED_NOTEBOOKS, REPORT_ROOT, changed_pages, markdown_layout, render_pages
from .site import BUILD, HTML, broken_links, browser_check, build_html, stage_sources

# The main job's notebooks: every numbered one but the budget sweep, which run_all.sh runs only with --budget.
MAIN_NOTEBOOKS = {path.name[:2] for path in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
                  if path.stem != "09_budget"}


def publish_notebooks() -> list[str]:
    """Render the default job's executed notebooks as Markdown, once every numbered notebook has an executed copy
    (a partial run never replaces a complete rendering)."""
    done = []
    executed = executed_notebooks()
    for dataset, setting in PUBLISHED_NOTEBOOKS:
        notebooks = executed.get((dataset, setting), [])
        numbers = {path.name[:2] for path in notebooks}
        if numbers >= MAIN_NOTEBOOKS:
            write_notebook_pages(notebooks, REPORT_ROOT / "notebooks" / dataset / setting)
            done.append(f"{dataset}/{setting}")
    return done


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m lib.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-html", action="store_true", help="render the Markdown only")
    parser.add_argument("--html-only", action="store_true", help="build the HTML only")
    parser.add_argument("--check", action="store_true", help="check that the committed pages are up to date")
    parser.add_argument("--check-site", action="store_true", help="check the built HTML's links and its rendering")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    args = parser.parse_args(argv)
    if args.check:
        stale = [str(path.relative_to(REPO_ROOT)) for path in changed_pages(render_pages(markdown_layout()))]
        if stale:
            print(f"error: out of date with figures/ (python -m lib.report rewrites them): {', '.join(stale)}", file=sys.stderr)
            sys.exit(1)
        print("[report] README.md and report/ are up to date with figures/")
        return
    if args.check_site:
        problems = broken_links() + browser_check(HTML / "index.html", BUILD / "index.png")
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            sys.exit(1)
        print(f"[report] links, images and the first page in Chromium are fine (screenshot {BUILD / 'index.png'})")
        return
    if not args.html_only:
        for name in publish_notebooks():
            print(f"[report] notebooks of {name} rendered as Markdown under report/notebooks/{name}/")
        for path, text in changed_pages(render_pages(markdown_layout())).items():
            write_text_atomic(path, text)
        print("[report] README.md and report/*.md rendered from figures/")
    if not args.no_html:
        stage_sources()
        try:
            index = build_html()
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        print(f"[report] {index.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    run(main)
