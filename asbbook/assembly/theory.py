"""Closed-form laws of chapter 4: the layer factors of a deep ReLU network at a fixed input.

Conventions (as everywhere in the package): ``widths = (n_0, ..., n_L)``; all ``L`` layers are
ReLU layers; the weights are i.i.d. with mean 0 and variance ``2 / n_{l-1}``; ``r^l = |h^l|^2 / n_l``
with ``h^0 = x`` fixed. Then ``ln(r^L / r^0) = sum_l ln F_l`` with layer factors
``F_l = r^l / r^{l-1}``. For Gaussian weights, ``F_l = (2 / n_l) chi^2_K``, ``K ~ Bin(n_l, 1/2)``
open gates, independent of the past (Hanin & Nica 2019), so every
cumulant of ``ln(r^L / r^0)`` is a sum of per-layer cumulants. A layer dies (``K = 0``,
``F_l = 0``) with probability ``2^{-n_l}``; every log statement is conditional on ``K >= 1``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import special, stats

from asbbook import validation

#: ``c`` in ``v(n) = Var ln F = 5/n + c/n^2 + O(n^-3)`` for a ReLU layer with Gaussian weights
FINITE_WIDTH_COEFFICIENT = 37 / 2

#: excess kurtosis ``kappa = E w^4 / (E w^2)^2 - 3`` of the weight distributions of the chapter
WEIGHT_EXCESS_KURTOSIS = {"gaussian": 0.0, "uniform": -6 / 5, "rademacher": -2.0}


def _check_width(n, name: str = "n") -> int:
    return validation.check_int(name, n, minimum=1)


def layer_widths(widths, *, hidden_widths=None, name: str = "widths") -> tuple[int, ...]:
    """The ReLU layer widths ``(n_1, ..., n_L)`` of ``widths = (n_0, ..., n_L)``.

    ``hidden_widths`` is the deprecated form of the chapter's first edition, which passed
    ``(n_1, ..., n_L)`` alone; it still works with a ``DeprecationWarning``. A one-element
    ``widths`` is refused with a message saying how to pass it."""
    if hidden_widths is not None:
        if widths is not None:
            raise ValueError(
                "pass widths=(n_0, ..., n_L) or the deprecated hidden_widths, not both"
            )
        warnings.warn(
            "hidden_widths=(n_1, ..., n_L) is deprecated: pass widths=(n_0, ..., n_L)",
            DeprecationWarning,
            stacklevel=3,
        )
        return validation.check_widths((1, *hidden_widths), name="hidden_widths")[1:]
    if widths is not None and not isinstance(widths, str) and np.size(widths) == 1:
        raise ValueError(
            f"{name} must be (n_0, ..., n_L) including the input width n_0, got {widths!r}; "
            "the old form (n_1, ..., n_L) is passed as hidden_widths="
        )
    return validation.check_widths(widths, name=name)[1:]


def layer_cv_theory(n):
    """``CV(r^1) = sqrt(5/n)`` for one ReLU layer of width ``n``: with ``z ~ N(0, q)``,
    ``E relu^2 = q/2`` and ``Var relu^2 = 5q^2/4`` (Hanin 2018). ``n`` may be a width
    or an array of widths."""
    arr = np.asarray(n)
    if arr.ndim == 0:
        return math.sqrt(5.0 / _check_width(n))
    if arr.dtype.kind not in "iu" or np.any(arr < 1):
        raise ValueError(f"n must hold positive integer widths, got {n!r}")
    return np.sqrt(5.0 / arr)


def layer_cv_null_stderr(n: int, n_members: int) -> float:
    """Standard error of the sample CV of ``r^1`` over ``n_members`` networks when the theory
    :func:`layer_cv_theory` holds, from the exact moments of ``r^1`` instead of sample ones.

    ``r^1 / q`` is the mean of ``n`` iid ``u = relu(z)^2``, ``z ~ N(0, 1)``, whose raw moments are
    ``E u^k = (2k - 1)!! / 2``: cumulants ``k_2 = 5/4``, ``k_3 = 11/2``, ``k_4 = 279/8``. The mean
    of ``n`` has ``mu_2 = k_2/n``, ``mu_3 = k_3/n^2``, ``mu_4 = k_4/n^3 + 3 k_2^2/n^2``, and the
    delta method gives ``Var cv = [mu_2^2/m^4 + (mu_4 - mu_2^2)/(4 m^2 mu_2) - mu_3/m^3] / K``
    with ``m = 1/2`` (the form of ``asbbook.stats.cv_with_stderr``). Relu^2 is heavy-tailed, so at
    small ``n`` the plug-in error from sample moments is itself noisy and makes the ``z`` of the
    CV too large too often (about 5 times the nominal rate at ``|z| > 3.9`` for ``n = 4``,
    ``K = 2000``); on ``ln CV`` with this error (divided by the CV) the rate is nominal."""
    n = _check_width(n)
    k = validation.check_int("n_members", n_members, minimum=2)
    k2, k3, k4 = 5 / 4, 11 / 2, 279 / 8
    m, mu2, mu3 = 0.5, k2 / n, k3 / n**2
    mu4 = k4 / n**3 + 3 * k2**2 / n**2
    return math.sqrt((mu2**2 / m**4 + (mu4 - mu2**2) / (4 * m**2 * mu2) - mu3 / m**3) / k)


def _open_gate_law(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The support ``k`` and ``P(K = k | K >= 1)`` for ``K ~ Bin(n, 1/2)``: all ``k = 1..n``
    within 20 standard deviations of ``n/2`` (the rest has probability below 1e-80)."""
    half = int(10 * math.sqrt(n)) + 10  # 20 standard deviations sqrt(n)/2
    lo, hi = max(1, n // 2 - half), min(n, n // 2 + half)
    validation.check_memory("widths", 8.0 * 8 * (hi - lo + 1))
    k = np.arange(lo, hi + 1)
    p = stats.binom.pmf(k, n, 0.5)
    return k, p / p.sum()


def _raw_from_cumulants(kappa: list) -> list:
    """Raw moments ``m_1..m_r`` from cumulants ``k_1..k_r`` (arrays allowed):
    ``m_j = sum_{i=1}^{j} C(j-1, i-1) k_i m_{j-i}``, ``m_0 = 1``."""
    m = [1.0]
    for j in range(1, len(kappa) + 1):
        m.append(sum(math.comb(j - 1, i - 1) * kappa[i - 1] * m[j - i] for i in range(1, j + 1)))
    return m[1:]


def _cumulants_from_raw(m: list) -> list:
    """The inverse: ``k_j = m_j - sum_{i=1}^{j-1} C(j-1, i-1) k_i m_{j-i}``."""
    raw = [1.0, *m]
    kappa: list = []
    for j in range(1, len(m) + 1):
        kappa.append(
            raw[j] - sum(math.comb(j - 1, i - 1) * kappa[i - 1] * raw[j - i] for i in range(1, j))
        )
    return kappa


def layer_log_cumulants_exact(n: int, order: int = 4) -> np.ndarray:
    """The first ``order`` (4 by default, at most 8) cumulants of ``ln F`` for one Gaussian ReLU
    layer of width ``n``: the mean first, then ``k_2, k_3, ...``.

    ``F = (2/n) chi^2_K``; given ``K = k`` the cumulants of ``ln chi^2_k`` are
    ``psi(k/2) + ln 2`` and ``psi_{j-1}(k/2)`` for ``j >= 2`` (Mellin transform, see
    ``derive_exact_layer_log_variance``). The mixture over ``K ~ Bin(n, 1/2)``, ``K >= 1``, is
    taken through the raw moments."""
    n = _check_width(n)
    order = validation.check_int("order", order, minimum=1, maximum=8)
    k, p = _open_gate_law(n)
    conditional = [math.log(2.0 / n) + special.digamma(k / 2) + math.log(2.0)]
    conditional += [special.polygamma(j - 1, k / 2) for j in range(2, order + 1)]
    raw = [float(p @ r) for r in _raw_from_cumulants(conditional)]
    return np.array(_cumulants_from_raw(raw))


def layer_log_mean_exact(n: int) -> float:
    """``m(n) = E ln F = ln(2/n) + E psi(K/2) + ln 2`` over ``K ~ Bin(n, 1/2)``, ``K >= 1``."""
    n = _check_width(n)
    k, p = _open_gate_law(n)
    return float(math.log(4.0 / n) + p @ special.digamma(k / 2))


def layer_log_variance_exact(n: int, *, linear: bool = False) -> float:
    """``v(n) = Var ln F = E psi_1(K/2) + Var psi(K/2)`` (law of total variance), ``K >= 1``.

    With ``linear`` the layer is read before the ReLU: ``F = chi^2_n / n`` and
    ``v(n) = psi_1(n/2)``."""
    n = _check_width(n)
    if linear:
        return float(special.polygamma(1, n / 2))
    k, p = _open_gate_law(n)
    b = special.digamma(k / 2)
    return float(p @ special.polygamma(1, k / 2) + p @ (b - p @ b) ** 2)


def log_norm_mean_exact(
    widths, *, sigma2: float = 2.0, last_linear: bool = False, hidden_widths=None
) -> float:
    """Hanin-Nica log-mean ``E ln(r^L / r^0) = sum_{l=1}^L m(n_l)``, exact at finite width
    (Gaussian weights; conditional on no dead layer), with ``m`` from
    :func:`layer_log_mean_exact`. Leading order ``-(5/2) sum_l 1/n_l``: the mean of
    ``r^L / r^0`` is 1, so its log sits half a variance below 0 (Hanin & Nica 2019).

    With weight variance ``sigma2 / n_{l-1}`` every factor is multiplied by ``sigma2 / 2``; with
    ``last_linear`` layer ``L`` is read before the ReLU, ``F_L = sigma2 chi^2_{n_L} / n_L`` and
    ``E ln F_L = ln sigma2 + psi(n_L/2) + ln(2/n_L)``."""
    ns = layer_widths(widths, hidden_widths=hidden_widths)
    sigma2 = validation.check_real("sigma2", sigma2, positive=True)
    shift = math.log(sigma2 / 2)
    total = sum(layer_log_mean_exact(n) + shift for n in ns[:-1])
    n = ns[-1]
    if last_linear:
        return float(total + math.log(sigma2) + special.digamma(n / 2) + math.log(2.0 / n))
    return float(total + layer_log_mean_exact(n) + shift)


def log_norm_variance_exact(widths=None, *, last_linear: bool = False, hidden_widths=None) -> float:
    """``Var ln(r^L / r^0) = sum_{l=1}^L v(n_l)``, exact at finite width (Gaussian weights,
    conditional on no dead layer). ``last_linear`` reads layer ``L`` before the ReLU."""
    ns = layer_widths(widths, hidden_widths=hidden_widths)
    total = sum(layer_log_variance_exact(n) for n in ns[:-1])
    return float(total + layer_log_variance_exact(ns[-1], linear=last_linear))


def log_norm_variance_theory(widths=None, *, last_linear: bool = False, hidden_widths=None):
    """Leading order ``Var ln(r^L / r^0) = 5 sum_{l=1}^L 1/n_l`` (Hanin 2018; Hanin & Nica 2019);
    ``last_linear`` replaces the last ``5/n_L`` by ``2/n_L``."""
    ns = layer_widths(widths, hidden_widths=hidden_widths)
    total = sum(5.0 / n for n in ns)
    return float(total - 3.0 / ns[-1] if last_linear else total)


def log_norm_cumulants_exact(widths, order: int = 4, *, last_linear: bool = False) -> np.ndarray:
    """Mean, variance and higher cumulants (``order`` in all) of ``ln(r^L / r^0)``: sums over
    the independent layers of :func:`layer_log_cumulants_exact` (He initialisation).

    With ``last_linear`` layer ``L`` is read before the ReLU, ``F_L = 2 chi^2_{n_L} / n_L``, whose
    log has the cumulants ``ln(4/n_L) + psi(n_L/2)`` and ``psi_{j-1}(n_L/2)`` for ``j >= 2``
    (as in :func:`log_norm_mean_exact` and :func:`log_norm_variance_exact`). A weight variance
    other than 2 shifts only the mean."""
    ns = layer_widths(widths)
    order = validation.check_int("order", order, minimum=1, maximum=8)
    if not last_linear:
        return np.sum([layer_log_cumulants_exact(n, order) for n in ns], axis=0)
    hidden = [layer_log_cumulants_exact(n, order) for n in ns[:-1]]
    n = ns[-1]
    last = [math.log(4.0 / n) + special.digamma(n / 2)]
    last += [special.polygamma(j - 1, n / 2) for j in range(2, order + 1)]
    return np.sum(hidden + [np.array(last, dtype=np.float64)], axis=0)


def log_norm_exact_samples(widths, n_samples: int, *, seed: int = 0) -> np.ndarray:
    """Draws of ``ln(r^L / r^0)`` from its exact law at finite width (Gaussian weights, He
    initialisation, conditional on no dead layer): a sum over the layers of independent
    ``ln((2/n_l) chi^2_K)`` with ``K ~ Bin(n_l, 1/2)`` conditioned on ``K >= 1``, the law whose
    cumulants :func:`log_norm_cumulants_exact` gives. The theory's own sample, for tests whose
    null needs the whole law (e.g. ``report.KolmogorovSmirnovComparison``). Seeded numpy draws."""
    ns = layer_widths(widths)
    n_samples = validation.check_int("n_samples", n_samples, minimum=1)
    validation.check_memory("n_samples", 8.0 * 3 * n_samples)
    rng = np.random.default_rng(validation.check_seed("seed", seed))
    total = np.zeros(n_samples)
    for n in ns:
        k, p = _open_gate_law(n)
        open_gates = rng.choice(k, size=n_samples, p=p)
        total += np.log(2.0 / n * rng.chisquare(open_gates))
    return total


def log_norm_shape_exact(widths) -> tuple[float, float]:
    """Exact skewness ``k3 / k2^(3/2)`` and excess kurtosis ``k4 / k2^2`` of ``ln(r^L / r^0)``.
    Both vanish like ``1/sqrt(L n)`` and ``1/(L n)``: the log-norm is Gaussian to leading order
    (Hanin & Nica 2019)."""
    _, k2, k3, k4 = log_norm_cumulants_exact(widths)
    return float(k3 / k2**1.5), float(k4 / k2**2)


def fourth_moment_ratio(x) -> float:
    """``s(x) = sum_j x_j^4 / (sum_j x_j^2)^2``: how unevenly ``x`` spreads its norm (``1/n`` for
    a flat vector, 1 for a one-hot vector). For ``z = w . x`` with i.i.d. weights of excess
    kurtosis ``kappa``: ``E z^4 / (E z^2)^2 = 3 + kappa s(x)``."""
    x = np.asarray(validation.as_float_tensor("x", x, ndim=1), dtype=np.float64)
    norm2 = float(np.sum(x**2))
    if norm2 == 0:
        raise ValueError("x must not be the zero vector")
    return float(np.sum(x**4) / norm2**2)


def log_norm_variance_expansion(
    widths, weight_excess_kurtosis: float = 0.0, *, input_ratio: float | None = None
) -> float:
    """``Var ln(r^L / r^0)`` to order ``1/n^2`` for i.i.d. weights of excess kurtosis ``kappa``:

        sum_{l=1}^L [ 5/n_l + (37/2)/n_l^2 + 2 kappa s_{l-1} / n_l ],

    with ``s_0 = s(x)`` (:func:`fourth_moment_ratio`) and ``s_{l-1} = 6 / n_{l-1}`` for a ReLU
    layer below (``E relu^4 / (E relu^2)^2 = 6``). Per layer, given ``h^{l-1}``,
    ``E z^4 / (E z^2)^2 = 3 + kappa s_{l-1}`` and the squared coefficient of variation of
    ``relu(z)^2`` is ``2 E z^4 / (E z^2)^2 - 1 = 5 + 2 kappa s_{l-1}`` (the book's derivation,
    ``derive_kurtosis_correction``; kappa = 0 is the Gaussian law of Hanin & Nica 2019).
    ``input_ratio`` is ``s(x)``; without it ``3 / (n_0 + 2)``, the mean of ``s`` over Gaussian
    inputs, is used."""
    full = validation.check_widths(widths)
    kappa = validation.check_real("weight_excess_kurtosis", weight_excess_kurtosis)
    if kappa < -2:
        raise ValueError(f"weight_excess_kurtosis must be >= -2 (Rademacher), got {kappa}")
    if input_ratio is None:
        s0 = 3.0 / (full[0] + 2)
    else:
        s0 = validation.check_real("input_ratio", input_ratio, positive=True, maximum=1.0)
    ratios = [s0] + [6.0 / n for n in full[1:-1]]
    return float(
        sum(
            5.0 / n + FINITE_WIDTH_COEFFICIENT / n**2 + 2 * kappa * s / n
            for n, s in zip(full[1:], ratios, strict=True)
        )
    )


def correlation_map(rho):
    """The ReLU correlation map, the normalised arc-cosine kernel of degree 1 (Cho & Saul 2009;
    Poole et al. 2016): ``f(rho) = [sqrt(1 - rho^2) + (pi - arccos rho) rho] / pi``.

    For two inputs whose pre-activations are jointly Gaussian with correlation ``rho``, the
    cosine of the next layer's activations is ``f(rho)`` (infinite width). ``f(1) = 1`` and
    ``f'(1) = 1``: the fixed point rho = 1 is marginally stable."""
    r = np.clip(np.asarray(rho, dtype=np.float64), -1.0, 1.0)
    out = (np.sqrt(1 - r**2) + (np.pi - np.arccos(r)) * r) / np.pi
    return float(out) if out.ndim == 0 else out


def correlation_map_iterates(rho0: float, depth: int) -> np.ndarray:
    """``rho^l = f^l(rho0)`` for ``l = 0..depth`` (``f`` = :func:`correlation_map`)."""
    rho = validation.check_real("rho0", rho0)
    if not -1 <= rho <= 1:
        raise ValueError(f"rho0 must lie in [-1, 1], got {rho}")
    depth = validation.check_int("depth", depth, minimum=0)
    validation.check_memory("depth", 8.0 * (depth + 1))
    out = [rho]
    for _ in range(depth):
        out.append(correlation_map(out[-1]))
    return np.array(out)
