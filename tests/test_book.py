"""The book as a whole: every chapter executes at smoke size, the book builds without warnings,
bad parameters stop a chapter with a clear message, and runs are deterministic."""

from __future__ import annotations

import re

import papermill
import pytest

from asbbook import notebooks


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


def test_every_internal_link_resolves(built_html):
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
