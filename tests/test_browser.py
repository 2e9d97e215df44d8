"""A real browser (Debian's headless Chromium driven by playwright) against the built HTML.

Every page: MathJax typeset the math (``mjx-container`` present where the source has math, no raw
``\\(`` left), every image loaded, no console error. Chapter pages also carry the launch (Binder,
Colab) and download buttons. Without Chromium the test is skipped, except under CI where that is a
failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest
from conftest import chromium_path

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing under CI: .ci/run must install Debian's chromium")
        pytest.skip(
            "Debian chromium is not installed (apt-get install chromium); browser test skipped"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def server(built_html: Path):
    handler = functools.partial(QuietHandler, directory=str(built_html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def visit(browser, url: str) -> dict:
    page = browser.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    failed = []
    page.on("requestfailed", lambda req: failed.append(req.url))
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    # MathJax typesets asynchronously; wait for its startup promise when the page loads it.
    page.evaluate(
        "() => (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise : null"
    )
    result = page.evaluate(
        """() => ({
            math_nodes: document.querySelectorAll('.math, span.math, div.math').length,
            mjx: document.querySelectorAll('mjx-container').length,
            raw_inline: document.body.innerText.includes('\\\\('),
            raw_display: document.body.innerText.includes('\\\\['),
            broken_images: Array.from(document.images)
                .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src),
            images: document.images.length,
            tables: document.querySelectorAll('table').length,
            raw_table_rows: (document.body.innerText.match(/^\\|.*\\|$/gm) || []).length,
            binder: document.querySelectorAll('a[href*="mybinder.org"]').length,
            colab: document.querySelectorAll('a[href*="colab.research.google.com"]').length,
            download_ipynb: document.querySelectorAll('a[href$=".ipynb"]').length,
            nav_links: Array.from(document.querySelectorAll('nav.bd-links a.reference.internal'))
                .map(a => a.getAttribute('href')),
        })"""
    )
    page.close()
    result["console_errors"] = errors
    result["failed_requests"] = failed
    return result


def pages(built_html: Path) -> list[str]:
    return sorted(str(p.relative_to(built_html)) for p in (built_html / "book").glob("*.html"))


@pytest.mark.browser
def test_every_page_renders_math_images_and_no_console_errors(browser, server, built_html):
    checked = 0
    for rel in pages(built_html):
        result = visit(browser, f"{server}/{rel}")
        assert result["console_errors"] == [], (rel, result["console_errors"])
        assert result["failed_requests"] == [], (rel, result["failed_requests"])
        assert result["broken_images"] == [], (rel, result["broken_images"])
        assert not result["raw_inline"] and not result["raw_display"], f"{rel}: untypeset math"
        assert result["raw_table_rows"] == 0, f"{rel}: a Markdown table was rendered as plain text"
        if result["math_nodes"]:
            assert result["mjx"] > 0, (
                f"{rel}: MathJax did not typeset {result['math_nodes']} math nodes"
            )
        checked += 1
    assert checked >= 2


@pytest.mark.browser
def test_chapter_page_has_math_figures_launch_and_download_buttons(browser, server):
    result = visit(browser, f"{server}/book/01-boltzmann.html")
    assert result["mjx"] >= 10
    assert result["images"] >= 3
    assert result["tables"] >= 1  # the asserted predicted-versus-measured table
    assert result["binder"] >= 1 and result["colab"] >= 1
    assert result["download_ipynb"] >= 1


@pytest.mark.browser
def test_navigation_reaches_every_toc_page(browser, server, root):
    from asbbook import notebooks

    result = visit(browser, f"{server}/book/intro.html")
    reachable = {href.split("#")[0] for href in result["nav_links"]}
    for entry in notebooks.toc_entries(root)[1:]:
        target = Path(entry).name + ".html"
        assert any(h.endswith(target) for h in reachable), (entry, sorted(reachable))
