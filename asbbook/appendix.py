"""Generated parts of the appendices, written into the staged book at build time.

The source pages hold markers that :func:`write_generated_pages` replaces:

* ``<!-- PARAMETER-TABLES -->``: every chapter's parameters, read from the notebooks themselves
  with ``papermill.inspect_notebook`` (never typed by hand);
* ``<!-- EXECUTION-REPORT -->``: the record of the build: the machine, the commit, the package
  versions, and per chapter its size, seeds and wall time (from the executed notebooks' papermill
  metadata);
* ``<!-- COLAB-INSTALL -->``: the first cell of every chapter, which installs the package on Colab
  from ``repository.url`` of ``_config.yml`` (:func:`colab_install_cell_source`);
* ``<!-- REPOSITORY-URL -->``: that URL itself;
* ``<!-- FALSE-FAILURE-TABLE -->``: each chapter's declared false-failure bound, from the
  executed copies, beside the calibration run's observed failures (:func:`false_failure_table`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import nbformat
import yaml

from asbbook import notebooks

PARAMETER_MARKER = "<!-- PARAMETER-TABLES -->"
EXECUTION_MARKER = "<!-- EXECUTION-REPORT -->"
COLAB_MARKER = "<!-- COLAB-INSTALL -->"
REPOSITORY_MARKER = "<!-- REPOSITORY-URL -->"
FALSE_FAILURE_MARKER = "<!-- FALSE-FAILURE-TABLE -->"
CALIBRATION_SUMMARY = Path("bench") / "calibration" / "summary.json"


def repository_url(root: Path) -> str:
    """``repository.url`` of ``_config.yml``: the one place the repository URL is set."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    url = str(config.get("repository", {}).get("url", "")).strip()
    if not url.startswith("https://"):
        raise ValueError(f"_config.yml: repository.url must be an https:// URL, got {url!r}")
    return url


def colab_install_cell_source(root: Path) -> str:
    """The first code cell of every chapter: on Colab (or anywhere ``asbbook`` is missing) it
    installs the package from the repository; where it is installed (Binder, ``make book``, CI)
    it only imports it."""
    url = repository_url(root)
    return (
        "# On Colab, or wherever the book's package is missing, install it from the repository.\n"
        "try:\n"
        "    import asbbook\n"
        "except ImportError:\n"
        "    import subprocess\n"
        "    import sys\n"
        "\n"
        f'    package = "git+{url}"\n'
        '    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", package])\n'
        "    import asbbook"
    )


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


def _git_commit(root: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"`{head}`" + (" (with uncommitted changes)" if dirty else "")


def machine_rows() -> list[tuple[str, str]]:
    """The build machine: platform, Python, CPU count and the torch device available."""
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return [
        ("platform", platform.platform()),
        (
            "processor",
            platform.machine() + (f" ({platform.processor()})" if platform.processor() else ""),
        ),
        ("CPU cores", str(os.cpu_count())),
        ("torch threads", str(torch.get_num_threads())),
        ("CUDA device", cuda),
        ("Python", platform.python_version()),
    ]


def package_versions(root: Path) -> dict[str, str]:
    """The installed version of every runtime dependency pinned in ``pyproject.toml``."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    versions = {}
    for requirement in project["dependencies"]:
        name = requirement.split("==")[0].split(">")[0].split("<")[0].strip()
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def chapter_seeds(chapter: Path, executed: Path) -> dict[str, object]:
    """Every parameter whose name contains ``seed``, with the value the run used: papermill's
    injected value when there was one, else the parameters cell's default."""
    declared = notebooks.declared_parameters(chapter)
    injected = nbformat.read(executed, as_version=4).metadata.get("papermill", {})
    injected = injected.get("parameters") or {}
    return {
        name: injected.get(name, info.get("default"))
        for name, info in declared.items()
        if "seed" in name
    }


def execution_report(root: Path, stage: Path) -> str:
    """The record of a build: machine, commit, per-chapter size, seeds and papermill's wall time,
    and the installed version of every pinned package."""
    lines = ["## Machine and commit", "", "| what | value |", "|---|---|"]
    lines += [f"| {key} | {_cell(value)} |" for key, value in machine_rows()]
    lines.append(f"| commit | {_git_commit(root)} |")
    lines += [
        "",
        "## Chapters",
        "",
        "| chapter | size | seeds | executed at (UTC) | wall time (s) |",
        "|---|---|---|---|---|",
    ]
    total = 0.0
    for chapter in notebooks.toc_notebooks(root):
        executed = stage / chapter.relative_to(root)
        if not executed.is_file():
            lines.append(f"| `{chapter.stem}` | not executed | — | — | — |")
            continue
        meta = nbformat.read(executed, as_version=4).metadata.get("papermill", {})
        duration = float(meta.get("duration") or 0.0)
        total += duration
        size = "smoke" if meta.get("parameters") else "full"
        seeds = ", ".join(f"`{k} = {v}`" for k, v in chapter_seeds(chapter, executed).items())
        lines.append(
            f"| `{chapter.stem}` | {size} | {seeds or '—'} "
            f"| {str(meta.get('end_time', '—'))[:19]} | {duration:.1f} |"
        )
    lines.append(f"| **total** | | | | **{total:.1f}** |")
    lines += ["", "## Package versions", "", "| package | version |", "|---|---|"]
    lines += [f"| `{name}` | {version} |" for name, version in package_versions(root).items()]
    return "\n".join(lines)


def false_failure_table(root: Path, stage: Path) -> str:
    """Each executed chapter's declared ``false_failure_bound`` and their sum, beside what the
    calibration run (``bench/calibrate.py``, its ``summary.json``) observed at smoke and full
    size ("not run" where it has no record)."""
    observed = {}
    summary = root / CALIBRATION_SUMMARY
    if summary.is_file():
        observed = {(r["chapter"], r["size"]): r for r in json.loads(summary.read_text())}
    lines = [
        "| chapter | declared bound (this build) | calibration, smoke size: chance failures "
        "/ seeds (95% interval of the rate) | calibration, full size |",
        "|---|---|---|---|",
    ]
    total = 0.0
    for chapter in notebooks.toc_notebooks(root):
        executed = stage / chapter.relative_to(root)
        glued = notebooks.glued_values(executed) if executed.is_file() else {}
        bound = float(glued["false_failure_bound"]) if "false_failure_bound" in glued else None
        total += bound or 0.0
        lines.append(
            f"| `{chapter.stem}` | {'—' if bound is None else f'{bound:.2g}'} "
            f"| {_observed(observed.get((chapter.stem[:2], 'smoke')))} "
            f"| {_observed(observed.get((chapter.stem[:2], 'full')))} |"
        )
    lines.append(
        f"| **book** (sum) | **{total:.2g}** | {_observed(observed.get(('book', 'smoke')))} "
        f"| {_observed(observed.get(('book', 'full')))} |"
    )
    return "\n".join(lines)


def _observed(row: dict | None) -> str:
    if row is None:
        return "not run"
    lo, hi = row["ci95"]
    return f"{row['chance_failures']} / {row['seeds']} ({lo:.3f}–{hi:.3f})"


def write_generated_pages(root: Path, stage: Path) -> None:
    """Fill the markers of every staged Markdown page."""
    for page in (stage / "book").glob("*.md"):
        text = page.read_text()
        if PARAMETER_MARKER in text:
            text = text.replace(PARAMETER_MARKER, parameter_tables(root))
        if EXECUTION_MARKER in text:
            text = text.replace(EXECUTION_MARKER, execution_report(root, stage))
        if COLAB_MARKER in text:
            cell = colab_install_cell_source(root)
            text = text.replace(COLAB_MARKER, f"```python\n{cell}\n```")
        if FALSE_FAILURE_MARKER in text:
            text = text.replace(FALSE_FAILURE_MARKER, false_failure_table(root, stage))
        if REPOSITORY_MARKER in text:
            text = text.replace(REPOSITORY_MARKER, repository_url(root))
        page.write_text(text)
