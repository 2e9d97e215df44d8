"""A small Sphinx extension for the book's HTML.

* jupyter-book 1.x registers sphinx-thebe's inline configuration script twice on every page, so
  the browser reports ``Identifier 'THEBE_JS_URL' has already been declared``. This extension
  drops exact duplicates from each page's script list before the page is rendered.
* It serves the book's own stylesheet and script (``asbbook/_static``): figures sized to the
  column, undimmed in the dark theme and opened full size on a click or tap; display equations,
  code and tables that never widen the page (see ``asbbook.css``).
* The single-page build (``make pdf``) writes ``hide-input`` cells as the HTML build does.
* A figure's image without alt text (a ``{glue:figure}`` without ``:alt:``) gets its caption as
  alt text, instead of the hashed file name the HTML writer would otherwise use.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes

STATIC = Path(__file__).resolve().parent / "_static"


def _script_identity(script) -> tuple:
    # Inline scripts appear once with filename None and once with "": both mean "no file".
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", str(script)) or ""
    return (filename, tuple(sorted((k, str(v)) for k, v in attributes.items())))


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        identity = _script_identity(script)
        if identity not in seen:
            seen.add(identity)
            unique.append(script)
    # In place: the list is the builder's own, to which later handlers (MathJax) still append.
    scripts[:] = unique


def alt_text_from_captions(app, doctree, docname) -> int:
    """Give every image inside a captioned figure that has no alt text the caption's text.

    Returns the number of images changed (for the tests)."""
    changed = 0
    for figure in doctree.findall(nodes.figure):
        captions = [child for child in figure.children if isinstance(child, nodes.caption)]
        if not captions:
            continue
        text = " ".join(captions[0].astext().split())
        for image in figure.findall(nodes.image):
            if not image.get("alt", "").strip():
                image["alt"] = text
                changed += 1
    return changed


def add_static_path(app, config) -> None:
    config.html_static_path.append(str(STATIC))


def hidden_input_in_one_page_builds(app) -> None:
    """myst-nb registers the writer of its collapsed-input node (``hide-input`` cells) for the
    ``html`` builder only; the single-page build behind ``make pdf`` writes it the same way."""
    from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput, visit_HideCellInput

    app.registry.add_translation_handlers(
        HideCodeCellNode, singlehtml=(visit_HideCellInput, depart_HideCellInput)
    )


def setup(app):
    hidden_input_in_one_page_builds(app)
    # Early: a later handler returns a template name, and Sphinx stops calling handlers after it.
    app.connect("html-page-context", drop_duplicate_scripts, priority=100)
    app.connect("config-inited", add_static_path)
    app.connect("doctree-resolved", alt_text_from_captions)
    app.add_css_file("asbbook.css")
    app.add_js_file("asbbook.js", loading_method="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
