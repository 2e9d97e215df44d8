"""Predicted-versus-measured tables, asserted at a stated false-failure probability.

Every chapter ends its comparisons with :func:`compare`. Each *statistical* row is a hypothesis
test of "the theory is right" on the right null distribution, and gives a p-value:

* :class:`Comparison`: an estimate with a standard error, asymptotically normal (a mean over
  many independent samples): two-sided z-test.
* :class:`BinomialComparison`: a count of successes in independent trials against a predicted
  probability: the exact two-sided (equal-tailed) binomial test, for small counts where the
  normal approximation fails.
* :class:`MixedBinomialComparison`: the same when the predicted probability has an error of its
  own (a fitted probability): the exact test on the binomial mixed over that error.
* :class:`RankSumComparison`: a sample against draws from the theory's law of the same
  quantity: the Wilcoxon-Mann-Whitney rank-sum test, for a heavy-tailed quantity whose sample
  mean has no normal null at the sample size used.
* :class:`KolmogorovSmirnovComparison`: the same for the whole law, when the theory predicts a
  distribution (and its higher cumulants, whose sample estimates have no normal null either).
* :class:`JointComparison`: several estimates that share samples, with their covariance: one
  chi-square test (or Hotelling's T^2 when the covariance is itself estimated from ``n``
  samples), instead of one row per component.

A table of ``m`` statistical rows at family level ``alpha`` fails when any row's p-value falls
below ``alpha / m`` (Bonferroni, which is the first step of Holm's procedure and so decides
pass/fail identically). By the union bound the probability that a correct theory fails the
table is at most ``alpha``, whatever the correlation between the rows. A chapter's
``false_failure_bound`` is the sum of the ``alpha`` of its tables; the book's is the sum over
chapters, kept at most :data:`BOOK_FALSE_FAILURE_BUDGET`.

*Exact identities* (sympy results evaluated numerically, conservation laws that hold to
rounding) are :class:`Identity` rows: shown in a separate table with a rounding tolerance,
asserted, and never counted as statistical evidence.

Each statistical row also states its power: the smallest deviation from the prediction that it
would detect with probability :data:`POWER` at its level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

BOOK_FALSE_FAILURE_BUDGET = 0.01  # the whole book, at any parameters the reader chooses
CHAPTER_ALPHA = 0.0015  # each chapter's family-wise level: 6 chapters use 0.009 of the budget
POWER = 0.8  # the detection probability at which a row's "detects" column is stated


class AgreementError(AssertionError):
    """A measured value disagrees with its prediction beyond the stated tolerance."""


def _check_probability(name: str, value: float, *, open_left: bool = True) -> float:
    value = float(value)
    if not (0 < value < 1 if open_left else 0 <= value <= 1):
        raise ValueError(f"{name} must lie in (0, 1), got {value}")
    return value


# --------------------------------------------------------------------------------------------
# Statistical rows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """An asymptotically normal estimate: ``z = (measured - predicted) / stderr``.

    ``abs_tol`` widens the acceptance region by a stated systematic allowance (for example a
    known discretisation error); it is 0 for a purely statistical row.
    """

    quantity: str
    predicted: float
    measured: float
    stderr: float
    abs_tol: float = 0.0

    def __post_init__(self):
        for name in ("predicted", "measured", "stderr", "abs_tol"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"{self.quantity}: {name} must be finite, got {value}")
            object.__setattr__(self, name, value)
        if self.stderr <= 0:
            raise ValueError(f"{self.quantity}: stderr must be positive, got {self.stderr}")
        if self.abs_tol < 0:
            raise ValueError(f"{self.quantity}: abs_tol must be >= 0, got {self.abs_tol}")

    @property
    def deviation_in_se(self) -> float:
        return (self.measured - self.predicted) / self.stderr

    def p_value(self) -> float:
        excess = max(abs(self.measured - self.predicted) - self.abs_tol, 0.0)
        return float(2 * stats.norm.sf(excess / self.stderr))

    def detectable(self, alpha: float) -> float:
        """The deviation detected with probability :data:`POWER` at level ``alpha``."""
        z = stats.norm.isf(alpha / 2) + stats.norm.ppf(POWER)
        return float(z * self.stderr + self.abs_tol)

    def cells(self) -> tuple[str, str, str]:
        return _fmt(self.predicted), _fmt(self.measured), f"± {_fmt(self.stderr)}"


@dataclass(frozen=True)
class BinomialComparison:
    """``successes`` in ``trials`` independent trials against the predicted ``probability``:
    the exact equal-tailed test, ``p = min(1, 2 min(P(K <= k), P(K >= k)))``."""

    quantity: str
    probability: float
    successes: int
    trials: int

    def __post_init__(self):
        _check_probability(f"{self.quantity}: probability", self.probability)
        k, n = int(self.successes), int(self.trials)
        if n < 1 or not 0 <= k <= n:
            raise ValueError(f"{self.quantity}: need 0 <= successes <= trials, got {k}, {n}")
        object.__setattr__(self, "successes", k)
        object.__setattr__(self, "trials", n)

    @property
    def predicted(self) -> float:
        return self.probability

    @property
    def measured(self) -> float:
        return self.successes / self.trials

    def p_value(self) -> float:
        k, n, p = self.successes, self.trials, self.probability
        tails = min(stats.binom.cdf(k, n, p), stats.binom.sf(k - 1, n, p))
        return float(min(1.0, 2 * tails))

    def _rejection_bounds(self, alpha: float) -> tuple[int, int]:
        """``(k_lo, k_hi)``: the test rejects when ``k <= k_lo`` or ``k >= k_hi``."""
        n, p = self.trials, self.probability
        k_lo = int(stats.binom.ppf(alpha / 2, n, p))
        while k_lo >= 0 and stats.binom.cdf(k_lo, n, p) > alpha / 2:
            k_lo -= 1
        k_hi = int(stats.binom.isf(alpha / 2, n, p)) + 1
        while k_hi <= n and stats.binom.sf(k_hi - 1, n, p) > alpha / 2:
            k_hi += 1
        return k_lo, k_hi

    def detectable(self, alpha: float) -> float:
        """The smallest ``|p_true - probability|`` detected with probability :data:`POWER`."""
        n, p0 = self.trials, self.probability
        k_lo, k_hi = self._rejection_bounds(alpha)

        def power(p1: float) -> float:
            low = stats.binom.cdf(k_lo, n, p1) if k_lo >= 0 else 0.0
            high = stats.binom.sf(k_hi - 1, n, p1) if k_hi <= n else 0.0
            return low + high - POWER

        gaps = []
        if power(1.0) > 0 and power(p0) < 0:
            gaps.append(optimize.brentq(power, p0, 1.0) - p0)
        if power(0.0) > 0 and power(p0) < 0:
            gaps.append(p0 - optimize.brentq(power, 0.0, p0))
        return float(min(gaps)) if gaps else math.inf

    def cells(self) -> tuple[str, str, str]:
        lo, hi = stats.binomtest(self.successes, self.trials).proportion_ci(0.95, "exact")
        return (
            _fmt(self.probability),
            f"{self.successes}/{self.trials} = {_fmt(self.measured)}",
            f"95% CI [{_fmt(lo)}, {_fmt(hi)}]",
        )


@dataclass(frozen=True)
class MixedBinomialComparison:
    """``successes`` in ``trials`` against a binomial whose probability is itself uncertain, a
    discrete law ``probabilities`` with ``weights`` (e.g. a fitted probability's error by
    quadrature): the exact equal-tailed test on the mixture,
    ``p = min(1, 2 min(P(K <= k), P(K >= k)))`` with ``P = sum_i w_i Bin(n, p_i)``."""

    quantity: str
    probabilities: np.ndarray
    weights: np.ndarray
    successes: int
    trials: int

    def __post_init__(self):
        p = np.atleast_1d(np.asarray(self.probabilities, dtype=np.float64))
        w = np.atleast_1d(np.asarray(self.weights, dtype=np.float64))
        if p.shape != w.shape or p.ndim != 1 or not ((p >= 0) & (p <= 1)).all():
            raise ValueError(f"{self.quantity}: probabilities must lie in [0, 1], one per weight")
        if not ((w >= 0).all() and math.isclose(w.sum(), 1.0, rel_tol=1e-9)):
            raise ValueError(f"{self.quantity}: weights must be non-negative and sum to 1")
        k, n = int(self.successes), int(self.trials)
        if n < 1 or not 0 <= k <= n:
            raise ValueError(f"{self.quantity}: need 0 <= successes <= trials, got {k}, {n}")
        object.__setattr__(self, "probabilities", p)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "successes", k)
        object.__setattr__(self, "trials", n)

    @property
    def predicted(self) -> float:
        return float(self.weights @ self.probabilities)

    @property
    def measured(self) -> float:
        return self.successes / self.trials

    def p_value(self) -> float:
        k, n, p, w = self.successes, self.trials, self.probabilities, self.weights
        low = float(w @ stats.binom.cdf(k, n, p))
        high = float(w @ stats.binom.sf(k - 1, n, p))
        return float(min(1.0, 2 * min(low, high)))

    def detectable(self, alpha: float) -> float:
        """As :class:`BinomialComparison` at the mean probability: a lower bound, since the
        probability's own spread only widens the acceptance region."""
        mean = min(max(self.predicted, 1e-9), 1 - 1e-9)
        return BinomialComparison(self.quantity, mean, self.successes, self.trials).detectable(
            alpha
        )

    def cells(self) -> tuple[str, str, str]:
        spread = float(np.sqrt(self.weights @ (self.probabilities - self.predicted) ** 2))
        return (
            f"{_fmt(self.predicted)} ± {_fmt(spread)}",
            f"{self.successes}/{self.trials} = {_fmt(self.measured)}",
            "exact, mixed binomial",
        )


def _two_samples(quantity: str, measured, theory) -> tuple[np.ndarray, np.ndarray]:
    """The measured sample and the theory's draws as 1-d float arrays of finite values."""
    x = np.asarray(measured, dtype=np.float64).ravel()
    y = np.asarray(theory, dtype=np.float64).ravel()
    for name, sample in (("measured", x), ("theory", y)):
        if sample.size < 2 or not np.isfinite(sample).all():
            raise ValueError(f"{quantity}: {name} needs at least 2 finite values")
    return x, y


def _check_sizes(quantity: str, n_measured: int, n_theory: int) -> None:
    if min(n_measured, n_theory) < 2:
        raise ValueError(f"{quantity}: both samples need at least 2 values")


@dataclass(frozen=True)
class RankSumComparison:
    """A sample of ``n_measured`` independent values against ``n_theory`` independent draws
    from the theory's law of the same quantity: the two-sided Wilcoxon-Mann-Whitney rank-sum
    test (Mann & Whitney 1947), through :meth:`from_samples`.

    The row's number is the probability of superiority ``A = P(X > Y) + P(X = Y) / 2`` of a
    measured ``X`` over a theory draw ``Y``, estimated by ``U / (n m)``; the theory predicts
    ``1/2``. Under the theory the pooled values are exchangeable, so the null is the rank-sum's
    permutation law, whatever the law of the quantity: no moment of it needs to exist. The
    p-value is the normal approximation with tie and continuity corrections; with ``m >> n``
    the statistic is the mean of ``n`` bounded probability-integral transforms, whose
    tails are lighter than normal (excess kurtosis ``-6/(5n)``), so the approximation is
    conservative. Under the null ``Var U = n m (n + m + 1) / 12`` without ties.
    """

    quantity: str
    superiority: float
    n_measured: int
    n_theory: int
    p: float

    @classmethod
    def from_samples(cls, quantity: str, measured, theory) -> RankSumComparison:
        """The row for the ``measured`` sample against the ``theory`` draws (1-d, finite)."""
        x, y = _two_samples(quantity, measured, theory)
        test = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
        return cls(
            quantity, float(test.statistic) / (x.size * y.size), x.size, y.size, float(test.pvalue)
        )

    def __post_init__(self):
        if not (0.0 <= self.superiority <= 1.0 and 0.0 <= self.p <= 1.0):
            raise ValueError(f"{self.quantity}: superiority and p must lie in [0, 1]")
        _check_sizes(self.quantity, self.n_measured, self.n_theory)

    predicted = 0.5

    @property
    def measured(self) -> float:
        return self.superiority

    @property
    def stderr(self) -> float:
        """The null standard deviation of ``U / (n m)`` (no ties)."""
        n, m = self.n_measured, self.n_theory
        return math.sqrt((n + m + 1) / (12.0 * n * m))

    def p_value(self) -> float:
        return self.p

    def detectable(self, alpha: float) -> float:
        """The shift ``|A - 1/2|`` detected with probability :data:`POWER` (normal
        approximation at the null's standard deviation)."""
        z = stats.norm.isf(alpha / 2) + stats.norm.ppf(POWER)
        return float(z * self.stderr)

    def cells(self) -> tuple[str, str, str]:
        return (
            "0.5",
            _fmt(self.superiority),
            f"± {_fmt(self.stderr)} (rank-sum, {self.n_measured} vs {self.n_theory})",
        )


@dataclass(frozen=True)
class KolmogorovSmirnovComparison:
    """A sample of ``n_measured`` independent values against ``n_theory`` independent draws
    from the theory's law: the two-sample Kolmogorov-Smirnov test (two-sided, the asymptotic
    Kolmogorov law of ``sqrt(n m / (n + m)) D``), through :meth:`from_samples`.

    The row's number is ``D``, the largest distance between the two empirical distribution
    functions; the theory predicts the same law (``D`` near 0). The null is distribution-free
    for a continuous law, so the row tests a whole predicted distribution, tails included,
    where its moments' sample estimates are too heavy-tailed for a normal null."""

    quantity: str
    distance: float
    n_measured: int
    n_theory: int
    p: float

    @classmethod
    def from_samples(cls, quantity: str, measured, theory) -> KolmogorovSmirnovComparison:
        """The row for the ``measured`` sample against the ``theory`` draws (1-d, finite)."""
        x, y = _two_samples(quantity, measured, theory)
        test = stats.ks_2samp(x, y, alternative="two-sided", method="asymp")
        return cls(quantity, float(test.statistic), x.size, y.size, float(test.pvalue))

    def __post_init__(self):
        if not (0.0 <= self.distance <= 1.0 and 0.0 <= self.p <= 1.0):
            raise ValueError(f"{self.quantity}: distance and p must lie in [0, 1]")
        _check_sizes(self.quantity, self.n_measured, self.n_theory)

    predicted = 0.0

    @property
    def measured(self) -> float:
        return self.distance

    @property
    def effective_size(self) -> float:
        return self.n_measured * self.n_theory / (self.n_measured + self.n_theory)

    def p_value(self) -> float:
        return self.p

    def detectable(self, alpha: float) -> float:
        """A distance between the true and the predicted distribution functions detected with
        probability at least :data:`POWER`: the critical ``D`` plus ``z_POWER`` times the
        largest standard deviation of an empirical distribution function, ``1 / (2 sqrt n)``."""
        critical = stats.kstwobign.isf(alpha) / math.sqrt(self.effective_size)
        return float(critical + stats.norm.ppf(POWER) / (2 * math.sqrt(self.effective_size)))

    def cells(self) -> tuple[str, str, str]:
        return (
            "same law",
            f"D = {_fmt(self.distance)}",
            f"KS, {self.n_measured} vs {self.n_theory}",
        )


@dataclass(frozen=True)
class JointComparison:
    """Several estimates sharing samples, tested jointly.

    ``d = measured - predicted`` with covariance ``C``: ``chi2 = d^T C^{-1} d`` on
    ``k = len(d)`` degrees of freedom. With ``n_samples`` (``C`` estimated from that many
    independent samples) Hotelling's ``T^2 (n - k) / (k (n - 1)) ~ F(k, n - k)`` is used instead.
    """

    quantity: str
    predicted: np.ndarray
    measured: np.ndarray
    covariance: np.ndarray
    n_samples: int | None = None

    def __post_init__(self):
        p = np.atleast_1d(np.asarray(self.predicted, dtype=np.float64))
        m = np.atleast_1d(np.asarray(self.measured, dtype=np.float64))
        c = np.atleast_2d(np.asarray(self.covariance, dtype=np.float64))
        if p.shape != m.shape or p.ndim != 1 or c.shape != (p.size, p.size):
            raise ValueError(f"{self.quantity}: shapes {p.shape}, {m.shape}, {c.shape} differ")
        if not (np.isfinite(p).all() and np.isfinite(m).all() and np.isfinite(c).all()):
            raise ValueError(f"{self.quantity}: predicted, measured and covariance must be finite")
        if np.linalg.eigvalsh((c + c.T) / 2).min() <= 0:
            raise ValueError(f"{self.quantity}: the covariance must be positive definite")
        if self.n_samples is not None and self.n_samples <= p.size:
            raise ValueError(f"{self.quantity}: Hotelling's test needs n_samples > {p.size}")
        object.__setattr__(self, "predicted", p)
        object.__setattr__(self, "measured", m)
        object.__setattr__(self, "covariance", (c + c.T) / 2)

    @property
    def statistic(self) -> float:
        d = self.measured - self.predicted
        return float(d @ np.linalg.solve(self.covariance, d))

    def p_value(self) -> float:
        k = self.predicted.size
        if self.n_samples is None:
            return float(stats.chi2.sf(self.statistic, k))
        n = self.n_samples
        return float(stats.f.sf(self.statistic * (n - k) / (k * (n - 1)), k, n - k))

    def detectable(self, alpha: float) -> float:
        """The smallest shift of any single component detected with probability
        :data:`POWER` (chi-square noncentrality ``lambda = delta^2 (C^{-1})_{ii}``)."""
        k = self.predicted.size
        critical = stats.chi2.isf(alpha, k)

        def power(lam: float) -> float:
            return stats.ncx2.sf(critical, k, lam) - POWER

        lam = optimize.brentq(power, 1e-9, 1e4)
        precision = np.diag(np.linalg.inv(self.covariance))
        return float(np.sqrt(lam / precision).max())

    def cells(self) -> tuple[str, str, str]:
        k = self.predicted.size
        test = "χ²" if self.n_samples is None else "T²"
        return f"{k} values", f"{test} = {_fmt(self.statistic)}", f"{k} dof"


# --------------------------------------------------------------------------------------------
# Exact identities
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """An exact identity evaluated in floating point: ``|computed - expected| <= atol +
    rtol |expected|``. Not statistical evidence: it can fail only through a bug or rounding."""

    quantity: str
    expected: float
    computed: float
    rtol: float = 1e-9
    atol: float = 0.0

    @property
    def ok(self) -> bool:
        return abs(self.computed - self.expected) <= self.atol + self.rtol * abs(self.expected)


# --------------------------------------------------------------------------------------------
# Tables and their verdict
# --------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.4g}"


@dataclass(frozen=True)
class TableResult:
    """The outcome of :func:`compare`: the rows, their p-values and the level each was held to."""

    rows: tuple
    identities: tuple
    alpha: float
    p_values: tuple[float, ...]
    row_alpha: float
    failures: tuple[str, ...] = field(default=())

    @property
    def false_failure_bound(self) -> float:
        """At most ``alpha``, the probability that a correct theory fails this table (0 for a
        table of identities only)."""
        return self.alpha if self.rows else 0.0

    @property
    def min_p_value(self) -> float:
        return min(self.p_values) if self.p_values else 1.0


def evaluate(rows: Sequence, identities: Sequence = (), *, alpha: float = CHAPTER_ALPHA):
    """Test every row at level ``alpha / len(rows)`` and every identity at its tolerance."""
    alpha = _check_probability("alpha", alpha)
    rows, identities = tuple(rows), tuple(identities)
    for row in identities:
        if not isinstance(row, Identity):
            raise TypeError(f"identities must be Identity rows, got {type(row).__name__}")
    for row in rows:
        if isinstance(row, Identity) or not hasattr(row, "p_value"):
            raise TypeError(f"{row!r} is not a statistical row: pass identities separately")
    row_alpha = alpha / len(rows) if rows else alpha
    p_values = tuple(row.p_value() for row in rows)
    failures = [r.quantity for r, p in zip(rows, p_values, strict=True) if p < row_alpha]
    failures += [f"{r.quantity} (identity)" for r in identities if not r.ok]
    return TableResult(rows, identities, alpha, p_values, row_alpha, tuple(failures))


def comparison_markdown(result: TableResult) -> str:
    """The statistical rows as a Markdown table."""
    lines = [
        f"| quantity | predicted | measured | uncertainty | p-value | detects Δ ≥ "
        f"| agrees (p ≥ {result.row_alpha:.2g}) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row, p in zip(result.rows, result.p_values, strict=True):
        predicted, measured, uncertainty = row.cells()
        ok = "yes" if p >= result.row_alpha else "**NO**"
        lines.append(
            f"| {row.quantity} | {predicted} | {measured} | {uncertainty} | {p:.3g} "
            f"| {_fmt(row.detectable(result.row_alpha))} | {ok} |"
        )
    return "\n".join(lines)


def identities_markdown(result: TableResult) -> str:
    """The exact identities as a Markdown table."""
    lines = ["| identity | exact | computed | tolerance | holds |", "|---|---|---|---|---|"]
    for r in result.identities:
        tol = r.atol + r.rtol * abs(r.expected)
        ok = "yes" if r.ok else "**NO**"
        lines.append(f"| {r.quantity} | {r.expected:.10g} | {r.computed:.10g} | {tol:.2g} | {ok} |")
    return "\n".join(lines)


def assert_agreement(result: TableResult) -> None:
    """Raise :class:`AgreementError` naming every row outside its acceptance region."""
    if result.failures:
        raise AgreementError(
            f"{len(result.failures)} check(s) failed: {'; '.join(result.failures)}. A correct "
            f"theory fails this table with probability at most {result.false_failure_bound:.2g}"
            " (see the re-run appendix for what a failure means)."
        )


def compare(rows: Sequence, identities: Sequence = (), *, alpha: float = CHAPTER_ALPHA):
    """Display the statistical table (and the identities table), then assert both.

    Returns the :class:`TableResult`, whose ``false_failure_bound`` the chapter adds up."""
    from IPython.display import Markdown, display

    result = evaluate(rows, identities, alpha=alpha)
    if result.rows:
        display(Markdown(comparison_markdown(result)))
    if result.identities:
        display(Markdown(identities_markdown(result)))
    assert_agreement(result)
    return result


def false_failure_bound(results: Sequence[TableResult]) -> float:
    """The union bound over a chapter's tables: ``sum alpha``."""
    return float(sum(r.false_failure_bound for r in results))


def glue_all(values: dict) -> None:
    """Glue every ``name: value`` for the prose (``{glue:text}`name:.3f```), as plain Python
    numbers (numpy scalars' reprs cannot be formatted by the ``-W`` build), without display."""
    from myst_nb import glue

    for name, value in values.items():
        if isinstance(value, bool | np.bool_):
            value = bool(value)
        elif isinstance(value, int | np.integer):
            value = int(value)
        elif isinstance(value, float | np.floating):
            value = float(value)
        elif hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        glue(name, value, display=False)
