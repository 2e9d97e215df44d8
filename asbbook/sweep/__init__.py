"""Cached, resumable parameter sweeps (the engine behind the phase diagrams of chapters 5 and 6).

A sweep maps a list of parameter points (JSON-serialisable dicts) to results with a function
``fn(point) -> dict``. Every point has its own cache entry, a JSON file named after its key::

    key = sha256(canonical JSON of {function, function_source, point, code_version,
                                    data_fingerprint})

where ``function`` is ``fn``'s module and qualified name, ``function_source`` is
:func:`function_source_hash` (empty inside ``asbbook``; otherwise a hash of the file defining
``fn``, so that editing e.g. ``mymodule.trial`` invalidates its entries), ``code_version`` is
:func:`code_version` (``asbbook.__version__`` plus a hash of the package's source files, so an
edit to the code invalidates the cache) and ``data_fingerprint`` identifies the data (for example
:func:`asbbook.data.fingerprint`). An entry stores these, the result and a SHA-256 checksum of the
key and the result; it is written atomically (temporary file in the same directory, ``fsync``,
``os.replace``), so a sweep killed at any moment resumes where it stopped. The cache directory is
checked writable before anything is computed. A corrupted entry (bad JSON, wrong key, checksum
mismatch, a directory or other non-regular file at its path) is reported with a
:class:`CacheCorruptionWarning` and recomputed. Nothing in the cache is pickled. (A kill during a
write can leave a hidden ``.<key>-*.tmp`` file behind; it is never read and may be deleted.)
Storage lives in :mod:`asbbook.sweep.cache`, the executors in :mod:`asbbook.sweep.executors`.

Three executors compute the missing points: ``"inprocess"``, ``"processes"`` (a spawn-context
``ProcessPoolExecutor``) and ``"dask"`` (Dask ``distributed``: a temporary ``LocalCluster`` or a
running scheduler). Workers send results back as JSON text and only the calling process writes
the cache, in completion order; the returned list is in point order.

Example (``trial`` must be a top-level function of an importable module; it should rebuild its
data from the point, e.g. from a seed, so that workers need no shared disk)::

    from asbbook import data, sweep
    from mymodule import trial  # trial(point: dict) -> dict

    X, y = data.load_digits_binary(500)
    points = sweep.grid(width=[8, 16, 32], n_examples=[100, 200], seed=range(5))
    results = sweep.run_sweep(trial, points, cache_dir="_cache/ch5",
                              data_fingerprint=data.fingerprint(X, y), executor="processes")
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from asbbook.sweep.cache import (
    FORMAT,
    CacheCorruptionWarning,
    CacheDirError,
    canonical,
    checksum,
    code_version,
    ensure_writable,
    entry_key,
    entry_path,
    function_source_hash,
    normalise_point,
    read_entry,
    set_aside_if_not_a_file,
    to_jsonable,
    write_entry,
)
from asbbook.sweep.executors import (
    CONNECT_TIMEOUT_ENV,
    NO_WORKERS_TIMEOUT_ENV,
    SchedulerError,
    check_importable,
    dask_session,
    run_dask,
    run_inprocess,
    run_processes,
)

__all__ = [
    "CONNECT_TIMEOUT_ENV",
    "EXECUTORS",
    "NO_WORKERS_TIMEOUT_ENV",
    "CacheCorruptionWarning",
    "CacheDirError",
    "SchedulerError",
    "SweepSpec",
    "cache_key",
    "check_scheduler",
    "code_version",
    "function_source_hash",
    "grid",
    "run_spec",
    "run_sweep",
]

EXECUTORS = ("inprocess", "processes", "dask")
_write_entry = write_entry  # module attribute, so tests can observe the writes


def progress_disabled() -> bool:
    """True when ``$TQDM_DISABLE`` is set (as ``asbbook build`` does for the chapters' kernels).

    tqdm honours the variable only for arguments left at their default, and the bars here pass
    ``disable`` explicitly, so they check it themselves."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")


def check_scheduler(address: str, connect_timeout: float | None = None) -> str:
    """Fail fast (within about two seconds) when ``address`` is no Dask scheduler: a refused
    port, an HTTP server such as the dashboard, or a port that closes without the handshake
    raise :class:`SchedulerError` naming the address. A chapter calls it with its parameters, before its first cell of work."""
    from asbbook.sweep.executors import dask_timeout, probe_scheduler

    if not isinstance(address, str) or not address:
        raise ValueError(f"scheduler must be a non-empty address string, got {address!r}")
    probe_scheduler(address, dask_timeout(connect_timeout, CONNECT_TIMEOUT_ENV, "connect_timeout"))
    return address


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def _function_name(fn: Callable) -> str:
    """``module.qualname`` of a plain function; refuses lambdas, closures, partials and methods,
    whose behaviour is not determined by their name (two lambdas would share cache entries)."""
    if isinstance(fn, functools.partial):
        raise ValueError(
            "fn must be a plain top-level function, not a functools.partial: put the bound "
            "arguments into the points so that they enter the cache key"
        )
    if not inspect.isfunction(fn):
        raise ValueError(
            f"fn must be a plain top-level function defined with 'def', got {type(fn).__name__}"
        )
    qualname = fn.__qualname__
    if "<lambda>" in qualname:
        raise ValueError(
            f"fn must be a top-level function, not a lambda ({fn.__module__}.{qualname}): the cache "
            "key is the function's qualified name, which does not identify a lambda; define it "
            "with 'def' at module level"
        )
    if "<locals>" in qualname:
        raise ValueError(
            f"fn must be a top-level function, not a closure/nested function "
            f"({fn.__module__}.{qualname}): its captured variables would not enter the cache key "
            "and worker processes cannot import it; define it at module level and pass its "
            "parameters in the points"
        )
    return f"{fn.__module__}.{qualname}"


def cache_key(
    fn: Callable, point: Mapping, data_fingerprint: str = "", *, version: str | None = None
) -> str:
    """SHA-256 (hex) of the canonical JSON of ``{"function": module.qualname of fn,
    "function_source": function_source_hash(fn), "point": point, "code_version": version,
    "data_fingerprint": data_fingerprint}``.

    ``version`` defaults to :func:`code_version`. ``function_source`` is empty for functions of
    ``asbbook`` (the code version covers them) and a hash of the file defining ``fn`` otherwise
    (see :func:`function_source_hash`), so editing an outside sweep function invalidates its
    entries. Key order in ``point`` does not matter and tuples count as lists.
    """
    if not isinstance(data_fingerprint, str):
        raise ValueError(f"data_fingerprint must be a str, got {type(data_fingerprint).__name__}")
    version = code_version() if version is None else version
    name = _function_name(fn)
    return entry_key(
        name, function_source_hash(fn), normalise_point(point), version, data_fingerprint
    )


# --------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------


def grid(**axes: Iterable) -> list[dict]:
    """Cartesian product of the axes as a list of points, in deterministic order: the axes in the
    order they are given, the last one varying fastest (``itertools.product``).

    ``grid(N=[8, 16], alpha=[0.5, 1.0])`` gives ``[{"N": 8, "alpha": 0.5}, {"N": 8, "alpha": 1.0},
    {"N": 16, "alpha": 0.5}, {"N": 16, "alpha": 1.0}]``. Numpy values become Python numbers.
    """
    names, values = [], []
    for name, axis in axes.items():
        if isinstance(axis, str | bytes | Mapping) or not isinstance(axis, Iterable):
            raise ValueError(
                f"grid axis {name!r} must be a list of values, got {type(axis).__name__}"
            )
        vals = [to_jsonable(v, f"grid axis {name!r}", allow_nan=False) for v in axis]
        if not vals:
            raise ValueError(f"grid axis {name!r} is empty")
        canon = [canonical(v) for v in vals]
        if len(set(canon)) != len(canon):
            raise ValueError(f"grid axis {name!r} has repeated values: {vals!r}")
        names.append(name)
        values.append(vals)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


def run_sweep(
    fn: Callable[[dict], dict],
    points: Iterable[Mapping],
    *,
    cache_dir: str | os.PathLike,
    data_fingerprint: str = "",
    executor: str = "inprocess",
    scheduler=None,
    n_workers: int = 2,
    progress: bool = True,
    desc: str | None = None,
    connect_timeout: float | None = None,
    no_workers_timeout: float | None = None,
) -> list[dict]:
    """Evaluate ``fn(point)`` for every point, reading and writing one cache entry per point.

    Parameters
    ----------
    fn
        A top-level function ``fn(point: dict) -> dict``. Result values may be numbers, strings,
        booleans, None, lists and nested dicts with string keys; numpy scalars/arrays (and torch
        tensors) are converted to numbers and lists. NaN and infinities are kept (written as in
        Python's ``json``). Outside ``asbbook``, the file defining ``fn`` enters the key.
    points
        JSON-serialisable dicts, all distinct (for example from :func:`grid`). ``fn`` receives the
        normalised point (tuples become lists, numpy numbers become Python numbers).
    cache_dir
        Directory of the cache (created if needed, and checked writable before anything is
        computed: :class:`CacheDirError`). Entries are ``<key>.json``.
    data_fingerprint
        A string identifying the data ``fn`` uses; it enters the key.
    executor
        ``"inprocess"``, ``"processes"`` (spawn-context process pool of ``n_workers``, whose
        workers exit when this process dies) or ``"dask"``.
    scheduler
        Only with ``executor="dask"``: ``None`` starts a ``LocalCluster(n_workers,
        threads_per_worker=1, processes=True)`` for the duration of the call; a string is a
        scheduler address (``"tcp://host:8786"``) to connect to; a ``distributed.Client`` is used
        as is. ``n_workers`` is ignored when a scheduler is given.
    progress, desc
        Show a tqdm bar over the points (cached points count as done at once) with label ``desc``;
        ``$TQDM_DISABLE`` turns it off.
    connect_timeout, no_workers_timeout
        Only with ``executor="dask"``: seconds to connect to ``scheduler`` and to wait for a worker
        (default ``$ASBBOOK_DASK_CONNECT_TIMEOUT`` / ``$ASBBOOK_DASK_NO_WORKERS_TIMEOUT``, else
        10). Failures raise :class:`SchedulerError` naming the address and the fix.

    Returns
    -------
    The results, in the order of ``points``: each is the JSON round trip of ``fn``'s dict, so a
    cached and a freshly computed result compare equal.

    Missing points are computed; the calling process writes each entry as its result arrives. If
    ``fn`` raises, the exception propagates (with a note naming the point) and every entry written
    so far stays in the cache, so a rerun resumes.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if scheduler is not None and executor != "dask":
        raise ValueError(f"scheduler is only used with executor='dask', not {executor!r}")
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    if not isinstance(data_fingerprint, str):
        raise ValueError(f"data_fingerprint must be a str, got {type(data_fingerprint).__name__}")
    if isinstance(points, Mapping) or not isinstance(points, Iterable):
        raise ValueError("points must be a list of dicts (for example from grid(...))")
    function = _function_name(fn)
    if executor == "processes":
        check_importable(fn, executor)
    function_source = function_source_hash(fn)

    points = [normalise_point(p, i) for i, p in enumerate(points)]
    seen: dict[str, int] = {}
    for i, p in enumerate(points):
        c = canonical(p)
        if c in seen:
            raise ValueError(f"duplicate point: points[{seen[c]}] and points[{i}] are both {c}")
        seen[c] = i

    cache_dir = Path(cache_dir)
    ensure_writable(cache_dir)
    version = code_version()
    keys = [entry_key(function, function_source, p, version, data_fingerprint) for p in points]

    results: list[dict | None] = [None] * len(points)
    todo = []
    for i, key in enumerate(keys):
        path = entry_path(cache_dir, key)
        result, problem = read_entry(path, key)
        if problem is not None:
            moved = set_aside_if_not_a_file(path)
            warnings.warn(
                f"corrupted sweep cache entry {path} ({problem}); "
                + (f"moved to {moved.name}; " if moved else "")
                + f"recomputing point {canonical(points[i])}",
                CacheCorruptionWarning,
                stacklevel=2,
            )
        if result is None:
            todo.append((i, points[i]))
        else:
            results[i] = result

    with contextlib.ExitStack() as stack:
        session = None
        if todo and executor == "dask":  # connect before the bar, so failures come first
            session = stack.enter_context(
                dask_session(
                    fn,
                    n_workers,
                    scheduler,
                    connect_timeout=connect_timeout,
                    no_workers_timeout=no_workers_timeout,
                )
            )
        disable = not progress or progress_disabled()
        bar = stack.enter_context(
            tqdm(total=len(points), desc=desc or fn.__name__, unit="pt", disable=disable)
        )
        bar.update(len(points) - len(todo))
        if todo:
            if executor == "inprocess":
                stream = run_inprocess(fn, todo)
            elif executor == "processes":
                stream = run_processes(fn, todo, n_workers)
            else:
                stream = run_dask(fn, todo, session, version)
            with contextlib.closing(stream):
                for i, text, seconds in stream:
                    result = json.loads(text)
                    entry = {
                        "format": FORMAT,
                        "key": keys[i],
                        "function": function,
                        "function_source": function_source,
                        "point": points[i],
                        "code_version": version,
                        "data_fingerprint": data_fingerprint,
                        "result": result,
                        "checksum": checksum(keys[i], result),
                        "seconds": round(seconds, 6),
                    }
                    _write_entry(entry_path(cache_dir, keys[i]), entry)
                    results[i] = result
                    bar.update(1)
    return results


# --------------------------------------------------------------------------------------------
# Chapter sweeps: what a notebook and `asbbook sweep` share
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where chapters cache their sweeps: ``$ASBBOOK_CACHE_DIR``, else ``./.asbbook-cache``."""
    return Path(os.environ.get("ASBBOOK_CACHE_DIR") or ".asbbook-cache").resolve()


@dataclass(frozen=True)
class SweepSpec:
    """One named sweep of a chapter: a top-level ``fn``, its points and its data fingerprint.

    A chapter exposes its sweeps as a function ``chapter_sweeps(parameters) -> list[SweepSpec]``
    named in its notebook metadata (``metadata.asbbook.sweeps = "module:function"``). The notebook
    runs them with :func:`run_spec`, and ``asbbook sweep CHAPTER`` runs the same specs (on a Dask
    cluster with ``--scheduler``), so a sweep run from the command line warms the chapter's cache.
    """

    name: str
    fn: Callable
    points: list
    data_fingerprint: str = ""


def run_spec(
    spec: SweepSpec,
    *,
    cache_dir: str | os.PathLike | None = None,
    executor: str = "inprocess",
    scheduler=None,
    n_workers: int = 2,
    progress: bool = True,
    connect_timeout: float | None = None,
    no_workers_timeout: float | None = None,
) -> list[dict]:
    """:func:`run_sweep` of one :class:`SweepSpec`, cached under ``cache_dir / spec.name``."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return run_sweep(
        spec.fn,
        spec.points,
        cache_dir=root / spec.name,
        data_fingerprint=spec.data_fingerprint,
        executor=executor,
        scheduler=scheduler or None,
        n_workers=n_workers,
        progress=progress,
        desc=spec.name,
        connect_timeout=connect_timeout,
        no_workers_timeout=no_workers_timeout,
    )
