"""The report: pages rendered from the pipeline's files and up to date with them, no number typed into prose, a missing
value failing the build, notebooks rendered as Markdown with their images as files, the HTML's links and rendering."""
import base64
import io
import re
import subprocess
import sys

import nbformat
import pandas as pd
import pytest
from PIL import Image

from lib.paths import REPO_ROOT
from lib.report import pages
from lib.report.notebook_pages import write_notebook_pages
from lib.report.output import markdown_table, p_value, save_table
from lib.report.pages import TEMPLATES, changed_pages, markdown_layout, render_pages, typed_numbers
from lib.report.published import Published, ReportError, day, fresh_shares, interval, number, seed_tables
from lib.report.site import broken_links, browser_check, build_html


def test_committed_pages_are_up_to_date_with_figures():
    stale = [str(path.relative_to(REPO_ROOT)) for path in changed_pages(render_pages(markdown_layout()))]
    assert stale == [], f"run python -m lib.report: {stale}"


def test_readme_is_short():
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150 and len(readme.encode()) <= 12 * 1024


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.md")))
def test_no_number_is_typed_into_a_template(template):
    assert typed_numbers((TEMPLATES / template).read_text()) == []


def test_typed_numbers_finds_decimals_and_percentages_in_prose_only():
    text = ("Dice 0.717 here, 12% of tiles\n`0.5` in code and {{ x | number }} glued\n"
            "the paper's 95.5% stays\n```\n0.25\n```\n[link](v1.2.png) and a 95% interval\n")
    assert typed_numbers(text) == [(1, "0.717"), (1, "12%")]


def test_seed_tables_leave_the_default_seed_unnamed():
    assert seed_tables("instances-x", 3) == ["instances-x", "instances-x-seed1", "instances-x-seed2"]


def test_day_reads_the_day_of_the_pipelines_utc_times_and_refuses_anything_else():
    assert day("2026-12-02T15:25:59Z") == "2026-12-02"  # run_times.csv, run_tests.csv
    assert day("2026-12-04 03:10") == "2026-12-04"       # the benchmarks' finished_utc
    with pytest.raises(ReportError, match="not a UTC time"):
        day("Dec 2, 2026")


def test_fresh_shares_name_the_baseline_and_each_compared_run():
    rows = [{"entry": "b", "baseline split": 0.9, "touching pairs split": 0.8},
            {"entry": "c", "baseline split": 0.9, "touching pairs split": 0.95}]
    assert fresh_shares(rows, "a") == {"a": 0.9, "b": 0.8, "c": 0.95}


def write_published(folder):
    folder.mkdir(parents=True)
    (folder / "table.csv").write_text("model,Dice\nU-Net,0.5\n")
    (folder / "table.md").write_text("Caption.\n\n| model | Dice |\n|---|---|\n| U-Net | 0.50 |\n")
    Image.new("RGB", (4, 4)).save(folder / "plot.png")
    return folder


def test_published_values_and_what_is_missing(tmp_path):
    write_published(tmp_path / "figures" / "data" / "quick")
    page = tmp_path / "report" / "results" / "page.md"
    results = Published("data/quick", page, tmp_path / "figures", root=tmp_path / "figures")
    assert results.value("table", "U-Net", "Dice") == 0.5
    assert results.figure("plot", "a plot") == "![a plot](../../figures/data/quick/plot.png)"
    assert results.remaining("") == [("table", "table")]  # the figure is shown, the table not yet
    with pytest.raises(ReportError, match=r"table.csv: no row 'Enhanced' \(rows: U-Net\)"):
        results.value("table", "Enhanced", "Dice")
    with pytest.raises(ReportError, match=r"table.csv: no column 'IoU'"):
        results.value("table", "U-Net", "IoU")
    with pytest.raises(ReportError, match=r"other.csv: missing"):
        results.value("other", "U-Net", "Dice")
    with pytest.raises(ReportError, match=r"absent.png: missing"):
        results.figure("absent")
    with pytest.raises(ReportError, match="no published results"):
        Published("data/paper", page, tmp_path / "figures", root=tmp_path / "figures")


def test_formatting_says_undefined_and_never_prints_p_zero():
    assert interval(0.71649, 0.69707, float("nan")) == "0.716 [0.697, undefined]"
    assert p_value(5e-05) == "< 0.001" and p_value(0.0479) == "0.048"
    assert number(-1e-9, 0) == "0" and number(-0.0004) == "0.000" and number(-0.0006) == "-0.001"
    frame = pd.DataFrame({"Dice": [0.71, 0.64], "p vs U-Net": [5e-05, float("nan")], "Holm p": [0.0479, 0.2]})
    table = markdown_table(frame, digits=3)
    assert "< 0.001" in table and "0.048" in table and "0.0 " not in table and "—" in table
    differences = pd.DataFrame({"aji - U-Net": [None, -0.01, 0.0512], "aji - U-Net Holm p": [None, 1.0, 0.0004]},
                               dtype=object)  # as a notebook builds them: the reference row empty
    table = markdown_table(differences, digits=3)
    assert "-0.010" in table and "0.051" in table and "1.000" in table and "< 0.001" in table and "—" in table
    assert "| 78.2 " in markdown_table(pd.DataFrame({"paper Dice (%)": [78.2, None]}), digits=3)  # as the paper gives it


def test_a_table_named_with_a_dot_keeps_its_whole_name(tmp_path):
    csv = save_table(pd.DataFrame({"Dice": [0.5]}), tmp_path, "instances-stain_augmentation-p0.5-contact_weight-10")
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "instances-stain_augmentation-p0.5-contact_weight-10.csv", "instances-stain_augmentation-p0.5-contact_weight-10.md"]
    assert csv == tmp_path / "instances-stain_augmentation-p0.5-contact_weight-10.csv"


def test_an_undefined_name_in_a_template_stops_the_rendering(tmp_path, monkeypatch):
    (tmp_path / "index.md").write_text("Dice {{ no_such_value }}\n")
    monkeypatch.setattr(pages, "TEMPLATES", tmp_path)
    monkeypatch.setattr(pages, "FIXED_PAGES", ("index.md",))
    monkeypatch.setattr(pages, "published_settings", lambda: [])
    layout = pages.Layout("sphinx", tmp_path / "out", tmp_path / "figures", None)
    with pytest.raises(ReportError, match="index.md: 'no_such_value' is undefined"):
        render_pages(layout)


def png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_notebooks_become_markdown_with_their_images_as_files(tmp_path):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="\x1b[32mepoch 1/8\x1b[0m done\n"),
                    nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png_bytes()).decode(),
                                                                 "text/plain": "<Figure>"})]
    notebook.cells = [nbformat.v4.new_markdown_cell("# 01 · A notebook"), cell]
    source = tmp_path / "01_example.ipynb"
    nbformat.write(notebook, source)
    folder = tmp_path / "report" / "notebooks" / "synthetic" / "quick"
    (page,) = write_notebook_pages([source], folder)
    text = page.read_text()
    assert "# 01 · A notebook" in text and "epoch 1/8 done" in text and "\x1b" not in text
    assert "base64" not in text and "data:image" not in text
    images = list((folder / "01_example_files").glob("*.png"))
    assert len(images) == 1 and f"01_example_files/{images[0].name}" in text
    write_notebook_pages([source], folder)  # rendering again replaces the folder whole
    assert sorted(p.name for p in folder.iterdir()) == ["01_example.md", "01_example_files"]


def test_the_check_for_stored_outputs_catches_a_notebook_with_outputs(tmp_path):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1 + 1")
    notebook.cells = [cell]
    nbformat.write(notebook, tmp_path / "clean.ipynb")
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]
    cell.execution_count = 1
    nbformat.write(notebook, tmp_path / "executed.ipynb")
    verify = [sys.executable, "-m", "nbstripout", "--verify", "--keep-id"]
    assert subprocess.run(verify + [str(tmp_path / "clean.ipynb")], capture_output=True).returncode == 0
    assert subprocess.run(verify + [str(tmp_path / "executed.ipynb")], capture_output=True).returncode == 1


def test_broken_links_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes())
    (tmp_path / "other.html").write_text('<h1 id="top">x</h1>')
    (tmp_path / "index.html").write_text(
        '<a href="other.html#top">ok</a><img src="a.png"><a href="https://example.org/x">outside</a>'
        '<a href="gone.html">gone</a><a href="other.html#nowhere">bad anchor</a><img src="b.png">')
    assert broken_links(tmp_path) == ["index.html: gone.html (no such file)", "index.html: other.html#nowhere (no such anchor)",
                                      "index.html: b.png (no such file)"]


@pytest.mark.slow
def test_sphinx_build_fails_on_a_missing_image(tmp_path):
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "index.md").write_text("# Report\n\n![a figure](missing.png)\n")
    with pytest.raises(RuntimeError, match="missing.png"):
        build_html(tmp_path / "source", tmp_path / "html")
    (tmp_path / "source" / "missing.png").write_bytes(png_bytes())
    assert build_html(tmp_path / "source", tmp_path / "html").is_file()


@pytest.mark.slow
def test_browser_check_sees_the_headline_table_and_a_broken_figure(tmp_path):
    (tmp_path / "fig.png").write_bytes(png_bytes())
    table = "<section id='headline'><table><tbody><tr><td>U-Net</td></tr><tr><td>Enhanced</td></tr></tbody></table></section>"
    (tmp_path / "good.html").write_text(f"<article>{table}<img src='fig.png'></article>")
    (tmp_path / "bad.html").write_text("<article><img src='fig.png'><img src='lost.png'></article>")
    assert browser_check(tmp_path / "good.html", tmp_path / "good.png") == []
    assert (tmp_path / "good.png").stat().st_size > 0
    bad = tmp_path / "bad.html"
    assert browser_check(bad, tmp_path / "bad.png") == [f"{bad}: the headline table shows 0 rows",
                                                        f"{bad}: figure lost.png does not load"]


def github_anchor(heading):
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_to_a_section_of_another_page_find_its_heading():
    rendered = render_pages(markdown_layout())
    for page, text in rendered.items():
        for target, anchor in re.findall(r"\]\(([^)#\s]+\.md)#([^)\s]+)\)", text):
            headings = (page.parent / target).resolve().read_text()
            anchors = {github_anchor(line.lstrip("#")) for line in headings.splitlines() if line.startswith("#")}
            assert anchor in anchors, f"{page.relative_to(REPO_ROOT)}: {target}#{anchor} names no heading there"


def test_every_page_has_one_title_and_a_published_model_card_sits_below_it():
    rendered = render_pages(markdown_layout())
    for page, text in rendered.items():
        prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)   # a shell comment is no heading
        titles = [line for line in prose.splitlines() if line.startswith("# ")]
        assert len(titles) == 1, f"{page.relative_to(REPO_ROOT)}: {len(titles)} top-level headings {titles[:3]}"
    cards = list((REPO_ROOT / "figures" / "benchmarks").glob("*-model_card.md"))
    benchmarks = next(text for page, text in rendered.items() if page.name == "benchmarks.md")
    for card in cards:   # written as a page of its own (# title), shown as a section of the benchmarks page
        title = card.read_text().splitlines()[0]
        assert title.startswith("# Model card") and f"##{title}" in benchmarks


def test_a_folder_of_run_records_only_is_no_setting_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(pages, "FIGURES_ROOT", tmp_path)
    (tmp_path / "ucsb" / "quick-cv5-bf16").mkdir(parents=True)
    (tmp_path / "ucsb" / "quick-cv5-bf16" / "09_budget-cost.md").write_text("table")
    (tmp_path / "ucsb" / "quick-cv5-in256-bf16" / "budget-e8" / "unet_region").mkdir(parents=True)  # records only
    (tmp_path / "benchmarks" / "x").mkdir(parents=True)
    (tmp_path / "benchmarks" / "x" / "y.csv").write_text("a")
    assert pages.published_settings() == [("ucsb", "quick-cv5-bf16")]
