"""The ``asbbook`` command line.

``asbbook list``                      the chapters and their parameters
``asbbook run CHAPTER -p NAME VALUE`` run one chapter with papermill (unknown names are refused)
``asbbook sweep CHAPTER [--scheduler ADDRESS]``  run a chapter's sweeps into its cache (Dask optional)
``asbbook build [--smoke]``           execute every chapter and build the HTML (``make book``)
``asbbook strip``                     remove outputs from the committed notebooks

A user error (unknown chapter or parameter, a bad value, an unusable path, a Dask scheduler that
cannot be used) is one line on stderr, ``asbbook: error: ...``, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from asbbook import notebooks


class CliError(Exception):
    """A user error: printed without a traceback, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is the same single ``asbbook: error: ...`` line as the rest."""

    def error(self, message):
        self.exit(2, f"{self.prog.split()[0]}: error: {message}\n")


def find_chapter(root: Path, name: str) -> Path:
    """Resolve ``01``, ``01-boltzmann``, ``boltzmann`` or a path to one chapter notebook."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_file():
        return path.resolve()
    chapters = notebooks.toc_notebooks(root)
    matches = [
        c
        for c in chapters
        if c.stem == name or c.stem.startswith(f"{name}-") or c.stem.endswith(f"-{name}")
    ]
    if len(matches) != 1:
        known = ", ".join(c.stem for c in chapters)
        raise CliError(f"unknown chapter {name!r}; the chapters are: {known}")
    return matches[0]


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def coerce(name: str, raw: str, declared: dict) -> object:
    """Convert a command-line string to the type the parameters cell declares for ``name``."""
    type_name = (declared.get("inferred_type_name") or "None").strip()
    try:
        if type_name == "bool":
            lowered = raw.lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError
            return lowered in ("true", "1")
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "str":
            return raw
        return yaml.safe_load(raw)  # lists, dicts and untyped parameters
    except ValueError:
        raise CliError(
            f"parameter {name!r} expects a value of type {type_name}, got {raw!r}"
        ) from None


def parse_parameters(pairs: list[list[str]], declared: dict[str, dict]) -> dict:
    """Check ``-p NAME VALUE`` pairs against the declared parameters and coerce their values."""
    values = {}
    for name, raw in pairs:
        if name not in declared:
            known = ", ".join(declared)
            raise CliError(f"unknown parameter {name!r}; this chapter's parameters are: {known}")
        values[name] = coerce(name, raw, declared[name])
    return values


def cmd_list(args, root: Path) -> int:
    for chapter in notebooks.toc_notebooks(root):
        print(chapter.relative_to(root))
        for name, info in notebooks.declared_parameters(chapter).items():
            default = info.get("default")
            print(
                f"    {name:<16} {info.get('inferred_type_name', ''):<6} = {default:<10}  {info.get('help', '')}"
            )
    return 0


def check_output_path(out: Path) -> Path:
    """Refuse, before running anything, an ``--out`` that cannot be written: an existing
    directory, or a path under an existing file."""
    out = out.absolute()
    if out.is_dir():
        raise CliError(f"--out {out} is a directory; give a notebook file name")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CliError(f"--out {out}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK):
                raise CliError(f"--out {out}: cannot write in {parent}")
            break
    return out


def chapter_failure(error, out: Path) -> CliError | None:
    """A chapter's own ParameterError, as the one-line user error it is (None otherwise)."""
    if getattr(error, "ename", None) == "ParameterError":
        return CliError(str(error.evalue))
    return None


def cmd_run(args, root: Path) -> int:
    import papermill

    chapter = find_chapter(root, args.chapter)
    values = parse_parameters(args.parameter or [], notebooks.declared_parameters(chapter))
    if args.smoke:
        values = {**notebooks.smoke_parameters(chapter), **values}
    out = check_output_path(Path(args.out) if args.out else root / "_build" / "runs" / chapter.name)
    print(f"running {chapter.relative_to(root)} with {json.dumps(values)} -> {out}", flush=True)
    try:
        notebooks.execute_chapter(chapter, out, values, cwd=root, progress=True)
    except papermill.PapermillExecutionError as error:
        user_error = chapter_failure(error, out)
        if user_error is not None:
            raise user_error from None
        print(
            f"asbbook: chapter {chapter.stem} failed in cell {error.exec_count}: "
            f"{error.ename}: {error.evalue} (the traceback is in {out})",
            file=sys.stderr,
        )
        return 1
    print(f"done: {out}")
    return 0


def default_values(declared: dict[str, dict]) -> dict:
    """The parameters cell's defaults as Python values (papermill reports them as source text)."""
    import ast

    values = {}
    for name, info in declared.items():
        try:
            values[name] = ast.literal_eval(str(info.get("default")))
        except (ValueError, SyntaxError):
            raise CliError(
                f"cannot read the default of parameter {name!r}: {info.get('default')!r}"
            ) from None
    return values


def chapter_sweep_provider(chapter: Path):
    """The ``module:function`` a chapter names in ``metadata.asbbook.sweeps``, imported."""
    import importlib

    import nbformat

    target = nbformat.read(chapter, as_version=4).metadata.get("asbbook", {}).get("sweeps")
    if not target:
        raise CliError(
            f"chapter {chapter.stem!r} has no sweeps (metadata.asbbook.sweeps is not set)"
        )
    module_name, _, function_name = target.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def cmd_sweep(args, root: Path) -> int:
    from asbbook import sweep

    chapter = find_chapter(root, args.chapter)
    provider = chapter_sweep_provider(chapter)
    declared = notebooks.declared_parameters(chapter)
    values = default_values(declared)
    if args.smoke:
        values.update(notebooks.smoke_parameters(chapter))
    values.update(parse_parameters(args.parameter or [], declared))
    specs = provider(values)
    cache_dir = Path(args.cache_dir) if args.cache_dir else None
    for spec in specs:
        results = sweep.run_spec(
            spec,
            cache_dir=cache_dir,
            executor="dask" if args.scheduler else args.executor,
            scheduler=args.scheduler,
            n_workers=args.n_workers,
            progress=True,
            connect_timeout=args.connect_timeout,
            no_workers_timeout=args.no_workers_timeout,
        )
        print(f"{spec.name}: {len(results)} points cached")
    return 0


def cmd_build(args, root: Path) -> int:
    from asbbook import appendix

    stage = root / "_build" / "src"
    times = notebooks.execute_book(root, stage, smoke=args.smoke, force=args.force)
    appendix.write_generated_pages(root, stage)
    html = notebooks.build_html(stage, root, strict=True)
    executed = {k: v for k, v in times.items() if v > 0}
    print(
        f"built {html / 'index.html'}; executed {len(executed)} chapter(s): {json.dumps(executed)}"
    )
    if times.changed_during_run:
        print(
            f"asbbook: warning: the inputs of {', '.join(times.changed_during_run)} changed while "
            "they ran; they are not marked up to date: run `asbbook build` again",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_strip(args, root: Path) -> int:
    changed = [p for p in sorted((root / "book").glob("*.ipynb")) if notebooks.strip_outputs(p)]
    for p in changed:
        print(f"stripped {p.relative_to(root)}")
    return 0


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="asbbook", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the chapters and their parameters")
    run = sub.add_parser("run", help="run one chapter with papermill")
    run.add_argument("chapter", help="chapter number, name or notebook path (e.g. 01 or boltzmann)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"))
    run.add_argument("--out", help="where to write the executed notebook")
    run.add_argument(
        "--smoke", action="store_true", help="start from the chapter's smoke parameters"
    )
    sweep = sub.add_parser("sweep", help="run a chapter's parameter sweeps into its cache")
    sweep.add_argument("chapter", help="chapter number, name or notebook path (e.g. 05)")
    sweep.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"))
    sweep.add_argument(
        "--smoke", action="store_true", help="start from the chapter's smoke parameters"
    )
    sweep.add_argument(
        "--executor",
        choices=("inprocess", "processes", "dask"),
        default="processes",
        help="where points run",
    )
    sweep.add_argument("--scheduler", help="Dask scheduler address (implies --executor dask)")
    sweep.add_argument("--n-workers", type=_positive(int), default=2, help="local worker processes")
    sweep.add_argument(
        "--connect-timeout",
        type=_positive(float),
        help="seconds to connect to --scheduler (default: $ASBBOOK_DASK_CONNECT_TIMEOUT or 10)",
    )
    sweep.add_argument(
        "--no-workers-timeout",
        type=_positive(float),
        help="seconds to wait for a Dask worker (default: $ASBBOOK_DASK_NO_WORKERS_TIMEOUT or 10)",
    )
    sweep.add_argument(
        "--cache-dir", help="cache root (default: $ASBBOOK_CACHE_DIR or ./.asbbook-cache)"
    )
    build = sub.add_parser("build", help="execute every chapter and build the HTML book")
    build.add_argument("--smoke", action="store_true", help="use smoke-sized parameters")
    build.add_argument("--force", action="store_true", help="re-execute even up-to-date chapters")
    sub.add_parser("strip", help="remove outputs from the committed notebooks")
    return parser


def main(argv: list[str] | None = None) -> int:
    from asbbook.params import ParameterError
    from asbbook.sweep import CacheDirError, SchedulerError

    args = build_parser().parse_args(argv)
    try:
        root = notebooks.project_root()
        handler = {
            "list": cmd_list,
            "run": cmd_run,
            "sweep": cmd_sweep,
            "build": cmd_build,
            "strip": cmd_strip,
        }
        return handler[args.command](args, root)
    except (CliError, FileNotFoundError, ParameterError, SchedulerError, CacheDirError) as error:
        print(f"asbbook: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
