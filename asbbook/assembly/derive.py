"""sympy derivations of chapter 4. Every ``derive_*`` asserts its steps and returns a frozen
dataclass of the equations it shows (fields documented on each class)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

import sympy as sp

from asbbook.assembly import theory
from asbbook.symbolic import DerivationResult, symmetric_expectation

E, VAR = sp.Function(r"\mathbb{E}"), sp.Function(r"\mathrm{Var}")


class _Derivation(DerivationResult):
    """A derivation result whose fields are all equations."""

    def equations(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))


def _relu(z):
    return sp.Max(0, z)


# --------------------------------------------------------------------------------------------
# One layer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrbitAverage(_Derivation):
    permutation: sp.Eq  # permutation orbit average of u(z_1) = layer average
    sign_flip: sp.Eq  # (relu(z)^2 + relu(-z)^2)/2 = z^2/2
    layer_mean: sp.Eq  # E r^l = q^l / 2


def derive_orbit_average() -> OrbitAverage:
    """(i) Averaging ``u(z_1)`` over the ``n!`` relabellings of a layer gives
    ``(1/n) sum_i u(z_i)`` (checked at ``n = 3``). (ii) The sign-flip orbit ``z -> -z`` gives
    ``(relu(z)^2 + relu(-z)^2)/2 = z^2/2`` for every real ``z``, so ``E r^l = q^l / 2`` for any
    law symmetric about 0."""
    zs = sp.symbols("z_1:4", real=True)
    u = sp.Function("u")
    perms = list(itertools.permutations(range(3)))
    orbit = sum(u(zs[p[0]]) for p in perms) / len(perms)
    assert sp.simplify(orbit - sum(u(z) for z in zs) / 3) == 0
    t = sp.Symbol("t", positive=True)
    for z in (t, -t, sp.Integer(0)):
        assert sp.simplify((_relu(z) ** 2 + _relu(-z) ** 2) / 2 - z**2 / 2) == 0
    z, q = sp.Symbol("z", real=True), sp.Symbol("q", positive=True)
    return OrbitAverage(
        permutation=sp.Eq(
            sp.Symbol(r"\frac{1}{n!}\sum_{\sigma\in S_n} u(z_{\sigma(1)})"),
            sp.Symbol(r"\frac{1}{n}\sum_{i=1}^{n} u(z_i)"),
        ),
        sign_flip=sp.Eq((_relu(z) ** 2 + _relu(-z) ** 2) / 2, z**2 / 2, evaluate=False),
        layer_mean=sp.Eq(E(sp.Symbol(r"r^{l}")), q / 2),
    )


@dataclass(frozen=True)
class ReluMoments(_Derivation):
    second: sp.Eq  # E relu(z)^2 = q/2
    fourth: sp.Eq  # E relu(z)^4 = 3q^2/2
    variance: sp.Eq  # Var relu(z)^2 = 5q^2/4
    layer_cv: sp.Eq  # CV(r) = sqrt(5/n)
    linear_cv: sp.Eq  # CV of a linear read-out = sqrt(2/n)


def derive_relu_moments() -> ReluMoments:
    """For ``z ~ N(0, q)``: ``E relu^2 = q/2``, ``E relu^4 = 3q^2/2``, ``Var relu^2 = 5q^2/4``,
    so the mean of ``n`` i.i.d. units has ``CV = sqrt(5/n)`` (linear read-out: ``sqrt(2/n)``)."""
    z = sp.Symbol("z", real=True)
    q, n = sp.symbols("q n", positive=True)
    pdf = sp.exp(-(z**2) / (2 * q)) / sp.sqrt(2 * sp.pi * q)
    m2 = sp.simplify(sp.integrate(z**2 * pdf, (z, 0, sp.oo)))
    m4 = sp.simplify(sp.integrate(z**4 * pdf, (z, 0, sp.oo)))
    assert sp.simplify(m2 - q / 2) == 0 and sp.simplify(m4 - 3 * q**2 / 2) == 0
    var = sp.simplify(m4 - m2**2)
    assert sp.simplify(var - 5 * q**2 / 4) == 0
    assert sp.simplify(sp.sqrt(var / n) / m2 - sp.sqrt(5 / n)) == 0
    lin2 = sp.integrate(z**2 * pdf, (z, -sp.oo, sp.oo))
    lin4 = sp.integrate(z**4 * pdf, (z, -sp.oo, sp.oo))
    assert sp.simplify((lin4 - lin2**2) / lin2**2 - 2) == 0
    relu_z = sp.Function(r"\mathrm{relu}")(z)
    return ReluMoments(
        second=sp.Eq(E(relu_z**2), q / 2),
        fourth=sp.Eq(E(relu_z**4), 3 * q**2 / 2),
        variance=sp.Eq(VAR(relu_z**2), 5 * q**2 / 4),
        layer_cv=sp.Eq(sp.Symbol(r"\mathrm{CV}(r)"), sp.sqrt(5 / n)),
        linear_cv=sp.Eq(sp.Symbol(r"\mathrm{CV}(\overline{z^2})"), sp.sqrt(2 / n)),
    )


# --------------------------------------------------------------------------------------------
# Depth: a product of independent layer factors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerFactors(_Derivation):
    conditional: sp.Eq  # E[(z^l_i)^2 | h^{l-1}] = 2 r^{l-1}
    product: sp.Eq  # r^L / r^0 = prod_l F_l
    factor: sp.Eq  # F_l = (2/n_l) chi^2_K, independent of the past
    mean: sp.Eq  # E F_l = 1
    delta: sp.Eq  # Var ln X ~ Var X / (E X)^2
    total: sp.Eq  # Var ln(r^L/r^0) ~ 5 sum 1/n_l
    example: sp.Eq  # the sum written out at a given depth


def derive_layer_factors(depth: int = 3) -> LayerFactors:
    """``r^L / r^0 = prod_l F_l`` with independent factors (Hanin & Nica 2019).

    Given ``h^{l-1}``, ``E (z^l_i)^2 = (2/n_{l-1}) |h^{l-1}|^2 = 2 r^{l-1}`` (the sign-flip
    expectation, checked at ``n_{l-1} = 3``); for Gaussian weights the ``z^l_i`` are i.i.d.
    ``N(0, 2 r^{l-1})``, so ``F_l = (2/n_l) sum_i relu(xi_i)^2`` with ``xi ~ N(0, 1)``
    whatever ``h^{l-1}``: independent of the past, ``E F_l = 1``. The delta method
    (first order in ``CV^2 = 5/n``) then gives ``Var ln(r^L / r^0) ~ 5 sum_l 1/n_l``."""
    eps, mu = sp.symbols("epsilon mu", positive=True)
    lin = sp.series(sp.log(mu * (1 + eps)), eps, 0, 2).removeO()
    assert sp.simplify(lin - (sp.log(mu) + eps)) == 0
    hs = sp.symbols("h_1:4", nonnegative=True)
    ws = sp.symbols("w_1:4", real=True)
    cond = symmetric_expectation(
        sum(w * h for w, h in zip(ws, hs, strict=True)) ** 2, {w: sp.Rational(2, 3) for w in ws}
    )
    assert sp.simplify(cond - 2 * sum(h**2 for h in hs) / 3) == 0
    xi = sp.Symbol("xi", real=True)
    pdf = sp.exp(-(xi**2) / 2) / sp.sqrt(2 * sp.pi)
    assert 2 * sp.integrate(xi**2 * pdf, (xi, 0, sp.oo)) == 1  # E F_l = 2 E relu(xi)^2 = 1
    moments = derive_relu_moments()
    n = sp.Symbol("n", positive=True)
    cv2 = (moments.variance.rhs / moments.second.rhs**2) / n
    assert sp.simplify(cv2 - 5 / n) == 0
    widths = sp.symbols(f"n_1:{depth + 1}", positive=True)
    total = sum(cv2.subs(n, w) for w in widths)
    assert sp.simplify(total - 5 * sum(1 / w for w in widths)) == 0
    ell, big_l = sp.symbols("l L", integer=True, positive=True)
    n_i, f_i = sp.IndexedBase("n"), sp.IndexedBase("F")
    return LayerFactors(
        conditional=sp.Eq(
            sp.Symbol(r"\mathbb{E}[(z^l_i)^2 \mid h^{l-1}]"), 2 * sp.Symbol(r"r^{l-1}")
        ),
        product=sp.Eq(sp.Symbol("r^L") / sp.Symbol("r^0"), sp.Product(f_i[ell], (ell, 1, big_l))),
        factor=sp.Eq(
            sp.Symbol("F_l"), 2 * sp.Symbol(r"\chi^2_{K_l}") / sp.Symbol("n_l"), evaluate=False
        ),
        mean=sp.Eq(E(sp.Symbol("F_l")), 1),
        delta=sp.Eq(VAR(sp.log(sp.Symbol("X"))), sp.Symbol(r"\mathrm{Var}\,X / (\mathbb{E}X)^2")),
        total=sp.Eq(
            VAR(sp.log(sp.Symbol("r^L") / sp.Symbol("r^0"))),
            sp.Sum(5 / n_i[ell], (ell, 1, big_l)),
        ),
        example=sp.Eq(sp.Symbol(r"\mathrm{Var}_{" + str(depth) + "}"), total),
    )


@dataclass(frozen=True)
class ExactLayerLaw(_Derivation):
    mellin: sp.Eq  # E X^t for X ~ chi^2_k
    mean_log: sp.Eq  # E ln X = psi(k/2) + ln 2
    var_log: sp.Eq  # Var ln X = psi_1(k/2)
    layer_mean: sp.Eq  # m(n) = E ln F = ln(4/n) + E psi(K/2)
    layer: sp.Eq  # v(n) = E psi_1(K/2) + Var psi(K/2)
    n2: sp.Eq  # v(2) in closed form


def derive_exact_layer_log_variance() -> ExactLayerLaw:
    """Exact one-layer law: Mellin transform ``E X^t = 2^t Gamma(k/2 + t) / Gamma(k/2)`` of
    ``X ~ chi^2_k`` (sympy integral) gives ``E ln X = psi(k/2) + ln 2`` and
    ``Var ln X = psi_1(k/2)``; with ``F = (2/n) chi^2_K``, ``K ~ Bin(n, 1/2)``, ``K >= 1``:
    ``m(n) = ln(4/n) + E psi(K/2)`` and ``v(n) = E psi_1(K/2) + Var psi(K/2)``. Checked at
    ``n = 2`` against :func:`layer_log_mean_exact` and
    :func:`layer_log_variance_exact`."""
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
    # n = 2: K = 1 w.p. 2/3 and K = 2 w.p. 1/3 given K >= 1
    probs = {1: sp.Rational(2, 3), 2: sp.Rational(1, 3)}
    e_di = sum(p * sp.polygamma(0, sp.Rational(j, 2)) for j, p in probs.items())
    e_di2 = sum(p * sp.polygamma(0, sp.Rational(j, 2)) ** 2 for j, p in probs.items())
    e_tri = sum(p * sp.polygamma(1, sp.Rational(j, 2)) for j, p in probs.items())
    v2 = sp.simplify(e_tri + e_di2 - e_di**2)
    m2 = sp.log(2) + e_di  # m(2) = ln(4/2) + E psi(K/2)
    assert abs(float(v2) - theory.layer_log_variance_exact(2)) < 1e-12
    assert abs(float(m2) - theory.layer_log_mean_exact(2)) < 1e-12
    big_k, n = sp.Symbol("K"), sp.Symbol("n", positive=True)
    return ExactLayerLaw(
        mellin=sp.Eq(E(x**t), expected),
        mean_log=sp.Eq(E(sp.log(x)), mean_log),
        var_log=sp.Eq(VAR(sp.log(x)), var_log),
        layer_mean=sp.Eq(E(sp.log(sp.Symbol("F"))), sp.log(4 / n) + E(sp.polygamma(0, big_k / 2))),
        layer=sp.Eq(
            VAR(sp.log(sp.Symbol("F"))),
            E(sp.polygamma(1, big_k / 2)) + VAR(sp.polygamma(0, big_k / 2)),
        ),
        n2=sp.Eq(sp.Symbol("v(2)"), v2),
    )


def _binomial_expectation(n):
    """``taylor(g, lo, hi)``: the Taylor polynomial of ``g(n/4 + delta)`` in ``delta``; and
    ``expect``: the expectation map over ``delta = K/2 - n/4``, ``K ~ Bin(n, 1/2)``, whose central moments
    come from the generating function ``E exp(t delta) = cosh(t/4)^n``."""
    x, t, d = sp.Symbol("x", positive=True), sp.Symbol("t"), sp.Symbol("delta")
    ser = sp.series(sp.cosh(t / 4) ** n, t, 0, 5).removeO()
    moments = [sp.expand(sp.factorial(j) * ser.coeff(t, j)) for j in range(5)]
    assert moments[1] == 0 and sp.simplify(moments[2] - n / 16) == 0

    def taylor(g, lo, hi):
        return sum(
            sp.diff(g(x), x, j).subs(x, n / 4) * d**j / sp.factorial(j) for j in range(lo, hi + 1)
        )

    def expect(poly):
        p = sp.Poly(sp.expand(poly), d)
        return sum(
            c * moments[m[0]] for m, c in zip(p.monoms(), p.coeffs(), strict=True) if m[0] <= 4
        )

    return taylor, expect


@dataclass(frozen=True)
class FiniteWidthCorrection(_Derivation):
    relu: sp.Eq  # v(n) = 5/n + 37/(2n^2) + O(n^-3)
    linear: sp.Eq  # psi_1(n/2) = 2/n + 2/n^2 + O(n^-3)
    relative: sp.Eq  # v(n)/(5/n) - 1 = 37/(10n) + O(n^-2)
    mean: sp.Eq  # m(n) = -5/(2n) + c/n^2 + O(n^-3)


def derive_finite_width_correction() -> FiniteWidthCorrection:
    """``v(n) = 5/n + 37/(2 n^2) + O(n^-3)`` and ``m(n) = -5/(2n) + c_m/n^2 + O(n^-3)``.

    Expand ``psi`` and ``psi_1`` at ``K/2 = n/4 + delta`` to fourth order in ``delta``, take
    expectations with the binomial central moments, keep terms to ``1/n^2`` and check the
    remainder against the exact ``assembly.theory`` functions at ``n = 256`` and ``1024``."""
    n, eps = sp.symbols("n epsilon", positive=True)
    taylor, expect = _binomial_expectation(n)

    def trigamma(y):
        return sp.polygamma(1, y).series(y, sp.oo, 6).removeO()

    def digamma(y):
        return sp.polygamma(0, y).series(y, sp.oo, 6).removeO()

    def in_inverse_n(expr, order=3):
        return sp.expand(sp.series(expr.subs(n, 1 / eps), eps, 0, order).removeO().subs(eps, 1 / n))

    tail = taylor(digamma, 1, 3)
    v = in_inverse_n(expect(taylor(trigamma, 0, 4)) + expect(tail**2) - expect(tail) ** 2)
    assert sp.simplify(v - (5 / n + sp.Rational(37, 2) / n**2)) == 0
    assert sp.Rational(37, 2) == sp.nsimplify(theory.FINITE_WIDTH_COEFFICIENT)
    mean = in_inverse_n(sp.log(4 / n) + expect(taylor(digamma, 0, 4)))
    assert sp.simplify(mean.coeff(n, -1) + sp.Rational(5, 2)) == 0  # m = -v/2 to leading order
    linear = sp.polygamma(1, n / 2).series(n, sp.oo, 3).removeO()
    assert sp.simplify(linear - (2 / n + 2 / n**2)) == 0
    for exact, series in (
        (theory.layer_log_variance_exact, v),
        (theory.layer_log_mean_exact, mean),
    ):
        remainders = [(exact(m) - float(series.subs(n, m))) * m**3 for m in (256, 1024)]
        assert all(abs(r) < 200 for r in remainders), remainders
    big_o = sp.O(n**-3, (n, sp.oo))
    return FiniteWidthCorrection(
        relu=sp.Eq(sp.Symbol("v(n)"), v + big_o),
        linear=sp.Eq(sp.polygamma(1, n / 2), linear + big_o),
        relative=sp.Eq(
            sp.Symbol(r"v(n) / (5/n) - 1"), sp.Rational(37, 10) / n + sp.O(n**-2, (n, sp.oo))
        ),
        mean=sp.Eq(sp.Symbol("m(n)"), mean + big_o),
    )
