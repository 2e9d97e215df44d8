"""Chapter 4: the statistical assembly method (coarse-graining over the symmetry group).

A microscopic quantity averaged over a symmetry orbit becomes a layer-level order parameter.
The orbit of one unit under the permutations of its layer is the whole layer, so the orbit average
of ``relu(z_i)^2`` is the layer average

    r_hat^l = (1/n_l) sum_i relu(z^l_i)^2 = norm(h^l)^2 / n_l,

and the sign-flip orbit of a weight row maps ``z_i -> -z_i`` with
``(relu(z)^2 + relu(-z)^2)/2 = z^2/2``, so ``E r_hat^l = q^l / 2``.

**Concentration.** For Gaussian ``z ~ N(0, q)``: ``E relu^2 = q/2``, ``E relu^4 = 3q^2/2``,
``Var relu^2 = 5q^2/4``, so the layer mean of ``n`` i.i.d. units has coefficient of variation
``sqrt(5/n)``.

**Across depth** (Hanin 2018; Hanin & Nica 2019). For a bias-free ReLU net with i.i.d. Gaussian
weights of variance ``sigma^2/n_{l-1}`` and a fixed input ``x``, define ``r_hat^0 = mean_j x_j^2``.
Conditional on ``h^{l-1}``, the ``z^l_i`` are i.i.d. ``N(0, sigma^2 r_hat^{l-1})``, hence

    r_hat^l = sigma^2 r_hat^{l-1} A_l,   A_l = (1/n_l) sum_i relu(xi^l_i)^2,  xi^l_i ~ N(0, 1),

with ``A_l`` independent of the past. So ``E r_hat^l = (sigma^2/2) E r_hat^{l-1}`` (the ratio's
mean is 1 under He initialisation, ``sigma^2 = 2``) and
``ln(r_hat^L / r_hat^0) = L ln sigma^2 + sum_l ln A_l`` is a sum of independent terms:

    Var ln(r_hat^L / r_hat^0) = sum_l v(n_l)            (exact, given no layer dies)
                              ≈ 5 sum_l 1/n_l            (leading order, delta method).

Here ``v(n) = Var ln A = E psi_1(K/2) + Var psi(K/2)`` with ``K ~ Binomial(n, 1/2)`` (the number
of open gates; ``relu(xi)^2`` is ``chi^2_1`` or 0), whose expansion is
``v(n) = 5/n + 37/(2 n^2) + O(n^-3)``: finite width adds a positive correction of order
``L/n^2``. A final linear layer (pre-activations, no ReLU) has ``v = psi_1(n/2) ≈ 2/n``.
A layer dies (``A_l = 0``, ``ln = -inf``) with probability ``2^{-n_l}``; all statements are
conditional on no layer dying.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch
from scipy import special, stats

from asbbook import ensemble, nets
from asbbook.order import layer_average_relu_sq
from asbbook.stats import Estimate, cv_with_stderr, mean_with_stderr, variance_with_stderr
from asbbook.symbolic import symmetric_expectation

__all__ = [
    "Estimate",
    "PowerLawFit",
    "layer_cv_theory",
    "log_norm_variance_theory",
    "layer_log_variance_exact",
    "log_norm_variance_exact",
    "layer_average_relu_sq",
    "layer_average_sq",
    "layer_cv",
    "cv_with_stderr",
    "log_norm_profile",
    "log_norm_ratio",
    "sample_reduced",
    "variance_with_stderr",
    "mean_with_stderr",
    "loglog_fit",
    "derive_orbit_average",
    "derive_relu_moments",
    "derive_log_norm_variance",
    "derive_exact_layer_log_variance",
    "derive_finite_width_correction",
    "derive_self_similarity",
]

#: coefficient ``c`` of the second-order term ``c / n^2`` of ``v(n) = Var ln A`` for a ReLU layer
FINITE_WIDTH_COEFFICIENT = 37 / 2


# --------------------------------------------------------------------------------------------
# Theory
# --------------------------------------------------------------------------------------------


def _check_width(n) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"a width must be a positive integer, got {n!r}")
    return int(n)


def _check_widths(widths: Sequence[int]) -> list[int]:
    if isinstance(widths, np.ndarray):
        widths = widths.tolist()
    if isinstance(widths, str) or not isinstance(widths, Sequence) or len(widths) == 0:
        raise ValueError(
            f"widths must be a non-empty sequence of positive integers, got {widths!r}"
        )
    return [_check_width(n) for n in widths]


def layer_cv_theory(n):
    """Coefficient of variation of ``(1/n) sum_i relu(z_i)^2`` for i.i.d. ``z_i ~ N(0, q)``:
    ``sqrt(Var relu^2 / n) / E relu^2 = sqrt((5q^2/4) / n) / (q/2) = sqrt(5/n)``.
    Accepts a width or an array of widths."""
    arr = np.asarray(n)
    if arr.ndim == 0:
        return math.sqrt(5.0 / _check_width(n))
    if arr.dtype.kind not in "iu" or np.any(arr < 1):
        raise ValueError(f"widths must be positive integers, got {n!r}")
    return np.sqrt(5.0 / arr)


def log_norm_variance_theory(widths: Sequence[int], *, last_linear: bool = False) -> float:
    """Leading order in ``1/n`` of ``Var ln(r_hat^L / r_hat^0)``: ``5 sum_{l=1}^L 1/n_l`` for
    ``L`` ReLU layers of widths ``widths = (n_1, .., n_L)`` (Hanin 2018; Hanin & Nica 2019).
    With ``last_linear`` the last layer is read before the ReLU and adds ``2/n_L`` instead."""
    ns = _check_widths(widths)
    total = sum(5.0 / n for n in ns)
    if last_linear:
        total += 2.0 / ns[-1] - 5.0 / ns[-1]
    return total


def layer_log_variance_exact(n: int, *, linear: bool = False) -> float:
    """``v(n) = Var ln A`` for one layer, exact at width ``n`` (Gaussian weights, no bias).

    ReLU layer: ``A = (1/n) sum_i relu(xi_i)^2 = chi^2_K / n`` with ``K ~ Bin(n, 1/2)`` open
    gates; ``Var ln chi^2_k = psi_1(k/2)`` and ``E ln chi^2_k = psi(k/2) + ln 2``, so by the law of
    total variance ``v(n) = E[psi_1(K/2)] + Var[psi(K/2)]``, conditional on ``K >= 1``.
    Linear layer: ``A = chi^2_n / n`` and ``v(n) = psi_1(n/2)``.
    """
    n = _check_width(n)
    if linear:
        return float(special.polygamma(1, n / 2))
    k = np.arange(1, n + 1)
    p = stats.binom.pmf(k, n, 0.5)
    p = p / p.sum()
    a = special.polygamma(1, k / 2)
    b = special.digamma(k / 2)
    mean_b = float(p @ b)
    return float(p @ a + p @ (b - mean_b) ** 2)


def log_norm_variance_exact(widths: Sequence[int], *, last_linear: bool = False) -> float:
    """Exact ``Var ln(r_hat^L / r_hat^0) = sum_l v(n_l)`` (conditional on no layer dying), with
    ``v`` from :func:`layer_log_variance_exact`; ``last_linear`` as in
    :func:`log_norm_variance_theory`."""
    ns = _check_widths(widths)
    total = sum(layer_log_variance_exact(n) for n in ns[:-1])
    return total + layer_log_variance_exact(ns[-1], linear=last_linear)


# --------------------------------------------------------------------------------------------
# Measurement (leading ensemble dimensions allowed everywhere)
# --------------------------------------------------------------------------------------------


def _check_tensor(z, name: str = "z", min_ndim: int = 1) -> torch.Tensor:
    if not isinstance(z, torch.Tensor) or z.ndim < min_ndim:
        raise ValueError(f"{name} must be a tensor with at least {min_ndim} dimension(s)")
    return z


def layer_average_sq(z: torch.Tensor) -> torch.Tensor:
    """``(1/n) sum_i z_i^2`` over the last dimension (a linear layer's average): ``(..., n) -> (...)``."""
    z = _check_tensor(z)
    return z.square().mean(dim=-1)


def layer_cv(z: torch.Tensor, dim: int = 0) -> Estimate:
    """Measured coefficient of variation of ``r_hat = layer_average_relu_sq(z)`` over the ensemble
    dimension ``dim`` of ``z`` (shape ``(K, ..., n)``), with a delta-method standard error.

    For the first layer of a Gaussian ensemble at a fixed input, ``z^1_i`` are exactly i.i.d.
    Gaussian and the prediction :func:`layer_cv_theory` is exact at every width. Deeper layers
    fluctuate more, because their scale ``r_hat^{l-1}`` fluctuates too (see
    :func:`log_norm_profile`)."""
    z = _check_tensor(z, min_ndim=2)
    if dim < 0:
        dim += z.ndim
    if dim == z.ndim - 1:
        raise ValueError("the ensemble dimension cannot be the unit (last) dimension")
    return cv_with_stderr(layer_average_relu_sq(z), dim=dim)


def log_norm_profile(
    zs: Sequence[torch.Tensor], x: torch.Tensor, *, last_linear: bool = False
) -> torch.Tensor:
    """``ln(r_hat^l / r_hat^0)`` for ``l = 1..L``, stacked last: ``(..., L)``.

    ``zs = [z^1, .., z^L]`` are pre-activations shaped ``(..., n_l)`` (for example
    ``(K, P, n_l)``), every layer treated as a ReLU layer: ``r_hat^l = (1/n_l) sum_i relu(z^l_i)^2``
    (with ``last_linear`` the last one is ``(1/n_L) sum_i (z^L_i)^2``). ``r_hat^0 = mean_j x_j^2``
    with ``x`` shaped ``(..., n_0)`` broadcastable against ``zs`` (e.g. ``(P, n_0)``). With this
    ``r_hat^0``, ``E[r_hat^l | r_hat^{l-1}] = (sigma^2/2) r_hat^{l-1}`` at every layer, so
    ``E[r_hat^L / r_hat^0] = (sigma^2/2)^L`` (exactly 1 under He initialisation, a martingale).
    A dead layer gives ``-inf``.
    """
    if len(zs) == 0:
        raise ValueError("zs must hold at least one layer")
    x = _check_tensor(torch.as_tensor(x), "x")
    log_r0 = torch.log(x.square().mean(dim=-1))
    out = []
    for layer, z in enumerate(zs):
        if last_linear and layer == len(zs) - 1:
            r = layer_average_sq(z)
        else:
            r = layer_average_relu_sq(z)
        out.append(torch.log(r) - log_r0.to(device=r.device, dtype=r.dtype))
    return torch.stack(torch.broadcast_tensors(*out), dim=-1)


def log_norm_ratio(
    zs: Sequence[torch.Tensor], x: torch.Tensor, *, last_linear: bool = False
) -> torch.Tensor:
    """``ln(r_hat^L / r_hat^0)`` per ensemble member (and pattern): the last column of
    :func:`log_norm_profile`. Its variance over the ensemble is predicted by
    :func:`log_norm_variance_theory` (leading order) and :func:`log_norm_variance_exact`."""
    return log_norm_profile(zs, x, last_linear=last_linear)[..., -1]


def _check_reduced(value, k: int, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.ndim < 1 or value.shape[0] != k:
        raise ValueError(f"reduce must return tensors with leading dimension {k} ({name})")
    return value


def sample_reduced(
    X,
    widths: Sequence[int],
    n_members: int,
    reduce: Callable[[list[torch.Tensor]], torch.Tensor | dict[str, torch.Tensor]],
    *,
    sigma2: float = 2.0,
    seed: int = 0,
    max_weights: int = 20_000_000,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor | dict[str, torch.Tensor]:
    """``reduce(zs)`` of a ``K``-member ensemble at initialisation, drawn in chunks.

    The members are replicates ``0 .. K-1`` of ``widths`` at variance ``sigma2``
    (:func:`asbbook.ensemble.member_specs`); each chunk of consecutive members goes through
    :func:`asbbook.ensemble.sample_ensemble` on the inputs ``X`` ``(P, n_0)``, which returns
    ``zs = [z^1, .., z^L]`` shaped ``(k, P, n_l)``, and only ``reduce(zs)`` is kept: a tensor
    (or a dict of tensors) with leading dimension ``k``, concatenated over the chunks. A chunk
    holds at most ``max_weights`` weights (at least one member), so memory stays bounded.

    Every member's weights come from its own seed (:func:`asbbook.ensemble.member_weights`),
    so the result does not depend on ``max_weights``, and the first ``K'`` rows of a
    ``K``-member run are the ``K'``-member run.
    """
    widths = nets.check_widths(widths)
    for name, value, minimum in (("n_members", n_members, 1), ("max_weights", max_weights, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if not callable(reduce):
        raise ValueError("reduce must be callable")
    specs = ensemble.member_specs(widths, int(n_members), sigma2)
    chunk = max(1, int(max_weights) // nets.parameter_count(widths))
    parts = []
    for start in range(0, len(specs), chunk):
        members = specs[start : start + chunk]
        zs = ensemble.sample_ensemble(X, members=members, seed=seed, dtype=dtype, device=device)
        value = reduce(zs)
        if isinstance(value, dict):
            value = {key: _check_reduced(v, len(members), key) for key, v in value.items()}
        else:
            value = _check_reduced(value, len(members), "tensor")
        parts.append(value)
    if isinstance(parts[0], dict):
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    return torch.cat(parts)


@dataclass(frozen=True)
class PowerLawFit:
    """``y = prefactor * x^slope`` fitted by weighted least squares on ``(ln x, ln y)``."""

    slope: float
    slope_se: float
    slope_ci: tuple[float, float]
    prefactor: float
    log_prefactor_se: float
    prefactor_ci: tuple[float, float]
    confidence: float
    chi2: float
    dof: int

    def __call__(self, x):
        return self.prefactor * np.asarray(x, dtype=np.float64) ** self.slope


def loglog_fit(x, y, yerr, *, confidence: float = 0.95) -> PowerLawFit:
    """Fit ``ln y = ln a + b ln x`` by weighted least squares with known errors
    ``sigma_i = yerr_i / y_i`` (the delta method for ``ln y``), returning the slope ``b``, the
    prefactor ``a`` and normal-theory confidence intervals (``prefactor_ci`` is the exponentiated
    interval of ``ln a``) plus the goodness of fit ``chi2`` on ``dof = N - 2`` degrees of freedom.
    """
    x, y, yerr = (np.asarray(v, dtype=np.float64).ravel() for v in (x, y, yerr))
    if not x.size == y.size == yerr.size:
        raise ValueError("x, y and yerr must have the same length")
    if x.size < 2 or np.unique(x).size < 2:
        raise ValueError("need at least two distinct x values")
    for name, v in (("x", x), ("y", y), ("yerr", yerr)):
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"{name} must be finite and positive")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    design = np.column_stack([np.ones_like(x), np.log(x)])
    w = (y / yerr) ** 2
    info = design.T @ (w[:, None] * design)
    cov = np.linalg.inv(info)
    beta = cov @ (design.T @ (w * np.log(y)))
    resid = np.log(y) - design @ beta
    chi2 = float(np.sum(w * resid**2))
    zq = float(stats.norm.ppf(0.5 + confidence / 2))
    se_a, se_b = np.sqrt(np.diag(cov))
    return PowerLawFit(
        slope=float(beta[1]),
        slope_se=float(se_b),
        slope_ci=(float(beta[1] - zq * se_b), float(beta[1] + zq * se_b)),
        prefactor=float(np.exp(beta[0])),
        log_prefactor_se=float(se_a),
        prefactor_ci=(float(np.exp(beta[0] - zq * se_a)), float(np.exp(beta[0] + zq * se_a))),
        confidence=float(confidence),
        chi2=chi2,
        dof=int(x.size - 2),
    )


# --------------------------------------------------------------------------------------------
# sympy derivations
# --------------------------------------------------------------------------------------------


def _relu(z):
    return sp.Max(0, z)


def derive_orbit_average() -> dict[str, sp.Basic]:
    """Layer-level order parameters as orbit averages.

    (i) Permutation orbit: averaging a one-unit observable ``u(z_1)`` over the ``n!`` relabellings
    of a layer gives the layer average ``(1/n) sum_i u(z_i)`` (checked for ``n = 3``).
    (ii) Sign-flip orbit of a weight row (``z -> -z``): ``(relu(z)^2 + relu(-z)^2)/2 = z^2/2``
    for every real ``z`` (cases ``z > 0``, ``z < 0``, ``z = 0``), so for any ``z`` symmetric about
    0, ``E relu(z)^2 = E z^2 / 2`` and ``E r_hat^l = q^l/2`` without any integral.
    """
    import itertools

    zs = sp.symbols("z_1:4", real=True)
    u = sp.Function("u")
    perms = list(itertools.permutations(range(3)))
    orbit = sum(u(zs[p[0]]) for p in perms) / len(perms)
    layer_avg = sum(u(z) for z in zs) / 3
    assert sp.simplify(orbit - layer_avg) == 0

    t = sp.Symbol("t", positive=True)
    for z in (t, -t, sp.Integer(0)):
        assert sp.simplify((_relu(z) ** 2 + _relu(-z) ** 2) / 2 - z**2 / 2) == 0
    z = sp.Symbol("z", real=True)
    q = sp.Symbol("q", positive=True)
    e = sp.Function(r"\mathbb{E}")
    return {
        "permutation": sp.Eq(
            sp.Symbol(r"\frac{1}{n!}\sum_{\sigma\in S_n} u(z_{\sigma(1)})"),
            sp.Symbol(r"\frac{1}{n}\sum_{i=1}^{n} u(z_i)"),
        ),
        "sign_flip": sp.Eq((_relu(z) ** 2 + _relu(-z) ** 2) / 2, z**2 / 2, evaluate=False),
        "layer_mean": sp.Eq(e(sp.Symbol(r"\hat r^{l}")), q / 2),
    }


def derive_relu_moments() -> dict[str, sp.Basic]:
    """Gaussian moments for ``z ~ N(0, q)`` by integration: ``E relu^2 = q/2``,
    ``E relu^4 = 3q^2/2``, ``Var relu^2 = 5q^2/4``, so one unit has ``CV^2 = 5`` and the mean of
    ``n`` i.i.d. units has ``CV = sqrt(5/n)``. For a linear layer ``E z^4 = 3q^2``,
    ``Var z^2 = 2q^2`` and ``CV = sqrt(2/n)``."""
    z = sp.Symbol("z", real=True)
    q, n = sp.symbols("q n", positive=True)
    pdf = sp.exp(-(z**2) / (2 * q)) / sp.sqrt(2 * sp.pi * q)
    m2 = sp.simplify(sp.integrate(z**2 * pdf, (z, 0, sp.oo)))
    m4 = sp.simplify(sp.integrate(z**4 * pdf, (z, 0, sp.oo)))
    assert sp.simplify(m2 - q / 2) == 0
    assert sp.simplify(m4 - 3 * q**2 / 2) == 0
    var = sp.simplify(m4 - m2**2)
    assert sp.simplify(var - 5 * q**2 / 4) == 0
    assert sp.simplify(var / m2**2 - 5) == 0
    cv_layer = sp.sqrt(var / n) / m2
    assert sp.simplify(cv_layer - sp.sqrt(5 / n)) == 0
    lin2 = sp.integrate(z**2 * pdf, (z, -sp.oo, sp.oo))
    lin4 = sp.integrate(z**4 * pdf, (z, -sp.oo, sp.oo))
    assert sp.simplify(lin4 - 3 * q**2) == 0
    assert sp.simplify((lin4 - lin2**2) / lin2**2 - 2) == 0

    e, v = sp.Function(r"\mathbb{E}"), sp.Function(r"\mathrm{Var}")
    relu_z = sp.Function(r"\mathrm{relu}")(z)
    return {
        "second": sp.Eq(e(relu_z**2), q / 2),
        "fourth": sp.Eq(e(relu_z**4), 3 * q**2 / 2),
        "variance": sp.Eq(v(relu_z**2), 5 * q**2 / 4),
        "layer_cv": sp.Eq(sp.Symbol(r"\mathrm{CV}(\hat r)"), sp.sqrt(5 / n)),
        "linear_cv": sp.Eq(sp.Symbol(r"\mathrm{CV}(\overline{z^2})"), sp.sqrt(2 / n)),
    }


def derive_log_norm_variance(depth: int = 4) -> dict[str, sp.Basic]:
    """Leading-order ``Var ln(r_hat^L / r_hat^0) = 5 sum_l 1/n_l`` (Hanin 2018; Hanin & Nica 2019).

    1. Conditional scale: given ``h^{l-1}``, ``E (z^l_i)^2 = sum_j (sigma^2/n_{l-1}) (h_j)^2 =
       sigma^2 r_hat^{l-1}`` (checked for ``n_{l-1} = 3`` by the sign-flip expectation); Gaussian
       weights make ``z^l_i`` i.i.d. ``N(0, sigma^2 r_hat^{l-1})``, so
       ``r_hat^l / r_hat^{l-1} = sigma^2 A_l`` with ``A_l`` independent of the past.
    2. Delta method: with ``X = mu (1 + eps)``, ``ln X = ln mu + eps + O(eps^2)``, so
       ``Var ln X ≈ Var X / (E X)^2 = CV^2`` — an approximation, first order in ``CV^2``.
    3. ``CV^2(A_l) = 5/n_l`` (ReLU layer) or ``2/n_L`` (linear last layer), and variances of
       independent terms add. Shown for ``depth`` layers, then written as a sum.
    """
    eps, mu = sp.symbols("epsilon mu", positive=True)
    lin = sp.series(sp.log(mu * (1 + eps)), eps, 0, 2).removeO()
    assert sp.simplify(lin - (sp.log(mu) + eps)) == 0
    # Var(ln mu + eps) = Var eps = Var X / mu^2

    s2 = sp.Symbol("sigma^2", positive=True)
    hs = sp.symbols("h_1:4", nonnegative=True)
    ws = sp.symbols("w_1:4", real=True)
    cond = symmetric_expectation(
        sum(w * h for w, h in zip(ws, hs, strict=True)) ** 2, {w: s2 / 3 for w in ws}
    )
    assert sp.simplify(cond - s2 * sum(h**2 for h in hs) / 3) == 0

    n = sp.Symbol("n", positive=True)
    q = sp.Symbol("q", positive=True)
    relu_moments = derive_relu_moments()
    cv2_relu = (relu_moments["variance"].rhs / relu_moments["second"].rhs ** 2) / n
    assert sp.simplify(cv2_relu - 5 / n) == 0
    cv2_lin = (2 * q**2 / q**2) / n
    widths = sp.symbols(f"n_1:{depth + 1}", positive=True)
    total = sum(cv2_relu.subs(n, w) for w in widths)
    assert sp.simplify(total - 5 * sum(1 / w for w in widths)) == 0
    total_lin = total - cv2_relu.subs(n, widths[-1]) + cv2_lin.subs(n, widths[-1])
    assert sp.simplify(total_lin - 5 * sum(1 / w for w in widths[:-1]) - 2 / widths[-1]) == 0
    uniform = sp.simplify(total.subs({w: n for w in widths}))
    assert sp.simplify(uniform - 5 * depth / n) == 0

    ell, big_l = sp.symbols("l L", integer=True, positive=True)
    n_i = sp.IndexedBase("n")
    var = sp.Function(r"\mathrm{Var}")
    return {
        "delta": sp.Eq(
            var(sp.log(sp.Symbol("X"))), sp.Symbol(r"\mathrm{Var}\,X / (\mathbb{E}X)^2")
        ),
        "conditional": sp.Eq(
            sp.Symbol(r"\mathbb{E}[(z^l_i)^2 \mid h^{l-1}]"), s2 * sp.Symbol(r"\hat r^{l-1}")
        ),
        "per_layer": sp.Eq(var(sp.log(sp.Symbol("A_l"))), 5 / sp.Symbol("n_l")),
        "total": sp.Eq(
            var(sp.log(sp.Symbol(r"\hat r^{L}") / sp.Symbol(r"\hat r^{0}"))),
            sp.Sum(5 / n_i[ell], (ell, 1, big_l)),
        ),
        "example": sp.Eq(sp.Symbol(r"\mathrm{Var}_{" + str(depth) + "}"), total),
    }


def derive_exact_layer_log_variance() -> dict[str, sp.Basic]:
    """Exact one-layer result ``v(n) = E psi_1(K/2) + Var psi(K/2)``, ``K ~ Bin(n, 1/2)``.

    Mellin transform of ``chi^2_k``: ``E X^t = 2^t Gamma(k/2 + t) / Gamma(k/2)`` (sympy integral),
    so the cumulants of ``ln X`` are ``E ln X = psi(k/2) + ln 2`` and
    ``Var ln X = psi_1(k/2)``. ``relu(xi)^2`` is 0 (closed gate) or ``chi^2_1`` (open gate), so
    ``n A = chi^2_K`` and the law of total variance gives ``v(n)``. Checked at ``n = 1``
    (``psi_1(1/2) = pi^2/2``) and at ``n = 2`` against the numerical
    :func:`layer_log_variance_exact`.
    """
    x, k, t = sp.symbols("x k t", positive=True)
    chi2 = x ** (k / 2 - 1) * sp.exp(-x / 2) / (2 ** (k / 2) * sp.gamma(k / 2))
    mellin = sp.simplify(sp.integrate(x**t * chi2, (x, 0, sp.oo), conds="none"))
    expected = 2**t * sp.gamma(k / 2 + t) / sp.gamma(k / 2)
    assert sp.simplify(mellin - expected) == 0
    cgf = sp.log(mellin)
    mean_log = sp.simplify(sp.diff(cgf, t).subs(t, 0))
    var_log = sp.simplify(sp.diff(cgf, t, 2).subs(t, 0))
    assert sp.simplify(mean_log - (sp.polygamma(0, k / 2) + sp.log(2))) == 0
    assert sp.simplify(var_log - sp.polygamma(1, k / 2)) == 0
    assert sp.simplify(var_log.subs(k, 1) - sp.pi**2 / 2) == 0

    # n = 2: K = 1 w.p. 2/3 and K = 2 w.p. 1/3 given K >= 1
    probs = {1: sp.Rational(2, 3), 2: sp.Rational(1, 3)}
    e_tri = sum(p * sp.polygamma(1, sp.Rational(kk, 2)) for kk, p in probs.items())
    e_di = sum(p * sp.polygamma(0, sp.Rational(kk, 2)) for kk, p in probs.items())
    e_di2 = sum(p * sp.polygamma(0, sp.Rational(kk, 2)) ** 2 for kk, p in probs.items())
    v2 = sp.simplify(e_tri + e_di2 - e_di**2)
    assert abs(float(v2) - layer_log_variance_exact(2)) < 1e-12

    v, e = sp.Function(r"\mathrm{Var}"), sp.Function(r"\mathbb{E}")
    big_k = sp.Symbol("K")
    return {
        "mellin": sp.Eq(e(x**t), expected),
        "mean_log": sp.Eq(e(sp.log(x)), mean_log),
        "var_log": sp.Eq(v(sp.log(x)), var_log),
        "layer": sp.Eq(
            v(sp.log(sp.Symbol("A"))),
            e(sp.polygamma(1, big_k / 2)) + v(sp.polygamma(0, big_k / 2)),
        ),
        "n2": sp.Eq(sp.Symbol("v(2)"), v2),
    }


def derive_finite_width_correction() -> dict[str, sp.Basic]:
    """Asymptotic expansion ``v(n) = 5/n + 37/(2 n^2) + O(n^-3)`` for a ReLU layer and
    ``psi_1(n/2) = 2/n + 2/n^2 + O(n^-3)`` for a linear one.

    Expand ``psi`` and ``psi_1`` at ``x = n/4 + delta`` (``delta = K/2 - n/4``) around ``n/4``,
    take expectations with the central moments of ``K/2`` from its moment generating function
    ``E exp(t delta) = cosh(t/4)^n``, and keep terms to ``1/n^2`` (moments up to the fourth
    suffice). The expansion is then checked against the exact :func:`layer_log_variance_exact` at
    ``n = 256`` and ``1024`` (the remainder times ``n^3`` stays bounded)."""
    n, eps, x = sp.symbols("n epsilon x", positive=True)
    t, d = sp.symbols("t delta")
    ser = sp.series(sp.cosh(t / 4) ** n, t, 0, 5).removeO()
    moments = [sp.expand(sp.factorial(j) * ser.coeff(t, j)) for j in range(5)]
    assert moments[1] == 0 and sp.simplify(moments[2] - n / 16) == 0
    trigamma = sp.polygamma(1, x).series(x, sp.oo, 6).removeO()
    digamma = sp.polygamma(0, x).series(x, sp.oo, 6).removeO()
    centre = n / 4

    def taylor(g, jmin, jmax):
        return sum(
            sp.diff(g, x, j).subs(x, centre) * d**j / sp.factorial(j) for j in range(jmin, jmax + 1)
        )

    def expect(poly):
        p = sp.Poly(sp.expand(poly), d)
        return sum(
            c * moments[m[0]] for m, c in zip(p.monoms(), p.coeffs(), strict=True) if m[0] <= 4
        )

    tail = taylor(digamma, 1, 3)
    v = expect(taylor(trigamma, 0, 4)) + expect(tail**2) - expect(tail) ** 2
    expansion = sp.expand(sp.series(v.subs(n, 1 / eps), eps, 0, 3).removeO().subs(eps, 1 / n))
    assert sp.simplify(expansion - (5 / n + sp.Rational(37, 2) / n**2)) == 0
    assert sp.Rational(37, 2) == sp.nsimplify(FINITE_WIDTH_COEFFICIENT)
    linear = sp.polygamma(1, n / 2).series(n, sp.oo, 3).removeO()
    assert sp.simplify(linear - (2 / n + 2 / n**2)) == 0

    remainders = [
        (layer_log_variance_exact(m) - float(expansion.subs(n, m))) * m**3 for m in (256, 1024)
    ]
    assert all(abs(r) < 200 for r in remainders), remainders
    big_o = sp.O(n**-3, (n, sp.oo))
    return {
        "relu": sp.Eq(sp.Symbol("v(n)"), expansion + big_o),
        "linear": sp.Eq(sp.polygamma(1, n / 2), linear + big_o),
        "relative": sp.Eq(
            sp.Symbol(r"v(n) / (5/n) - 1"), sp.Rational(37, 10) / n + sp.O(n**-2, (n, sp.oo))
        ),
    }


def derive_self_similarity() -> dict[str, sp.Basic]:
    """The same recursion at two scales.

    Micro (one neuron, ensemble): ``q^{l+1} = sigma^2 q^l / 2``. Macro (one network, layer
    average): ``r_hat^{l+1} = sigma^2 r_hat^l A_{l+1}`` with ``E A = 1/2``, so
    ``E r_hat^{l+1} = (sigma^2/2) E r_hat^l``. Both are solved by ``rsolve`` with the same
    multiplier ``sigma^2/2``, and they are linked by ``q^{l+1} = sigma^2 E r_hat^l`` and
    ``E r_hat^l = q^l / 2``; the macro recursion also holds sample by sample for ``ln r_hat``."""
    s2, m = sp.symbols("sigma^2 m", positive=True)
    ell = sp.Symbol("l", integer=True, positive=True)
    q, r = sp.Function("q"), sp.Function(r"\bar r")
    xi = sp.Symbol("xi", real=True)
    pdf = sp.exp(-(xi**2) / 2) / sp.sqrt(2 * sp.pi)
    mean_a = sp.integrate(xi**2 * pdf, (xi, 0, sp.oo))
    assert mean_a == sp.Rational(1, 2)
    micro = sp.rsolve(q(ell + 1) - s2 * q(ell) / 2, q(ell), {q(1): s2 * m})
    macro = sp.rsolve(r(ell + 1) - s2 * mean_a * r(ell), r(ell), {r(0): m})
    assert sp.simplify(micro.subs(ell, ell + 1) / micro - macro.subs(ell, ell + 1) / macro) == 0
    assert sp.simplify(micro.subs(ell, ell + 1) - s2 * macro) == 0
    assert sp.simplify(macro - micro / 2) == 0
    return {
        "micro": sp.Eq(q(ell + 1), s2 * q(ell) / 2),
        "macro": sp.Eq(r(ell + 1), s2 * r(ell) / 2),
        "link": sp.Eq(r(ell), q(ell) / 2),
        "solution": sp.Eq(r(ell), macro),
    }
