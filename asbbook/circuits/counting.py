"""Counting open circuits without enumerating them, and the count expected at initialisation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from asbbook import validation
from asbbook.circuits import _checks


@_checks.renamed_keyword("x", "X")
def log_open_circuits(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    *,
    nonzero_couplings_only: bool = False,
) -> torch.Tensor:
    """Natural log of the number of open circuits ``N(x) = sum_pi S_pi(x)`` per input.

    ``N(x) = 1^T A^L G^{L-1} A^{L-1} ... G^1 A^1 1`` with ``G^l = diag(g^l(x))`` and ``A^l`` the
    0/1 adjacency of layer ``l``. For a dense network ``A^l`` is all ones and the product
    collapses to ``n_0 n_L prod_{l<L} k_l(x)``, ``k_l`` the number of open gates of layer ``l``,
    computed as ``log n_0 + log n_L + sum_l log k_l``. With ``nonzero_couplings_only``,
    ``A^l = 1[W^l != 0]`` (only circuits with ``J_pi != 0`` count, for pruned nets) and the gated
    products carry each layer's count vector rescaled by its maximum, accumulating the log
    scale. Both are exact up to float64 round-off even when ``N`` overflows float64.

    Returns float64 ``(..., P)``; ``-inf`` exactly when no circuit is open (never NaN). Weights
    may carry leading ensemble dimensions ``(..., n_l, n_{l-1})``. NaN or inf in ``X`` or the
    weights are refused by name.
    """
    widths, weights, X = _checks.network_and_inputs(weights, X, ensemble=True)
    if not isinstance(nonzero_couplings_only, bool):
        raise TypeError(f"nonzero_couplings_only must be a bool, got {nonzero_couplings_only!r}")
    gates, _ = _checks.gates_and_output(weights, X)
    lead = tuple(weights[0].shape[:-2])
    if not nonzero_couplings_only:
        out = torch.full(
            (*lead, X.shape[0]),
            math.log(widths[0] * widths[-1]),
            dtype=torch.float64,
            device=X.device,
        )
        for g in gates:
            out = out + torch.log(g.sum(-1, dtype=torch.float64))
        return out
    v = torch.ones(X.shape[0], widths[0], dtype=torch.float64, device=X.device)
    log_scale = torch.zeros((), dtype=torch.float64, device=X.device)
    for ell, w in enumerate(weights):
        adjacency = w != 0
        if bool(adjacency.all()):  # dense layer: every unit receives the total count
            v = v.sum(-1, keepdim=True).expand(*v.shape[:-1], w.shape[-2])
        else:
            v = v @ adjacency.to(torch.float64).mT
        if ell < len(weights) - 1:
            v = v * gates[ell].to(torch.float64)
            m = v.amax(-1, keepdim=True)
            log_scale = log_scale + torch.log(m.squeeze(-1))
            v = v / torch.where(m > 0, m, torch.ones_like(m))
    return log_scale + torch.log(v.sum(-1))


def log_expected_open_circuits(widths: Sequence[int]) -> float:
    """``log(n_0 n_L) + sum_{0<l<L} log(n_l / 2)`` (no overflow for wide, deep nets)."""
    widths = validation.check_widths(widths)
    return math.log(widths[0] * widths[-1]) + sum(math.log(n / 2) for n in widths[1:-1])


def expected_open_circuits(widths: Sequence[int]) -> float:
    """Ensemble mean of the open-circuit count at initialisation,
    ``n_0 n_L prod_{0<l<L} (n_l / 2)`` (:func:`derive_expected_open_circuits`).

    Exact for any ``x != 0`` when the hidden rows are independent with sign-symmetric laws that
    have a density (e.g. He et al. 2015's initialisation). Refuses counts beyond float64; use
    :func:`log_expected_open_circuits` there.
    """
    log_n = log_expected_open_circuits(widths)
    if log_n > math.log(torch.finfo(torch.float64).max):
        raise ValueError(
            f"widths give about e^{log_n:.0f} open circuits, beyond float64: "
            "use log_expected_open_circuits"
        )
    return math.exp(log_n)
