"""Executing chapters with papermill and building the book from the executed copies.

The pipeline (``make book`` = ``asbbook build``):

1. every notebook listed in ``_toc.yml`` is executed by papermill into ``_build/src/``
   (a copy of the book's source tree), at full size or with the smoke parameters stored in the
   notebook's metadata (``metadata.asbbook.smoke_parameters``);
2. generated appendix pages (parameter table, execution report) are written into the same tree;
3. jupyter-book 1.x builds the HTML from that tree with ``-W -n --keep-going`` and its own
   execution off, so the pages and their download buttons carry the executed notebooks.

An executed copy is stamped with the execution key of its inputs (source, parameters, code) as
they were when its run *started*; if they changed while it ran, it is not stamped, so the next
build runs it again. Chapters run in kernels with :data:`KERNEL_ENV` (no progress bars, no
warnings), so the published notebooks carry no stderr debris (:func:`stderr_outputs`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import nbformat
import yaml

ROOT_FILES = ("_config.yml", "_toc.yml", "references.bib")
SMOKE_KEY = "smoke_parameters"
# The chapters' kernels inherit these: tqdm (>= 4.66) reads TQDM_DISABLE for bars left at its
# defaults and asbbook.sweep checks it for its own; warnings would be published as stderr.
KERNEL_ENV = {"TQDM_DISABLE": "1", "PYTHONWARNINGS": "ignore"}


def project_root(start: Path | None = None) -> Path:
    """The directory holding ``_toc.yml`` (searched upwards from ``start`` or the working dir)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "_toc.yml").is_file() and (candidate / "book").is_dir():
            return candidate
    package_parent = Path(__file__).resolve().parent.parent
    if (package_parent / "_toc.yml").is_file():
        return package_parent
    raise FileNotFoundError("no _toc.yml found: run from inside the asbbook repository")


def _toc_files(entries: Iterable[dict]) -> list[str]:
    files = []
    for entry in entries:
        if "file" in entry:
            files.append(entry["file"])
        for key in ("sections", "chapters"):
            files.extend(_toc_files(entry.get(key, [])))
        for part in entry.get("parts", []):
            files.extend(_toc_files(part.get("chapters", [])))
    return files


def toc_entries(root: Path) -> list[str]:
    """Every page of ``_toc.yml``, in reading order, as paths without suffix (``book/01-boltzmann``)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    return [toc["root"], *_toc_files([toc])]


def toc_notebooks(root: Path) -> list[Path]:
    """The chapters: ``_toc.yml`` entries that are notebooks in the source tree."""
    return [root / f"{e}.ipynb" for e in toc_entries(root) if (root / f"{e}.ipynb").is_file()]


def smoke_parameters(notebook: Path) -> dict:
    """The smoke-sized parameters a chapter declares in ``metadata.asbbook.smoke_parameters``."""
    nb = nbformat.read(notebook, as_version=4)
    return dict(nb.metadata.get("asbbook", {}).get(SMOKE_KEY, {}))


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """The parameters cell as papermill infers it: ``{name: {inferred_type_name, default, help}}``."""
    import papermill

    return papermill.inspect_notebook(str(notebook))


def code_fingerprint() -> str:
    """The ``asbbook`` version plus a hash of its sources: the same code version that keys the
    sweep cache (:func:`asbbook.sweep.code_version`), so both caches go stale together."""
    from asbbook.sweep import code_version

    return code_version()


def execution_key(source: Path, parameters: dict) -> str:
    """What an executed copy depends on: the source notebook, the parameters and the code."""
    digest = hashlib.sha256(source.read_bytes())
    digest.update(json.dumps(parameters, sort_keys=True).encode())
    digest.update(code_fingerprint().encode())
    return digest.hexdigest()[:16]


def is_up_to_date(executed: Path, key: str) -> bool:
    """True when ``executed`` exists, ran without error, and was produced from the same inputs."""
    if not executed.is_file():
        return False
    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:
        return False
    meta = nb.metadata.get("asbbook", {})
    return meta.get("execution_key") == key and not nb.metadata.get("papermill", {}).get(
        "exception"
    )


@contextlib.contextmanager
def environment(values: dict[str, str]):
    """Set environment variables for the duration of the block (the kernel papermill starts
    inherits them), then restore the previous values."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute_chapter(
    source: Path,
    executed: Path,
    parameters: dict | None = None,
    *,
    cwd: Path | None = None,
    progress: bool = True,
    timeout: int | None = None,
    key: str | None = None,
) -> Path:
    """Execute one chapter with papermill into ``executed`` (a fresh kernel every time).

    The copy is stamped with ``key`` (default: :func:`execution_key` of the inputs now, before
    the run). The key is computed again after the run; if the source, the parameters or the
    code changed meanwhile, the copy is not stamped but marked ``inputs_changed_during_run``
    (see :func:`inputs_changed_during_run`), so it is never taken for up to date.
    """
    import papermill

    parameters = dict(parameters or {})
    key = execution_key(source, parameters) if key is None else key
    executed.parent.mkdir(parents=True, exist_ok=True)
    with environment(KERNEL_ENV):
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=parameters,
            cwd=str(cwd or source.parent),
            progress_bar=progress,
            kernel_name="python3",
            execution_timeout=timeout,
        )
    unchanged = execution_key(source, parameters) == key
    nb = nbformat.read(executed, as_version=4)
    meta = nb.metadata.setdefault("asbbook", {})
    meta.pop("execution_key", None)
    meta.pop("inputs_changed_during_run", None)
    if unchanged:
        meta["execution_key"] = key
    else:
        meta["inputs_changed_during_run"] = True
    nbformat.write(nb, executed)
    return executed


def inputs_changed_during_run(executed: Path) -> bool:
    """True when :func:`execute_chapter` found the inputs changed while ``executed`` ran."""
    nb = nbformat.read(executed, as_version=4)
    return bool(nb.metadata.get("asbbook", {}).get("inputs_changed_during_run"))


def glued_values(notebook: Path) -> dict[str, str]:
    """The values a chapter glued (myst-nb ``glue``), as their ``text/plain`` representations.

    myst-nb stores a glued value under ``<mime_prefix>text/plain`` (the prefix is recorded in the
    output's ``scrapbook`` metadata, ``application/papermill.record/`` for ``display=False``).
    """
    nb = nbformat.read(notebook, as_version=4)
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get("scrapbook", {})
            if "name" in record:
                key = f"{record.get('mime_prefix', '')}text/plain"
                values[record["name"]] = out.get("data", {})[key]
    return values


def error_outputs(notebook: Path) -> list[str]:
    """Every error output of an executed notebook, as ``ename: evalue`` strings."""
    nb = nbformat.read(notebook, as_version=4)
    return [
        f"{out.get('ename')}: {out.get('evalue')}"
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


def stderr_outputs(notebook: Path) -> list[str]:
    """The text of every stderr stream output of an executed notebook (progress bars, warnings):
    what must not be published."""
    nb = nbformat.read(notebook, as_version=4)
    return [
        "".join(out.get("text", ""))
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stderr"
    ]


def strip_outputs(notebook: Path) -> bool:
    """Remove outputs, execution counts and papermill metadata in place; True when it changed."""
    nb = nbformat.read(notebook, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)
    after = nbformat.writes(nb)
    if after != before:
        notebook.write_text(after)
    return after != before


def stage_source_tree(root: Path, stage: Path) -> None:
    """Copy the book's non-notebook sources (config, toc, bibliography, pages) into ``stage``."""
    stage.mkdir(parents=True, exist_ok=True)
    for name in ROOT_FILES:
        shutil.copy2(root / name, stage / name)
    for path in (root / "book").rglob("*"):
        if path.is_file() and path.suffix != ".ipynb" and "__pycache__" not in path.parts:
            target = stage / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


class BuildTimes(dict):
    """Wall time per chapter in seconds (0.0 for a chapter reused as is), plus the chapters whose
    inputs changed while they ran (``changed_during_run``) and those whose executed copy has
    stderr outputs (``with_stderr``)."""

    def __init__(self):
        super().__init__()
        self.changed_during_run: list[str] = []
        self.with_stderr: list[str] = []


def execute_book(
    root: Path,
    stage: Path,
    *,
    smoke: bool = False,
    only: Iterable[str] | None = None,
    force: bool = False,
    progress: bool = True,
    jobs: int = 1,
) -> BuildTimes:
    """Execute every chapter into ``stage``; skip those whose executed copy is up to date.

    Each chapter is keyed on its inputs as they were when its run started; a chapter whose inputs
    changed during the run is reported (and left stale for the next build). With ``jobs > 1``
    that many chapters run at once, each in its own kernel (they are independent: a chapter
    reads other chapters' numbers only when the HTML is built).
    """
    from concurrent.futures import ThreadPoolExecutor

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    stage_source_tree(root, stage)
    times = BuildTimes()
    todo = []
    for source in toc_notebooks(root):
        if only is not None and source.stem not in set(only):
            continue
        parameters = smoke_parameters(source) if smoke else {}
        executed = stage / source.relative_to(root)
        key = execution_key(source, parameters)
        if not force and is_up_to_date(executed, key):
            print(f"[asbbook] {source.stem}: up to date, not re-executed", flush=True)
            times[source.stem] = 0.0
            continue
        todo.append((source, executed, parameters, key))

    def run(job) -> float:
        source, executed, parameters, key = job
        size = "smoke" if smoke else "full"
        print(f"[asbbook] executing {source.stem} ({size} size)", flush=True)
        start = time.perf_counter()
        execute_chapter(
            source, executed, parameters, cwd=root, progress=progress and jobs == 1, key=key
        )
        return time.perf_counter() - start

    # One environment for the whole pool, so no thread restores it under another's kernel.
    with environment(KERNEL_ENV), ThreadPoolExecutor(max_workers=jobs) as pool:
        for (source, executed, _, _), seconds in zip(todo, pool.map(run, todo), strict=True):
            times[source.stem] = seconds
            if inputs_changed_during_run(executed):
                times.changed_during_run.append(source.stem)
                print(
                    f"[asbbook] {source.stem}: its source, parameters or the asbbook code changed "
                    "while it ran; the executed copy is NOT marked up to date (build again)",
                    flush=True,
                )
            debris = stderr_outputs(executed)
            if debris:
                times.with_stderr.append(source.stem)
                print(
                    f"[asbbook] {source.stem}: {len(debris)} stderr output(s) in the executed "
                    f"copy, first: {debris[0].strip()[:120]!r}",
                    flush=True,
                )
    return times


def run_jupyter_book(stage: Path, output_root: Path, builder: str, *, strict: bool = True) -> Path:
    """Run jupyter-book 1.x's ``builder`` on ``stage`` (every page: chapter 6 glues numbers from
    other chapters' executed copies); returns ``output_root/_build/<builder>``, which must then
    hold an ``index.html``. ``strict`` turns warnings into errors (``-W -n``)."""
    command = [
        sys.executable,
        "-c",
        "from jupyter_book.cli.main import main; main()",
        "build",
        str(stage),
        "--path-output",
        str(output_root),
        "--builder",
        builder,
        "--all",
    ]
    if strict:
        command += ["-W", "-n", "--keep-going"]
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    subprocess.run(command, check=True, env=env)
    out = output_root / "_build" / builder
    if not (out / "index.html").is_file():
        raise RuntimeError(f"jupyter-book finished but wrote no {out / 'index.html'}")
    return out


def build_html(stage: Path, output_root: Path, *, strict: bool = True) -> Path:
    """Run jupyter-book 1.x on ``stage``; the HTML lands in ``output_root/_build/html``."""
    return run_jupyter_book(stage, output_root, "html", strict=strict)
