"""Generated parts of the appendices, written into the staged book at build time.

The source pages hold markers that :func:`write_generated_pages` replaces:

* ``<!-- PARAMETER-TABLES -->``: every chapter's parameters, read from the notebooks themselves
  with ``papermill.inspect_notebook`` (never typed by hand);
* ``<!-- EXECUTION-REPORT -->``: the wall time of every chapter in the last build, read from the
  executed notebooks' papermill metadata.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from asbbook import notebooks

PARAMETER_MARKER = "<!-- PARAMETER-TABLES -->"
EXECUTION_MARKER = "<!-- EXECUTION-REPORT -->"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def parameter_tables(root: Path) -> str:
    """One Markdown table per chapter: name, type, default, help."""
    blocks = []
    for chapter in notebooks.toc_notebooks(root):
        title = f"### `{chapter.relative_to(root)}`"
        rows = ["| parameter | type | default | smoke value | meaning |", "|---|---|---|---|---|"]
        smoke = notebooks.smoke_parameters(chapter)
        for name, info in notebooks.declared_parameters(chapter).items():
            rows.append(
                f"| `{name}` | {_cell(info.get('inferred_type_name', ''))} | `{_cell(info.get('default'))}` "
                f"| {('`' + _cell(smoke[name]) + '`') if name in smoke else '—'} | {_cell(info.get('help', ''))} |"
            )
        blocks.append(title + "\n\n" + "\n".join(rows))
    return "\n\n".join(blocks)


def execution_report(root: Path, stage: Path) -> str:
    """A table of chapter, parameters (full or smoke) and papermill's recorded duration."""
    rows = ["| chapter | size | executed at (UTC) | wall time (s) |", "|---|---|---|---|"]
    total = 0.0
    for chapter in notebooks.toc_notebooks(root):
        executed = stage / chapter.relative_to(root)
        if not executed.is_file():
            rows.append(f"| `{chapter.stem}` | not executed | — | — |")
            continue
        meta = nbformat.read(executed, as_version=4).metadata.get("papermill", {})
        duration = float(meta.get("duration") or 0.0)
        total += duration
        size = "smoke" if meta.get("parameters") else "full"
        rows.append(
            f"| `{chapter.stem}` | {size} | {str(meta.get('end_time', '—'))[:19]} | {duration:.1f} |"
        )
    rows.append(f"| **total** | | | **{total:.1f}** |")
    return "\n".join(rows)


def write_generated_pages(root: Path, stage: Path) -> None:
    """Fill the markers of every staged Markdown page."""
    for page in (stage / "book").glob("*.md"):
        text = page.read_text()
        if PARAMETER_MARKER in text:
            text = text.replace(PARAMETER_MARKER, parameter_tables(root))
        if EXECUTION_MARKER in text:
            text = text.replace(EXECUTION_MARKER, execution_report(root, stage))
        page.write_text(text)
