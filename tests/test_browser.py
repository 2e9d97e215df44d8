"""A real browser (headless Chromium driven by playwright) against the built HTML.

Every page: MathJax typeset the math (``mjx-container`` present where the source has math, no raw
``\\(`` left), every image loaded, no console error. Chapter pages also carry the launch (Binder,
Colab) and download buttons. The reader's presentation (issue 16): no page scrolls sideways on a
390 px phone; at 1280 px no display equation is wider than the column and no visible code line is
clipped; every figure has real alt text and a numbered caption, is shown at (nearly) its natural
size, stays undimmed in the dark theme and opens full size on a click. The presentation checks are
themselves tested on a two-page book (``tests/minibook.py``) with a page that passes and one that
fails each check.

The browser is ``$ASBBOOK_CHROMIUM`` (default Debian's ``/usr/bin/chromium``). Without it the
test is skipped, except under CI where that is a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import minibook
import pytest

from asbbook.pdf import CHROMIUM_FLAGS, chromium_executable

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    try:
        executable = chromium_executable()
    except FileNotFoundError as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} (under CI .ci/run installs Debian's chromium)")
        pytest.skip(f"{missing}; browser test skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output readable
        pass


def serve(directory: Path):
    handler = functools.partial(QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture(scope="module")
def server(built_html: Path):
    httpd, url = serve(built_html)
    yield url
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def mini(root, tmp_path_factory):
    """The two-page presentation test book (``tests/minibook.py``), built and served."""
    html = minibook.build(root, tmp_path_factory.mktemp("minibook"))
    httpd, url = serve(html)
    yield url
    httpd.shutdown()
    httpd.server_close()


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


# --- The reader's presentation (issue 16) ---------------------------------------------------------

PRESENTATION_JS = """() => {
    const article = document.querySelector('.bd-article') || document.body;
    const style = getComputedStyle(article);
    const column = article.clientWidth - parseFloat(style.paddingLeft)
        - parseFloat(style.paddingRight);
    const hidden = el => el.closest('details:not([open]), .toggle-hidden, .asb-lightbox')
        || el.offsetParent === null;
    const figures = Array.from(article.querySelectorAll('img')).filter(img =>
        !img.closest('.asb-lightbox') && (img.closest('figure') || img.closest('.cell_output')));
    const hashed = /^[0-9a-f]{16,}(\\.[a-z]+)?$/i;
    return {
        column,
        page_width: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
        viewport: window.innerWidth,
        wide_equations: Array.from(article.querySelectorAll(
                'div.math, mjx-container[display="true"]'))
            .filter(el => !hidden(el) && (el.getBoundingClientRect().width > column + 1
                // content spilling out of its box, rather than scrolling inside it
                || (el.scrollWidth > el.clientWidth + 1
                    && !['auto', 'scroll'].includes(getComputedStyle(el).overflowX))))
            .map(el => `${Math.round(el.getBoundingClientRect().width)} px: `
                + el.textContent.slice(0, 60)),
        clipped_code: Array.from(article.querySelectorAll('div.highlight pre, .cell_output pre'))
            .filter(el => !hidden(el) && el.scrollWidth > el.clientWidth + 1)
            .map(el => el.textContent.split('\\n').sort((a, b) => b.length - a.length)[0]
                .slice(0, 90)),
        // lines of the tallest first-column cell of every table
        table_first_columns: Array.from(article.querySelectorAll('table'))
            .filter(t => !hidden(t)).map(t => {
                const cells = Array.from(t.querySelectorAll('tr > :first-child'));
                // the height of the cell's text, not of the cell (which is the row's height)
                const lines = cells.map(c => {
                    const range = document.createRange();
                    range.selectNodeContents(c);
                    const height = range.getBoundingClientRect().height;
                    return Math.round(height / (parseFloat(getComputedStyle(c).lineHeight) || 24));
                });
                return {lines: Math.max(0, ...lines),
                        first: (cells[1] || cells[0] || {textContent: ''}).textContent.trim()
                            .slice(0, 40)};
            }),
        figures: figures.map(img => {
            const name = (img.getAttribute('src') || '').split('/').pop();
            const alt = (img.getAttribute('alt') || '').trim();
            const figure = img.closest('figure');
            const number = figure && figure.querySelector('figcaption .caption-number');
            return {
                src: name,
                alt_ok: alt.length >= 10 && alt !== name && !hashed.test(alt)
                    && !alt.includes('_images/'),
                numbered_caption: !!(number && /\\d/.test(number.textContent)),
                svg: /\\.svg$/i.test(name),
                scale: img.naturalWidth ? img.getBoundingClientRect().width / img.naturalWidth : 0,
                natural_width: img.naturalWidth,
                filter: getComputedStyle(img).filter,
            };
        }),
    };
}"""


def presentation(browser, url: str, viewport: dict, *, dark: bool = False) -> dict:
    page = browser.new_page(viewport=viewport)
    try:
        page.goto(url, wait_until="load")
        page.wait_for_load_state("networkidle")
        page.evaluate(
            "() => (window.MathJax && MathJax.startup && MathJax.startup.promise)"
            " ? MathJax.startup.promise : null"
        )
        if dark:
            page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")
        return page.evaluate(PRESENTATION_JS)
    finally:
        page.close()


def phone_problems(result: dict) -> list[str]:
    if result["page_width"] > result["viewport"] + 1:
        return [f"the page is {result['page_width']} px wide on a {result['viewport']} px phone"]
    return []


def desktop_problems(result: dict) -> list[str]:
    problems = [f"display equation wider than the column: {e}" for e in result["wide_equations"]]
    problems += [f"code line clipped: {line!r}" for line in result["clipped_code"]]
    return problems


# SVG figures are drawn with text of at least 9 pt = 12 CSS px (asbbook.plotting), so shown at
# >= 11/12 of their natural size their smallest text stays >= 11 CSS px; a raster figure needs
# twice the pixels it is shown with.
MIN_SVG_SCALE = 11 / 12


def table_problems(result: dict) -> list[str]:
    return [
        f"a table's first column wraps onto {t['lines']} lines (first row {t['first']!r})"
        for t in result["table_first_columns"]
        if t["lines"] > 2
    ]


def figure_problems(result: dict) -> list[str]:
    problems = []
    for figure in result["figures"]:
        if not figure["alt_ok"]:
            problems.append(f"{figure['src']}: no alt text saying what it shows")
        if not figure["numbered_caption"]:
            problems.append(f"{figure['src']}: no numbered caption")
        if figure["svg"] and figure["scale"] < MIN_SVG_SCALE:
            problems.append(
                f"{figure['src']}: shown at {figure['scale']:.2f} of its size, text below 11 px"
            )
        if not figure["svg"] and figure["scale"] > 0.5:
            problems.append(f"{figure['src']}: raster at {1 / figure['scale']:.1f}x, not >= 2x")
    return problems


def dark_problems(result: dict) -> list[str]:
    return [
        f"{f['src']}: dimmed in the dark theme ({f['filter']})"
        for f in result["figures"]
        if f["filter"] not in ("none", "")
    ]


@pytest.mark.browser
def test_presentation_checks_pass_on_a_good_page_and_fail_on_a_bad_one(browser, mini):
    good_phone = presentation(browser, f"{mini}/good.html", PHONE)
    good_desktop = presentation(browser, f"{mini}/good.html", DESKTOP)
    good_dark = presentation(browser, f"{mini}/good.html", DESKTOP, dark=True)
    assert len(good_desktop["figures"]) == 2
    assert phone_problems(good_phone) == []
    assert desktop_problems(good_desktop) == []
    assert figure_problems(good_desktop) == []
    assert dark_problems(good_dark) == []

    bad_phone = presentation(browser, f"{mini}/bad.html", PHONE)
    bad_desktop = presentation(browser, f"{mini}/bad.html", DESKTOP)
    assert phone_problems(bad_phone)
    problems = desktop_problems(bad_desktop)
    assert any("display equation" in p for p in problems), problems
    assert any("code line clipped" in p for p in problems), problems
    assert table_problems(good_desktop) == []
    tables = table_problems(bad_desktop)
    assert tables and "wraps onto" in tables[0], tables
    figures = figure_problems(bad_desktop)
    assert any("no numbered caption" in p for p in figures), figures
    assert any("no alt text" in p for p in figures), figures
    assert any("of its size" in p or "raster" in p for p in figures), figures


@pytest.mark.browser
def test_figure_opens_full_size_and_hidden_input_toggles(browser, mini):
    page = browser.new_page(viewport=DESKTOP)
    try:
        page.goto(f"{mini}/good.html", wait_until="load")
        page.wait_for_load_state("networkidle")
        figure = page.locator(".bd-article figure img").first
        shown = figure.bounding_box()["width"]
        figure.click()
        lightbox = page.locator(".asb-lightbox.asb-open img")
        lightbox.wait_for(state="visible")
        assert lightbox.bounding_box()["width"] > 1.5 * shown
        page.keyboard.press("Escape")
        assert page.locator(".asb-lightbox.asb-open").count() == 0
        # A figure is also a plain link to its image file.
        href = page.locator(".bd-article figure a.asb-zoom").first.get_attribute("href")
        assert href.endswith(".svg")
        # `hide-input`: the plotting code is collapsed behind a toggle, which opens it.
        hidden = page.locator("details.hide.above-input")
        assert hidden.count() == 1
        code = hidden.locator("div.highlight pre")
        assert not code.is_visible()
        hidden.locator("summary").click()
        assert code.is_visible()
        assert "glue_figure" in code.inner_text()
    finally:
        page.close()
    # On a phone the two panels are shown at half size; a tap gives them at full size, to pan.
    phone = browser.new_page(viewport=PHONE)
    try:
        phone.goto(f"{mini}/good.html", wait_until="load")
        phone.wait_for_load_state("networkidle")
        figure = phone.locator(".bd-article figure img").first
        shown = figure.bounding_box()["width"]
        natural = figure.evaluate("img => img.naturalWidth")
        assert shown < 0.6 * natural
        figure.click()
        enlarged = phone.locator(".asb-lightbox.asb-open img")
        enlarged.wait_for(state="visible")
        assert enlarged.bounding_box()["width"] >= natural - 1
    finally:
        phone.close()


@pytest.mark.browser
def test_no_page_scrolls_sideways_on_a_phone(browser, server, built_html):
    problems = {}
    for rel in pages(built_html):
        found = phone_problems(presentation(browser, f"{server}/{rel}", PHONE))
        if found:
            problems[rel] = found
    assert problems == {}


@pytest.mark.browser
def test_equations_and_code_fit_the_column_at_desktop_width(browser, server, built_html):
    problems = {}
    for rel in pages(built_html):
        found = desktop_problems(presentation(browser, f"{server}/{rel}", DESKTOP))
        if found:
            problems[rel] = found
    assert problems == {}


@pytest.mark.browser
def test_no_table_first_column_wraps_beyond_two_lines(browser, server, built_html):
    problems = {}
    for rel in pages(built_html):
        found = table_problems(presentation(browser, f"{server}/{rel}", DESKTOP))
        if found:
            problems[rel] = found
    assert problems == {}


@pytest.mark.browser
def test_figures_stay_undimmed_in_the_dark_theme(browser, server, built_html):
    problems = {}
    for rel in pages(built_html):
        found = dark_problems(presentation(browser, f"{server}/{rel}", DESKTOP, dark=True))
        if found:
            problems[rel] = found
    assert problems == {}


@pytest.mark.browser
def test_every_figure_has_alt_text_a_numbered_caption_and_readable_text(
    browser, server, built_html
):
    problems, figures = {}, 0
    for rel in pages(built_html):
        result = presentation(browser, f"{server}/{rel}", DESKTOP)
        figures += len(result["figures"])
        found = figure_problems(result)
        if found:
            problems[rel] = found
    assert figures >= 6
    assert problems == {}
