"""The book as a whole: every chapter executes at smoke size, the book builds without warnings,
bad parameters stop a chapter with a clear message, and runs are deterministic. The generated
records (execution report, re-run appendix, bibliography links), the exercise syntax of
CONTRIBUTING.md and the PDF of the whole book are checked in what the build wrote."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import minibook
import papermill
import pytest

from asbbook import notebooks, pdf, report


def test_every_toc_chapter_executes_without_error_outputs(executed_book, root):
    chapters = notebooks.toc_notebooks(root)
    assert chapters, "no chapter notebooks listed in _toc.yml"
    for chapter in chapters:
        executed = executed_book["stage"] / chapter.relative_to(root)
        assert executed.is_file(), f"{chapter.name} was not executed"
        assert notebooks.error_outputs(executed) == [], chapter.name
        glued = notebooks.glued_values(executed)
        assert glued, f"{chapter.name} glues no numbers into its prose"
        assert all(value.strip() for value in glued.values()), f"{chapter.name}: empty glued value"


def test_every_chapter_declares_its_false_failure_bound_within_the_book_budget(executed_book, root):
    bounds = {}
    for chapter in notebooks.toc_notebooks(root):
        glued = notebooks.glued_values(executed_book["stage"] / chapter.relative_to(root))
        assert "false_failure_bound" in glued, f"{chapter.name} declares no false_failure_bound"
        bounds[chapter.name] = float(glued["false_failure_bound"])
        assert 0 < bounds[chapter.name] <= report.CHAPTER_ALPHA * (1 + 1e-9), bounds
    assert sum(bounds.values()) <= report.BOOK_FALSE_FAILURE_BUDGET, bounds
    # a committed calibration summary tested the bounds this build declares, not older ones
    summary = root / "bench" / "calibration" / "summary.json"
    if summary.is_file():
        rows = json.loads(summary.read_text())
        for row in rows:
            if row["chapter"] == "book":  # the chapters calibrated at that size
                size = {r["chapter"] for r in rows if r["size"] == row["size"]} - {"book"}
                expected = sum(b for name, b in bounds.items() if name[:2] in size)
            else:
                expected = next(b for name, b in bounds.items() if name[:2] == row["chapter"])
            assert row["declared_bound"] == pytest.approx(expected, rel=1e-9), row


def test_book_builds_from_executed_copies_with_no_warnings(built_html, root):
    for entry in notebooks.toc_entries(root):
        assert (built_html / f"{entry}.html").is_file(), entry
    # The download button serves the executed notebook, not the stripped source.
    for chapter in notebooks.toc_notebooks(root):
        served = built_html / "_sources" / chapter.relative_to(root)
        assert served.is_file()
        assert notebooks.glued_values(served), f"{served} is not the executed copy"


def test_pages_load_no_remote_script_and_typeset_math_offline(built_html):
    pages = list(built_html.rglob("*.html"))
    assert pages
    for page in pages:
        html = page.read_text()
        remote = re.findall(r'<script[^>]+src="(https?://[^"]+)"', html)
        assert remote == [], (page.name, remote)
    chapter = (built_html / "book" / "01-boltzmann.html").read_text()
    assert re.search(r'<script[^>]+src="[./]*_static/mathjax/tex-chtml\.js', chapter)
    assert (built_html / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_generated_appendix_lists_every_parameter(built_html, root):
    text = (built_html / "book" / "appendix-rerun.html").read_text()
    assert "FALSE-FAILURE-TABLE" not in text and "<strong>book</strong> (sum)" in text
    for chapter in notebooks.toc_notebooks(root):
        for name in notebooks.declared_parameters(chapter):
            assert (
                f'<code class="docutils literal notranslate"><span class="pre">{name}</span>'
                in text
            ), name


@pytest.mark.parametrize(
    ("parameter", "value", "message"),
    [
        ("beta", -1, "parameter 'beta' must be a positive number"),
        ("n_samples", 2.5, "parameter 'n_samples' must be an integer"),
        ("device", "tpu", "parameter 'device' must be"),
    ],
)
def test_bad_parameter_stops_chapter_one_with_a_named_message(
    tmp_path, root, parameter, value, message
):
    chapter = root / "book" / "01-boltzmann.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as error:
        papermill.execute_notebook(
            str(chapter),
            str(tmp_path / "bad.ipynb"),
            parameters={**notebooks.smoke_parameters(chapter), parameter: value},
            progress_bar=False,
            cwd=str(root),
        )
    assert error.value.ename == "ParameterError"
    assert message in error.value.evalue


def test_chapter_one_is_deterministic(executed_book, root, tmp_path):
    chapter = root / "book" / "01-boltzmann.ipynb"
    again = notebooks.execute_chapter(
        chapter,
        tmp_path / "again.ipynb",
        notebooks.smoke_parameters(chapter),
        cwd=root,
        progress=False,
    )
    first = notebooks.glued_values(executed_book["stage"] / "book" / chapter.name)
    second = notebooks.glued_values(again)
    assert len(first) > 10
    assert all(value.strip() for value in first.values()), "glued values must not be empty"
    assert first == second


def test_every_internal_link_resolves(built_html, book_pdf):
    from urllib.parse import unquote, urlparse

    checked = 0
    for page in built_html.rglob("*.html"):
        if "_static" in page.relative_to(built_html).parts:
            continue  # theme template fragments, not pages
        html = page.read_text()
        for href in re.findall(r'(?:href|src)="([^"]+)"', html):
            parsed = urlparse(href)
            if parsed.scheme or href.startswith(("#", "mailto:", "//", "javascript:")):
                continue
            target = (page.parent / unquote(parsed.path)).resolve()
            assert target.exists(), f"{page.relative_to(built_html)} links to missing {href}"
            if parsed.fragment and target.suffix == ".html":
                ids = re.findall(r'id="([^"]+)"', target.read_text())
                assert unquote(parsed.fragment) in ids, f"{page.name}: no anchor {href}"
            checked += 1
    assert checked > 100


@pytest.fixture(scope="module")
def book_pdf(executed_book, built_html) -> Path:
    """``make pdf``: the single-page HTML of the executed book printed by Chromium into the HTML
    folder, where the introduction links to it."""
    try:
        pdf.chromium_executable()
    except FileNotFoundError as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(str(missing))
        pytest.skip(str(missing))
    return pdf.build_pdf(executed_book["stage"], executed_book["out"], built_html)


def test_the_pdf_has_every_chapter_as_selectable_text(book_pdf, built_html, root):
    from pypdf import PdfReader

    assert book_pdf == built_html / "asbbook.pdf"
    reader = PdfReader(book_pdf)
    assert len(reader.pages) >= 30  # six chapters and four appendices, each several pages
    text = " ".join(page.extract_text() or "" for page in reader.pages)
    words = re.findall(r"[A-Za-z]{3,}", text)
    assert len(words) > 5000, "the PDF's text is not selectable (printed as images?)"
    for chapter in notebooks.toc_notebooks(root):
        title = nbformat_title(chapter)
        assert " ".join(title.split()[:3]) in " ".join(text.split()), title
    assert "Bibliography" in text and "Execution report" in text
    intro = (built_html / "book" / "intro.html").read_text()
    assert 'href="../asbbook.pdf"' in intro


def nbformat_title(chapter: Path) -> str:
    import nbformat

    nb = nbformat.read(chapter, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    return first.source.splitlines()[0].lstrip("# ").strip()


def test_execution_report_records_machine_commit_versions_seeds_and_times(built_html, root):
    import html as html_lib

    page = html_lib.unescape(
        re.sub(r"<[^>]+>", " ", (built_html / "book" / "appendix-execution.html").read_text())
    )
    text = " ".join(page.split())
    for label in ("platform", "CPU cores", "Python", "commit", "Package versions"):
        assert label in text, label
    assert re.search(r"commit [0-9a-f]{40}", text)
    assert re.search(r"torch 2\.13\.0", text) and re.search(r"jupyter-book 1\.0\.4", text)
    for chapter in notebooks.toc_notebooks(root):
        row = re.search(rf"{re.escape(chapter.stem)} (smoke|full) (.*?) \d{{4}}-\d\d-\d\dT", text)
        assert row, f"no row for {chapter.stem}"
        if any("seed" in name for name in notebooks.declared_parameters(chapter)):
            assert re.search(r"seed\w* = \d+", row.group(2)), (chapter.stem, row.group(2))


def test_rerun_appendix_gives_the_working_install_command(built_html, root):
    from asbbook.appendix import colab_install_cell_source, repository_url

    page = (built_html / "book" / "appendix-rerun.html").read_text()
    text = re.sub(r"<[^>]+>", "", page)
    assert "&lt;repository URL&gt;" not in page and "<repository URL>" not in text
    assert f"git+{repository_url(root)}" in text
    assert f"git clone {repository_url(root)}" in text
    assert "except ImportError" in text and len(colab_install_cell_source(root)) > 100


def test_every_bibliography_entry_links_a_doi_arxiv_or_publisher_page(built_html):
    page = (built_html / "book" / "bibliography.html").read_text()
    entries = re.findall(
        r'<div class="citation"[^>]*role="doc-biblioentry">(.*?)</div>', page, re.S
    )
    entries = entries or re.split(r'<dt class="label"', page)[1:]
    assert len(entries) >= 10
    for entry in entries:
        assert re.search(
            r'href="https://(doi\.org|arxiv\.org/abs|mitpress|papers\.nips\.cc)', entry
        ), entry[:300]
    assert 'href="https://arxiv.org/abs/2201.07934"' in page


def test_exercises_with_gated_solutions_build_strictly_and_execute(root, tmp_path):
    """The syntax CONTRIBUTING.md gives chapter authors builds under ``-W -n``, numbers the
    exercise, links its solution, and the solution's code cell ran."""
    html = minibook.build(root, tmp_path)
    page = (html / "good.html").read_text()
    assert re.search(r'class="exercise admonition"[^>]*id="mini-ex1"', page) or (
        'id="mini-ex1"' in page and "exercise admonition" in page
    )
    assert "Exercise 1" in page
    assert 'class="solution dropdown admonition"' in page
    assert "the solution ran: 4" in page  # the solution's code cell was executed
    assert re.search(r'<span class="eqno">\(1\)', page)  # the numbered equation
    assert page.count('<span class="caption-number">Fig. ') == 2
