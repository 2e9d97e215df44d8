"""Chapter 6's predictions for the symmetric initial state, each with its sympy derivation.

See :mod:`asbbook.dynamics` for the chapter's overview.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch
from scipy import special, stats

from asbbook import data, nets, validation
from asbbook.stats import Estimate, binary_entropy_bits
from asbbook.symbolic import DerivationResult


def _count(name: str, value, minimum: int = 1) -> int:
    return validation.check_int(name, value, minimum=minimum)


def _positive(name: str, value) -> float:
    return validation.check_real(name, value, positive=True)


# --------------------------------------------------------------------------------------------
# The symmetric initial state: margins
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InitialHinge(DerivationResult):
    """The margins of a label-blind symmetric output (:func:`derive_initial_hinge`)."""

    split: sp.Eq  # P(y f < 1) = P(f < 1)
    unsatisfied: sp.Eq  # P(f < 1) = Phi(1/sqrt s)
    hinge: sp.Eq  # E max(0, 1 - y f) = Phi(1/sqrt s) + sqrt(s) phi(1/sqrt s)
    limits: sp.Tuple  # (s -> oo unsatisfied fraction, s -> 0 loss) = (1/2, 1)


@dataclass(frozen=True)
class PluginInformationBias(DerivationResult):
    """The plug-in information of an independent gate (:func:`derive_plugin_information_bias`)."""

    series: sp.Eq  # I to second order in e (nats)
    variance: sp.Eq  # Var c of the hypergeometric count
    phi2: sp.Eq  # E phi^2 = 1/(P-1)
    bias: sp.Eq  # E I in bits, to leading order
    P: sp.Symbol


def derive_initial_hinge() -> InitialHinge:
    """Unsatisfied fraction and hinge loss of a label-blind symmetric output, derived.

    1. *Symmetric split.* If ``f`` is symmetric about 0 and independent of the label
       ``y = +-1`` (any label frequencies), ``P(y f < 1) = P(y=1) P(f < 1) + P(y=-1) P(-f < 1)
       = P(f < 1)`` and ``E max(0, 1 - y f) = E max(0, 1 - f)``.
    2. *Gaussian output.* For ``f ~ N(0, s)``: ``P(f < 1) = Phi(1/sqrt s)`` and
       ``E max(0, 1 - f) = int_{-oo}^{1} (1 - f) N(f; 0, s) df = Phi(1/sqrt s) +
       sqrt(s) phi(1/sqrt s)``, checked by sympy integration and at ``s = 1`` numerically.
    3. *Limits.* As ``s -> 0`` both tend to 1 (the output is 0, every margin is 0); as
       ``s -> oo`` the unsatisfied fraction tends to 1/2 and the loss grows like
       ``sqrt(s / (2 pi))``.

    Returns ``split``, ``unsatisfied`` and ``hinge`` (equations in ``s``) and ``limits``
    (the ``s -> oo`` unsatisfied fraction and the ``s -> 0`` loss).
    """
    f = sp.Symbol("f", real=True)
    s = sp.Symbol("s", positive=True)
    density = sp.exp(-(f**2) / (2 * s)) / sp.sqrt(2 * sp.pi * s)
    Phi = lambda t: (1 + sp.erf(t / sp.sqrt(2))) / 2  # noqa: E731
    phi = lambda t: sp.exp(-(t**2) / 2) / sp.sqrt(2 * sp.pi)  # noqa: E731

    # 1. symmetric split: P(-f < 1) = P(f > -1) = P(f < 1) for a symmetric density
    p_neg = sp.integrate(density, (f, -1, sp.oo))
    p_pos = sp.integrate(density, (f, -sp.oo, 1))
    assert sp.simplify(p_neg - p_pos) == 0
    hinge_neg = sp.integrate((1 + f) * density, (f, -1, sp.oo))  # E max(0, 1 + f)
    hinge_pos = sp.integrate((1 - f) * density, (f, -sp.oo, 1))  # E max(0, 1 - f)
    assert sp.simplify(hinge_neg - hinge_pos) == 0

    # 2. closed forms
    unsat = Phi(1 / sp.sqrt(s))
    hinge = Phi(1 / sp.sqrt(s)) + sp.sqrt(s) * phi(1 / sp.sqrt(s))
    assert sp.simplify(p_pos - unsat) == 0
    assert sp.simplify(hinge_pos - hinge) == 0
    numeric = {s: 1}
    assert abs(float(hinge.subs(numeric)) - (stats.norm.cdf(1) + stats.norm.pdf(1))) < 1e-12
    assert abs(float(unsat.subs(numeric)) - stats.norm.cdf(1)) < 1e-12

    # 3. limits
    assert sp.limit(unsat, s, 0, "+") == 1 and sp.limit(hinge, s, 0, "+") == 1
    assert sp.limit(unsat, s, sp.oo) == sp.Rational(1, 2)
    assert sp.limit(hinge / sp.sqrt(s / (2 * sp.pi)), s, sp.oo) == 1

    prob_yf = sp.Symbol(r"P(y f < 1)")
    prob_f = sp.Symbol(r"P(f < 1)")
    loss = sp.Symbol(r"\mathbb{E} \max(0, 1 - y f)")
    return InitialHinge(
        split=sp.Eq(prob_yf, prob_f, evaluate=False),
        unsatisfied=sp.Eq(prob_f, unsat, evaluate=False),
        hinge=sp.Eq(loss, hinge, evaluate=False),
        limits=sp.Tuple(sp.limit(unsat, s, sp.oo), sp.limit(hinge, s, 0, "+")),
    )


def initial_scale_samples(
    widths: Sequence[int],
    n_samples: int,
    *,
    sigma2: float = 2.0,
    seed: int = 0,
) -> np.ndarray:
    """Samples of ``s = Var(f | h^{L-1}) = sigma^{2L} r_0 prod_{l=1}^{L-1} A_l`` over Gaussian
    inputs ``x ~ N(0, I_{n_0})`` and Gaussian weights of variance ``sigma2 / n_{l-1}``.

    ``r_0 = |x|^2 / n_0 ~ chi^2_{n_0} / n_0``; given the layer below, the pre-activations of
    layer ``l`` are i.i.d. ``N(0, sigma2 r_{l-1})``, so ``r_l = sigma2 r_{l-1} A_l`` with
    ``n_l A_l = sum of K_l squared standard normals``, ``K_l ~ Bin(n_l, 1/2)`` the open gates
    (Chapter 4). ``widths = (n_0, .., n_{L-1}, 1)``. A dead layer (``K_l = 0``) gives ``s = 0``.
    Seeded numpy draws (``numpy.random.default_rng(seed)``).
    """
    widths = nets.check_widths(widths)
    n_samples = _count("n_samples", n_samples)
    sigma2 = _positive("sigma2", sigma2)
    rng = np.random.default_rng(_count("seed", seed, 0))
    depth = len(widths) - 1
    s = rng.chisquare(widths[0], n_samples) / widths[0] * sigma2**depth
    for n in widths[1:-1]:
        k = rng.binomial(n, 0.5, n_samples)
        chi2 = np.zeros(n_samples)
        alive = k > 0
        chi2[alive] = rng.chisquare(k[alive])
        s *= chi2 / n
    return s


def initial_output_samples(
    widths: Sequence[int],
    n_samples: int,
    *,
    sigma2: float = 2.0,
    seed: int = 0,
) -> np.ndarray:
    """Draws of the output ``f = sqrt(s) xi`` at initialisation for one Gaussian input, the
    theory's whole law of ``f`` (and of the margin ``y f``, which has the same law because the
    last layer's sign flip makes ``f`` symmetric and independent of the label): ``s`` from
    :func:`initial_scale_samples` with this ``seed``, and ``xi ~ N(0, 1)`` independent, since
    given the last hidden layer the output is Gaussian with variance ``s``. Seeded numpy draws
    (``xi`` from ``numpy.random.default_rng(derive_seed(seed, stream="initial_output"))``)."""
    s = initial_scale_samples(widths, n_samples, sigma2=sigma2, seed=seed)
    rng = np.random.default_rng(data.derive_seed(seed, stream="initial_output"))
    return np.sqrt(s) * rng.standard_normal(s.size)


def predict_initial_margins(
    widths: Sequence[int], n_samples: int = 1_000_000, *, sigma2: float = 2.0, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Ensemble means at initialisation of the unsatisfied fraction ``P(y f < 1)`` and of the
    mean hinge loss, for Gaussian inputs and random labels: ``E Phi(1/sqrt s)`` and
    ``E[Phi(1/sqrt s) + sqrt(s) phi(1/sqrt s)]`` (:func:`derive_initial_hinge`) over
    :func:`initial_scale_samples`. Returns ``{"unsatisfied": Estimate, "hinge": Estimate}``,
    the standard error being the Monte-Carlo standard error of the average over ``s``."""
    s = initial_scale_samples(widths, n_samples, sigma2=sigma2, seed=seed)
    with np.errstate(divide="ignore"):
        t = np.where(s > 0, 1.0 / np.sqrt(np.where(s > 0, s, 1.0)), np.inf)
    unsat = special.ndtr(t)
    hinge = unsat + np.where(s > 0, np.sqrt(s) * np.exp(-0.5 * np.minimum(t, 1e3) ** 2), 0.0) / (
        math.sqrt(2 * math.pi)
    )
    k = math.sqrt(s.size)
    return {
        "unsatisfied": Estimate(float(unsat.mean()), float(unsat.std(ddof=1) / k)),
        "hinge": Estimate(float(hinge.mean()), float(hinge.std(ddof=1) / k)),
    }


# --------------------------------------------------------------------------------------------
# The symmetric initial state: gates
# --------------------------------------------------------------------------------------------


def expected_gate_entropy_bits(P: int) -> float:
    """``E H_2(K/P)`` for ``K ~ Bin(P, 1/2)``, exactly (a sum over ``K``): the expected gate
    entropy in bits of a first-layer unit on ``P`` i.i.d. inputs symmetric about 0 (each input
    opens the gate with probability 1/2, independently, whatever the unit's weights).
    ``= 1 - 1/(2 P ln 2) + O(P^-2)`` (``asbbook.capacity.derive_gate_entropy_first_layer``)."""
    P = _count("P", P)
    k = np.arange(P + 1)
    pmf = stats.binom.pmf(k, P, 0.5)
    return float(pmf @ binary_entropy_bits(torch.as_tensor(k / P)).numpy())


def _h2_array(p: np.ndarray) -> np.ndarray:
    """:func:`asbbook.stats.binary_entropy_bits` on a numpy array."""
    return binary_entropy_bits(torch.as_tensor(p)).numpy()


def expected_plugin_information_bits(P: int) -> float:
    """Exact expectation of the plug-in mutual information (bits) between a binary gate and a
    binary label that are independent, each Bernoulli(1/2) on each of ``P`` examples.

    With ``a`` open gates, ``b`` positive labels and ``c`` open gates among the positives
    (``a, b ~ Bin(P, 1/2)`` independent, ``c`` hypergeometric given ``a, b``),
    ``I = H_2(a/P) - (b/P) H_2(c/b) - (1 - b/P) H_2((a-c)/(P-b))``, and the expectation is a
    triple sum. Tables where one label is missing (``b = 0`` or ``P``) carry no information and
    count as 0. To leading order ``1/(2 (P-1) ln 2)`` (:func:`derive_plugin_information_bias`).
    """
    P = _count("P", P, 2)
    a = np.arange(P + 1)[:, None, None]
    b = np.arange(P + 1)[None, :, None]
    c = np.arange(P + 1)[None, None, :]
    weight = (
        stats.binom.pmf(a, P, 0.5)
        * stats.binom.pmf(b, P, 0.5)
        * stats.hypergeom.pmf(c, P, a, b)  # c open gates among the b positives
    )
    valid = (c <= np.minimum(a, b)) & (a - c <= P - b) & (b > 0) & (b < P)
    bb = np.where(valid, b, 1)
    rest = np.where(valid, P - b, 1)
    info = (
        _h2_array(a / P)
        - (b / P) * _h2_array(np.where(valid, c / bb, 0.0))
        - (1 - b / P) * _h2_array(np.where(valid, (a - c) / rest, 0.0))
    )
    return float(np.sum(np.where(valid, weight * info, 0.0)))


def derive_plugin_information_bias() -> PluginInformationBias:
    """The plug-in gate-label information of an independent gate, to leading order in ``1/P``.

    1. *Expansion about independence.* A 2 x 2 table with margins ``alpha = P(g = 1)`` and
       ``beta = P(y = 1)`` and joint ``P(g = 1, y = 1) = alpha beta + e`` has mutual information
       ``I = e^2 / (2 alpha (1-alpha) beta (1-beta)) + O(e^3) = phi^2 / 2 + O(e^3)`` nats, with
       ``phi = e / sqrt(alpha (1-alpha) beta (1-beta))`` the phi coefficient (sympy series).
    2. *Random labels.* Given the ``a`` open gates and ``b`` positive labels of the ``P``
       examples, labels independent of the gates are a uniformly random permutation, and the
       count ``c`` of open gates among the positives is hypergeometric. Writing ``c`` as a sum of
       ``b`` exchangeable indicators, ``Var c = b q(1-q) + b(b-1) Cov``, ``q = a/P``,
       ``Cov = q (a-1)/(P-1) - q^2``, which simplifies to ``b (a/P) (1 - a/P) (P-b)/(P-1)``.
    3. With ``phi = (P c - a b) / sqrt(a (P-a) b (P-b))``, ``E phi^2 = P^2 Var c / (a (P-a) b (P-b))
       = 1 / (P-1)``, whatever ``a`` and ``b``. Hence ``E I = 1 / (2 (P-1) ln 2)`` bits to
       leading order: the finite-sample bias of the plug-in estimate (Miller 1955; Panzeri and
       Treves 1996), ``(2 P ln 2)^{-1}`` bits for ``P >> 1``.

    Returns ``series`` (``I`` to second order in ``e``), ``variance`` (``Var c``), ``phi2``
    (``E phi^2``) and ``bias`` (``E I`` in bits).
    """
    al, be = sp.symbols("alpha beta", positive=True)
    e = sp.Symbol("e", real=True)
    cells = {
        (1, 1): al * be + e,
        (1, 0): al * (1 - be) - e,
        (0, 1): (1 - al) * be - e,
        (0, 0): (1 - al) * (1 - be) + e,
    }
    margins = {(1, 1): al * be, (1, 0): al * (1 - be), (0, 1): (1 - al) * be}
    margins[(0, 0)] = (1 - al) * (1 - be)
    info = sum(p * sp.log(p / margins[k]) for k, p in cells.items())
    taylor = [sp.diff(info, e, k).subs(e, 0) / sp.factorial(k) for k in range(4)]
    leading = e**2 / (2 * al * (1 - al) * be * (1 - be))
    assert sp.simplify(taylor[0]) == 0 and sp.simplify(taylor[1]) == 0
    assert sp.simplify(taylor[2] * e**2 - leading) == 0, taylor[2]
    # the cubic term is really there (the expansion is not exact); it vanishes when either
    # margin is 1/2 (then I is even in e), as for the balanced gates and labels at init
    assert taylor[3].subs({al: sp.Rational(1, 3), be: sp.Rational(1, 4)}) != 0
    assert taylor[3].subs({al: sp.Rational(1, 3), be: sp.Rational(1, 2)}) == 0

    P, a, b = sp.symbols("P a b", positive=True)
    q = a / P
    cov = q * (a - 1) / (P - 1) - q**2
    var_c = b * q * (1 - q) + b * (b - 1) * cov
    hyper = b * (a / P) * (1 - a / P) * (P - b) / (P - 1)
    assert sp.simplify(var_c - hyper) == 0
    phi2 = sp.simplify(P**2 * var_c / (a * (P - a) * b * (P - b)))
    assert sp.simplify(phi2 - 1 / (P - 1)) == 0
    # cross-check Var c against sympy.stats for a concrete table
    import sympy.stats as st

    for P_, a_, b_ in ((10, 4, 3), (12, 6, 5)):
        H = st.Hypergeometric("H", P_, a_, b_)
        assert st.variance(H) == hyper.subs({P: P_, a: a_, b: b_})
    bias = sp.simplify(phi2 / (2 * sp.log(2)))
    E_ = sp.Function(r"\mathbb{E}")
    return PluginInformationBias(
        series=sp.Eq(sp.Symbol("I"), leading, evaluate=False),
        variance=sp.Eq(sp.Symbol(r"\mathrm{Var}\,c"), sp.factor(hyper), evaluate=False),
        phi2=sp.Eq(E_(sp.Symbol(r"\phi") ** 2), phi2, evaluate=False),
        bias=sp.Eq(sp.Symbol(r"\mathbb{E}\,\hat I_{\mathrm{bits}}"), bias, evaluate=False),
        P=P,
    )
