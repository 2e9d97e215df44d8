"""sympy derivations of chapter 4 beyond one input and Gaussian weights: the weights' kurtosis in
the ``1/n^2`` term, the arc-cosine correlation map, and the micro-macro recursion."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from asbbook.assembly import theory
from asbbook.assembly.derive import VAR, E, _Derivation, derive_relu_moments

# --------------------------------------------------------------------------------------------
# Non-Gaussian weights
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KurtosisCorrection(_Derivation):
    fourth: sp.Eq  # E z^4 for z = w . h with i.i.d. weights of excess kurtosis kappa
    ratio: sp.Eq  # E z^4 / (E z^2)^2 = 3 + kappa s
    unit_cv2: sp.Eq  # CV^2 of relu(z)^2 = 5 + 2 kappa s
    relu_ratio: sp.Eq  # s of a ReLU layer below = 6/n (leading order)
    layer: sp.Eq  # per-layer variance to order 1/n^2
    total: sp.Eq  # uniform width n, depth L, input ratio s_0
    uniform: sp.Eq  # kappa of the uniform law = -6/5
    rademacher: sp.Eq  # kappa of +-1 weights = -2


def _independent_moments(poly, ws, moment):
    """``E poly`` for independent ``ws`` with ``E w^j = moment(j)``."""
    p = sp.Poly(sp.expand(poly), *ws)
    total = 0
    for powers, coeff in zip(p.monoms(), p.coeffs(), strict=True):
        term = coeff
        for j in powers:
            term *= moment(j)
        total += term
    return sp.expand(total)


def derive_kurtosis_correction() -> KurtosisCorrection:
    """The ``1/n^2`` term of ``Var ln(r^L/r^0)`` as a function of the weights' excess kurtosis.

    For ``z = sum_j w_j h_j`` with i.i.d. mean-zero weights, ``E w^2 = sigma^2`` and
    ``E w^4 = (3 + kappa) sigma^4``: ``E z^4 = sigma^4 [3 (sum h^2)^2 + kappa sum h^4]``
    (checked at ``n = 3``), so ``E z^4 / (E z^2)^2 = 3 + kappa s`` with
    ``s = sum h^4 / (sum h^2)^2``. ``z`` is symmetric, so ``E relu^2 = E z^2 / 2`` and
    ``E relu^4 = E z^4 / 2``, and one unit's ``CV^2`` of ``relu(z)^2`` is ``5 + 2 kappa s``. For a
    ReLU layer below, ``s = 6 / n_{l-1}`` to leading order (``E relu^4 / (E relu^2)^2 = 6``).
    The delta method then adds ``2 kappa s_{l-1} / n_l`` to layer ``l``'s variance; the other
    ``1/n^2`` terms come from the Gaussian higher moments of ``relu(z)^2`` and the gates, whose
    kappa-dependence is ``O(s) = O(1/n)`` smaller (the book's derivation, measured in the
    chapter). The result is checked against :func:`log_norm_variance_expansion`."""
    s2, kappa = sp.Symbol("sigma^2", positive=True), sp.Symbol("kappa", real=True)
    hs, ws = sp.symbols("h_1:4", nonnegative=True), sp.symbols("w_1:4", real=True)
    moment = {0: 1, 1: 0, 2: s2, 3: 0, 4: (3 + kappa) * s2**2}.__getitem__
    z = sum(w * h for w, h in zip(ws, hs, strict=True))
    m2, m4 = _independent_moments(z**2, ws, moment), _independent_moments(z**4, ws, moment)
    sum2, sum4 = sum(h**2 for h in hs), sum(h**4 for h in hs)
    assert sp.simplify(m4 - s2**2 * (3 * sum2**2 + kappa * sum4)) == 0
    s = sp.Symbol("s", positive=True)
    ratio = sp.simplify(m4 / m2**2)
    assert sp.simplify(ratio - (3 + kappa * sum4 / sum2**2)) == 0
    # relu(z)^2 of a symmetric z: (E z^4 / 2) / (E z^2 / 2)^2 - 1, in units of E z^2 = 1
    unit_cv2 = sp.expand((3 + kappa * s) / 2 / sp.Rational(1, 2) ** 2 - 1)
    assert sp.simplify(unit_cv2 - (5 + 2 * kappa * s)) == 0
    moments = derive_relu_moments()
    assert sp.simplify(moments.fourth.rhs / moments.second.rhs**2 - 6) == 0
    n, n_prev, n0, big_l = sp.symbols("n n_{l-1} n_0 L", positive=True)
    s0 = sp.Symbol("s_0", positive=True)
    layer = 5 / n + sp.Rational(37, 2) / n**2 + 2 * kappa * s / n
    total = (
        big_l * layer.subs(s, 6 / n)
        + (layer.subs(s, s0) - layer.subs(s, 6 / n))  # the first layer sees x, not a ReLU layer
    )
    for k_value, s0_value, depth, width in ((-2, 0.2, 10, 64), (sp.Rational(-6, 5), 0.1, 3, 16)):
        at = {kappa: k_value, s0: s0_value, big_l: depth, n: width}
        direct = theory.log_norm_variance_expansion(
            (16,) + (width,) * depth, float(k_value), input_ratio=s0_value
        )
        assert abs(float(total.subs(at)) - direct) < 1e-12
    a, w = sp.Symbol("a", positive=True), sp.Symbol("w", real=True)
    uni2 = sp.integrate(w**2 / (2 * a), (w, -a, a))
    uni4 = sp.integrate(w**4 / (2 * a), (w, -a, a))
    kappa_uniform = sp.simplify(uni4 / uni2**2 - 3)
    kappa_rademacher = sp.Integer(1) / 1**2 - 3
    assert kappa_uniform == sp.Rational(-6, 5) and kappa_rademacher == -2
    assert float(kappa_uniform) == theory.WEIGHT_EXCESS_KURTOSIS["uniform"]
    zz = sp.Symbol("z")
    return KurtosisCorrection(
        fourth=sp.Eq(
            E(zz**4),
            s2**2 * (3 * sp.Symbol(r"(\sum_j h_j^2)^2") + kappa * sp.Symbol(r"\sum_j h_j^4")),
        ),
        ratio=sp.Eq(E(zz**4) / E(zz**2) ** 2, 3 + kappa * s),
        unit_cv2=sp.Eq(sp.Symbol(r"\mathrm{CV}^2[\mathrm{relu}(z)^2]"), unit_cv2),
        relu_ratio=sp.Eq(sp.Symbol("s_{l-1}"), 6 / n_prev),
        layer=sp.Eq(VAR(sp.log(sp.Symbol("F_l"))), layer.subs(s, sp.Symbol("s_{l-1}"))),
        total=sp.Eq(VAR(sp.log(sp.Symbol("r^L") / sp.Symbol("r^0"))), sp.expand(total)),
        uniform=sp.Eq(sp.Symbol(r"\kappa_{\mathrm{uniform}}"), kappa_uniform),
        rademacher=sp.Eq(sp.Symbol(r"\kappa_{\pm 1}"), kappa_rademacher),
    )


# --------------------------------------------------------------------------------------------
# Two inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrelationMap(_Derivation):
    orthant: sp.Eq  # P(u > 0, v > 0) = (pi - arccos rho) / (2 pi)  (Sheppard)
    price: sp.Eq  # d/drho E relu(u) relu(v) = P(u > 0, v > 0)  (Price)
    kernel: sp.Eq  # E relu(u) relu(v) = [sqrt(1-rho^2) + (pi - arccos rho) rho] / (2 pi)
    map: sp.Eq  # f(rho) = 2 E relu(u) relu(v)
    slope: sp.Eq  # f'(rho) = (pi - arccos rho) / pi
    fixed_point: sp.Eq  # f(1) = 1, f'(1) = 1
    near_one: sp.Eq  # 1 - f(1 - eps) = eps - (2 sqrt 2 / (3 pi)) eps^(3/2) + O(eps^2)


def derive_correlation_map() -> CorrelationMap:
    """The arc-cosine kernel of degree 1 (Cho & Saul 2009) as the ReLU correlation map
    (Poole et al. 2016). For standard bivariate Gaussian ``(u, v)`` with correlation ``rho``:
    Sheppard's orthant probability ``P(u>0, v>0) = (pi - arccos rho)/(2 pi)`` (its derivative is
    the density at the origin, ``1/(2 pi sqrt(1-rho^2))``, and it is 1/4 at ``rho = 0``);
    Price's theorem ``d/drho E g(u) g(v) = E g'(u) g'(v)``; integrating from ``rho = 0``, where
    ``E relu(u) E relu(v) = 1/(2 pi)``, gives the kernel. With ``E relu^2 = 1/2``, the cosine
    map is ``f = 2 E relu(u) relu(v)``; ``f(1) = 1`` with slope ``f'(1) = 1``."""
    rho = sp.Symbol("rho", real=True)
    s = sp.Symbol("s", real=True)
    orthant = (sp.pi - sp.acos(rho)) / (2 * sp.pi)
    density0 = 1 / (2 * sp.pi * sp.sqrt(1 - rho**2))
    assert sp.simplify(sp.diff(orthant, rho) - density0) == 0
    assert orthant.subs(rho, 0) == sp.Rational(1, 4) and orthant.subs(rho, 1) == sp.Rational(1, 2)
    u = sp.Symbol("u", real=True)
    e_relu = sp.integrate(u * sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi), (u, 0, sp.oo))
    assert sp.simplify(e_relu**2 - 1 / (2 * sp.pi)) == 0
    kernel = e_relu**2 + sp.integrate(orthant.subs(rho, s), (s, 0, rho))
    closed = (sp.sqrt(1 - rho**2) + (sp.pi - sp.acos(rho)) * rho) / (2 * sp.pi)
    assert sp.simplify(sp.expand(kernel - closed)) == 0
    f = 2 * closed
    slope = sp.simplify(sp.diff(f, rho))
    assert sp.simplify(slope - (sp.pi - sp.acos(rho)) / sp.pi) == 0
    assert sp.simplify(f.subs(rho, 1)) == 1 and sp.simplify(slope.subs(rho, 1)) == 1
    assert sp.simplify(f.subs(rho, 0) - 1 / sp.pi) == 0
    for value in (-0.7, 0.0, 0.3, 0.95):
        assert abs(float(f.subs(rho, value)) - theory.correlation_map(value)) < 1e-12
    eps = sp.Symbol("epsilon", positive=True)
    near = sp.series(1 - f.subs(rho, 1 - eps), eps, 0, 2).removeO()
    expected = eps - 2 * sp.sqrt(2) / (3 * sp.pi) * eps ** sp.Rational(3, 2)
    assert sp.simplify(near - expected) == 0
    uu, vv = (
        sp.Function(r"\mathrm{relu}")(sp.Symbol("u")),
        sp.Function(r"\mathrm{relu}")(sp.Symbol("v")),
    )
    fr = sp.Function("f")
    return CorrelationMap(
        orthant=sp.Eq(sp.Symbol(r"P(u>0,\, v>0)"), orthant),
        price=sp.Eq(sp.Derivative(E(uu * vv), rho), sp.Symbol(r"P(u>0,\, v>0)")),
        kernel=sp.Eq(E(uu * vv), closed),
        map=sp.Eq(fr(rho), f),
        slope=sp.Eq(sp.Derivative(fr(rho), rho), slope),
        fixed_point=sp.Eq(
            sp.Tuple(fr(1), sp.Subs(sp.Derivative(fr(rho), rho), rho, 1)), sp.Tuple(1, 1)
        ),
        near_one=sp.Eq(1 - fr(1 - eps), expected + sp.O(eps**2)),
    )


# --------------------------------------------------------------------------------------------
# Micro and macro
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SelfSimilarity(_Derivation):
    micro: sp.Eq  # q^{l+1} = sigma^2 q^l / 2 (one neuron, ensemble)
    macro: sp.Eq  # E r^{l+1} = sigma^2 E r^l / 2 (layer average)
    link: sp.Eq  # E r^l = q^l / 2
    solution: sp.Eq  # E r^l = m (sigma^2/2)^l


def derive_self_similarity() -> SelfSimilarity:
    """One neuron's ``q^{l+1} = sigma^2 q^l / 2`` and the layer average's
    ``r^{l+1} = sigma^2 r^l A_{l+1}`` (``E A = 1/2``) solved by ``rsolve`` with the same multiplier
    ``sigma^2 / 2``. For means this is exchangeability of the units; the content beyond it is
    that the factors ``A_l`` are independent (:func:`derive_layer_factors`)."""
    s2, m = sp.symbols("sigma^2 m", positive=True)
    ell = sp.Symbol("l", integer=True, positive=True)
    q, r = sp.Function("q"), sp.Function(r"\bar r")
    xi = sp.Symbol("xi", real=True)
    mean_a = sp.integrate(xi**2 * sp.exp(-(xi**2) / 2) / sp.sqrt(2 * sp.pi), (xi, 0, sp.oo))
    assert mean_a == sp.Rational(1, 2)
    micro = sp.rsolve(q(ell + 1) - s2 * q(ell) / 2, q(ell), {q(1): s2 * m})
    macro = sp.rsolve(r(ell + 1) - s2 * mean_a * r(ell), r(ell), {r(0): m})
    assert sp.simplify(micro.subs(ell, ell + 1) - s2 * macro) == 0
    assert sp.simplify(macro - micro / 2) == 0
    return SelfSimilarity(
        micro=sp.Eq(q(ell + 1), s2 * q(ell) / 2),
        macro=sp.Eq(r(ell + 1), s2 * r(ell) / 2),
        link=sp.Eq(r(ell), q(ell) / 2),
        solution=sp.Eq(r(ell), macro),
    )
