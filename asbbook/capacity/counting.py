"""Cover's function counting and what "zero surrogate risk" means: sympy derivations (each ends
in assertions) and their exact and floating-point counterparts.

**Established anchor** (Cover 1965). For ``P`` points in general position in ``R^N`` the number
of dichotomies realised by a homogeneous linear threshold unit ``sign(w . x)`` is

    C(P, N) = 2 sum_{k=0}^{N-1} binom(P-1, k),

the solution of ``C(P+1, N) = C(P, N) + C(P, N-1)`` with ``C(1, N) = 2``, ``C(P, 1) = 2`` and
``C(P, 0) = 0``. The realisable fraction ``C(P, N) / 2^P = Pr[Bin(P-1, 1/2) <= N-1]`` is 1 for
``P <= N``, exactly 1/2 at ``P = 2N`` and becomes a step at ``alpha = P/N = 2`` as ``N -> oo``:
2 patterns per weight (Gardner 1988).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch

from asbbook.stats import binary_entropy_bits
from asbbook.symbolic import DerivationResult

P_sym, N_sym = sp.symbols("P N", integer=True, positive=True)
k_sym, j_sym = sp.symbols("k j", integer=True, nonnegative=True)


def cover_expr(P=P_sym, N=N_sym) -> sp.Expr:
    """``C(P, N) = 2 sum_{k=0}^{N-1} binom(P-1, k)`` as an unevaluated sympy sum (Cover 1965)."""
    return 2 * sp.Sum(sp.binomial(P - 1, k_sym), (k_sym, 0, N - 1))


def _cover_exact(P: int, N: int) -> int:
    """``C(P, N)`` for integers ``P >= 1``, ``N >= 0`` (``C(P, 0) = 0``), exact."""
    return 2 * sum(math.comb(P - 1, k) for k in range(min(N, P)))


@dataclass(frozen=True)
class CoverDerivation(DerivationResult):
    """Cover's function-counting theorem, verified by :func:`derive_cover_recursion`."""

    closed_form: sp.Expr  # C(P, N) = 2 sum_{k<N} binom(P-1, k)
    recursion: sp.Eq  # C(P+1, N) = C(P, N) + C(P, N-1)
    pascal_rule: sp.Eq  # binom(P, k) = binom(P-1, k) + binom(P-1, k-1)
    boundary: tuple[sp.Eq, ...]  # C(1, N) = 2, C(P, 1) = 2, C(P, 0) = 0
    grid_checked: tuple[int, int]  # the recursion was checked exactly for 1 <= P, N <= these


def derive_cover_recursion(grid: int = 40) -> CoverDerivation:
    """Prove that the closed form satisfies Cover's recursion and its boundary conditions.

    Symbolic proof, for symbolic integers ``P, N >= 1``:

    1. Pascal's rule ``binom(P, k) - binom(P-1, k) = binom(P-1, k-1)`` (sympy ``combsimp``), so
       ``C(P+1, N) - C(P, N) = 2 sum_{k=0}^{N-1} binom(P-1, k-1)``;
    2. its ``k = 0`` term is ``binom(P-1, -1) = 0``, and the shift ``k = j + 1`` turns
       ``2 sum_{k=1}^{N-1} binom(P-1, k-1)`` into ``2 sum_{j=0}^{N-2} binom(P-1, j) = C(P, N-1)``.

    The recursion itself is Cover's geometric argument (Cover 1965): a dichotomy of the first
    ``P`` points extends to two dichotomies of ``P + 1`` points exactly when one of its
    separators can be made to pass through the new point, and those are counted by the
    ``C(P, N-1)`` dichotomies of the points projected onto the hyperplane orthogonal to it.
    ``tests/test_capacity.py`` checks the resulting count independently, by enumerating the
    dichotomies of random points with the LP of :func:`is_linearly_separable`.

    Boundary conditions (general position, separators through the origin): one non-zero point
    gets either label (``w = +-x``), so ``C(1, N) = 2``; on the line (``N = 1``) ``sign(w x)`` has
    only the two sign choices of ``w``, so ``C(P, 1) = 2``; ``C(P, 0) = 0`` (the empty sum) is the
    convention that makes the recursion hold at ``N = 1``. Finally the closed form is checked
    against the recursion and the boundary conditions with exact integers for ``P, N <= grid``.
    """
    P, N, k, j = P_sym, N_sym, k_sym, j_sym
    pascal = sp.binomial(P, k) - sp.binomial(P - 1, k) - sp.binomial(P - 1, k - 1)
    assert sp.simplify(sp.combsimp(pascal)) == 0, "Pascal's rule"

    # Step 1: the term-by-term difference of C(P+1, N) and C(P, N) (same summation range).
    summand_diff = sp.binomial(P, k) - sp.binomial(P - 1, k)
    assert sp.simplify(sp.combsimp(summand_diff - sp.binomial(P - 1, k - 1))) == 0
    diff_sum = 2 * sp.Sum(sp.binomial(P - 1, k - 1), (k, 0, N - 1))
    # sympy agrees when handed the two whole sums:
    assert sp.simplify(cover_expr(P + 1, N) - cover_expr(P, N) - diff_sum) == 0
    # Step 2: drop the vanishing k = 0 term, then shift the index k = j + 1.
    assert sp.binomial(P - 1, -1) == 0
    tail = sp.Sum(sp.binomial(P - 1, k - 1), (k, 1, N - 1))
    shifted = tail.change_index(k, k - 1, j)
    assert shifted == sp.Sum(sp.binomial(P - 1, j), (j, 0, N - 2)), shifted
    assert 2 * shifted.xreplace({j: k}) == cover_expr(P, N - 1), "the shifted sum is C(P, N-1)"

    # Boundary conditions of the closed form.
    c1 = cover_expr(1, N).doit()
    assert sp.simplify(c1 - 2) == 0, c1
    assert cover_expr(P, 1).doit() == 2
    assert cover_expr(P, 0).doit() == 0

    # Exact check of the closed form against the recursion and boundaries on a grid.
    for p in range(1, grid + 1):
        assert _cover_exact(1, p) == 2 and _cover_exact(p, 1) == 2 and _cover_exact(p, 0) == 0
        for n in range(1, grid + 1):
            assert _cover_exact(p + 1, n) == _cover_exact(p, n) + _cover_exact(p, n - 1), (p, n)
    # ... and the symbolic closed form agrees with the exact integers.
    for p, n in [(1, 1), (5, 2), (7, 3), (12, 4), (20, 10)]:
        assert int(cover_expr(p, n).doit()) == _cover_exact(p, n)

    C = sp.Function("C")
    return CoverDerivation(
        closed_form=sp.Eq(C(P, N), cover_expr(P, N)),
        recursion=sp.Eq(C(P + 1, N), C(P, N) + C(P, N - 1)),
        pascal_rule=sp.Eq(sp.binomial(P, k), sp.binomial(P - 1, k) + sp.binomial(P - 1, k - 1)),
        boundary=(sp.Eq(C(1, N), 2), sp.Eq(C(P, 1), 2), sp.Eq(C(P, 0), 0)),
        grid_checked=(grid, grid),
    )


@dataclass(frozen=True)
class CoverSpecialValues(DerivationResult):
    """``C(P, N) = 2^P`` for ``P <= N`` and ``C(2N, N) = 2^{2N-1}``, from :func:`derive_cover_special`."""

    below_dimension: sp.Eq  # C(P, N) = 2^P for P <= N
    at_twice_dimension: sp.Eq  # C(2N, N) = 2^{2N-1}
    fraction_at_alpha_2: sp.Rational  # C(2N, N) / 2^{2N} = 1/2


def derive_cover_special(n_check: int = 200) -> CoverSpecialValues:
    """Derive the two special values of ``C(P, N)``, asserting each.

    * For ``P <= N`` the sum runs over ``k = 0..P-1`` (``binom(P-1, k) = 0`` for ``k > P-1``), so
      ``C(P, N) = 2 * 2^{P-1} = 2^P``: every dichotomy is realisable.
    * At ``P = 2N``: ``binom(2N-1, k) = binom(2N-1, 2N-1-k)`` maps ``k = 0..N-1`` onto
      ``N..2N-1``, so the two halves of ``sum_k binom(2N-1, k) = 2^{2N-1}`` are equal, each
      ``2^{2N-2}``, and ``C(2N, N) = 2^{2N-1}``: half of the ``2^{2N}`` dichotomies. sympy also
      evaluates the half sum in closed form; both routes are asserted, plus exact integers for
      ``N <= n_check``.
    """
    P, N, k = P_sym, N_sym, k_sym
    full = sp.Sum(sp.binomial(P - 1, k), (k, 0, P - 1)).doit()
    assert sp.simplify(2 * full - 2**P) == 0, full

    # Symmetry route: the reflected upper half equals the lower half term by term.
    n = N
    lower = sp.Sum(sp.binomial(2 * n - 1, k), (k, 0, n - 1))
    upper = sp.Sum(sp.binomial(2 * n - 1, k), (k, n, 2 * n - 1))
    reflected = upper.change_index(k, 2 * n - 1 - k)
    assert reflected.limits == lower.limits, reflected
    assert sp.simplify(sp.combsimp(reflected.function - lower.function)) == 0
    total = sp.Sum(sp.binomial(2 * n - 1, k), (k, 0, 2 * n - 1)).doit()
    assert sp.simplify(total - 2 ** (2 * n - 1)) == 0
    half = total / 2  # lower == upper and lower + upper == total
    c_2n = sp.simplify(2 * half)
    assert sp.simplify(c_2n - 2 ** (2 * n - 1)) == 0
    # Direct route: sympy's closed form of the partial sum.
    direct = sp.simplify(cover_expr(2 * n, n).doit())
    assert sp.simplify(direct - 2 ** (2 * n - 1)) == 0, direct
    frac = sp.simplify(c_2n / 2 ** (2 * n))
    assert frac == sp.Rational(1, 2), frac
    for m in range(1, n_check + 1):
        assert _cover_exact(2 * m, m) == 2 ** (2 * m - 1), m
        for p in range(1, min(m, 12) + 1):
            assert _cover_exact(p, m) == 2**p

    C = sp.Function("C")
    return CoverSpecialValues(
        below_dimension=sp.Eq(C(P, N), 2**P),
        at_twice_dimension=sp.Eq(C(2 * N, N), 2 ** (2 * N - 1)),
        fraction_at_alpha_2=frac,
    )


@dataclass(frozen=True)
class CoverStep(DerivationResult):
    """The large-``N`` step of the realisable fraction, from :func:`derive_cover_step`."""

    standardised_argument: sp.Expr  # z(P, N) = (2N - P) / sqrt(P - 1)
    argument_in_alpha: sp.Expr  # z at P = alpha N
    leading_order: sp.Expr  # sqrt(N) (2 - alpha) / sqrt(alpha)
    normal_form: sp.Expr  # Phi(z) = (1 + erf(z / sqrt 2)) / 2
    limits: dict  # {"alpha<2": 1, "alpha=2": 1/2, "alpha>2": 0}


def derive_cover_step(n_numeric: int = 2000) -> CoverStep:
    """The realisable fraction as a binomial CDF, its normal limit and the step at ``alpha = 2``.

    ``C(P, N) / 2^P = 2^{-(P-1)} sum_{k<N} binom(P-1, k) = Pr[K <= N - 1]`` with
    ``K ~ Bin(P-1, 1/2)`` (mean ``(P-1)/2``, variance ``(P-1)/4``). By de Moivre-Laplace with the
    continuity correction (``K <= N - 1`` becomes ``K < N - 1/2``) the fraction tends to
    ``Phi(z)`` with

        z = (N - 1/2 - (P-1)/2) / sqrt((P-1)/4) = (2N - P) / sqrt(P - 1),

    which is exactly 0 at ``P = 2N`` (matching the exact 1/2). With ``P = alpha N``,
    ``z = sqrt(N) (2 - alpha) / sqrt(alpha) + O(N^{-1/2})``, so ``z -> +inf, 0, -inf`` and the
    fraction ``-> 1, 1/2, 0`` for ``alpha < 2, = 2, > 2``. All limits are asserted with sympy;
    the normal form is also checked against the exact CDF at ``N = n_numeric`` (error ``O(1/N)``).
    """
    P, N = P_sym, N_sym
    alpha = sp.Symbol("alpha", positive=True)
    delta = sp.Symbol("delta", positive=True)
    n_pos = sp.Symbol("N", positive=True)
    mean, var = (P - 1) / sp.Integer(2), (P - 1) / sp.Integer(4)
    z = (N - sp.Rational(1, 2) - mean) / sp.sqrt(var)
    z_simple = (2 * N - P) / sp.sqrt(P - 1)
    assert sp.simplify(z - z_simple) == 0, z
    assert z_simple.subs(P, 2 * N) == 0

    z_alpha = z_simple.subs({P: alpha * n_pos, N: n_pos})
    lead = sp.sqrt(n_pos) * (2 - alpha) / sp.sqrt(alpha)
    assert (
        sp.simplify(sp.limit(z_alpha / sp.sqrt(n_pos), n_pos, sp.oo) - (2 - alpha) / sp.sqrt(alpha))
        == 0
    )
    # The correction z - lead vanishes like N^{-1/2}:
    assert sp.limit(z_alpha - lead, n_pos, sp.oo) == 0

    u = sp.Symbol("u", real=True)
    phi = (1 + sp.erf(u / sp.sqrt(2))) / 2
    below = sp.limit(phi.subs(u, z_alpha.subs(alpha, 2 / (1 + delta))), n_pos, sp.oo)
    at = sp.limit(phi.subs(u, z_alpha.subs(alpha, 2)), n_pos, sp.oo)
    above = sp.limit(phi.subs(u, z_alpha.subs(alpha, 2 + delta)), n_pos, sp.oo)
    assert (below, at, above) == (1, sp.Rational(1, 2), 0), (below, at, above)

    # Numerical sanity check of the normal form against the exact binomial CDF.
    for a in (1.0, 1.8, 2.0, 2.2, 3.0):
        p = int(round(a * n_numeric))
        exact, approx = cover_fraction(p, n_numeric), cover_fraction_normal(p, n_numeric)
        assert abs(exact - approx) < 5.0 / n_numeric, (a, exact, approx)

    return CoverStep(
        standardised_argument=z_simple,
        argument_in_alpha=z_alpha,
        leading_order=lead,
        normal_form=phi,
        limits={"alpha<2": below, "alpha=2": at, "alpha>2": above},
    )


@dataclass(frozen=True)
class HingeDerivation(DerivationResult):
    """Zero hinge loss versus zero 0-1 error, from :func:`derive_hinge_versus_zero_one`."""

    hinge: sp.Expr  # max(0, 1 - m) for a margin m = y f
    rescaled_hinge: sp.Expr  # hinge of m / kappa when m >= kappa > 0: zero
    steps_bound: sp.Expr  # T <= P (2/eta + R^2) / gamma^2 for full-batch GD from w = 0


def derive_hinge_versus_zero_one() -> HingeDerivation:
    """What "zero surrogate risk" means, and when it is the same as zero training error.

    With margins ``m_mu = y_mu f(x_mu)``: zero hinge loss ``<=> m_mu >= 1`` for all ``mu``, which
    implies zero 0-1 error (``m_mu > 0``). Conversely, if ``f`` is linear in a parameter block
    (``w`` of a homogeneous linear model, or the read-out ``W^L`` of any bias-free net), then
    scaling that block by ``c > 0`` scales every margin by ``c``; if all margins are positive with
    minimum ``kappa``, the scale ``c = 1/kappa`` gives margins ``m_mu / kappa >= 1``, i.e. zero
    hinge loss. So *the existence* of a zero-hinge solution and of a zero-error solution coincide
    (asserted below: ``max(0, 1 - (kappa + d)/kappa) = 0`` for ``kappa > 0, d >= 0``).

    They differ when the scale is limited: with ``||w|| <= B`` zero hinge loss needs a geometric
    margin of at least ``1/B``, not just ``> 0``; and in a finite number of gradient steps the
    weights must first *grow* to ``||w|| >= 1/gamma``. For full-batch (sub)gradient descent on
    the mean hinge loss from ``w = 0``, ``w <- w + (eta/P) sum_{m_mu < 1} y_mu x_mu``, with
    ``R = max ||x_mu||`` and the best geometric margin ``gamma = max_{||u||=1} min_mu m_mu(u)``:
    each step with a non-zero loss adds at least ``eta/P`` to ``s = sum_t eta |A_t| / P``;
    ``u.w >= gamma s`` and ``||w||^2 <= (2 + eta R^2) s`` give ``gamma^2 s^2 <= (2 + eta R^2) s``,
    so the number of steps with a non-zero loss is at most ``P (2/eta + R^2) / gamma^2``
    (a batch form of Novikoff's perceptron bound). As ``alpha -> 2`` the largest margin of
    random separable data goes to 0 (Gardner 1988), so the budget needed diverges: the slowdown
    the chapter measures. Non-separable data never reaches zero hinge loss.
    """
    m = sp.Symbol("m", real=True)
    kappa = sp.Symbol("kappa", positive=True)
    d = sp.Symbol("d", nonnegative=True)
    hinge = sp.Max(0, 1 - m)
    rescaled = hinge.subs(m, (kappa + d) / kappa)
    assert sp.simplify(rescaled) == 0, rescaled
    # Zero hinge implies a positive margin: hinge(m) = 0 forces m = 1 + d with d >= 0 > -1.
    assert sp.simplify(hinge.subs(m, 1 + d)) == 0 and (1 + d).is_positive

    # Linearity in the rescaled block: f(c w) = c f(w) for f = w.x (and for the read-out W^L).
    c = sp.Symbol("c", positive=True)
    w = sp.symbols("w1:4", real=True)
    x = sp.symbols("x1:4", real=True)
    f = sum(wi * xi for wi, xi in zip(w, x, strict=True))
    assert sp.expand(f.subs({wi: c * wi for wi in w}, simultaneous=True) - c * f) == 0

    # The step bound: the largest s with gamma^2 s^2 <= (2 + eta R^2) s, then T <= P s / eta.
    s, gam, eta, R, Pp = sp.symbols("s gamma eta R P", positive=True)
    roots = sp.solve(sp.Eq(gam**2 * s**2, (2 + eta * R**2) * s), s)
    s_max = max(roots, key=lambda r: 0 if r == 0 else 1)
    assert sp.simplify(s_max - (2 + eta * R**2) / gam**2) == 0, roots
    t_max = sp.simplify(Pp * s_max / eta)
    assert sp.simplify(t_max - Pp * (2 / eta + R**2) / gam**2) == 0
    return HingeDerivation(hinge=hinge, rescaled_hinge=rescaled, steps_bound=t_max)


# ---------------------------------------------------------------------------------------------
# Counting (exact and floating point)
# ---------------------------------------------------------------------------------------------


def _as_count(name: str, value, minimum: int = 1) -> int:
    """An integer (Python or numpy) ``>= minimum``, refusing bools and floats."""
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v}")
    return v


def cover_count(P: int, N: int) -> int:
    """Cover's count ``C(P, N) = 2 sum_{k=0}^{N-1} binom(P-1, k)`` as an exact Python int.

    The number of dichotomies of ``P`` points in general position in ``R^N`` realised by a
    homogeneous linear threshold unit (separator through the origin; Cover 1965).
    """
    return _cover_exact(_as_count("P", P), _as_count("N", N))


def _as_count_array(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold positive integers, got {value!r}")
    if arr.size and arr.min() < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return arr.astype(np.int64)


def cover_fraction(P, N):
    """The realisable fraction ``C(P, N) / 2^P = Pr[Bin(P-1, 1/2) <= N-1]`` (Cover 1965).

    Computed as a binomial CDF (``scipy.stats.binom.cdf``, regularised incomplete beta), so it is
    stable for ``P`` up to ``10^4`` and beyond (values below ~1e-308 underflow to 0). Integers or
    integer arrays (broadcast); returns a float for scalars, else an array.
    """
    from scipy.stats import binom

    if np.ndim(P) == 0 and np.ndim(N) == 0:
        p, n = _as_count("P", P), _as_count("N", N)
        return float(binom.cdf(n - 1, p - 1, 0.5))
    p, n = _as_count_array("P", P), _as_count_array("N", N)
    return np.asarray(binom.cdf(n - 1, p - 1, 0.5), dtype=np.float64)


def cover_fraction_normal(P, N):
    """De Moivre-Laplace form of :func:`cover_fraction`: ``Phi((2N - P) / sqrt(P - 1))``.

    Continuity-corrected normal approximation of ``Pr[Bin(P-1, 1/2) <= N-1]``
    (:func:`derive_cover_step`); exactly 1/2 at ``P = 2N``, and 1 for ``P = 1``. For
    ``P = alpha N`` its argument is ``sqrt(N) (2 - alpha) / sqrt(alpha) + O(N^{-1/2})``.
    """
    from scipy.special import ndtr

    scalar = np.ndim(P) == 0 and np.ndim(N) == 0
    if scalar:
        p, n = np.int64(_as_count("P", P)), np.int64(_as_count("N", N))
    else:
        p, n = _as_count_array("P", P), _as_count_array("N", N)
    p, n = np.broadcast_arrays(p, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        zval = (2.0 * n - p) / np.sqrt(np.maximum(p - 1, 0).astype(np.float64))
    out = np.where(p == 1, 1.0, ndtr(np.where(p == 1, 0.0, zval)))
    return float(out) if scalar else out


@dataclass(frozen=True)
class GateEntropyFirstLayer(DerivationResult):
    """The expected first-layer gate entropy to leading order
    (:func:`derive_gate_entropy_first_layer`)."""

    leading: sp.Expr  # 1 - 1 / (2 P ln 2) bits per unit
    P: sp.Symbol


def derive_gate_entropy_first_layer() -> GateEntropyFirstLayer:
    """Expected gate entropy of a first-layer unit on ``P`` symmetric inputs, to leading order.

    With i.i.d. inputs symmetric about 0 (e.g. Gaussian) and any fixed first-layer weights,
    each gate is open with probability 1/2 independently over the examples, so ``rho = K/P``
    with ``K ~ Bin(P, 1/2)``. (This averages over the inputs: on one fixed dataset the gates
    of different examples are correlated through the angles between them, and the mean over
    weights alone differs from this at order ``1/P``.) Expanding ``H_2(1/2 + e) = 1 - 2 e^2 / ln 2 + O(e^4)`` and using
    ``E e^2 = Var(K/P) = 1/(4P)`` (``E e^4 = O(P^{-2})``) gives
    ``E H_2(rho) = 1 - 1 / (2 P ln 2) + O(P^{-2})`` bits per unit; ``.leading`` is that form.
    """
    e = sp.Symbol("epsilon", real=True)
    Pp = sp.Symbol("P", positive=True)
    p = sp.Rational(1, 2) + e
    h2 = -(p * sp.log(p) + (1 - p) * sp.log(1 - p)) / sp.log(2)
    ser = sp.series(h2, e, 0, 4).removeO()
    assert sp.simplify(ser - (1 - 2 * e**2 / sp.log(2))) == 0, ser
    # E e^2 = Var(Bin(P, 1/2)) / P^2 = (P/4) / P^2
    var = (Pp / 4) / Pp**2
    leading = sp.simplify(1 - 2 * var / sp.log(2))
    assert sp.simplify(leading - (1 - 1 / (2 * Pp * sp.log(2)))) == 0
    # the exact expectation agrees to O(P^-2) (checked for a few P)
    for m in (16, 64, 256):
        exact = sum(
            math.comb(m, j)
            / 2**m
            * float(binary_entropy_bits(torch.tensor(j / m, dtype=torch.float64)))
            for j in range(m + 1)
        )
        approx = float(leading.subs(Pp, m))
        assert abs(exact - approx) < 2.0 / m**2, (m, exact, approx)
    return GateEntropyFirstLayer(leading=leading, P=Pp)
