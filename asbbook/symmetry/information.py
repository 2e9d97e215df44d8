"""The gate-label information of a layer without its plug-in bias.

The plug-in information ``I_hat(g_i; y)`` between a unit's gate and the label over ``P``
patterns is biased upwards by ``(|X|-1)(|Y|-1)/(2 P ln 2) = 1/(2 P ln 2)`` bits to first order
(Miller 1955; Panzeri & Treves 1996; derived in :func:`derive_information_bias`). Here the bias
is taken exactly under the permutation null: given a unit's open count ``k`` and the class count
``n_+``, a label independent of the gate puts ``j ~ Hypergeometric(P, n_+, k)`` positive
patterns among the open ones, so ``b(k) = E[I_hat(j, k)]`` is a finite sum. It agrees with
``1/(2 P ln 2)`` to first order for ``k`` away from 0 and ``P``, and vanishes for a unit that is
always open or always closed (where the first-order formula over-corrects). The debiased
estimate ``I_hat - b(k)`` has mean exactly 0 when gate and label are independent.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy import stats as sstats

from asbbook import validation
from asbbook.stats import binary_entropy_bits


def information_from_counts_bits(j, k, n_positive: int, n_patterns: int):
    """Plug-in ``I(g; y)`` in bits from counts: ``k`` open patterns, ``j`` of them positive,
    ``n_positive`` positives among ``n_patterns``:
    ``H_2(k/P) - pi_+ H_2(j/n_+) - pi_- H_2((k-j)/n_-)`` (Cover & Thomas 2006, eq. 2.39),
    clipped at 0 against round-off."""
    n_neg = n_patterns - n_positive
    j = torch.as_tensor(j, dtype=torch.float64)
    k = torch.as_tensor(k, dtype=torch.float64)
    pi_pos = n_positive / n_patterns
    info = (
        binary_entropy_bits(k / n_patterns)
        - pi_pos * binary_entropy_bits(j / n_positive)
        - (1 - pi_pos) * binary_entropy_bits((k - j) / n_neg)
    )
    return info.clamp_min(0.0)


@lru_cache(maxsize=32)
def _null_table(n_patterns: int, n_positive: int) -> np.ndarray:
    k = np.arange(n_patterns + 1)[:, None]
    j = np.arange(n_positive + 1)[None, :]
    pmf = sstats.hypergeom.pmf(j, n_patterns, n_positive, k)  # P(j | k), zero outside support
    jj = np.minimum(j, k)
    valid = (j <= k) & (k - j <= n_patterns - n_positive)
    info = information_from_counts_bits(
        torch.as_tensor(np.where(valid, jj, 0)),
        torch.as_tensor(np.where(valid, k, 0) + 0 * j),
        n_positive,
        n_patterns,
    ).numpy()
    return (np.where(valid, pmf * info, 0.0)).sum(axis=1)


def information_null_bias_bits(n_patterns: int, n_positive: int) -> np.ndarray:
    """``b(k) = E[I_hat | k]`` for ``k = 0..P`` under the permutation null (label independent
    of the gate, class count ``n_positive`` fixed): ``sum_j Hyp(j; P, n_+, k) I_hat(j, k)``.
    Returns an array of length ``P + 1``; ``b(0) = b(P) = 0`` and ``b(k) ~ 1/(2 P ln 2)``."""
    n_patterns = validation.check_int("n_patterns", n_patterns, minimum=2, maximum=10**5)
    n_positive = validation.check_int("n_positive", n_positive, minimum=1, maximum=n_patterns - 1)
    return _null_table(n_patterns, n_positive).copy()


def first_order_bias_bits(n_patterns: int) -> float:
    """``1/(2 P ln 2)`` bits: the first-order plug-in bias of the information between two binary
    variables from ``P`` samples (Miller 1955)."""
    n_patterns = validation.check_int("n_patterns", n_patterns, minimum=1)
    return 1.0 / (2 * n_patterns * math.log(2.0))


def _gate_counts(z: torch.Tensor, y) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Open counts ``k_i`` and open-and-positive counts ``j_i``, ``(..., n)``; labels ``y`` are
    ``(P,)`` or ``(..., P)`` (one labelling per network), in ``{-1, +1}`` with both present."""
    z = validation.as_float_tensor("z", z, min_ndim=2)
    y = validation.as_float_tensor("y", y, min_ndim=1).to(z.device)
    if y.shape[-1] != z.shape[-2]:
        raise ValueError(f"y must have P = {z.shape[-2]} labels last, got shape {tuple(y.shape)}")
    if not bool(((y == 1) | (y == -1)).all()):
        raise ValueError("y must hold labels in {-1, +1}")
    n_pos = (y == 1).sum(dim=-1)
    if not bool((n_pos == n_pos.reshape(-1)[0]).all()):
        raise ValueError("y must have the same number of positives in every labelling")
    n_positive = int(n_pos.reshape(-1)[0])
    if not 0 < n_positive < z.shape[-2]:
        raise ValueError("y must contain both labels, +1 and -1")
    open_ = (z > 0).to(torch.float64)
    positive = (y == 1).to(torch.float64)
    k = open_.sum(dim=-2)
    j = (open_ * positive.unsqueeze(-1)).sum(dim=-2)
    return j, k, n_positive


def gate_label_information_debiased_bits(z: torch.Tensor, y) -> torch.Tensor:
    """Mean over units of ``I_hat(g_i; y) - b(k_i)`` in bits: the plug-in gate-label
    information (as :func:`asbbook.order.gate_label_information_bits`) minus its exact
    permutation-null bias :func:`information_null_bias_bits`. ``z`` is ``(..., P, n)``; ``y`` is
    ``(P,)`` or ``(..., P)``. Returns ``(...)``; its mean is 0 when the labels are independent
    of the gates, and it can be negative."""
    j, k, n_positive = _gate_counts(z, y)
    n_patterns = z.shape[-2]
    plug_in = information_from_counts_bits(j, k, n_positive, n_patterns)
    table = torch.as_tensor(information_null_bias_bits(n_patterns, n_positive))
    bias = table[k.to(torch.long).cpu()].to(plug_in.device)
    return (plug_in - bias).mean(dim=-1)


def shuffled_labels(y, n_members: int, seed: int) -> torch.Tensor:
    """``n_members`` independent random permutations of the labels ``y``: ``(n_members, P)``,
    seeded through :func:`asbbook.data.derive_seed` (one stream per member)."""
    from asbbook import data

    y = validation.as_float_tensor("y", y, ndim=1)
    n_members = validation.check_int("n_members", n_members, minimum=1)
    validation.check_memory("n_members", 16.0 * n_members * y.shape[0])
    rows = [
        y[torch.randperm(y.shape[0], generator=data.torch_generator(seed, purpose="ch3", member=m))]
        for m in range(n_members)
    ]
    return torch.stack(rows)
