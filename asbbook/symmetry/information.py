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
    j = torch.as_tensor(j).to(torch.float64)
    k = torch.as_tensor(k).to(torch.float64)
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
    y = validation.as_float_tensor("y", y, min_ndim=1).to(device=z.device, dtype=z.dtype)
    if y.shape[-1] != z.shape[-2]:
        raise ValueError(f"y must have P = {z.shape[-2]} labels last, got shape {tuple(y.shape)}")
    positive = y == 1
    if not bool((positive | (y == -1)).all()):
        raise ValueError("y must hold labels in {-1, +1}")
    n_pos = positive.sum(dim=-1)
    n_positive = int(n_pos.reshape(-1)[0])
    if not bool((n_pos == n_positive).all()):
        raise ValueError("y must have the same number of positives in every labelling")
    if not 0 < n_positive < z.shape[-2]:
        raise ValueError("y must contain both labels, +1 and -1")
    open_ = (z > 0).to(z.dtype)
    k = open_.sum(dim=-2)
    j = (positive.to(z.dtype).unsqueeze(-2) @ open_).squeeze(-2)
    return j, k, n_positive


def gate_statistics(z: torch.Tensor, y) -> dict[str, torch.Tensor]:
    """A layer's gate order parameters from one pass over ``z`` ``(..., P, n)`` with labels
    ``y`` ``(P,)`` or ``(..., P)``: per unit ``open_fraction`` ``k_i/P``, ``open_positive``
    ``j_i/n_+`` and ``open_negative`` ``(k_i - j_i)/n_-`` ``(..., n)``; per layer ``entropy``
    (mean ``H_2(k_i/P)``), ``information`` (mean plug-in ``I_hat(g_i; y)``) and
    ``information_debiased`` (mean ``I_hat - b(k_i)``) ``(...)``. The same values as
    :mod:`asbbook.order`'s ``open_fraction``, ``class_open_fractions``,
    ``mean_gate_entropy_bits`` and ``gate_label_information_bits``."""
    j, k, n_positive = _gate_counts(z, y)
    n_patterns = z.shape[-2]
    plug_in = information_from_counts_bits(j, k, n_positive, n_patterns)
    table = torch.as_tensor(information_null_bias_bits(n_patterns, n_positive))
    bias = table.to(plug_in.device)[k.to(torch.long)]
    return {
        "open_fraction": k / n_patterns,
        "open_positive": j / n_positive,
        "open_negative": (k - j) / (n_patterns - n_positive),
        "entropy": binary_entropy_bits(k / n_patterns).mean(dim=-1),
        "information": plug_in.mean(dim=-1),
        "information_debiased": (plug_in - bias).mean(dim=-1),
    }


def gate_label_information_debiased_bits(z: torch.Tensor, y) -> torch.Tensor:
    """Mean over units of ``I_hat(g_i; y) - b(k_i)`` in bits: the plug-in gate-label
    information (as :func:`asbbook.order.gate_label_information_bits`) minus its exact
    permutation-null bias :func:`information_null_bias_bits`. ``z`` is ``(..., P, n)``; ``y`` is
    ``(P,)`` or ``(..., P)``. Returns ``(...)``; its mean is 0 when the labels are independent
    of the gates, and it can be negative."""
    return gate_statistics(z, y)["information_debiased"]


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
