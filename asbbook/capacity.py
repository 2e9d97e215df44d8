"""Global minima: reservoir capacity versus dataset complexity (book, Chapter 5).

**Surrogate risk.** With labels ``y = +-1`` the hinge loss of an output ``f`` is
``max(0, 1 - y f)``. "Zero training error measured by a surrogate risk" means a zero mean hinge loss,
i.e. every margin ``y_mu f(x_mu)`` is at least 1 (stricter than a zero 0-1 error, which only asks
for ``y_mu f(x_mu) > 0``; see :func:`derive_hinge_versus_zero_one` for exactly when they coincide).

**Dataset complexity.** ``P`` examples with i.i.d. uniform random labels carry ``P`` bits.

**Established anchor: Cover's function counting** (Cover 1965). For ``P`` points in general
position in ``R^N`` (every subset of at most ``N`` of them is linearly independent) the number of
dichotomies realised by a homogeneous linear threshold unit ``sign(w . x)`` (a separating
hyperplane through the origin, no bias) is

    C(P, N) = 2 sum_{k=0}^{N-1} binom(P-1, k),

the solution of ``C(P+1, N) = C(P, N) + C(P, N-1)`` with ``C(1, N) = 2`` (``N >= 1``),
``C(P, 1) = 2`` (``P >= 1``) and ``C(P, 0) = 0``. The realisable fraction ``C(P, N) / 2^P`` equals
``Pr[Bin(P-1, 1/2) <= N-1]``: it is 1 for ``P <= N``, exactly 1/2 at ``P = 2N`` and becomes a step
at ``alpha = P/N = 2`` as ``N -> infinity`` -- 2 patterns (bits) per weight (Gardner 1988).

The module holds the sympy derivations (each ends in assertions) and their numerical
counterparts: exact counts, a stable realisable fraction, an exact separability test by linear
programming (scipy/HiGHS), batched hinge-loss gradient descent on a linear model (torch), the
sweep cell that trains deep ReLU nets on random or true labels (through ``asbbook.ensemble``),
the book's reservoir measure (gate entropy at initialisation, in bits) and the analysis helpers
of the chapter's phase diagrams (transition points and the transition line).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch

from asbbook import validation
from asbbook.data import gaussian_patterns
from asbbook.nets import default_device
from asbbook.phase import (  # noqa: F401  (re-exported: the chapter's public names)
    DATASETS,
    DIGITS_INPUTS,
    PhaseColumn,
    aggregate_cells,
    cell_data,
    cell_data_seed,
    cell_points,
    group_cells,
    random_label_cell,
    width_ladder,
)
from asbbook.phase import reservoir_entropy_bits as gate_entropy_bits
from asbbook.stats import binary_entropy_bits  # noqa: F401
from asbbook.transitions import (  # noqa: F401
    Transition,
    TransitionLine,
    _as_1d,
    _as_numpy,
    depth_spread,
    fit_transition_line,
    transition_point,
)

# ---------------------------------------------------------------------------------------------
# Derivations (sympy)
# ---------------------------------------------------------------------------------------------

P_sym, N_sym = sp.symbols("P N", integer=True, positive=True)
k_sym, j_sym = sp.symbols("k j", integer=True, nonnegative=True)


def cover_expr(P=P_sym, N=N_sym) -> sp.Expr:
    """``C(P, N) = 2 sum_{k=0}^{N-1} binom(P-1, k)`` as an unevaluated sympy sum (Cover 1965)."""
    return 2 * sp.Sum(sp.binomial(P - 1, k_sym), (k_sym, 0, N - 1))


def _cover_exact(P: int, N: int) -> int:
    """``C(P, N)`` for integers ``P >= 1``, ``N >= 0`` (``C(P, 0) = 0``), exact."""
    return 2 * sum(math.comb(P - 1, k) for k in range(min(N, P)))


@dataclass(frozen=True)
class CoverDerivation:
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
class CoverSpecialValues:
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
class CoverStep:
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
class HingeDerivation:
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


# ---------------------------------------------------------------------------------------------
# Exact separability (linear programming)
# ---------------------------------------------------------------------------------------------


def check_patterns(X, y) -> tuple[np.ndarray, np.ndarray]:
    """Validate a dataset: ``X`` shaped ``(P, N)`` with ``P, N >= 1``, ``y`` shaped ``(P,)`` in
    ``{-1, +1}``, all finite. Accepts numpy arrays or torch tensors; returns float64 numpy arrays.
    Raises ``ValueError`` with the reason."""
    try:
        X, y = _as_numpy(X), _as_numpy(y)
    except (TypeError, ValueError) as err:
        raise ValueError(f"X and y must be numeric arrays: {err}") from None
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must have shape (P, N) with P, N >= 1, got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X {X.shape}, got {y.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite entries")
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinite entries")
    if not np.isin(y, (-1.0, 1.0)).all():
        raise ValueError(f"labels must be -1 or +1, got values {np.unique(y)[:6]}")
    return X, y


@dataclass(frozen=True)
class SeparationCertificate:
    """The result of the max-margin LP of :func:`separation_margin`."""

    margin: float  # t* = max over |w_i| <= 1 of min_mu y_mu w.x_mu / ||x_mu|| (>= 0)
    weights: np.ndarray  # the maximiser w* (a separator when margin > 0)
    min_margin_check: float  # min_mu y_mu w*.x_mu / ||x_mu||, recomputed in float64


def separation_margin(X, y) -> SeparationCertificate:
    """Largest box-normalised margin of a homogeneous separator, by a linear program (HiGHS).

    Solves ``max t`` subject to ``y_mu w . x_mu / ||x_mu|| >= t`` for all ``mu``,
    ``-1 <= w_i <= 1`` and ``t >= 0``. Rescaling each pattern by a positive factor does not
    change which homogeneous separators separate it, and normalising the rows keeps the LP well
    scaled. ``t* > 0`` iff the strict system ``y_mu w . x_mu > 0`` (equivalently the feasibility
    problem ``y_mu w . x_mu >= 1``, take ``w* / t*``) has a solution. A zero pattern forces
    ``t* = 0``. ``t*`` lies between the Euclidean max margin ``gamma`` of the unit-norm patterns
    and ``sqrt(N) gamma``.
    """
    from scipy.optimize import linprog

    X, y = check_patterns(X, y)
    P, N = X.shape
    norms = np.linalg.norm(X, axis=1)
    A = (y / np.where(norms > 0, norms, 1.0))[:, None] * X
    c = np.zeros(N + 1)
    c[-1] = -1.0
    res = linprog(
        c,
        A_ub=np.hstack([-A, np.ones((P, 1))]),
        b_ub=np.zeros(P),
        bounds=[(-1.0, 1.0)] * N + [(0.0, None)],
        method="highs",
    )
    if res.status != 0:  # the LP is always feasible (w = 0, t = 0) and bounded
        raise RuntimeError(f"the separability LP failed: {res.message}")
    w = np.asarray(res.x[:N])
    return SeparationCertificate(
        margin=float(res.x[-1]), weights=w, min_margin_check=float((A @ w).min())
    )


def is_linearly_separable(X, y, *, tol: float = 1e-9) -> bool:
    """Exact test: is there a **homogeneous** separator (through the origin, no bias) with
    ``sign(w . x_mu) = y_mu`` for every ``mu``?

    Equivalent to the feasibility of ``y_mu w . x_mu >= 1`` (rescale any strict separator). It is
    decided by the max-margin LP of :func:`separation_margin` (scipy's HiGHS), and the answer
    ``True`` is certified: the LP's ``w*`` is re-checked in float64 and must give every unit-norm
    pattern a margin above ``tol``. ``False`` means no ``w`` with ``|w_i| <= 1`` has a margin
    above ``tol`` (up to HiGHS's feasibility tolerance, ~1e-7 on the unit-scaled constraints), so
    datasets separable only with a normalised margin below ~1e-7 may be reported as
    non-separable; random Gaussian data near ``alpha = 2`` have margins of order 1e-3 or more.
    """
    cert = separation_margin(X, y)
    return bool(cert.margin > tol and cert.min_margin_check > tol)


def _trial_seed(seed: int, P: int, N: int, trial: int) -> int:
    """An independent 63-bit seed for each (seed, P, N, trial) cell."""
    return int(np.random.SeedSequence([seed, P, N, trial]).generate_state(1, np.uint64)[0] >> 1)


def trial_patterns(
    P: int,
    N: int,
    trial: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gaussian patterns with random labels of one trial (``asbbook.data.gaussian_patterns``
    with a seed derived from ``(seed, P, N, trial)``); shared by :func:`separable_fraction` and
    :func:`perceptron_hinge_training`, so both see the same datasets."""
    return gaussian_patterns(P, N, seed=_trial_seed(seed, P, N, trial), dtype=dtype, device=device)


def separable_fraction(P: int, N: int, n_trials: int, seed: int = 0) -> tuple[float, float]:
    """Monte-Carlo fraction of random dichotomies of Gaussian patterns that are separable.

    ``n_trials`` datasets of ``P`` standard Gaussian patterns in ``R^N`` with uniform labels
    (:func:`trial_patterns`), each decided exactly by :func:`is_linearly_separable`. Returns
    ``(fraction, standard error)`` with the empirical ``sqrt(f (1 - f) / n_trials)`` (zero when
    every trial agrees; for a test of a prediction ``p`` prefer ``sqrt(p (1 - p) / n_trials)``).
    Its expectation is :func:`cover_fraction` ``(P, N)``.
    """
    P, N, n_trials = _as_count("P", P), _as_count("N", N), _as_count("n_trials", n_trials)
    hits = 0
    for t in range(n_trials):
        X, y = trial_patterns(P, N, t, seed=seed)
        hits += is_linearly_separable(X.numpy(), y.numpy())
    f = hits / n_trials
    return f, math.sqrt(f * (1 - f) / n_trials)


# ---------------------------------------------------------------------------------------------
# Hinge-loss gradient descent on a linear model (torch, batched over trials)
# ---------------------------------------------------------------------------------------------


def _resolve_device(device) -> torch.device:
    return default_device() if device == "auto" else torch.device(device)


@dataclass(frozen=True)
class HingeTraining:
    """Outcome of :func:`perceptron_hinge_training` (one entry per trial)."""

    P: int
    N: int
    max_steps: int
    lr: float
    steps: np.ndarray  # GD steps until the hinge loss first hit 0; -1 if not within max_steps
    final_loss: np.ndarray  # mean hinge loss when training stopped
    separable: np.ndarray | None  # LP verdict on the same data (when requested)

    @property
    def reached(self) -> np.ndarray:
        """Boolean mask of the trials that reached zero hinge loss within the budget."""
        return self.steps >= 0

    @property
    def fraction(self) -> float:
        """Fraction of trials reaching zero hinge loss within ``max_steps``."""
        return float(self.reached.mean())

    @property
    def stderr(self) -> float:
        """Binomial standard error ``sqrt(f (1 - f) / n)`` of :attr:`fraction`."""
        f = self.fraction
        return math.sqrt(f * (1 - f) / len(self.steps))

    @property
    def median_steps(self) -> float:
        """Median of the steps needed over the trials that reached zero (``nan`` if none)."""
        ok = self.steps[self.reached]
        return float(np.median(ok)) if ok.size else math.nan


def perceptron_hinge_training(
    P: int,
    N: int,
    n_trials: int,
    *,
    max_steps: int = 1000,
    lr: float = 1.0,
    seed: int = 0,
    check_separable: bool = False,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> HingeTraining:
    """Full-batch (sub)gradient descent on the mean hinge loss of ``f(x) = w . x`` (no bias).

    For every trial (the datasets of :func:`trial_patterns`), start at ``w = 0`` and iterate

        w <- w + (lr / P) sum_{mu: y_mu w.x_mu < 1} y_mu x_mu,

    the gradient step of ``L(w) = (1/P) sum_mu max(0, 1 - y_mu w . x_mu)`` (subgradient 0 at the
    kink). A trial stops as soon as every margin is ``>= 1`` (zero hinge loss, then ``w`` is a
    fixed point). The trials run as one batch on ``device``; finished trials are dropped from the
    batch. Reaching zero implies separability (the run's ``w`` separates), and for separable data
    the number of steps is at most ``P (2/lr + R^2) / gamma^2`` (:func:`derive_hinge_versus_zero_one`).
    With ``check_separable`` the LP verdict on the same data is returned too.
    """
    P, N = _as_count("P", P), _as_count("N", N)
    n_trials = _as_count("n_trials", n_trials)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int | np.integer) or max_steps < 0:
        raise ValueError(f"max_steps must be an integer >= 0, got {max_steps!r}")
    max_steps = int(max_steps)
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    dev = _resolve_device(device)
    data = [trial_patterns(P, N, t, seed=seed) for t in range(n_trials)]
    separable = None
    if check_separable:
        separable = np.array([is_linearly_separable(X.numpy(), y.numpy()) for X, y in data])
    X = torch.stack([d[0] for d in data]).to(dtype=dtype, device=dev)  # (T, P, N)
    Y = torch.stack([d[1] for d in data]).to(dtype=dtype, device=dev)  # (T, P)
    YX = Y[:, :, None] * X  # rows y_mu x_mu
    del X, Y, data
    w = torch.zeros(n_trials, N, dtype=dtype, device=dev)
    alive = torch.arange(n_trials, device=dev)
    steps = np.full(n_trials, -1, dtype=np.int64)
    final_loss = np.full(n_trials, math.nan)
    for step in range(max_steps + 1):
        # elementwise products + sums rather than bmm/einsum: for these small batched
        # matrix-vector products they avoid intra-op thread start-up, which dominates on a busy CPU
        margins = (YX * w[:, None, :]).sum(dim=2)
        active = margins < 1
        done = ~active.any(dim=1)
        if step == max_steps or bool(done.any()):
            loss = torch.clamp(1 - margins, min=0).mean(dim=1)
            idx = alive.cpu().numpy()
            finished = done.cpu().numpy()
            steps[idx[finished]] = step
            final_loss[idx] = loss.cpu().numpy()
            if step == max_steps or bool(done.all()):
                break
            keep = ~done
            # compact the batch (cheap relative to the remaining steps)
            YX, w, alive, active = YX[keep], w[keep], alive[keep], active[keep]
        w = w + (lr / P) * (active.to(dtype)[:, :, None] * YX).sum(dim=1)
    return HingeTraining(
        P=P,
        N=N,
        max_steps=max_steps,
        lr=float(lr),
        steps=steps,
        final_loss=final_loss,
        separable=separable,
    )


# ---------------------------------------------------------------------------------------------
# Phase-diagram analysis: transition points and the transition line
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# The reservoir measure: gate entropy at initialisation
# ---------------------------------------------------------------------------------------------


def gate_entropy_at_init(
    widths,
    X,
    n_members: int,
    *,
    sigma2: float = 2.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[float, float]:
    """Mean and standard error over ``n_members`` He-initialised networks of
    :func:`gate_entropy_bits` on ``X`` (members as in ``asbbook.ensemble``)."""
    from asbbook import ensemble

    n_members = _as_count("n_members", n_members)
    members = ensemble.member_specs(tuple(widths), n_members, sigma2)
    weights = ensemble.stacked_weights(members, seed, torch.float64, _resolve_device(device))
    s = gate_entropy_bits(weights, X).cpu().numpy()
    se = float(s.std(ddof=1) / math.sqrt(n_members)) if n_members > 1 else math.inf
    return float(s.mean()), se


def derive_gate_entropy_first_layer() -> sp.Expr:
    """Expected gate entropy of a first-layer unit on ``P`` symmetric inputs, to leading order.

    With i.i.d. inputs symmetric about 0 (e.g. Gaussian) and any fixed first-layer weights,
    each gate is open with probability 1/2 independently over the examples, so ``rho = K/P``
    with ``K ~ Bin(P, 1/2)``. (This averages over the inputs: on one fixed dataset the gates
    of different examples are correlated through the angles between them, and the mean over
    weights alone differs from this at order ``1/P``.) Expanding ``H_2(1/2 + e) = 1 - 2 e^2 / ln 2 + O(e^4)`` and using
    ``E e^2 = Var(K/P) = 1/(4P)`` (``E e^4 = O(P^{-2})``) gives
    ``E H_2(rho) = 1 - 1 / (2 P ln 2) + O(P^{-2})`` bits per unit. Returns that leading form.
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
    return leading


# ---------------------------------------------------------------------------------------------
# Deep ReLU nets on random (or true) labels: one sweep cell and its aggregation
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# The chapter's sweeps (shared by the notebook and `asbbook sweep 05`)
# ---------------------------------------------------------------------------------------------


def separability_cell(point: dict) -> dict:
    """One ``(P, N)`` point of the perceptron experiment, a top-level function for
    ``asbbook.sweep``: the exact LP verdict (:func:`is_linearly_separable`) on each of the
    ``n_trials`` datasets ``trial_patterns(P, N, t, seed=seed)``, ``t = 0 .. n_trials - 1``.

    ``point`` keys: ``P``, ``N``, ``n_trials``, ``seed``. Returns ``{"separable": [bool, ...]}``;
    the mean is the Monte-Carlo estimate of Cover's fraction ``C(P, N) / 2^P``.
    """
    P, N = _as_count("P", point["P"]), _as_count("N", point["N"])
    n_trials, seed = _as_count("n_trials", point["n_trials"]), operator.index(point["seed"])
    verdicts = []
    for t in range(n_trials):
        X, y = trial_patterns(P, N, t, seed=seed)
        verdicts.append(is_linearly_separable(X.numpy(), y.numpy()))
    return {"separable": verdicts}


def hinge_training_cell(point: dict) -> dict:
    """One ``(P, N)`` point of the hinge-training experiment, for ``asbbook.sweep``:
    :func:`perceptron_hinge_training` with ``check_separable=True`` on the CPU.

    ``point`` keys: ``P``, ``N``, ``n_trials``, ``max_steps``, ``lr``, ``seed`` and optionally
    ``torch_threads`` (as in :func:`random_label_cell`). Returns per trial ``steps`` (``-1``: not
    within the budget), ``final_loss`` and ``separable`` (the LP verdict on the same data).
    """
    with validation.torch_threads(point.get("torch_threads")):
        run = perceptron_hinge_training(
            point["P"],
            point["N"],
            point["n_trials"],
            max_steps=point["max_steps"],
            lr=float(point["lr"]),
            seed=operator.index(point["seed"]),
            check_separable=True,
            device="cpu",
        )
    return {
        "steps": run.steps.tolist(),
        "final_loss": run.final_loss.tolist(),
        "separable": run.separable.tolist(),
    }


def load_grid(alpha_step: float, alpha_max: float) -> list[float]:
    """The loads ``alpha_k = k alpha_step``, ``k = 1 .. floor(alpha_max / alpha_step)``
    (a relative slack of ``1e-9`` lets ``alpha_max = 4.0, alpha_step = 0.25`` include 4)."""
    if not (alpha_step > 0 and alpha_max >= alpha_step and math.isfinite(alpha_max)):
        raise ValueError(f"need 0 < alpha_step <= alpha_max, got {alpha_step}, {alpha_max}")
    k_max = int(math.floor(alpha_max / alpha_step * (1 + 1e-9)))
    return [round(k * alpha_step, 12) for k in range(1, k_max + 1)]


def patterns_for_load(alpha: float, N: int) -> int:
    """``P = max(1, floor(alpha N + 1/2))``: the number of patterns at load ``alpha`` in ``R^N``
    (rounded half up; the plotted load is then the exact ``P / N``)."""
    return max(1, int(math.floor(alpha * _as_count("N", N) + 0.5)))


SWEEP_PARAMETERS = (
    "perceptron_dims",
    "alpha_step",
    "alpha_max",
    "n_trials",
    "hinge_dim",
    "hinge_trials",
    "hinge_steps",
    "hinge_lr",
    "n_inputs",
    "depths",
    "P_values",
    "P_holdout",
    "ladder_min",
    "ladder_max",
    "ladder_rungs",
    "n_datasets",
    "n_init",
    "steps",
    "lr",
    "digits_P",
    "seed",
)


def sweep_parameters(parameters) -> dict:
    """Validate and normalise the Chapter-5 parameters that define its sweeps.

    ``parameters`` is the chapter's parameter dict (extra keys such as ``executor`` or ``n_se``
    are ignored). Returns the ``SWEEP_PARAMETERS`` as plain Python values (floats as
    ``float``, lists as lists), so that equal settings give equal sweep points and cache keys
    however they were spelled (``1`` or ``1.0``). A missing or bad value raises
    ``asbbook.params.ParameterError`` naming the parameter.
    """
    from asbbook import params

    missing = [name for name in SWEEP_PARAMETERS if name not in parameters]
    if missing:
        raise params.ParameterError(f"missing chapter parameter(s): {', '.join(missing)}")
    v = dict(parameters)
    out = {
        "perceptron_dims": params.int_list("perceptron_dims", v["perceptron_dims"], minimum=2),
        "alpha_step": params.positive_float("alpha_step", v["alpha_step"], maximum=4.0),
        "alpha_max": params.positive_float("alpha_max", v["alpha_max"], maximum=20.0),
        "n_trials": params.positive_int("n_trials", v["n_trials"], minimum=10),
        "hinge_dim": params.positive_int("hinge_dim", v["hinge_dim"], minimum=2, maximum=1000),
        "hinge_trials": params.positive_int("hinge_trials", v["hinge_trials"], minimum=2),
        "hinge_steps": params.positive_int("hinge_steps", v["hinge_steps"], minimum=1),
        "hinge_lr": params.positive_float("hinge_lr", v["hinge_lr"], maximum=100.0),
        "n_inputs": params.positive_int("n_inputs", v["n_inputs"], minimum=1, maximum=1000),
        "depths": params.int_list("depths", v["depths"], minimum=2, min_length=2),
        "P_values": params.int_list("P_values", v["P_values"], minimum=4, min_length=2),
        "P_holdout": params.positive_int("P_holdout", v["P_holdout"], minimum=4),
        "ladder_min": params.positive_float("ladder_min", v["ladder_min"]),
        "ladder_max": params.positive_float("ladder_max", v["ladder_max"], maximum=100.0),
        "ladder_rungs": params.positive_int("ladder_rungs", v["ladder_rungs"], minimum=3),
        "n_datasets": params.positive_int("n_datasets", v["n_datasets"], minimum=1),
        "n_init": params.positive_int("n_init", v["n_init"], minimum=1),
        "steps": params.positive_int("steps", v["steps"], minimum=1),
        "lr": params.positive_float("lr", v["lr"], maximum=10.0),
        "digits_P": params.positive_int("digits_P", v["digits_P"], minimum=8, maximum=1797),
        "seed": params.seed("seed", v["seed"]),
    }
    if max(out["perceptron_dims"]) > 1000:
        raise params.ParameterError(
            f"parameter 'perceptron_dims' must hold dimensions <= 1000, got {out['perceptron_dims']}"
        )
    if out["alpha_max"] < out["alpha_step"]:
        raise params.ParameterError(
            f"parameter 'alpha_max' must be at least alpha_step={out['alpha_step']}, "
            f"got {out['alpha_max']}"
        )
    if len(load_grid(out["alpha_step"], out["alpha_max"])) > 400:
        raise params.ParameterError(
            "parameter 'alpha_step' must give at most 400 loads up to alpha_max, "
            f"got {out['alpha_step']}"
        )
    if max(out["depths"]) > 8 or len(set(out["depths"])) != len(out["depths"]):
        raise params.ParameterError(
            f"parameter 'depths' must list distinct depths between 2 and 8, got {out['depths']}"
        )
    if len(set(out["P_values"])) != len(out["P_values"]) or max(out["P_values"]) > 5000:
        raise params.ParameterError(
            f"parameter 'P_values' must list distinct sizes between 4 and 5000, "
            f"got {out['P_values']}"
        )
    if out["P_holdout"] in out["P_values"] or out["P_holdout"] > 5000:
        raise params.ParameterError(
            f"parameter 'P_holdout' must be at most 5000 and not one of P_values "
            f"{out['P_values']} (it is held out of the fit), got {out['P_holdout']}"
        )
    if out["ladder_max"] <= out["ladder_min"]:
        raise params.ParameterError(
            f"parameter 'ladder_max' must exceed ladder_min={out['ladder_min']}, "
            f"got {out['ladder_max']}"
        )
    if out["n_datasets"] * out["n_init"] < 2:
        raise params.ParameterError(
            "parameter 'n_init' must give at least two runs per width with n_datasets="
            f"{out['n_datasets']}, got {out['n_init']}"
        )
    return out


def _ladder_points(dataset: str, P: int, n_inputs: int, depth: int, p: dict) -> list[dict]:
    """The chapter's cells of one ``(dataset, P, depth)``: the ladder ``ladder_min P ..
    ladder_max P`` trained on ``n_datasets`` datasets (:func:`asbbook.phase.cell_points`)."""
    ladder = width_ladder(
        n_inputs, depth, p["ladder_min"] * P, p["ladder_max"] * P, p["ladder_rungs"]
    )
    return cell_points(
        dataset=dataset,
        P=P,
        n_inputs=n_inputs,
        ladder=ladder,
        n_data=p["n_datasets"],
        n_init=p["n_init"],
        steps=p["steps"],
        lr=p["lr"],
        seed=p["seed"],
    )


def chapter_sweeps(parameters) -> list:
    """The four sweeps of Chapter 5, built from the chapter's parameters
    (:func:`sweep_parameters`); the notebook and ``asbbook sweep 05`` both call this, so a sweep
    run from the command line fills exactly the cache the notebook reads.

    1. ``ch05-perceptron-lp``: :func:`separability_cell` for every ``N`` in ``perceptron_dims`` and
       load ``alpha`` of :func:`load_grid` (``P =`` :func:`patterns_for_load`).
    2. ``ch05-perceptron-hinge``: :func:`hinge_training_cell` at ``N = hinge_dim`` over the same loads.
    3. ``ch05-random-labels``: :func:`random_label_cell` on Gaussian inputs (``n_inputs``) with random
       labels, for every depth and ``P`` in ``P_values + [P_holdout]``, ``n_datasets`` datasets each,
       on the width ladder ``ladder_min P .. ladder_max P`` (:func:`width_ladder`).
    4. ``ch05-digits``: :func:`random_label_cell` on ``digits_P`` images of ``load_digits``
       (0-4 against 5-9) with their true and with shuffled labels, depth 2, the same ladder and
       the same data seeds for both (paired: same images, same initial networks).

    Points are listed longest first (large ``P`` first) so that the workers finish together.
    Every point pins ``torch_threads = 1``, so all executors compute identical numbers. The data
    fingerprint hashes the first dataset of every perceptron point and every deep-net dataset,
    so a change of torch's random streams or of scikit-learn's digits invalidates the cache.
    """
    from asbbook import data
    from asbbook.sweep import SweepSpec

    p = sweep_parameters(parameters)
    alphas = load_grid(p["alpha_step"], p["alpha_max"])
    seed = p["seed"]

    def perceptron_points(dims, extra):
        pts = [
            {"P": patterns_for_load(a, N), "N": N, "seed": seed, **extra}
            for N in dims
            for a in alphas
        ]
        unique = {(q["P"], q["N"]): q for q in pts}  # small N: two loads may round to one P
        return sorted(unique.values(), key=lambda q: (-q["P"] * q["N"], q["N"]))

    def fingerprint(datasets):
        return data.fingerprint(*[t for pair in datasets for t in pair])

    lp = perceptron_points(p["perceptron_dims"], {"n_trials": p["n_trials"]})
    hinge = perceptron_points(
        [p["hinge_dim"]],
        {
            "n_trials": p["hinge_trials"],
            "max_steps": p["hinge_steps"],
            "lr": p["hinge_lr"],
            "torch_threads": 1,
        },
    )
    sizes = sorted(set(p["P_values"]) | {p["P_holdout"]}, reverse=True)
    deep = [
        point
        for P in sizes
        for depth in p["depths"]
        for point in _ladder_points("gaussian", P, p["n_inputs"], depth, p)
    ]
    digits = [
        point
        for name in ("digits_shuffled", "digits")
        for point in _ladder_points(name, p["digits_P"], DIGITS_INPUTS, 2, p)
    ]
    return [
        SweepSpec(
            "ch05-perceptron-lp",
            separability_cell,
            lp,
            fingerprint(trial_patterns(q["P"], q["N"], 0, seed=seed) for q in lp),
        ),
        SweepSpec(
            "ch05-perceptron-hinge",
            hinge_training_cell,
            hinge,
            fingerprint(trial_patterns(q["P"], q["N"], 0, seed=seed) for q in hinge),
        ),
        SweepSpec("ch05-random-labels", random_label_cell, deep, fingerprint(map(cell_data, deep))),
        SweepSpec("ch05-digits", random_label_cell, digits, fingerprint(map(cell_data, digits))),
    ]
