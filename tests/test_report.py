"""The calibrated comparison tables: a correct theory fails at most at the stated rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from asbbook import report
from asbbook.report import BinomialComparison, Comparison, Identity, JointComparison


def test_normal_rows_fail_at_the_stated_rate_under_the_null():
    rng = np.random.default_rng(0)
    alpha, n_rows, n_tables = 0.2, 5, 4000
    failures = 0
    for _ in range(n_tables):
        rows = [Comparison(f"r{i}", 0.0, float(rng.normal(0, 0.3)), 0.3) for i in range(n_rows)]
        failures += bool(report.evaluate(rows, alpha=alpha).failures)
    exact = 1 - (1 - alpha / n_rows) ** n_rows  # independent rows: slightly below alpha
    assert failures / n_tables == pytest.approx(exact, abs=4 * math.sqrt(exact / n_tables))
    assert failures / n_tables <= alpha + 4 * math.sqrt(alpha / n_tables)


def test_exact_binomial_rows_hold_their_level_at_small_counts():
    """Where the normal approximation fails (about 1 expected count), the exact test does not
    exceed its level: the false-failure probability is summed over the whole binomial law."""
    n, p, alpha = 2000, 0.0005, 0.01
    k = np.arange(n + 1)
    pmf = stats.binom.pmf(k, n, p)
    rejected = np.array([BinomialComparison("c", p, int(i), n).p_value() < alpha for i in k])
    assert pmf[rejected].sum() <= alpha
    normal = np.array([Comparison("c", p, i / n, math.sqrt(p * (1 - p) / n)).p_value() for i in k])
    assert pmf[normal < alpha].sum() > alpha  # the z-test is miscalibrated here


def test_binomial_detectable_deviation_has_the_stated_power():
    row, alpha = BinomialComparison("c", 0.3, 30, 100), 0.01
    gap = row.detectable(alpha)
    k_lo, k_hi = row._rejection_bounds(alpha)
    assert stats.binom.cdf(k_lo, 100, 0.3) + stats.binom.sf(k_hi - 1, 100, 0.3) <= alpha
    powers = [
        stats.binom.cdf(k_lo, 100, p1) + stats.binom.sf(k_hi - 1, 100, p1)
        for p1 in (0.3 - gap, 0.3 + gap)
    ]
    assert max(powers) == pytest.approx(report.POWER, abs=1e-6)
    assert 0.1 < gap < 0.25


def test_joint_row_detects_a_correlated_shift_and_accepts_the_truth():
    cov = np.array([[1.0, 0.9], [0.9, 1.0]]) * 0.01
    truth = JointComparison("pair", [0, 0], [0.05, 0.05], cov)
    assert truth.p_value() > 0.3
    shifted = JointComparison("pair", [0, 0], [0.3, -0.3], cov)
    assert shifted.p_value() < 1e-6
    assert 0 < truth.detectable(0.01) < 1


def test_joint_rows_fail_at_the_stated_rate_under_the_null():
    rng = np.random.default_rng(1)
    cov = np.array([[1.0, 0.8, 0.5], [0.8, 1.0, 0.7], [0.5, 0.7, 1.0]])
    draws = rng.multivariate_normal(np.zeros(3), cov, size=3000)
    p = np.array([JointComparison("j", np.zeros(3), d, cov).p_value() for d in draws])
    assert (p < 0.1).mean() == pytest.approx(0.1, abs=4 * math.sqrt(0.09 / 3000))


def test_a_disagreement_fails_with_a_message_naming_the_row():
    rows = [Comparison("fine", 1.0, 1.01, 0.01), Comparison("off", 1.0, 1.5, 0.01)]
    with pytest.raises(report.AgreementError, match="off"):
        report.assert_agreement(report.evaluate(rows, alpha=0.01))


def test_identities_are_kept_apart_and_do_not_count_as_evidence():
    result = report.evaluate([], [Identity("sum rule", 1.0, 1.0 + 1e-13)], alpha=0.01)
    assert result.false_failure_bound == 0.0 and not result.failures
    broken = report.evaluate([], [Identity("sum rule", 1.0, 1.1)], alpha=0.01)
    assert broken.failures == ("sum rule (identity)",)
    with pytest.raises(TypeError, match="identities"):
        report.evaluate([Identity("x", 1, 1)])


def test_chapter_bounds_add_up_within_the_book_budget():
    assert 6 * report.CHAPTER_ALPHA <= report.BOOK_FALSE_FAILURE_BUDGET
    tables = [report.evaluate([Comparison("a", 0, 0, 1)], alpha=report.CHAPTER_ALPHA / 2)] * 2
    assert report.false_failure_bound(tables) == pytest.approx(report.CHAPTER_ALPHA)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Comparison("x", 0.0, float("nan"), 1.0),
        lambda: Comparison("x", 0.0, 1.0, 0.0),
        lambda: BinomialComparison("x", 1.5, 1, 2),
        lambda: BinomialComparison("x", 0.5, 3, 2),
        lambda: JointComparison("x", [0, 0], [0, 0], [[1, 2], [2, 1]]),
    ],
)
def test_bad_rows_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_mixed_binomial_widens_the_binomial_by_the_predictions_error():
    from scipy import stats as sps

    # a point mass reproduces the exact binomial test
    point = report.MixedBinomialComparison("k", [0.3], [1.0], 0, 6)
    assert point.p_value() == pytest.approx(report.BinomialComparison("k", 0.3, 0, 6).p_value())
    # a fitted probability 0.02 +- its error: 3 of 6 is rejected by the plain binomial, not by
    # the mixture over the error (half the mass at 0.3)
    mixed = report.MixedBinomialComparison("k", [0.02, 0.3], [0.5, 0.5], 3, 6)
    assert report.BinomialComparison("k", 0.02, 3, 6).p_value() < 1e-3 < mixed.p_value()
    assert mixed.p_value() == pytest.approx(
        2 * 0.5 * (sps.binom.sf(2, 6, 0.02) + sps.binom.sf(2, 6, 0.3))
    )
    with pytest.raises(ValueError, match="weights"):
        report.MixedBinomialComparison("k", [0.1, 0.2], [0.5, 0.6], 1, 6)


def test_rank_sum_rows_hold_their_level_where_the_mean_has_no_normal_null():
    """Pareto(1.2) draws have no variance: a z-test on their mean is meaningless, and the
    rank-sum row against draws of the same law still rejects at its level."""
    rng = np.random.default_rng(1)
    alpha, n_tables = 0.01, 3000
    theory = rng.pareto(1.2, 20_000)
    rejections = sum(
        report.evaluate(
            [report.RankSumComparison.from_samples("x", rng.pareto(1.2, 40), theory)],
            alpha=alpha,
        ).failures
        != ()
        for _ in range(n_tables)
    )
    # exact binomial acceptance region of the count at the level, with a 1e-4 false alarm
    assert rejections <= stats.binom.isf(1e-4, n_tables, alpha)
    assert rejections >= stats.binom.ppf(1e-4, n_tables, alpha) * 0.5  # not vacuous either


def test_rank_sum_row_detects_a_scale_change_and_states_its_power():
    rng = np.random.default_rng(2)
    theory = np.abs(rng.standard_cauchy(50_000))
    row = report.RankSumComparison.from_samples("x", 1.5 * np.abs(rng.standard_cauchy(400)), theory)
    assert row.p_value() < 1e-3 and row.measured > 0.5
    # P(1.5 |X| > |Y|) = (2/pi) arctan 1.5 for Cauchy: the stated power is met at that shift
    shift = 2 / math.pi * math.atan(1.5) - 0.5
    assert row.detectable(0.01) < shift
    assert row.stderr == pytest.approx(math.sqrt((400 + 50_001) / (12 * 400 * 50_000)))
    # agrees with scipy's exact permutation law where both apply (small samples, no ties)
    x, y = rng.normal(size=6), rng.normal(size=7)
    exact = stats.mannwhitneyu(x, y, method="exact").pvalue
    assert report.RankSumComparison.from_samples("x", x, y).p_value() == pytest.approx(
        exact, abs=0.06
    )
    cells = row.cells()
    assert cells[0] == "0.5" and "400 vs 50000" in cells[2]
    with pytest.raises(ValueError, match="measured"):
        report.RankSumComparison.from_samples("x", [1.0, np.nan], theory)
    with pytest.raises(ValueError, match="theory"):
        report.RankSumComparison.from_samples("x", [1.0, 2.0], [3.0])


def test_kolmogorov_smirnov_rows_hold_their_level_and_detect_a_changed_tail():
    rng = np.random.default_rng(3)
    alpha, n_tables = 0.01, 2000
    theory = rng.standard_t(3, 50_000)
    rejections = sum(
        report.KolmogorovSmirnovComparison.from_samples("x", rng.standard_t(3, 300), theory).p
        < alpha
        for _ in range(n_tables)
    )
    assert rejections <= stats.binom.isf(1e-4, n_tables, alpha)  # the asymptotic law is
    # conservative at finite n: it may reject less often, never much more
    # heavier tails (Cauchy against t_3) are caught where the means are not comparable at all
    wrong = report.KolmogorovSmirnovComparison.from_samples("x", rng.standard_t(1, 2000), theory)
    assert wrong.p_value() < 1e-4 and bool(report.evaluate([wrong], alpha=1e-3).failures)
    # the power statement: a location shift whose distance is the detectable D is caught
    small = report.KolmogorovSmirnovComparison.from_samples("x", rng.normal(size=400), theory)
    target = small.detectable(0.01)
    shift = 2 * target * math.sqrt(2 * math.pi)  # sup |Phi(t) - Phi(t - d)| ~ d / sqrt(2 pi)
    caught = np.mean(
        [
            report.KolmogorovSmirnovComparison.from_samples(
                "x", rng.normal(size=400) + shift / 2, rng.normal(size=50_000)
            ).p
            < 0.01
            for _ in range(200)
        ]
    )
    assert caught >= report.POWER - 0.1
    assert wrong.cells()[2] == "KS, 2000 vs 50000"
    with pytest.raises(ValueError, match="theory"):
        report.KolmogorovSmirnovComparison.from_samples("x", [1.0, 2.0], [np.inf, 1.0])
