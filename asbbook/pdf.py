"""The whole book as one PDF (``make pdf``), printed by headless Chromium.

1. jupyter-book builds the single-page HTML (``singlehtml``) from the executed copies of the
   chapters that ``make book`` left in ``_build/src``, so the PDF shows the same run as the site;
2. a local HTTP server serves it (MathJax and its fonts load as on the site, with no CDN);
3. Chromium, driven by playwright, waits for MathJax to typeset every formula and prints the page
   (``asbbook.css`` hides the navigation in print); the PDF lands in ``_build/html/asbbook.pdf``,
   where the introduction links to it.

The browser is ``$ASBBOOK_CHROMIUM`` (default ``/usr/bin/chromium``, Debian's); the Pages
workflow points it at the runner's Google Chrome.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import sys
import threading
from pathlib import Path

from asbbook import notebooks

PDF_NAME = "asbbook.pdf"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_executable() -> str:
    """``$ASBBOOK_CHROMIUM`` or Debian's ``/usr/bin/chromium``; an error names the variable."""
    path = os.environ.get("ASBBOOK_CHROMIUM", DEFAULT_CHROMIUM)
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"no browser at {path!r}: install Debian's chromium or set ASBBOOK_CHROMIUM to a "
            "Chromium or Google Chrome executable"
        )
    return path


def build_singlehtml(stage: Path, output_root: Path, *, strict: bool = True) -> Path:
    """Run jupyter-book 1.x's ``singlehtml`` builder on ``stage``; returns the output folder."""
    return notebooks.run_jupyter_book(stage, output_root, "singlehtml", strict=strict)


def single_page(html_dir: Path) -> str:
    """The page holding the whole book, as a file at the top of ``html_dir``.

    jupyter-book writes it where the root document lives (``book/intro.html``) with links that are
    relative to the top (``_static/``, ``_images/``), and an ``index.html`` that redirects to it;
    a copy at the top makes those links resolve."""
    index = (html_dir / "index.html").read_text()
    match = re.search(r'url=([^"\s]+\.html)', index)
    target = match.group(1) if match else "index.html"
    if "/" not in target:
        return target
    (html_dir / "whole-book.html").write_text((html_dir / target).read_text())
    return "whole-book.html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` on a free port of 127.0.0.1 for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def print_pdf(html_dir: Path, pdf: Path, *, executable: str | None = None) -> Path:
    """Print the single page of ``html_dir`` to ``pdf`` (A4) once MathJax has typeset every
    formula."""
    from playwright.sync_api import sync_playwright

    executable = executable or chromium_executable()
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with serve(html_dir) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{url}/{single_page(html_dir)}", wait_until="load", timeout=300_000)
            page.wait_for_load_state("networkidle", timeout=300_000)
            page.evaluate(
                "() => (window.MathJax && MathJax.startup && MathJax.startup.promise)"
                " ? MathJax.startup.promise : null"
            )
            page.pdf(
                path=str(pdf),
                format="A4",
                print_background=True,
                margin={"top": "18mm", "bottom": "18mm", "left": "16mm", "right": "16mm"},
                display_header_footer=True,
                header_template="<span></span>",
                footer_template=(
                    '<div style="font-size:8px;width:100%;text-align:center">'
                    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
                ),
            )
        finally:
            browser.close()
    return pdf


def build_pdf(stage: Path, output_root: Path, html: Path, *, strict: bool = True) -> Path:
    """The single-page HTML of ``stage`` printed to ``html/asbbook.pdf``."""
    if not any(stage.glob("book/*.ipynb")):
        raise FileNotFoundError(f"no executed chapters in {stage}: run `make book` first")
    single = build_singlehtml(stage, output_root, strict=strict)
    return print_pdf(single, html / PDF_NAME)


def main() -> int:
    root = notebooks.project_root()
    pdf = build_pdf(root / "_build" / "src", root, root / "_build" / "html")
    print(f"wrote {pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
