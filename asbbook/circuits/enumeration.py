"""Circuits as tensors: couplings ``J_pi``, states ``S_pi(x)``, contributions, fields and the
coupling matrix, by explicit enumeration of all ``n_0 n_1 ... n_L`` circuits (small networks).

Circuits are ordered row-major over ``(i_0, ..., i_L)`` (``i_0`` slowest), the order of
:func:`circuit_indices` and of ``itertools.product(range(n_0), ..., range(n_L))``. Every function
refuses, before allocating, an enumeration above ``max_circuits`` circuits or ``max_entries``
entries, or above the memory limit of ``asbbook.validation.check_memory``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from asbbook import validation
from asbbook.circuits import _checks
from asbbook.circuits._checks import (
    DEFAULT_MAX_CIRCUITS,
    DEFAULT_MAX_COUPLING_CIRCUITS,
    DEFAULT_MAX_ENTRIES,
)


def circuit_count(widths: Sequence[int]) -> int:
    """Number of circuits ``n_0 n_1 ... n_L`` of a network with these widths."""
    return math.prod(validation.check_widths(widths))


def circuit_indices(
    widths: Sequence[int],
    *,
    max_circuits: int = DEFAULT_MAX_CIRCUITS,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Index tuples ``(i_0, ..., i_L)`` of all circuits, shaped ``(n_circuits, L + 1)`` (0-based),
    in the column order of :func:`circuit_contributions`."""
    widths = validation.check_widths(widths)
    device = validation.resolve_device(device)
    n = math.prod(widths)
    _checks.refuse_enumeration(n, len(widths), max_circuits, n * len(widths), torch.int64)
    flat = torch.arange(n, device=device)
    return torch.stack(torch.unravel_index(flat, widths), dim=1)


def _path_products(first, edges, nodes, *, max_circuits: int, max_entries: int) -> torch.Tensor:
    """``out[b, pi] = first[b, i_0] prod_l edges[l][i_l, i_{l-1}] prod_{l<L} nodes[l][b, i_l]``.

    ``first`` is ``(P, n_0)``, ``edges[l]`` is ``(n_{l+1}, n_l)`` and ``nodes[l]`` is
    ``(P, n_{l+1})``. Output ``(P, prod n)`` in row-major circuit order; the intermediate tensors
    are never larger than the output, whose size is checked before allocation.
    """
    widths = [first.shape[1]] + [e.shape[0] for e in edges]
    n, batch = math.prod(widths), first.shape[0]
    _checks.refuse_enumeration(n, batch, max_circuits, max_entries, first.dtype)
    c = first.unsqueeze(1)  # (P, K=1, n_0)
    for ell, e in enumerate(edges):
        c = (c.unsqueeze(-1) * e.mT).reshape(batch, -1, e.shape[0])  # (P, K n_ell, n_{ell+1})
        if ell < len(nodes):
            c = c * nodes[ell].unsqueeze(1)
    return c.reshape(batch, n)


def circuit_couplings(
    weights: Sequence[torch.Tensor], *, max_circuits: int = DEFAULT_MAX_CIRCUITS
) -> torch.Tensor:
    """Couplings ``J_pi = prod_l W^l_{i_l i_{l-1}}`` of every circuit, shaped ``(n_circuits,)``."""
    widths, weights = _checks.network(weights)
    first = torch.ones(1, widths[0], dtype=weights[0].dtype, device=weights[0].device)
    n = math.prod(widths)
    return _path_products(first, list(weights), [], max_circuits=max_circuits, max_entries=n)[0]


@_checks.renamed_keyword("x", "X")
def circuit_states(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_CIRCUITS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> torch.Tensor:
    """Circuit states ``S_pi(x) = prod_{l<L} g^l_{i_l}(x)`` in ``{0, 1}``, ``(P, n_circuits)``."""
    _, weights, X = _checks.network_and_inputs(weights, X)
    gates, _ = _checks.gates_and_output(weights, X)
    ones = [torch.ones_like(w) for w in weights]
    return _path_products(
        torch.ones_like(X), ones, gates, max_circuits=max_circuits, max_entries=max_entries
    )


def circuit_features(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_CIRCUITS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> torch.Tensor:
    """Label-free circuit features ``Phi_{mu pi} = x_{mu,i_0} S_pi(x_mu)``, ``(P, n_circuits)``.

    The output is ``f(x_mu) = (Phi J)_mu``, the coupling matrix is the Gram matrix
    ``C = Phi^T Phi`` and the fields are ``h = Phi^T y`` (:func:`derive_circuit_energy`).
    """
    _, weights, X = _checks.network_and_inputs(weights, X)
    gates, _ = _checks.gates_and_output(weights, X)
    ones = [torch.ones_like(w) for w in weights]
    return _path_products(X, ones, gates, max_circuits=max_circuits, max_entries=max_entries)


@_checks.renamed_keyword("x", "X")
def circuit_contributions(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_CIRCUITS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> torch.Tensor:
    """Per-circuit contributions ``x_{i_0} J_pi S_pi(x)``, shaped ``(P, n_circuits)``.

    Their sum over circuits is the network output ``f(x)`` (:func:`asbbook.nets.forward`) up to
    round-off: the path expansion (:func:`derive_path_expansion`). With ``n_L > 1`` the circuits
    ending in output ``k`` sum to output ``k``. Columns follow :func:`circuit_indices`.
    """
    _, weights, X = _checks.network_and_inputs(weights, X)
    gates, _ = _checks.gates_and_output(weights, X)
    return _path_products(
        X, list(weights), gates, max_circuits=max_circuits, max_entries=max_entries
    )


def label_signed_contributions(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    open_only: bool = True,
    max_circuits: int = DEFAULT_MAX_CIRCUITS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> torch.Tensor:
    """Label-signed contributions ``y_mu x_{mu,i_0} J_pi S_pi(x_mu)`` (for histograms).

    With ``open_only`` (default) a flat tensor over the pairs ``(mu, pi)`` with
    ``S_pi(x_mu) = 1`` (closed circuits contribute an exact zero and would swamp a histogram);
    otherwise the full ``(P, n_circuits)`` array. Positive values push ``y_mu f(x_mu)`` up.
    """
    widths, weights, X = _checks.network_and_inputs(weights, X)
    _checks.scalar_output(widths)
    y = _checks.labels(y, X)
    gates, _ = _checks.gates_and_output(weights, X)
    limits = {"max_circuits": max_circuits, "max_entries": max_entries}
    signed = y.unsqueeze(1) * _path_products(X, list(weights), gates, **limits)
    if not open_only:
        return signed
    ones = [torch.ones_like(w) for w in weights]
    states = _path_products(torch.ones_like(X), ones, gates, **limits)
    return signed[states > 0]


def circuit_fields(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_CIRCUITS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> torch.Tensor:
    """Fields ``h_pi = sum_mu y_mu x_{mu,i_0} S_pi(x_mu) = (Phi^T y)_pi``, ``(n_circuits,)``."""
    widths, weights, X = _checks.network_and_inputs(weights, X)
    _checks.scalar_output(widths)
    y = _checks.labels(y, X)
    return y @ circuit_features(weights, X, max_circuits=max_circuits, max_entries=max_entries)


def circuit_coupling_matrix(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_COUPLING_CIRCUITS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> torch.Tensor:
    """Circuit-circuit couplings ``C_{pi pi'} = sum_mu x_{mu,i_0} x_{mu,i'_0} S_pi S_pi'``.

    The Gram matrix ``Phi^T Phi`` of :func:`circuit_features`, shaped ``(n_circuits,
    n_circuits)``: positive semi-definite, of rank at most ``P``. Meant for small nets (refuses
    above ``max_circuits``, default 2048, i.e. a 32 MB float64 matrix).
    """
    features = circuit_features(weights, X, max_circuits=max_circuits, max_entries=max_entries)
    n = features.shape[1]
    validation.check_memory("max_circuits", 1.0 * n * n * features.element_size())
    return features.T @ features
