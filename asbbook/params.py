"""Validation of chapter parameters.

Every chapter calls these right after its ``parameters`` cell, so a bad value passed with
``papermill -p NAME VALUE`` stops the run at once with a message that names the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


class ParameterError(ValueError):
    """A chapter parameter has a bad value. The message starts with the parameter's name."""


def _fail(name: str, value, expected: str):
    raise ParameterError(f"parameter {name!r} must be {expected}, got {value!r}")


def positive_int(name: str, value, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer ``>= minimum`` (and ``<= maximum``); floats such as ``3.5`` are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(name, value, f"an integer >= {minimum}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        _fail(name, value, f"an integer {bound}")
    return value


def positive_float(
    name: str, value, *, allow_zero: bool = False, maximum: float | None = None
) -> float:
    """A finite real number ``> 0`` (or ``>= 0``), optionally ``<= maximum``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _fail(name, value, "a finite number")
    if value < 0 or (value == 0 and not allow_zero):
        _fail(name, value, "a non-negative number" if allow_zero else "a positive number")
    if maximum is not None and value > maximum:
        _fail(name, value, f"a number <= {maximum}")
    return float(value)


def fraction(name: str, value, *, open_left: bool = True) -> float:
    """A number in ``(0, 1]`` (or ``[0, 1]`` when ``open_left`` is false)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _fail(name, value, "a number in (0, 1]")
    if value > 1 or value < 0 or (open_left and value == 0):
        _fail(name, value, "a number in (0, 1]" if open_left else "a number in [0, 1]")
    return float(value)


MAX_SEED = 2**63 - 1  # torch.manual_seed and torch.Generator take seeds up to here (int64)


def seed(name: str, value) -> int:
    """A non-negative integer seed ``<= 2**63 - 1`` (larger ones fail inside torch)."""
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(name, value, "an integer >= 0")
    if not 0 <= value <= MAX_SEED:
        _fail(name, value, f"an integer between 0 and 2**63 - 1 = {MAX_SEED} (what torch accepts)")
    return value


def memory_budget(name: str, n_bytes) -> int:
    """Refuse a chapter parameter whose run would need more memory than allowed, by the chapter's
    own estimate ``n_bytes``; return the estimate in bytes.

    The rule is :func:`asbbook.validation.check_memory`: the limit is ``$ASBBOOK_MAX_BYTES``
    (default 4 GiB). Its ``ValueError`` comes back as a :class:`ParameterError` that names the
    parameter and the estimate, so ``asbbook run`` prints it as a one-line user error.
    """
    from asbbook.validation import check_memory

    if isinstance(n_bytes, bool) or not isinstance(n_bytes, int | float) or n_bytes != n_bytes:
        raise TypeError(f"n_bytes (the estimate for parameter {name!r}) must be a number")
    try:
        check_memory(name, n_bytes)
    except ValueError as exc:
        message = str(exc)
        if message.startswith(name):
            message = message[len(name) :].lstrip()
        raise ParameterError(f"parameter {name!r} {message}") from None
    return int(n_bytes)


def scheduler(name: str, value) -> str | None:
    """A Dask scheduler address, checked at once (a couple of seconds) so that a wrong address fails
    with the parameters, not cells later; ``""`` or ``None`` means no scheduler."""
    from asbbook.sweep import SchedulerError, check_scheduler

    if value is None or value == "":
        return None
    if not isinstance(value, str):
        _fail(name, value, "a Dask scheduler address such as 'tcp://host:8786', or ''")
    try:
        return check_scheduler(value)
    except SchedulerError as exc:
        raise ParameterError(f"parameter {name!r}: {exc}") from None


def choice(name: str, value, options: Iterable[str]) -> str:
    """One of a fixed set of strings."""
    options = tuple(options)
    if value not in options:
        _fail(name, value, f"one of {options}")
    return value


def int_list(name: str, value, *, minimum: int = 1, min_length: int = 1) -> list[int]:
    """A non-empty list of integers ``>= minimum`` (papermill passes lists as YAML/JSON)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) < min_length:
        _fail(name, value, f"a list of at least {min_length} integers >= {minimum}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < minimum:
            _fail(name, value, f"a list of integers >= {minimum}")
    return list(value)


def float_list(name: str, value, *, positive: bool = True, min_length: int = 1) -> list[float]:
    """A non-empty list of finite (positive) numbers."""
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) < min_length:
        _fail(name, value, f"a list of at least {min_length} numbers")
    for item in value:
        ok = not isinstance(item, bool) and isinstance(item, int | float) and math.isfinite(item)
        if not ok or (positive and item <= 0):
            _fail(name, value, "a list of positive numbers" if positive else "a list of numbers")
    return [float(v) for v in value]


def device(name: str, value) -> str:
    """``"auto"``, ``"cpu"`` or a CUDA device string; ``"auto"`` resolves to CUDA when present."""
    import torch

    if not isinstance(value, str):
        _fail(name, value, "'auto', 'cpu' or 'cuda[:N]'")
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value == "cpu":
        return value
    if value.startswith("cuda"):
        if not torch.cuda.is_available():
            _fail(name, value, "'cpu' or 'auto' on a machine without CUDA")
        return value
    _fail(name, value, "'auto', 'cpu' or 'cuda[:N]'")
