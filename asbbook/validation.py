"""Validation shared by every module: one rule per kind of argument, one message style.

Every public function of the package refuses bad input *before* any expensive work, with a
``ValueError`` or ``TypeError`` whose message starts with the argument's name. The rules:

* counts are Python or numpy integers (never ``bool``, never floats such as ``3.0``);
* real numbers are finite; tensors meant to hold reals have a floating dtype (integer, bool and
  complex tensors are refused rather than silently truncated), and hold no NaN or inf;
* numpy arrays and nested lists are accepted wherever a tensor is, and converted;
* sizes are checked against an estimate in bytes (:func:`check_memory`) before allocation;
* devices are resolved in one place (:func:`resolve_device`), and a CUDA device is refused by
  name on a machine without CUDA.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch

MAX_BYTES_ENV = "ASBBOOK_MAX_BYTES"
DEFAULT_MAX_BYTES = 4 * 2**30  # 4 GiB: far above every chapter at full size, far below a hang


# --------------------------------------------------------------------------------------------
# Scalars
# --------------------------------------------------------------------------------------------


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (Python or numpy, not ``bool``) in ``[minimum, maximum]``, returned as ``int``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "-inf" if minimum is None else minimum
        high = "inf" if maximum is None else maximum
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value}")
    return value


def check_real(
    name: str,
    value,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    maximum: float | None = None,
) -> float:
    """A finite real number (not ``bool``), optionally ``> 0`` or ``>= 0`` and ``<= maximum``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return value


def check_choice(name: str, value, options: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if value not in tuple(options):
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value


def check_seed(name: str, value) -> int:
    """A seed: an integer in ``[0, 2**63 - 1]``, the range ``torch.Generator.manual_seed`` takes."""
    return check_int(name, value, minimum=0, maximum=2**63 - 1)


# --------------------------------------------------------------------------------------------
# Shapes, dtypes and tensors
# --------------------------------------------------------------------------------------------


def check_widths(widths, name: str = "widths") -> tuple[int, ...]:
    """Layer widths ``(n_0, ..., n_L)``: at least an input and an output, all integers >= 1."""
    if isinstance(widths, str | bytes) or not isinstance(widths, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a sequence of integers (n_0, ..., n_L), got {widths!r}")
    widths = tuple(widths)
    if len(widths) < 2:
        raise ValueError(f"{name} must list at least an input and an output width, got {widths!r}")
    return tuple(check_int(f"{name}[{k}]", w, minimum=1) for k, w in enumerate(widths))


def check_float_dtype(dtype, name: str = "dtype") -> torch.dtype:
    """A floating torch dtype; integer, bool and complex dtypes are refused."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"{name} must be a floating torch dtype such as torch.float64, got {dtype!r}"
        )
    return dtype


def as_float_tensor(
    name: str,
    value,
    *,
    ndim: int | None = None,
    min_ndim: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    allow_nonfinite: bool = False,
) -> torch.Tensor:
    """``value`` as a real floating tensor, refusing what would give a silently wrong result.

    Tensors, numpy arrays, Python numbers and nested lists are accepted. Integer and bool tensors
    or arrays are refused (they are the usual sign of a mix-up, and integer arithmetic would
    truncate), as are complex ones and any NaN or inf unless ``allow_nonfinite``. With ``dtype``
    or ``device`` the result is converted; otherwise it keeps its own dtype and device.
    """
    if isinstance(value, torch.Tensor):
        tensor = value
    elif isinstance(value, np.ndarray | numbers.Number | list | tuple):
        try:
            tensor = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    else:
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(value).__name__}")
    if tensor.is_complex() or not tensor.is_floating_point():
        raise TypeError(
            f"{name} must hold real floating-point numbers, got dtype {tensor.dtype}; "
            f"convert explicitly, e.g. {name}.double()"
        )
    if ndim is not None and tensor.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(tensor.shape)}")
    if min_ndim is not None and tensor.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(tensor.shape)}"
        )
    if not allow_nonfinite and tensor.numel() and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} contains NaN or inf")
    if dtype is not None or device is not None:
        tensor = tensor.to(dtype=dtype or tensor.dtype, device=device or tensor.device)
    return tensor


def check_inputs(X, n_inputs: int | None = None, *, name: str = "X", **kwargs) -> torch.Tensor:
    """Inputs ``X`` of shape ``(P, n_0)`` with ``P >= 1`` (and ``n_0 == n_inputs`` if given)."""
    X = as_float_tensor(name, X, ndim=2, **kwargs)
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty (P, n_0) array, got shape {tuple(X.shape)}")
    if n_inputs is not None and X.shape[1] != n_inputs:
        raise ValueError(
            f"{name} must have n_0 = {n_inputs} columns to match the weights, "
            f"got shape {tuple(X.shape)}"
        )
    return X


def check_labels(y, n_examples: int, *, name: str = "y", **kwargs) -> torch.Tensor:
    """Binary labels ``y`` in ``{-1, +1}`` of shape ``(P,)``."""
    y = as_float_tensor(name, y, ndim=1, **kwargs)
    if y.shape[0] != n_examples:
        raise ValueError(f"{name} must have shape ({n_examples},), got {tuple(y.shape)}")
    if not bool(((y == 1) | (y == -1)).all()):
        raise ValueError(f"{name} must hold labels in {{-1, +1}}")
    return y


def check_weights(weights, name: str = "weights", *, ensemble: bool = True) -> tuple[int, ...]:
    """A chain of weight matrices ``W^l`` shaped ``(..., n_l, n_{l-1})`` sharing their leading
    (ensemble) dimensions; returns the widths ``(n_0, ..., n_L)``."""
    if isinstance(weights, torch.Tensor) or not isinstance(weights, Sequence) or not weights:
        raise TypeError(f"{name} must be a non-empty list of weight matrices W^1 .. W^L")
    tensors = [as_float_tensor(f"{name}[{k}]", w, min_ndim=2) for k, w in enumerate(weights)]
    lead = tensors[0].shape[:-2]
    for k, w in enumerate(tensors):
        if not ensemble and w.ndim != 2:
            raise ValueError(f"{name}[{k}] must be a matrix (n_l, n_(l-1)), got {tuple(w.shape)}")
        if w.shape[:-2] != lead:
            raise ValueError(f"{name}[{k}] has leading shape {tuple(w.shape[:-2])}, not {lead}")
        if k and w.shape[-1] != tensors[k - 1].shape[-2]:
            raise ValueError(
                f"{name}[{k}] takes {w.shape[-1]} inputs but {name}[{k - 1}] gives "
                f"{tensors[k - 1].shape[-2]} outputs"
            )
    return (int(tensors[0].shape[-1]), *(int(w.shape[-2]) for w in tensors))


# --------------------------------------------------------------------------------------------
# Memory, devices and threads
# --------------------------------------------------------------------------------------------


def max_bytes() -> int:
    """The allocation limit: ``$ASBBOOK_MAX_BYTES`` if set, else 4 GiB."""
    raw = os.environ.get(MAX_BYTES_ENV)
    if raw is None:
        return DEFAULT_MAX_BYTES
    try:
        return int(float(raw))
    except ValueError:
        raise ValueError(f"{MAX_BYTES_ENV} must be a number of bytes, got {raw!r}") from None


def check_memory(name: str, n_bytes: float) -> None:
    """Refuse work whose estimated memory exceeds the limit, naming the responsible parameter."""
    limit = max_bytes()
    if n_bytes > limit:
        raise ValueError(
            f"{name} is too large: the work would need about {n_bytes / 2**30:.3g} GiB, above the "
            f"limit of {limit / 2**30:.3g} GiB (raise it with the environment variable "
            f"{MAX_BYTES_ENV}=<bytes> if the machine has the memory)"
        )


def element_bytes(dtype: torch.dtype) -> int:
    """Bytes per element of ``dtype``."""
    return torch.empty((), dtype=dtype).element_size()


def resolve_device(device, name: str = "device") -> torch.device:
    """``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda[:N]"`` or a ``torch.device``.

    A CUDA device on a machine without CUDA, or an unknown device type, is refused by name.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str | torch.device):
        raise TypeError(
            f"{name} must be 'auto', 'cpu', 'cuda[:N]' or a torch.device, got {device!r}"
        )
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from None
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise ValueError(f"{name} must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"{name}={device!r} but this machine has no CUDA; use 'cpu' or 'auto'")
    if resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"{name}={device!r} but only {torch.cuda.device_count()} CUDA devices")
    return resolved


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (``None``: leave it alone), then restore.

    Sweeps run one point per worker process with one thread each, so that a point's arithmetic
    (and so its result) does not depend on how many cores the reader has.
    """
    if n is None:
        yield
        return
    n = check_int("n_threads", n, minimum=1)
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
