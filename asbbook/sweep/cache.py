"""The sweep cache's storage: canonical JSON, keys, and one checked JSON file per entry.

Part of the :mod:`asbbook.sweep` package (which re-exports the public names). An entry is a
JSON file ``<key>.json`` holding the key, the function and its source hash, the point, the code version,
the data fingerprint, the result and::

    checksum = sha256(canonical JSON of {"key": key, "result": result})

so a result copied under another key's name is found out even if its fields were edited to
match. Anything at an entry's path that is not a regular file (a directory, a FIFO, a symlink)
counts as corruption: it is reported, set aside as ``<key>.json.corrupt-<ns>`` and recomputed.
Nothing is pickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

FORMAT = 2  # version of the cache-entry layout (2: function_source, checksum over key + result)
ENTRY_FIELDS = (
    "format",
    "key",
    "function",
    "function_source",
    "point",
    "code_version",
    "data_fingerprint",
    "result",
    "checksum",
)


class CacheCorruptionWarning(UserWarning):
    """A cache entry could not be trusted (unreadable, wrong key, bad checksum, not a regular
    file); it is recomputed."""


class CacheDirError(OSError):
    """The cache directory cannot be created or written; raised before anything is computed."""


# --------------------------------------------------------------------------------------------
# JSON normalisation and hashing
# --------------------------------------------------------------------------------------------


def to_jsonable(obj, where: str, *, allow_nan: bool):
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
            out[k] = to_jsonable(v, f"{where}[{k!r}]", allow_nan=allow_nan)
        return out
    if isinstance(obj, list | tuple):
        return [to_jsonable(v, f"{where}[{i}]", allow_nan=allow_nan) for i, v in enumerate(obj)]
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):  # numpy scalar/array, torch tensor
        if hasattr(obj, "detach"):
            obj = obj.detach().cpu()
        return to_jsonable(obj.tolist(), where, allow_nan=allow_nan)
    raise ValueError(
        f"{where}: value {obj!r} of type {type(obj).__name__} is not JSON-serialisable"
    )


def canonical(obj) -> str:
    """Canonical JSON text: sorted keys, no whitespace, ASCII only (NaN/inf written as in Python)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise_point(point, index: int | None = None) -> dict:
    where = "point" if index is None else f"points[{index}]"
    if not isinstance(point, Mapping):
        raise ValueError(f"{where} must be a dict of parameters, got {type(point).__name__}")
    return to_jsonable(point, where, allow_nan=False)


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


def _code_text(code) -> str:
    """A canonical text of a code object: bytecode, names and constants, nested code included,
    without file name or line numbers (so moving a function does not change it). Not
    ``marshal``, whose output depends on reference counts and so differs between processes."""
    parts = [
        code.co_code.hex(),
        repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)),
        repr((code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)),
    ]
    for const in code.co_consts:
        parts.append(_const_text(const))
    return "\x1f".join(parts)


def _const_text(const) -> str:
    if hasattr(const, "co_code"):
        return "code(" + _code_text(const) + ")"
    if isinstance(const, tuple):
        return "(" + ",".join(_const_text(c) for c in const) + ")"
    if isinstance(const, frozenset):
        return "frozenset(" + ",".join(sorted(_const_text(c) for c in const)) + ")"
    return f"{type(const).__name__}:{const!r}"


def loaded_code_hash(fn: Callable) -> str:
    """16 hex digits of the SHA-256 of :func:`_code_text` of ``fn``'s code as loaded in this
    process (what will actually run, whatever the file on disk says now)."""
    return sha256(_code_text(fn.__code__))[:16]


def function_source_hash(fn: Callable) -> str:
    """What identifies the code of a sweep function that :func:`code_version` does not cover.

    - ``""`` for a function of the ``asbbook`` package (its source is in the code version);
    - otherwise ``"file:" +`` 16 hex digits of the SHA-256 of the whole file defining ``fn``
      (a module such as the README's ``mymodule.trial``), or ``"source:" +`` the hash of
      ``inspect.getsource(fn)`` for a function without a file (a notebook cell), followed by
      ``"+code:" +`` ``loaded_code_hash`` of the function as loaded.

    The whole file, not only the function's body, so that an edit to a helper or a constant of
    the same module invalidates the cache too; code imported from *other* modules outside
    ``asbbook`` is not covered (keep it in the same file, or put a version into the points).
    The file is read as it is on disk now, and the loaded code is hashed too, so a file edited
    after it was imported does not map the old code's results to the new file: the executors
    refuse workers whose loaded code differs. After editing the file, reload the module (or
    restart the kernel) before sweeping.
    """
    module_name = getattr(fn, "__module__", None) or ""
    if module_name == "asbbook" or module_name.startswith("asbbook."):
        return ""
    module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None)
    if filename and filename.endswith(".py") and os.path.isfile(filename):
        origin = "file:" + hashlib.sha256(Path(filename).read_bytes()).hexdigest()[:16]
    else:
        try:
            origin = "source:" + sha256(inspect.getsource(fn))[:16]
        except (OSError, TypeError) as exc:
            raise ValueError(
                f"fn: cannot read the source of {module_name}.{fn.__qualname__} ({exc}); the "
                "cache key must cover the function's code, so define it in a .py module or a "
                "notebook cell"
            ) from exc
    return f"{origin}+code:{loaded_code_hash(fn)}"


def entry_key(
    function: str, function_source: str, point: dict, version: str, data_fingerprint: str
) -> str:
    """SHA-256 of the canonical JSON of everything a result depends on."""
    payload = {
        "function": function,
        "function_source": function_source,
        "point": point,
        "code_version": version,
        "data_fingerprint": data_fingerprint,
    }
    return sha256(canonical(payload))


def checksum(key: str, result: dict) -> str:
    """``sha256(canonical({"key": key, "result": result}))``: binds the result to its key."""
    return sha256(canonical({"key": key, "result": result}))


# --------------------------------------------------------------------------------------------
# The directory and its entries
# --------------------------------------------------------------------------------------------


def ensure_writable(cache_dir: Path) -> None:
    """Create ``cache_dir`` and prove it writable by writing and deleting a probe file.

    Raises :class:`CacheDirError` naming the directory, so that a read-only cache is found out
    before any point is computed, not at the first write.
    """
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheDirError(
            f"cannot create the sweep cache directory {cache_dir} ({exc.strerror or exc}); "
            "choose another cache_dir (or set ASBBOOK_CACHE_DIR)"
        ) from None
    try:
        fd, probe = tempfile.mkstemp(dir=cache_dir, prefix=".write-probe-", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CacheDirError(
            f"the sweep cache directory {cache_dir} is not writable ({exc.strerror or exc}); "
            "fix its permissions or choose another cache_dir (or set ASBBOOK_CACHE_DIR)"
        ) from None


def entry_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"{key}.json"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_entry(path: Path, key: str) -> tuple[dict | None, str | None]:
    """``(result, None)`` for a valid entry, ``(None, None)`` if absent, ``(None, reason)`` if
    corrupt. Only a regular file is opened (a FIFO would block, a directory would crash)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(mode):
        return None, f"{_kind(mode)}, not a regular file"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text ({exc})"
    except OSError as exc:
        return None, f"unreadable ({exc})"
    try:
        entry = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc})"
    if not isinstance(entry, dict) or any(f not in entry for f in ENTRY_FIELDS):
        return None, "missing fields"
    if entry["format"] != FORMAT:
        return None, f"unknown entry format {entry['format']!r}"
    if entry["key"] != key:
        return None, f"wrong key {str(entry['key'])[:16]}..."
    try:
        stored_key = entry_key(
            entry["function"],
            entry["function_source"],
            entry["point"],
            entry["code_version"],
            entry["data_fingerprint"],
        )
    except (TypeError, ValueError) as exc:
        return None, f"unhashable fields ({exc})"
    if stored_key != key:
        return None, "the stored function/point/version do not hash to the key"
    if not isinstance(entry["result"], dict):
        return None, "result is not a dict"
    if checksum(key, entry["result"]) != entry["checksum"]:
        return None, "checksum mismatch (key and result)"
    return entry["result"], None


def set_aside_if_not_a_file(path: Path) -> Path | None:
    """Rename whatever non-regular file sits at ``path`` to ``<name>.corrupt-<ns>`` so that a
    fresh entry can be written there; return the new name (None if nothing was moved)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return None
    target = path.with_name(f"{path.name}.corrupt-{time.time_ns()}")
    os.rename(path, target)
    return target


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


def write_entry(path: Path, entry: dict) -> None:
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
