"""A small Sphinx extension for the book's HTML.

jupyter-book 1.x registers sphinx-thebe's inline configuration script twice on every page, so the
browser reports ``Identifier 'THEBE_JS_URL' has already been declared``. This extension drops
exact duplicates from each page's script list before the page is rendered.
"""

from __future__ import annotations


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


def setup(app):
    # Early: a later handler returns a template name, and Sphinx stops calling handlers after it.
    app.connect("html-page-context", drop_duplicate_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
