"""Argument checks shared by the circuit functions, built on ``asbbook.validation``.

Every public function of :mod:`asbbook.circuits` refuses bad input here, before any work, with a
``TypeError`` or ``ValueError`` that starts with the argument's name; and the two renamed
keywords of the chapter (``x`` -> ``X``, ``n_nets`` -> ``n_members``) keep working with a
``DeprecationWarning``.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence

import torch

from asbbook import nets, validation

#: Default refusal threshold for enumerating circuits (number of circuits of one network).
DEFAULT_MAX_CIRCUITS = 2_000_000
#: Default refusal threshold for the number of entries of an enumerated ``(P, circuits)``
#: tensor (20 million float64 entries are 160 MB).
DEFAULT_MAX_ENTRIES = 20_000_000
#: Default refusal threshold for the explicit circuit-by-circuit coupling matrix ``C``.
DEFAULT_MAX_COUPLING_CIRCUITS = 2048


def renamed_keyword(old: str, new: str):
    """Accept the keyword ``old`` as a deprecated spelling of ``new`` (with a warning)."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{func.__name__}() got both {old!r} and {new!r}")
                warnings.warn(
                    f"{func.__name__}(): the keyword {old!r} is deprecated, use {new!r}",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper

    return decorate


def network(weights, *, ensemble: bool = False) -> tuple[tuple[int, ...], list[torch.Tensor]]:
    """Check a chain of weight matrices (float, finite, matching shapes, one dtype and device);
    return the widths and the weights as tensors (numpy arrays and nested lists are converted).

    ``ensemble`` allows leading dimensions ``(..., n_l, n_{l-1})`` shared by every layer.
    """
    if isinstance(weights, list | tuple):  # convert numpy arrays and nested lists first
        weights = [validation.as_float_tensor(f"weights[{k}]", w) for k, w in enumerate(weights)]
    widths = validation.check_weights(weights, ensemble=ensemble)
    tensors = list(weights)
    dtype, device = tensors[0].dtype, tensors[0].device
    for k, w in enumerate(tensors):
        if w.dtype != dtype or w.device != device:
            raise TypeError(
                f"weights[{k}] is {w.dtype} on {w.device} but weights[0] is {dtype} on {device}"
            )
    return widths, tensors


def network_and_inputs(
    weights, X, *, ensemble: bool = False
) -> tuple[tuple[int, ...], list[torch.Tensor], torch.Tensor]:
    """Weights (see :func:`network`) and inputs ``X`` of shape ``(P, n_0)`` of the same dtype and
    device. Integer, bool and complex ``X`` and any NaN or inf are refused by name."""
    widths, weights = network(weights, ensemble=ensemble)
    X = validation.check_inputs(X, widths[0])
    if X.dtype != weights[0].dtype or X.device != weights[0].device:
        raise TypeError(
            f"X is {X.dtype} on {X.device} but the weights are {weights[0].dtype} on "
            f"{weights[0].device}; convert one of them, e.g. X.to(weights[0])"
        )
    return widths, weights, X


def labels(y, X: torch.Tensor) -> torch.Tensor:
    """Labels ``y`` in ``{-1, +1}`` of shape ``(P,)``, in the dtype and on the device of ``X``."""
    return validation.check_labels(y, X.shape[0], dtype=X.dtype, device=X.device)


def scalar_output(widths: Sequence[int], name: str = "weights") -> None:
    if widths[-1] != 1:
        raise ValueError(f"{name} must end in a scalar output (n_L = 1), got widths {widths}")


def derivation_widths(widths, min_layers: int = 2, max_circuits: int = 256) -> tuple[int, ...]:
    """Widths of a symbolic network: a scalar output, at least ``min_layers`` weight layers, and
    at most ``max_circuits`` circuits (sympy's expansion grows fast beyond a few hundred)."""
    widths = validation.check_widths(widths)
    if widths[-1] != 1:
        raise ValueError(f"widths must end in a scalar output (n_L = 1), got {widths}")
    if len(widths) - 1 < min_layers:
        raise ValueError(f"widths must have at least {min_layers} weight layers, got {widths}")
    if math.prod(widths) > max_circuits:
        raise ValueError(
            f"widths {widths} give {math.prod(widths)} circuits, above the {max_circuits} a "
            "symbolic derivation expands in reasonable time"
        )
    return widths


def gates_and_output(weights: Sequence[torch.Tensor], X: torch.Tensor):
    """Hidden gates ``[g^1 .. g^{L-1}]`` (float, ``(..., P, n_l)``) and ``z^L`` (``(..., P, n_L)``)
    from the one forward pass :func:`asbbook.nets.preactivations`."""
    zs = nets.preactivations(weights, X)
    return [(z > 0).to(z.dtype) for z in zs[:-1]], zs[-1]


def refuse_enumeration(n_circuits: int, batch: int, max_circuits: int, max_entries: int, dtype):
    """Refuse, before allocating, an enumeration above the given limits or the memory limit."""
    max_circuits = validation.check_int("max_circuits", max_circuits, minimum=1)
    max_entries = validation.check_int("max_entries", max_entries, minimum=1)
    if n_circuits > max_circuits:
        raise ValueError(
            f"max_circuits={max_circuits:,} is below the network's {n_circuits:,} circuits: "
            "enumeration refused (log_open_circuits, circuit_energy_terms and "
            "circuit_magnetisation work without enumerating)"
        )
    if batch * n_circuits > max_entries:
        raise ValueError(
            f"max_entries={max_entries:,} is below the {batch * n_circuits:,} entries of "
            f"{n_circuits:,} circuits for {batch:,} inputs: use a smaller batch"
        )
    validation.check_memory("X", 2.0 * batch * n_circuits * validation.element_bytes(dtype))
