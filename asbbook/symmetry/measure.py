"""Measurements of chapter 3: the backward pass, the initial ensemble, and the order in which
training breaks the ensemble's symmetries.

Tensors carry leading ensemble dimensions: weights ``(..., n_l, n_{l-1})``, pre-activations
``(..., P, n_l)``. Every Monte-Carlo estimate is a :class:`asbbook.stats.Estimate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import optimize
from scipy import stats as sstats

from asbbook import ensemble, nets, order, report, validation
from asbbook.order import half_time  # noqa: F401  (re-exported)
from asbbook.symmetry.information import gate_label_information_debiased_bits, shuffled_labels
from asbbook.symmetry.transforms import path_couplings

# --------------------------------------------------------------------------------------------
# The backward pass
# --------------------------------------------------------------------------------------------


def preactivation_gradients(weights, X) -> list[torch.Tensor]:
    """``delta^l = df/dz^l`` for ``l = 1..L`` of a scalar-output net, each ``(..., P, n_l)``.

    ``delta^L = 1`` and ``delta^l = 1[z^l > 0] * (delta^{l+1} W^{l+1})`` (backpropagation; the
    gate is the ReLU's derivative, taken as 0 at ``z = 0``)."""
    widths = validation.check_weights(weights)
    X = validation.check_inputs(X, widths[0])
    if widths[-1] != 1:
        raise ValueError(f"weights must end in one output unit, got widths {widths}")
    lead = weights[0].shape[:-2].numel()
    validation.check_memory("X", 3.0 * lead * X.shape[0] * sum(widths) * X.element_size())
    zs = nets.preactivations(weights, X)
    deltas = [torch.ones_like(zs[-1])]
    for layer in range(len(weights) - 2, -1, -1):
        deltas.insert(0, (deltas[0] @ weights[layer + 1]) * (zs[layer] > 0))
    return deltas


def gradient_second_moments(weights, X) -> tuple[torch.Tensor, torch.Tensor]:
    """Per network, averaged over the patterns: ``|df/dz^l|^2`` for the hidden layers
    ``(..., L-1)`` and ``|df/dW^l|^2 = |delta^l|^2 |h^{l-1}|^2`` for every layer ``(..., L)``
    (``df/dW^l = delta^l (h^{l-1})^T`` is an outer product, so its norm factorises)."""
    deltas = preactivation_gradients(weights, X)
    zs = nets.preactivations(weights, X)
    hs = [X.expand(*zs[0].shape[:-1], X.shape[-1])] + [torch.relu(z) for z in zs[:-1]]
    delta_sq = [d.square().sum(dim=-1) for d in deltas]  # (..., P) per layer
    h_sq = [h.square().sum(dim=-1) for h in hs]
    hidden = torch.stack([d.mean(dim=-1) for d in delta_sq[:-1]], dim=-1)
    weight = torch.stack(
        [(d * h).mean(dim=-1) for d, h in zip(delta_sq, h_sq, strict=True)], dim=-1
    )
    return hidden, weight


def _layer_sigma2(sigma2, depth: int) -> np.ndarray:
    """``sigma2`` as ``depth`` positive finite per-layer values (one number: every layer)."""
    if isinstance(sigma2, str | bytes) or not isinstance(sigma2, Sequence | np.ndarray):
        return np.full(depth, validation.check_real("sigma2", sigma2, positive=True))
    if len(sigma2) != depth:
        raise ValueError(f"sigma2 must be one number or {depth} per-layer values, got {sigma2!r}")
    values = [validation.check_real(f"sigma2[{k}]", s, positive=True) for k, s in enumerate(sigma2)]
    return np.asarray(values)


def gradient_prediction(widths, sigma2, x_sq_mean: float) -> tuple[np.ndarray, np.ndarray]:
    """The backward map of :func:`derive_gradient_map`: ``E |df/dz^l|^2 = prod_{k>l}
    sigma_k^2/2`` for ``l = 1..L-1`` and ``E |df/dW^l|^2 = n_{l-1} m prod_{k != l}
    sigma_k^2/2`` for ``l = 1..L`` (``m = mean x^2``; Hanin 2018 for ``sigma^2 = 2``)."""
    widths = validation.check_widths(widths)
    depth = len(widths) - 1
    half = _layer_sigma2(sigma2, depth) / 2
    m = validation.check_real("x_sq_mean", x_sq_mean, nonnegative=True)
    hidden = np.array([np.prod(half[ell:]) for ell in range(1, depth)])
    weight = np.array([widths[ell] * m * np.prod(np.delete(half, ell)) for ell in range(depth)])
    if not (np.isfinite(hidden).all() and np.isfinite(weight).all()):
        raise ValueError(
            f"sigma2 = {sigma2!r} and x_sq_mean = {m} give second moments beyond float64 range"
        )
    return hidden, weight


def log_coupling_prediction(widths, sigma2=2.0) -> float:
    """``E ln J_pi^2 = sum_l ln(sigma_l^2 / n_{l-1}) - L (gamma + ln 2)`` for Gaussian weights
    (:func:`derive_sign_flip_moments`; ``E ln chi^2_1 = psi(1/2) + ln 2``)."""
    widths = validation.check_widths(widths)
    depth = len(widths) - 1
    s2 = _layer_sigma2(sigma2, depth)
    return float(
        sum(math.log(s / n) for s, n in zip(s2, widths[:-1], strict=True))
        - depth * (np.euler_gamma + math.log(2.0))
    )


# --------------------------------------------------------------------------------------------
# The initial ensemble
# --------------------------------------------------------------------------------------------


def initial_ensemble_samples(
    members: Sequence[ensemble.MemberSpec],
    X,
    y,
    paths,
    partners,
    *,
    seed: int,
    chunk: int = 100,
    dtype: torch.dtype = torch.float64,
    device="cpu",
) -> dict[str, torch.Tensor]:
    """One sample per network of every quantity the sign-flip symmetry predicts, on CPU:

    ``open``, ``gz2``: per hidden layer, the open fraction of the gates and ``mean g z^2``;
    ``p``: each hidden unit's open fraction; ``entropy``: mean gate entropy per hidden layer;
    ``J``, ``J2``, ``log_J2``, ``JJ``: means over ``paths`` of ``J_pi``, ``J_pi^2``,
    ``ln J_pi^2`` and ``J_pi J_pi'``;
    ``m``: the label alignment; ``info_null``: per hidden layer, the debiased gate-label
    information with the labels shuffled (independently per network); ``delta_sq``,
    ``weight_grad_sq``: :func:`gradient_second_moments`."""
    device = validation.resolve_device(device)
    X = validation.check_inputs(X, dtype=dtype, device=device)
    y = validation.check_labels(y, X.shape[0], dtype=dtype, device=device)
    chunk = validation.check_int("chunk", chunk, minimum=1)
    widths = members[0].widths
    validation.check_memory("chunk", 4.0 * chunk * X.shape[0] * sum(widths) * 8)
    y_null = shuffled_labels(y, len(members), seed).to(device)
    rows: dict[str, list] = {}
    for start in range(0, len(members), chunk):
        w = ensemble.stacked_weights(members[start : start + chunk], seed, dtype, device)
        zs = nets.preactivations(w, X)
        hidden = zs[:-1]
        J, J_partner = path_couplings(w, paths), path_couplings(w, partners)
        delta_sq, weight_sq = gradient_second_moments(w, X)
        y_chunk = y_null[start : start + len(w[0])]
        values = {
            "open": torch.stack([(z > 0).to(dtype).mean(dim=(-2, -1)) for z in hidden], -1),
            "gz2": torch.stack([torch.relu(z).square().mean(dim=(-2, -1)) for z in hidden], -1),
            "p": torch.stack([order.open_fraction(z) for z in hidden], 1),
            "entropy": torch.stack([order.mean_gate_entropy_bits(z) for z in hidden], -1),
            "J": J.mean(-1),
            "J2": J.square().mean(-1),
            "log_J2": J.square().log().mean(-1),
            "JJ": (J * J_partner).mean(-1),
            "m": order.label_alignment(zs[-1][..., 0], y),
            "info_null": torch.stack(
                [gate_label_information_debiased_bits(z, y_chunk) for z in hidden], -1
            ),
            "delta_sq": delta_sq,
            "weight_grad_sq": weight_sq,
        }
        for key, value in values.items():
            rows.setdefault(key, []).append(value.cpu())
    return {key: torch.cat(v) for key, v in rows.items()}


def joint_row(quantity: str, predicted, samples) -> report.JointComparison:
    """A :class:`asbbook.report.JointComparison` of the mean of ``samples`` ``(K, k)`` (one row
    per network) with ``predicted`` ``(k,)``: Hotelling's ``T^2`` with the covariance of the
    mean estimated from the same ``K`` networks (the components share networks)."""
    s = validation.as_float_tensor("samples", samples, ndim=2).double().cpu().numpy()
    n = s.shape[0]
    return report.JointComparison(
        quantity, np.asarray(predicted), s.mean(0), np.cov(s, rowvar=False) / n, n_samples=n
    )


# --------------------------------------------------------------------------------------------
# When does a symmetry break?
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderComparison:
    """The book's claim that symmetry ``a`` breaks before ``b`` in a replica, tested on paired
    half-times as a calibrated row (an exact one-sided binomial test, ties dropped).

    The claim is the null hypothesis ``P(t_a < t_b) >= claim``: the row fails when
    significantly fewer replicas than ``claim`` have ``a`` first, so a true claim fails with
    probability at most the row's level. ``detectable`` gives the drop below ``claim`` that is
    detected with probability :data:`asbbook.report.POWER`. :attr:`sign_test_p` is the
    evidence *for* an order: the two-sided sign test of ``P = 1/2``."""

    quantity: str
    first: np.ndarray  # half-times of the symmetry claimed to break first, one per replica
    second: np.ndarray
    claim: float = 0.5

    def __post_init__(self):
        a = np.asarray(self.first, dtype=np.float64)
        b = np.asarray(self.second, dtype=np.float64)
        if a.ndim != 1 or a.shape != b.shape or a.size < 2:
            raise ValueError(f"{self.quantity}: first and second must be paired 1-d arrays")
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise ValueError(f"{self.quantity}: half-times must be finite")
        if not 0 < self.claim < 1:
            raise ValueError(f"{self.quantity}: claim must lie in (0, 1)")
        object.__setattr__(self, "first", a)
        object.__setattr__(self, "second", b)

    @property
    def successes(self) -> int:
        return int((self.first < self.second).sum())

    @property
    def trials(self) -> int:
        return int((self.first != self.second).sum())

    @property
    def predicted(self) -> float:
        return self.claim

    @property
    def measured(self) -> float:
        return self.successes / self.trials if self.trials else math.nan

    @property
    def gap(self):
        """Mean paired difference ``t_b - t_a`` with its standard error (an ``Estimate``)."""
        from asbbook.stats import mean_with_stderr

        return mean_with_stderr(torch.as_tensor(self.second - self.first)).item()

    @property
    def sign_test_p(self) -> float:
        if not self.trials:
            return 1.0
        return float(sstats.binomtest(self.successes, self.trials, 0.5).pvalue)

    def p_value(self) -> float:
        if not self.trials:
            return 1.0
        return float(sstats.binom.cdf(self.successes, self.trials, self.claim))

    def detectable(self, alpha: float) -> float:
        n = self.trials
        if not n:
            return math.inf
        k_crit = int(sstats.binom.ppf(alpha, n, self.claim))
        while k_crit >= 0 and sstats.binom.cdf(k_crit, n, self.claim) > alpha:
            k_crit -= 1
        if k_crit < 0:
            return math.inf

        def power(p: float) -> float:
            return sstats.binom.cdf(k_crit, n, p) - report.POWER

        return float(self.claim - optimize.brentq(power, 0.0, self.claim))

    def cells(self) -> tuple[str, str, str]:
        gap = self.gap
        return (
            f"≥ {self.claim:.2g}",
            f"{self.successes}/{self.trials}",
            f"gap {gap.value:.3g} ± {gap.stderr:.2g} steps",
        )
