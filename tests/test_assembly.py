"""Tests of asbbook.assembly (chapter 4): exact finite-width laws of ln(r^L / r^0), their
measurement, the kurtosis correction and the arc-cosine correlation map.

Statistical checks go through the project's agreement helper (``asbbook.report.evaluate``) at a
small level, so that a correct implementation fails a test with probability below ~1e-4."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import sympy as sp
import torch
from scipy import special, stats

from asbbook import assembly, ensemble, nets, report
from asbbook.data import load_digits_binary
from asbbook.report import Comparison, JointComparison

ALPHA = 1e-4


def _agree(*rows):
    result = report.evaluate(rows, alpha=ALPHA)
    assert not result.failures, [
        (r.quantity, p) for r, p in zip(rows, result.p_values, strict=True)
    ]


def _disagree(row):
    assert row.p_value() < ALPHA, (row.quantity, row.p_value())


@pytest.fixture(scope="module")
def x16():
    x, _ = load_digits_binary(1, seed=3)
    return x[0, :16] / x[0, :16].square().mean().sqrt()  # 16 inputs, mean(x^2) = 1


def _chi_square_factors(n: int, size: int, seed: int) -> np.ndarray:
    """``ln F`` with ``F = (2/n) chi^2_K``, ``K ~ Bin(n, 1/2)`` given ``K >= 1``, sampled directly."""
    rng = np.random.default_rng(seed)
    k = rng.binomial(n, 0.5, size=4 * size)
    k = k[k >= 1][:size]
    return np.log(2 * rng.chisquare(k) / n)


# ------------------------------------------------------------------------------------------
# sympy derivations: frozen dataclasses with asserted content
# ------------------------------------------------------------------------------------------


def test_derivations_are_frozen_dataclasses_with_the_stated_results():
    q, n = sp.Symbol("q", positive=True), sp.Symbol("n", positive=True)
    orbit = assembly.derive_orbit_average()
    assert dataclasses.is_dataclass(orbit) and orbit.layer_mean.rhs == q / 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        orbit.layer_mean = None
    with pytest.warns(DeprecationWarning, match="attribute"):
        assert orbit["layer_mean"] == orbit.layer_mean
    mom = assembly.derive_relu_moments()
    assert mom.fourth.rhs == 3 * q**2 / 2
    assert sp.simplify(mom.layer_cv.rhs - sp.sqrt(5 / n)) == 0
    factors = assembly.derive_layer_factors(depth=3)
    n1, n2, n3 = sp.symbols("n_1:4", positive=True)
    assert sp.simplify(factors.example.rhs - 5 * (1 / n1 + 1 / n2 + 1 / n3)) == 0
    with pytest.warns(DeprecationWarning):
        assert assembly.derive_log_norm_variance(3) == factors
    fw = assembly.derive_finite_width_correction()
    assert sp.simplify(fw.relu.rhs.removeO() - (5 / n + sp.Rational(37, 2) / n**2)) == 0
    assert fw.mean.rhs.removeO().coeff(n, -1) == sp.Rational(-5, 2)
    sim = assembly.derive_self_similarity()
    s2, m = sp.symbols("sigma^2 m", positive=True)
    ell = sp.Symbol("l", integer=True, positive=True)
    assert sp.simplify(sim.solution.rhs - m * (s2 / 2) ** ell) == 0


def test_kurtosis_and_correlation_map_derivations():
    kurt = assembly.derive_kurtosis_correction()
    kappa, s = sp.Symbol("kappa", real=True), sp.Symbol("s", positive=True)
    assert sp.simplify(kurt.unit_cv2.rhs - (5 + 2 * kappa * s)) == 0
    assert kurt.uniform.rhs == sp.Rational(-6, 5) and kurt.rademacher.rhs == -2
    cmap = assembly.derive_correlation_map()
    rho = sp.Symbol("rho", real=True)
    assert sp.simplify(cmap.slope.rhs - (sp.pi - sp.acos(rho)) / sp.pi) == 0
    assert cmap.fixed_point.rhs == sp.Tuple(1, 1)


# ------------------------------------------------------------------------------------------
# theory functions
# ------------------------------------------------------------------------------------------


def test_theory_functions_take_full_widths():
    assert assembly.layer_cv_theory(5) == pytest.approx(1.0)
    np.testing.assert_allclose(assembly.layer_cv_theory(np.array([5, 20])), [1.0, 0.5])
    assert assembly.log_norm_variance_theory((3, 10, 20)) == pytest.approx(0.75)
    assert assembly.log_norm_variance_theory((3, 10, 20), last_linear=True) == pytest.approx(0.6)
    assert assembly.layer_log_variance_exact(1) == pytest.approx(math.pi**2 / 2)
    assert assembly.layer_log_variance_exact(7, linear=True) == pytest.approx(
        float(special.polygamma(1, 3.5))
    )
    for n in (64, 256, 1024):  # exact = 5/n + a positive correction ~ 3.7/n relative
        rel = assembly.layer_log_variance_exact(n) / (5 / n) - 1
        assert rel * n == pytest.approx(3.7, rel=0.1)
        assert assembly.layer_log_mean_exact(n) * n == pytest.approx(-2.5, rel=0.05)
    widths = (16, 32, 64, 8)  # n_0 does not enter
    assert assembly.log_norm_variance_exact(widths) == pytest.approx(
        sum(assembly.layer_log_variance_exact(n) for n in widths[1:])
    )
    assert assembly.log_norm_mean_exact(widths) == pytest.approx(
        sum(assembly.layer_log_mean_exact(n) for n in widths[1:])
    )
    assert assembly.log_norm_mean_exact((3,) + widths[1:]) == assembly.log_norm_mean_exact(widths)
    # weight variance sigma2 / n_(l-1) multiplies every factor by sigma2 / 2
    assert assembly.log_norm_mean_exact(widths, sigma2=1.0) == pytest.approx(
        assembly.log_norm_mean_exact(widths) + 3 * math.log(0.5)
    )
    linear_last = assembly.log_norm_mean_exact(widths, last_linear=True)
    assert linear_last - assembly.log_norm_mean_exact(widths[:-1]) == pytest.approx(
        math.log(2) + float(special.digamma(4)) + math.log(2 / 8)
    )
    cum = assembly.log_norm_cumulants_exact(widths)
    assert cum[0] == pytest.approx(assembly.log_norm_mean_exact(widths))
    assert cum[1] == pytest.approx(assembly.log_norm_variance_exact(widths))
    # a linear read-out: the last layer's log is ln(2 chi^2_n / n), whose cumulants are polygammas
    cum_linear = assembly.log_norm_cumulants_exact(widths, 4, last_linear=True)
    assert cum_linear[0] == pytest.approx(linear_last)
    assert cum_linear[1] == pytest.approx(
        assembly.log_norm_variance_exact(widths, last_linear=True)
    )
    k3_last = cum_linear[2] - assembly.log_norm_cumulants_exact(widths[:-1], 4)[2]
    assert k3_last == pytest.approx(float(special.polygamma(2, 4)))
    # Monte Carlo: k-statistics of 100 independent batches of ln(2 chi^2_8 / 8), 4 SE
    batches = np.log(2 * np.random.default_rng(5).chisquare(8, (100, 20_000)) / 8)
    k3 = np.array([stats.kstat(b, 3) for b in batches])
    assert abs(k3.mean() - k3_last) < 4 * k3.std(ddof=1) / 10
    skew, kurt = assembly.log_norm_shape_exact((16,) + (64,) * 10)
    assert -0.2 < skew < -0.05 and 0 < kurt < 0.1  # small, left-skewed


def test_old_hidden_width_form_is_deprecated_or_refused():
    with pytest.warns(DeprecationWarning, match="hidden_widths"):
        old = assembly.log_norm_variance_exact(hidden_widths=[32, 32])
    assert old == assembly.log_norm_variance_exact((16, 32, 32))
    with pytest.warns(DeprecationWarning):
        assert assembly.log_norm_variance_theory(hidden_widths=[10]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="hidden_widths"):
        assembly.log_norm_variance_exact([32])
    for bad in ((16, 0), (16, -3), (16, 2.5), (16, True), ()):
        with pytest.raises((TypeError, ValueError), match="widths"):
            assembly.log_norm_mean_exact(bad)
    with pytest.raises(ValueError):
        assembly.layer_cv_theory(np.array([4, 0]))


def test_exact_layer_law_against_direct_chi_square_sampling():
    """m(n), v(n) and the third and fourth cumulants of ln F against 4e5 direct draws."""
    for n, seed in ((3, 0), (16, 1)):
        logs = _chi_square_factors(n, 400_000, seed)
        est_mean = assembly.mean_with_stderr(torch.as_tensor(logs)).item()
        est_var = assembly.variance_with_stderr(torch.as_tensor(logs)).item()
        g, cov = assembly.shape_with_covariance(torch.as_tensor(logs))
        m1, k2, k3, k4 = assembly.layer_log_cumulants_exact(n)
        _agree(
            Comparison(f"m({n})", assembly.layer_log_mean_exact(n), *est_mean),
            Comparison(f"v({n})", assembly.layer_log_variance_exact(n), *est_var),
            JointComparison(f"shape({n})", np.array([k3 / k2**1.5, k4 / k2**2]), g, cov),
        )
        assert m1 == pytest.approx(assembly.layer_log_mean_exact(n))


def test_variance_expansion_kurtosis_term():
    widths = (16,) + (64,) * 10
    gauss = assembly.log_norm_variance_expansion(widths, input_ratio=0.2)
    exact = assembly.log_norm_variance_exact(widths)
    assert abs(gauss - exact) < 0.01 * exact  # O(n^-3) remainder
    shift = assembly.log_norm_variance_expansion(widths, -2.0, input_ratio=0.2) - gauss
    assert shift == pytest.approx(2 * -2.0 * (0.2 / 64 + 9 * 6 / 64**2))
    default = assembly.log_norm_variance_expansion(widths, -2.0)  # s_0 = 3 / (n_0 + 2)
    assert default - gauss == pytest.approx(-4 * (3 / 18 / 64 + 9 * 6 / 64**2))
    for bad in (-2.5, float("nan"), True):
        with pytest.raises((TypeError, ValueError), match="weight_excess_kurtosis"):
            assembly.log_norm_variance_expansion(widths, bad)


def test_correlation_map_against_bivariate_gaussian_sampling():
    rng = np.random.default_rng(4)
    u, w = rng.standard_normal((2, 1_000_000))
    rows = []
    for rho in (-0.5, 0.3, 0.9):
        v = rho * u + math.sqrt(1 - rho**2) * w
        prod = 2 * np.maximum(u, 0) * np.maximum(v, 0)
        rows.append(
            Comparison(
                f"f({rho})",
                assembly.correlation_map(rho),
                prod.mean(),
                prod.std() / math.sqrt(prod.size),
            )
        )
    _agree(*rows)
    assert assembly.correlation_map(1.0) == pytest.approx(1.0)
    assert assembly.correlation_map(0.0) == pytest.approx(1 / math.pi)
    it = assembly.correlation_map_iterates(0.2, 3)
    assert it[0] == 0.2 and np.all(np.diff(it) > 0)


# ------------------------------------------------------------------------------------------
# measurement against theory
# ------------------------------------------------------------------------------------------


def test_layer_cv_and_loglog_fit_follow_sqrt_five_over_n(x16):
    widths = (4, 16, 64)
    cv = assembly.experiments.cv_experiment(x16[None, :], widths, 8000, seed=11)
    fit = assembly.loglog_fit(widths, cv[:, 0], cv[:, 1])
    _agree(
        *(
            Comparison(f"CV n={n}", assembly.layer_cv_theory(n), *row)
            for n, row in zip(widths, cv, strict=True)
        ),
        Comparison("slope", -0.5, fit.slope, fit.slope_se),
        Comparison("ln a", math.log(math.sqrt(5)), math.log(fit.prefactor), fit.log_prefactor_se),
    )
    _disagree(Comparison("wrong slope", -1.0, fit.slope, fit.slope_se))


def test_loglog_fit_recovers_known_power_laws():
    x = np.array([4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0])
    exact = assembly.loglog_fit(x, 2.5 * x**-0.5, 0.01 * np.ones_like(x))
    assert exact.slope == pytest.approx(-0.5, abs=1e-12)
    assert exact.prefactor == pytest.approx(2.5, rel=1e-12)
    assert exact.chi2 == pytest.approx(0.0, abs=1e-18) and exact.dof == 5
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(300):
        rel_err = 0.02 + 0.03 * rng.random(x.size)
        y = 3.0 * x**-1.0 * np.exp(rel_err * rng.standard_normal(x.size))
        fit = assembly.loglog_fit(x, y, y * rel_err, confidence=0.95)
        covered += fit.slope_ci[0] <= -1.0 <= fit.slope_ci[1]
    assert 0.91 <= covered / 300 <= 0.99
    for args in ((x, -x, x), (x, x, np.zeros_like(x)), (x[:3], x, x), (np.ones(3),) * 3):
        with pytest.raises(ValueError):
            assembly.loglog_fit(*args)


def test_log_norm_mean_variance_and_independence_in_networks(x16):
    """n = 16, L = 4 Gaussian nets from the ensemble engine: exact mean and variance,
    E[r^L/r^0] = 1, independent layer factors; the leading-order variance is rejected."""
    widths = (16,) + (16,) * 4
    prof = assembly.sample_reduced(
        x16[None, :], widths, 12000, lambda zs: assembly.log_norm_profile(zs, x16)[:, 0], seed=8
    )
    ok = assembly.alive(prof)
    assert (~ok).sum() < 12000 * 4 * 2.0**-16 * 20 + 3
    mean, var, _ = assembly.experiments.log_moments(prof[:, -1])
    factors = assembly.log_factors(prof[ok])
    corr, k = assembly.factor_correlations(factors)
    _agree(
        Comparison("E ln", assembly.log_norm_mean_exact(widths), *mean),
        Comparison("Var ln", assembly.log_norm_variance_exact(widths), *var),
        Comparison("E r", 1.0, *assembly.mean_with_stderr(torch.exp(prof[:, -1])).item()),
        JointComparison("corr", np.zeros(corr.size), corr, np.eye(corr.size) / (k - 1)),
    )
    _disagree(Comparison("leading", assembly.log_norm_variance_theory(widths), *var))
    # a correlated pair of columns is detected by the same test
    bad = torch.stack([factors[:, 0], factors[:, 0] + factors[:, 1]], dim=1)
    corr, k = assembly.factor_correlations(bad)
    _disagree(JointComparison("corr", np.zeros(1), corr, np.eye(1) / (k - 1)))


def test_rademacher_weights_follow_the_kurtosis_expansion(x16):
    widths = (16,) + (32,) * 4
    s0 = assembly.fourth_moment_ratio(x16)
    exact = assembly.log_norm_variance_exact(widths)
    shift = assembly.log_norm_variance_expansion(
        widths, -2.0, input_ratio=s0
    ) - assembly.log_norm_variance_expansion(widths, 0.0, input_ratio=s0)
    logs = assembly.sample_log_factors(x16, widths, 5000, weight_law="rademacher", seed=2)
    var = assembly.variance_with_stderr(logs.sum(-1)).item()
    _agree(Comparison("Var ln, ±1 weights", exact + shift, *var))
    _disagree(Comparison("Gaussian law for ±1 weights", exact, *var))
    # the linear read-out at sigma^2 = 1.5: exact log-mean of the typical network
    q = assembly.sample_reduced(
        x16[None, :],
        widths,
        3000,
        lambda zs: assembly.log_norm_ratio(zs, x16, last_linear=True),
        sigma2=1.5,
        seed=4,
    )[:, 0]
    q = q[torch.isfinite(q)]
    _agree(
        Comparison(
            "E ln q",
            assembly.log_norm_mean_exact(widths, sigma2=1.5, last_linear=True),
            *assembly.mean_with_stderr(q).item(),
        )
    )
    # the Gaussian arm of the same sampler follows the Gaussian exact law
    gauss = assembly.sample_log_factors(x16, widths, 3000, seed=2)
    _agree(
        Comparison("Var ln, Gaussian", exact, *assembly.variance_with_stderr(gauss.sum(-1)).item())
    )
    # prefixes are reproducible
    torch.testing.assert_close(assembly.sample_log_factors(x16, widths, 700, seed=2), gauss[:700])


def test_kernel_residuals_have_mean_zero_and_detect_a_wrong_kernel():
    pair = assembly.input_pair(16, 0.3, seed=1)
    assert torch.allclose(
        pair @ pair.T / 16, torch.tensor([[1, 0.3], [0.3, 1]], dtype=torch.float64)
    )
    grams = assembly.experiments.kernel_experiment(pair, [32], 3, 3000, seed=5)[32]
    resid = assembly.kernel_residuals(grams).numpy()
    _agree(
        JointComparison(
            "kernel", np.zeros(3), resid.mean(0), np.cov(resid.T) / len(resid), n_samples=len(resid)
        )
    )
    # a wrong map, the identity q^l_ab = q^(l-1)_ab (no ReLU), is rejected on the same networks
    wrong = (grams[:, 1, 2] - grams[:, 0, 2]).numpy()
    _disagree(Comparison("identity map", 0.0, wrong.mean(), wrong.std() / math.sqrt(wrong.size)))
    cos = assembly.pair_cosines(grams)
    assert cos.shape == (3000, 4) and torch.allclose(
        cos[:, 0], torch.tensor(0.3, dtype=torch.float64)
    )


def test_shape_with_covariance_is_calibrated():
    rng = np.random.default_rng(9)
    gauss = torch.as_tensor(rng.standard_normal(50_000))
    g, cov = assembly.shape_with_covariance(gauss)
    assert np.sqrt(cov[0, 0]) == pytest.approx(math.sqrt(6 / 50_000), rel=0.1)
    _agree(JointComparison("gauss", np.zeros(2), g, cov))
    expo = torch.as_tensor(rng.exponential(size=400_000))
    g, cov = assembly.shape_with_covariance(expo)
    _agree(JointComparison("exponential", np.array([2.0, 6.0]), g, cov))


# ------------------------------------------------------------------------------------------
# sampling and validation
# ------------------------------------------------------------------------------------------


def test_sample_reduced_matches_the_ensemble_and_the_member_networks(x16):
    x = x16[None, :]
    widths, k = (16, 8, 8), 7
    whole = ensemble.sample_ensemble(x, widths=widths, n_members=k, seed=3)
    chunked = assembly.sample_reduced(
        x, widths, k, lambda zs: torch.stack([z[:, 0, :] for z in zs], 1), seed=3, max_weights=400
    )
    torch.testing.assert_close(chunked, torch.stack([z[:, 0, :] for z in whole], 1))
    spec = ensemble.member_specs(widths, k)[5]
    zs = nets.preactivations(ensemble.member_weights(spec, 3), x)
    torch.testing.assert_close(chunked[5], torch.cat(zs))
    other = assembly.sample_reduced(x, widths, k, lambda zs: zs[0], seed=4)
    assert not torch.allclose(other, whole[0])


def test_bad_input_is_refused_by_name_before_work(x16):
    x = x16[None, :]
    for n_members, max_weights, name in (
        (0, 100, "n_members"),
        (2.5, 100, "n_members"),
        (3, 0, "max_weights"),
        (True, 100, "n_members"),
    ):
        with pytest.raises((TypeError, ValueError), match=name):
            assembly.sample_reduced(
                x, (16, 4), n_members, lambda zs: zs[0], max_weights=max_weights
            )
    with pytest.raises(ValueError, match="leading dimension"):
        assembly.sample_reduced(x, (16, 4), 3, lambda zs: zs[0][0])
    with pytest.raises(TypeError, match="reduce"):
        assembly.sample_reduced(x, (16, 4), 3, None)
    with pytest.raises(TypeError, match="dtype"):
        assembly.sample_reduced(x, (16, 4), 3, lambda zs: zs[0], dtype=torch.int64)
    with pytest.raises(TypeError, match="X"):
        assembly.sample_reduced(x.long(), (16, 4), 3, lambda zs: zs[0])
    with pytest.raises(ValueError, match="n_members"):  # 10^12 networks: refused at once
        assembly.sample_reduced(x, (16, 4), 10**12, lambda zs: zs[0])
    with pytest.raises(ValueError, match="widths"):
        assembly.sample_log_factors(x16, (16, 10**6, 10**6), 10)
    with pytest.raises(ValueError, match="n_members"):
        assembly.sample_log_factors(x16, (16, 4), 10**12)
    with pytest.raises(ValueError, match="weight_law"):
        assembly.sample_log_factors(x16, (16, 4), 10, weight_law="laplace")
    with pytest.raises(TypeError, match="x"):
        assembly.sample_log_factors(torch.ones(16, dtype=torch.int64), (16, 4), 10)
    with pytest.raises(TypeError, match="z"):
        assembly.layer_cv(torch.ones(5, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="NaN"):
        assembly.layer_cv(torch.full((5, 4), float("nan")))
    with pytest.raises(TypeError, match="x"):
        assembly.log_norm_profile([torch.ones(3, 4)], torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="zs"):
        assembly.log_norm_profile([], x16)


def test_layer_cv_null_stderr_is_the_spread_of_the_sample_cv():
    """The null standard error against the spread of sample CVs of exact draws of ``r^1``
    (a mean of ``n`` iid relu(z)^2): 2000 replicate CVs give the SD to about 2.5% (the CV's
    kurtosis included), so a 12% window is over 4 SE wide."""
    gen = torch.Generator().manual_seed(7)
    for n, members in ((4, 500), (16, 300)):
        z = torch.randn(2000, members, n, generator=gen, dtype=torch.float64)
        r = torch.relu(z).square().mean(dim=-1)
        cv = r.std(dim=1) / r.mean(dim=1)
        ratio = float(cv.std()) / assembly.layer_cv_null_stderr(n, members)
        assert abs(ratio - 1) < 0.12, (n, ratio)
        assert abs(float(cv.mean()) - assembly.layer_cv_theory(n)) < 4 * float(cv.std()) / 40
    with pytest.raises(ValueError, match="n_members"):
        assembly.layer_cv_null_stderr(4, 1)
    with pytest.raises(ValueError, match="n"):
        assembly.layer_cv_null_stderr(0, 100)


def test_exact_law_samples_match_the_cumulants_and_sampled_networks():
    """Draws of ln(r^L/r^0) from the exact law: their mean, variance and skewness are the exact
    cumulants', and networks drawn by the engine follow the same law (KS rows at 1e-3)."""
    shape = (16, 8, 8, 8)
    draws = assembly.log_norm_exact_samples(shape, 400_000, seed=2)
    k1, k2, k3 = assembly.log_norm_cumulants_exact(shape, 3)
    assert abs(draws.mean() - k1) < 4 * math.sqrt(k2 / draws.size)
    assert draws.var() == pytest.approx(k2, rel=0.02)
    assert stats.skew(draws) == pytest.approx(k3 / k2**1.5, abs=0.03)
    x = torch.randn(16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    logs = assembly.sample_log_factors(x, shape, 3000, seed=4).sum(-1)
    logs = logs[torch.isfinite(logs)].numpy()
    assert report.KolmogorovSmirnovComparison.from_samples("ln r", logs, draws).p > 1e-3
    # a wider network's law is another: the test has power at this size
    other = assembly.log_norm_exact_samples((16, 16, 16, 16), 100_000, seed=3)
    assert report.KolmogorovSmirnovComparison.from_samples("ln r", logs, other).p < 1e-6
    assert np.array_equal(draws[:10], assembly.log_norm_exact_samples(shape, 400_000, seed=2)[:10])
    with pytest.raises(ValueError, match="n_samples"):
        assembly.log_norm_exact_samples(shape, 0)
