"""Cached, resumable parameter sweeps (the engine behind the phase diagrams of chapters 5 and 6).

A sweep maps a list of parameter points (JSON-serialisable dicts) to results with a function
``fn(point) -> dict``. Every point has its own cache entry, a JSON file named after its key::

    key = sha256(canonical JSON of {function, point, code_version, data_fingerprint})

where ``function`` is ``fn``'s module and qualified name, ``code_version`` is
:func:`code_version` (``asbbook.__version__`` plus a hash of the package's source files, so an
edit to the code invalidates the cache) and ``data_fingerprint`` identifies the data (for example
:func:`asbbook.data.fingerprint`). An entry stores the key, the point, the code version, the
result and a SHA-256 checksum of the result; it is written atomically (temporary file in the same
directory, ``fsync``, ``os.replace``), so a sweep killed at any moment resumes where it stopped.
A corrupted entry (bad JSON, wrong key, checksum mismatch) is reported with a
:class:`CacheCorruptionWarning` and recomputed. Nothing in the cache is pickled. (A kill during a
write can leave a hidden ``.<key>-*.tmp`` file behind; it is never read and may be deleted.)

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
import hashlib
import importlib
import inspect
import itertools
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

__all__ = [
    "EXECUTORS",
    "CacheCorruptionWarning",
    "cache_key",
    "code_version",
    "grid",
    "run_sweep",
]

EXECUTORS = ("inprocess", "processes", "dask")
_FORMAT = 1  # version of the cache-entry layout
_ENTRY_FIELDS = (
    "format",
    "key",
    "function",
    "point",
    "code_version",
    "data_fingerprint",
    "result",
    "checksum",
)


class CacheCorruptionWarning(UserWarning):
    """A cache entry could not be trusted (unreadable, wrong key, bad checksum); it is recomputed."""


# --------------------------------------------------------------------------------------------
# JSON normalisation and hashing
# --------------------------------------------------------------------------------------------


def _to_jsonable(obj, where: str, *, allow_nan: bool):
    """``obj`` as plain JSON types: dicts with string keys, lists, str, int, float, bool, None.

    Tuples become lists; numpy scalars and arrays (and anything else with ``dtype`` and
    ``tolist``, such as torch tensors) become Python numbers and nested lists.
    """
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, float):
        if not allow_nan and not math.isfinite(obj):
            raise ValueError(f"{where}: non-finite number {obj!r} is not allowed here")
        return float(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: dict keys must be strings, got {k!r}")
            out[k] = _to_jsonable(v, f"{where}[{k!r}]", allow_nan=allow_nan)
        return out
    if isinstance(obj, list | tuple):
        return [_to_jsonable(v, f"{where}[{i}]", allow_nan=allow_nan) for i, v in enumerate(obj)]
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):  # numpy scalar/array, torch tensor
        if hasattr(obj, "detach"):
            obj = obj.detach().cpu()
        return _to_jsonable(obj.tolist(), where, allow_nan=allow_nan)
    raise ValueError(
        f"{where}: value {obj!r} of type {type(obj).__name__} is not JSON-serialisable"
    )


def _canonical(obj) -> str:
    """Canonical JSON text: sorted keys, no whitespace, ASCII only (NaN/inf written as in Python)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _normalise_point(point, index: int | None = None) -> dict:
    where = "point" if index is None else f"points[{index}]"
    if not isinstance(point, Mapping):
        raise ValueError(f"{where} must be a dict of parameters, got {type(point).__name__}")
    return _to_jsonable(point, where, allow_nan=False)


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def code_version(package_dir: str | os.PathLike | None = None) -> str:
    """``asbbook.__version__ + "+src." +`` the first 16 hex digits of a SHA-256 over the package's
    ``*.py`` files (relative path and bytes, in sorted order; ``__pycache__`` is skipped).

    ``package_dir`` defaults to the directory of the imported ``asbbook`` package. The files are
    read at every call, so an edit to any module changes the version and invalidates the cache.
    """
    import asbbook

    root = Path(package_dir) if package_dir is not None else Path(asbbook.__file__).parent
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.relative_to(root).parts)
    for path in files:
        rel = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        digest.update(len(rel).to_bytes(8, "little") + rel)
        digest.update(len(data).to_bytes(8, "little") + data)
    return f"{asbbook.__version__}+src.{digest.hexdigest()[:16]}"


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


def _key(function: str, point: dict, version: str, data_fingerprint: str) -> str:
    payload = {
        "function": function,
        "point": point,
        "code_version": version,
        "data_fingerprint": data_fingerprint,
    }
    return _sha256(_canonical(payload))


def cache_key(
    fn: Callable, point: Mapping, data_fingerprint: str = "", *, version: str | None = None
) -> str:
    """SHA-256 (hex) of the canonical JSON of ``{"function": module.qualname of fn, "point": point,
    "code_version": version, "data_fingerprint": data_fingerprint}``.

    ``version`` defaults to :func:`code_version`. Key order in ``point`` does not matter and
    tuples count as lists (JSON has only arrays).
    """
    if not isinstance(data_fingerprint, str):
        raise ValueError(f"data_fingerprint must be a str, got {type(data_fingerprint).__name__}")
    version = code_version() if version is None else version
    return _key(_function_name(fn), _normalise_point(point), version, data_fingerprint)


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
        vals = [_to_jsonable(v, f"grid axis {name!r}", allow_nan=False) for v in axis]
        if not vals:
            raise ValueError(f"grid axis {name!r} is empty")
        canon = [_canonical(v) for v in vals]
        if len(set(canon)) != len(canon):
            raise ValueError(f"grid axis {name!r} has repeated values: {vals!r}")
        names.append(name)
        values.append(vals)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


# --------------------------------------------------------------------------------------------
# Cache entries
# --------------------------------------------------------------------------------------------


def _entry_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"{key}.json"


def _read_entry(path: Path, key: str) -> tuple[dict | None, str | None]:
    """``(result, None)`` for a valid entry, ``(None, None)`` if absent, ``(None, reason)`` if corrupt."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text ({exc})"
    try:
        entry = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc})"
    if not isinstance(entry, dict) or any(f not in entry for f in _ENTRY_FIELDS):
        return None, "missing fields"
    if entry["format"] != _FORMAT:
        return None, f"unknown entry format {entry['format']!r}"
    if entry["key"] != key:
        return None, f"wrong key {str(entry['key'])[:16]}..."
    try:
        stored_key = _key(
            entry["function"], entry["point"], entry["code_version"], entry["data_fingerprint"]
        )
    except (TypeError, ValueError) as exc:
        return None, f"unhashable fields ({exc})"
    if stored_key != key:
        return None, "the stored function/point/version do not hash to the key"
    if not isinstance(entry["result"], dict):
        return None, "result is not a dict"
    if _sha256(_canonical(entry["result"])) != entry["checksum"]:
        return None, "result checksum mismatch"
    return entry["result"], None


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_entry(path: Path, entry: dict) -> None:
    """Write ``entry`` atomically: temporary file in the same directory, fsync, ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entry, f, sort_keys=True, indent=1, ensure_ascii=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


# --------------------------------------------------------------------------------------------
# Evaluation (runs in the worker for the processes/dask executors)
# --------------------------------------------------------------------------------------------


def _limit_worker_threads(n_threads: int | None) -> None:
    """A worker process is already one of ``n_workers`` per core: torch's own intra-op threads on
    top of that oversubscribe the cores (measured here: 40x slower small matmuls under load)."""
    if n_threads is None:
        return
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a pinned dependency
        return
    if torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)


def _evaluate(
    fn: Callable, point: dict, check_version: bool = False, worker_threads: int | None = None
) -> tuple[str, float, str]:
    """Call ``fn(point)``; return the result as JSON text, the seconds taken and (if asked) the
    worker's code version. The result is validated here so that bad values fail in the worker.
    ``worker_threads`` (set by the process and Dask executors) caps torch's threads in the worker."""
    _limit_worker_threads(worker_threads)
    start = time.perf_counter()
    result = fn(point)
    seconds = time.perf_counter() - start
    if not isinstance(result, Mapping):
        raise ValueError(
            f"fn must return a dict, got {type(result).__name__} for point {_canonical(point)}"
        )
    result = _to_jsonable(result, f"result of point {_canonical(point)}", allow_nan=True)
    return _canonical(result), seconds, code_version() if check_version else ""


def _check_importable(fn: Callable, executor: str) -> None:
    """For the processes executor, ``fn`` is pickled by reference and imported by the workers."""
    module = sys.modules.get(fn.__module__)
    if fn.__module__ == "__main__" and not getattr(module, "__file__", None):
        raise ValueError(
            f"with executor={executor!r}, fn must be importable by worker processes; "
            f"{fn.__qualname__} is defined in an interactive session (notebook). Move it to a "
            "module, or use executor='dask' (which ships notebook functions by value)"
        )
    if fn.__module__ != "__main__":
        try:
            obj = importlib.import_module(fn.__module__)
            for part in fn.__qualname__.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ValueError(
                f"with executor={executor!r}, fn must be importable as "
                f"{fn.__module__}.{fn.__qualname__}: {exc}"
            ) from exc
        if obj is not fn:
            raise ValueError(
                f"with executor={executor!r}, {fn.__module__}.{fn.__qualname__} does not refer "
                "to fn (was it redefined?)"
            )


# --------------------------------------------------------------------------------------------
# Executors: each yields (index, result_json, seconds) in completion order
# --------------------------------------------------------------------------------------------


def _annotate(exc: BaseException, point: dict) -> None:
    exc.add_note(f"(while computing sweep point {_canonical(point)})")


def _run_inprocess(fn, todo):
    for i, point in todo:
        try:
            text, seconds, _ = _evaluate(fn, point)
        except Exception as exc:
            _annotate(exc, point)
            raise
        yield i, text, seconds


def _run_processes(fn, todo, n_workers):
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
        futures = {pool.submit(_evaluate, fn, point, False, 1): (i, point) for i, point in todo}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i, point = futures[fut]
                    try:
                        text, seconds, _ = fut.result()
                    except Exception as exc:
                        _annotate(exc, point)
                        raise
                    yield i, text, seconds
        finally:
            for fut in pending:
                fut.cancel()


def _run_dask(fn, todo, n_workers, scheduler, version):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is a pinned dependency
        raise ImportError("executor='dask' needs the 'distributed' package") from exc

    with contextlib.ExitStack() as stack:
        if isinstance(scheduler, Client):
            client = scheduler
        elif scheduler is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(Client(scheduler))
        futures = {
            client.submit(_evaluate, fn, point, True, 1, pure=False): (i, point)
            for i, point in todo
        }
        remaining = set(futures)
        try:
            for fut in as_completed(list(futures)):
                remaining.discard(fut)
                i, point = futures[fut]
                try:
                    text, seconds, worker_version = fut.result()
                except Exception as exc:
                    _annotate(exc, point)
                    raise
                if worker_version != version:
                    raise RuntimeError(
                        f"a Dask worker has asbbook code version {worker_version}, but this sweep "
                        f"was keyed with {version}: install the same asbbook source on every "
                        "worker, and do not edit asbbook's source files while a sweep runs "
                        "(the entries written so far stay valid)"
                    )
                yield i, text, seconds
        finally:
            if remaining:
                client.cancel(list(remaining))


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
) -> list[dict]:
    """Evaluate ``fn(point)`` for every point, reading and writing one cache entry per point.

    Parameters
    ----------
    fn
        A top-level function ``fn(point: dict) -> dict``. Result values may be numbers, strings,
        booleans, None, lists and nested dicts with string keys; numpy scalars/arrays (and torch
        tensors) are converted to numbers and lists. NaN and infinities are kept (written as in
        Python's ``json``).
    points
        JSON-serialisable dicts, all distinct (for example from :func:`grid`). ``fn`` receives the
        normalised point (tuples become lists, numpy numbers become Python numbers).
    cache_dir
        Directory of the cache (created if needed). Entries are ``<key>.json``.
    data_fingerprint
        A string identifying the data ``fn`` uses; it enters the key.
    executor
        ``"inprocess"``, ``"processes"`` (spawn-context process pool of ``n_workers``) or
        ``"dask"``.
    scheduler
        Only with ``executor="dask"``: ``None`` starts a ``LocalCluster(n_workers,
        threads_per_worker=1, processes=True)`` for the duration of the call; a string is a
        scheduler address (``"tcp://host:8786"``) to connect to; a ``distributed.Client`` is used
        as is. ``n_workers`` is ignored when a scheduler is given.
    progress, desc
        Show a tqdm bar over the points (cached points count as done at once) with label ``desc``.

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
        _check_importable(fn, executor)

    points = [_normalise_point(p, i) for i, p in enumerate(points)]
    seen: dict[str, int] = {}
    for i, p in enumerate(points):
        c = _canonical(p)
        if c in seen:
            raise ValueError(f"duplicate point: points[{seen[c]}] and points[{i}] are both {c}")
        seen[c] = i

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    version = code_version()
    keys = [_key(function, p, version, data_fingerprint) for p in points]

    results: list[dict | None] = [None] * len(points)
    todo = []
    for i, key in enumerate(keys):
        result, problem = _read_entry(_entry_path(cache_dir, key), key)
        if problem is not None:
            warnings.warn(
                f"corrupted sweep cache entry {_entry_path(cache_dir, key)} ({problem}); "
                f"recomputing point {_canonical(points[i])}",
                CacheCorruptionWarning,
                stacklevel=2,
            )
        if result is None:
            todo.append((i, points[i]))
        else:
            results[i] = result

    bar = tqdm(total=len(points), desc=desc or fn.__name__, unit="pt", disable=not progress)
    with bar:
        bar.update(len(points) - len(todo))
        if todo:
            if executor == "inprocess":
                stream = _run_inprocess(fn, todo)
            elif executor == "processes":
                stream = _run_processes(fn, todo, n_workers)
            else:
                stream = _run_dask(fn, todo, n_workers, scheduler, version)
            with contextlib.closing(stream):
                for i, text, seconds in stream:
                    result = json.loads(text)
                    entry = {
                        "format": _FORMAT,
                        "key": keys[i],
                        "function": function,
                        "point": points[i],
                        "code_version": version,
                        "data_fingerprint": data_fingerprint,
                        "result": result,
                        "checksum": _sha256(_canonical(result)),
                        "seconds": round(seconds, 6),
                    }
                    _write_entry(_entry_path(cache_dir, keys[i]), entry)
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
    )
