"""Tests of asbbook.assembly (chapter 4): orbit averages, concentration, log-norm fluctuations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from scipy import special

from asbbook import assembly
from asbbook.data import load_digits_binary

# ------------------------------------------------------------------------------------------
# helper: a Gaussian ReLU chain at one fixed input, full weight matrices, drawn in chunks
# ------------------------------------------------------------------------------------------


def _relu_chain(widths, x, n_members, sigma2=2.0, seed=0, chunk=2000):
    """Pre-activations ``[z^1..z^L]`` each ``(K, n_l)`` of ``K`` bias-free nets with
    ``W^l_ij ~ N(0, sigma2/n_{l-1})`` at the input ``x`` ``(n_0,)``; every layer is followed by
    a ReLU when feeding the next one."""
    gen = torch.Generator().manual_seed(seed)
    out = [[] for _ in widths[1:]]
    for start in range(0, n_members, chunk):
        k = min(chunk, n_members - start)
        h = x.expand(k, -1)
        for layer, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            w = torch.randn((k, n_out, n_in), generator=gen, dtype=torch.float64)
            z = torch.einsum("kij,kj->ki", w, h) * math.sqrt(sigma2 / n_in)
            out[layer].append(z)
            h = torch.relu(z)
    return [torch.cat(parts) for parts in out]


@pytest.fixture(scope="module")
def x16():
    x, _ = load_digits_binary(1, seed=3)
    return x[0, :16] / x[0, :16].square().mean().sqrt()  # 16 inputs, mean(x^2) = 1


# ------------------------------------------------------------------------------------------
# sympy
# ------------------------------------------------------------------------------------------


def test_sympy_orbit_average_and_relu_moments():
    orbit = assembly.derive_orbit_average()
    q = sp.Symbol("q", positive=True)
    assert orbit["layer_mean"].rhs == q / 2
    mom = assembly.derive_relu_moments()
    n = sp.Symbol("n", positive=True)
    assert mom["fourth"].rhs == 3 * q**2 / 2
    assert sp.simplify(mom["layer_cv"].rhs - sp.sqrt(5 / n)) == 0
    assert sp.simplify(mom["linear_cv"].rhs - sp.sqrt(2 / n)) == 0


def test_sympy_log_norm_variance_and_self_similarity():
    res = assembly.derive_log_norm_variance(depth=3)
    n1, n2, n3 = sp.symbols("n_1:4", positive=True)
    assert sp.simplify(res["example"].rhs - 5 * (1 / n1 + 1 / n2 + 1 / n3)) == 0
    sim = assembly.derive_self_similarity()
    s2, m = sp.symbols("sigma^2 m", positive=True)
    ell = sp.Symbol("l", integer=True, positive=True)
    assert sp.simplify(sim["solution"].rhs - m * (s2 / 2) ** ell) == 0


def test_sympy_exact_and_finite_width_correction():
    exact = assembly.derive_exact_layer_log_variance()
    k = sp.Symbol("k", positive=True)
    assert exact["var_log"].rhs == sp.polygamma(1, k / 2)
    fw = assembly.derive_finite_width_correction()
    n = sp.Symbol("n", positive=True)
    assert sp.simplify(fw["relu"].rhs.removeO() - (5 / n + sp.Rational(37, 2) / n**2)) == 0
    assert assembly.FINITE_WIDTH_COEFFICIENT == 18.5


# ------------------------------------------------------------------------------------------
# theory functions
# ------------------------------------------------------------------------------------------


def test_theory_functions():
    assert assembly.layer_cv_theory(5) == pytest.approx(1.0)
    np.testing.assert_allclose(assembly.layer_cv_theory(np.array([5, 20])), [1.0, 0.5])
    assert assembly.log_norm_variance_theory([10, 20]) == pytest.approx(0.75)
    assert assembly.log_norm_variance_theory([10, 20], last_linear=True) == pytest.approx(0.6)
    assert assembly.layer_log_variance_exact(1) == pytest.approx(math.pi**2 / 2)
    assert assembly.layer_log_variance_exact(7, linear=True) == pytest.approx(
        float(special.polygamma(1, 3.5))
    )
    # exact = leading order + a positive correction that shrinks like 3.7/n
    for n in (4, 16, 64, 256, 1024):
        assert assembly.layer_log_variance_exact(n) > 5 / n
    for n in (64, 256, 1024):
        rel = assembly.layer_log_variance_exact(n) / (5 / n) - 1
        assert rel * n == pytest.approx(3.7, rel=0.1)
    widths = [32, 64, 8]
    assert assembly.log_norm_variance_exact(widths) == pytest.approx(
        sum(assembly.layer_log_variance_exact(n) for n in widths)
    )
    assert assembly.log_norm_variance_exact(widths, last_linear=True) == pytest.approx(
        assembly.layer_log_variance_exact(32)
        + assembly.layer_log_variance_exact(64)
        + assembly.layer_log_variance_exact(8, linear=True)
    )
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError):
            assembly.layer_cv_theory(bad)
        with pytest.raises(ValueError):
            assembly.log_norm_variance_theory([16, bad])
    with pytest.raises(ValueError):
        assembly.log_norm_variance_theory([])
    with pytest.raises(ValueError):
        assembly.layer_cv_theory(np.array([4, 0]))


# ------------------------------------------------------------------------------------------
# measurement functions
# ------------------------------------------------------------------------------------------


def test_layer_averages_and_log_norm_profile_shapes():
    z = torch.tensor([[1.0, -2.0, 3.0], [-1.0, -1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(
        assembly.layer_average_relu_sq(z), torch.tensor([10 / 3, 0.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        assembly.layer_average_sq(z), torch.tensor([14 / 3, 2 / 3], dtype=torch.float64)
    )
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, generator=gen, dtype=torch.float64)  # (P, n_0)
    zs = [torch.randn(4, 5, n, generator=gen, dtype=torch.float64) for n in (6, 3)]
    prof = assembly.log_norm_profile(zs, x)
    assert prof.shape == (4, 5, 2)
    r0 = x.square().mean(dim=-1)
    r2 = torch.relu(zs[1]).square().mean(dim=-1)
    torch.testing.assert_close(assembly.log_norm_ratio(zs, x), torch.log(r2 / r0))
    lin = assembly.log_norm_ratio(zs, x, last_linear=True)
    torch.testing.assert_close(lin, torch.log(zs[1].square().mean(dim=-1) / r0))
    dead = [torch.full((2, 3), -1.0, dtype=torch.float64)]
    assert torch.isneginf(assembly.log_norm_ratio(dead, torch.ones(4))).all()
    with pytest.raises(ValueError):
        assembly.log_norm_profile([], x)


def test_variance_with_stderr_is_calibrated():
    gen = torch.Generator().manual_seed(5)
    reps, k = 400, 400
    # exponential samples: sigma^2 = 1, mu_4 = 9, so sd(s^2) = sqrt(8/K + 2/(K(K-1))) ~ 0.1416
    samples = -torch.log(torch.rand(reps, k, generator=gen, dtype=torch.float64))
    est = assembly.variance_with_stderr(samples, dim=1)
    assert est.value.shape == (reps,)
    exact_sd = math.sqrt(9 / k - (k - 3) / (k * (k - 1)))
    spread = float(est.value.std())
    assert spread == pytest.approx(exact_sd, rel=0.12)
    assert float(est.stderr.mean()) == pytest.approx(exact_sd, rel=0.15)
    # unbiased: the mean of s^2 over repetitions is 1 within 4 SE
    assert abs(float(est.value.mean()) - 1) < 4 * exact_sd / math.sqrt(reps)
    # Gaussian samples: SE ~ sigma^2 sqrt(2/(K-1))
    g = 3.0 * torch.randn(20000, generator=gen, dtype=torch.float64)
    v = assembly.variance_with_stderr(g)
    assert float(v.stderr) == pytest.approx(9 * math.sqrt(2 / 19999), rel=0.05)
    with pytest.raises(ValueError, match="NaN or inf"):
        assembly.variance_with_stderr(torch.tensor([1.0, 2.0, float("-inf"), 3.0, 4.0]))
    with pytest.raises(ValueError):
        assembly.variance_with_stderr(torch.tensor([1.0, 2.0, 3.0]))


def test_cv_with_stderr_is_calibrated():
    gen = torch.Generator().manual_seed(6)
    reps, k = 400, 500
    # chi^2_3 / 3: CV = sqrt(2/3)
    samples = torch.randn(reps, k, 3, generator=gen, dtype=torch.float64).square().mean(dim=-1)
    est = assembly.cv_with_stderr(samples, dim=1)
    spread = float(est.value.std())
    assert float(est.stderr.mean()) == pytest.approx(spread, rel=0.12)
    assert abs(float(est.value.mean()) - math.sqrt(2 / 3)) < 4 * spread / math.sqrt(reps)


def test_loglog_fit_recovers_known_power_laws():
    rng = np.random.default_rng(0)
    x = np.array([4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0])
    exact = assembly.loglog_fit(x, 2.5 * x**-0.5, 0.01 * np.ones_like(x))
    assert exact.slope == pytest.approx(-0.5, abs=1e-12)
    assert exact.prefactor == pytest.approx(2.5, rel=1e-12)
    assert exact.chi2 == pytest.approx(0.0, abs=1e-18) and exact.dof == 5
    # noisy data with known relative errors: slope -1, prefactor 3
    covered, n_rep = 0, 300
    for _ in range(n_rep):
        rel_err = 0.02 + 0.03 * rng.random(x.size)
        y = 3.0 * x**-1.0 * np.exp(rel_err * rng.standard_normal(x.size))
        fit = assembly.loglog_fit(x, y, y * rel_err, confidence=0.95)
        covered += fit.slope_ci[0] <= -1.0 <= fit.slope_ci[1]
    assert 0.91 <= covered / n_rep <= 0.99
    assert fit.prefactor_ci[0] < fit.prefactor < fit.prefactor_ci[1]
    assert abs(fit.slope + 1) < 4 * fit.slope_se
    assert abs(math.log(fit.prefactor / 3.0)) < 4 * fit.log_prefactor_se
    np.testing.assert_allclose(fit(x), fit.prefactor * x**fit.slope)
    for args in (
        (x, -x, x),
        (x, x, np.zeros_like(x)),
        (x[:3], x, x),
        (np.ones(3), np.ones(3), np.ones(3)),
    ):
        with pytest.raises(ValueError):
            assembly.loglog_fit(*args)


# ------------------------------------------------------------------------------------------
# Monte-Carlo against theory
# ------------------------------------------------------------------------------------------


def test_layer_cv_follows_sqrt_five_over_n(x16):
    """First layer at a fixed input: z_i exactly i.i.d. Gaussian, CV = sqrt(5/n) at every n;
    the log-log fit of the chapter recovers slope -1/2 and prefactor sqrt(5)."""
    widths, cvs, ses = (4, 16, 64), [], []
    for i, n in enumerate(widths):
        (z,) = _relu_chain((16, n), x16, 20000, seed=100 + i)
        est = assembly.layer_cv(z)
        cvs.append(float(est.value))
        ses.append(float(est.stderr))
        assert abs(cvs[-1] - assembly.layer_cv_theory(n)) < 4 * ses[-1], (n, cvs[-1], ses[-1])
        assert ses[-1] < 0.03 * cvs[-1]
    fit = assembly.loglog_fit(widths, cvs, ses)
    assert abs(fit.slope + 0.5) < 4 * fit.slope_se
    assert abs(math.log(fit.prefactor / math.sqrt(5))) < 4 * fit.log_prefactor_se
    # ... and a wrong law is rejected by the same data
    assert abs(fit.slope + 1.0) > 4 * fit.slope_se
    with pytest.raises(ValueError):
        assembly.layer_cv(z, dim=-1)


def test_log_norm_variance_large_width_matches_leading_order(x16):
    widths = (16, 96, 96)
    zs = _relu_chain(widths, x16, 2000, seed=7)
    ratio = assembly.log_norm_ratio(zs, x16)
    assert bool(torch.isfinite(ratio).all())
    var = assembly.variance_with_stderr(ratio)
    leading = assembly.log_norm_variance_theory(widths[1:])
    assert abs(float(var.value) - leading) < 4 * float(var.stderr)
    # the martingale: E[r^L / r^0] = 1 under He initialisation
    mean = assembly.mean_with_stderr(torch.exp(ratio))
    assert abs(float(mean.value) - 1) < 4 * float(mean.stderr)


def test_log_norm_variance_finite_width_correction(x16):
    """n = 32, L = 5: the variance exceeds 5 L / n by a significant, positive amount that the exact
    finite-width formula predicts; successive layers' increments are uncorrelated."""
    widths = (16,) + (32,) * 5
    zs = _relu_chain(widths, x16, 10000, seed=8)
    prof = assembly.log_norm_profile(zs, x16)
    assert bool(torch.isfinite(prof).all())
    var = assembly.variance_with_stderr(prof[:, -1])
    leading = assembly.log_norm_variance_theory(widths[1:])
    exact = assembly.log_norm_variance_exact(widths[1:])
    assert abs(float(var.value) - exact) < 4 * float(var.stderr)
    assert float(var.value) - leading > 4 * float(var.stderr)  # positive correction, resolved
    # the variance grows linearly in depth, layer by layer
    for depth in range(1, 6):
        v = assembly.variance_with_stderr(prof[:, depth - 1])
        assert abs(float(v.value) - assembly.log_norm_variance_exact([32] * depth)) < 4 * float(
            v.stderr
        )
    inc = torch.diff(prof, dim=-1, prepend=torch.zeros_like(prof[:, :1]))
    corr = np.corrcoef(inc.T.numpy())
    off = corr[~np.eye(5, dtype=bool)]
    assert np.all(np.abs(off) < 4 / math.sqrt(prof.shape[0])), off


def test_log_norm_variance_small_width_exact(x16):
    """n = 8: the exact per-layer variance is twice the leading order 5/n; conditional on no dead
    layer the measurement matches it, and the leading order is rejected."""
    widths = (16, 8, 8, 8)
    zs = _relu_chain(widths, x16, 20000, seed=9)
    ratio = assembly.log_norm_ratio(zs, x16)
    alive = torch.isfinite(ratio)
    dead_fraction = 1 - float(alive.double().mean())
    p_dead = 1 - (1 - 2.0**-8) ** 3
    assert abs(dead_fraction - p_dead) < 4 * math.sqrt(p_dead / ratio.numel())
    var = assembly.variance_with_stderr(ratio[alive])
    exact = assembly.log_norm_variance_exact(widths[1:])
    assert abs(float(var.value) - exact) < 4 * float(var.stderr)
    assert abs(float(var.value) - assembly.log_norm_variance_theory(widths[1:])) > 4 * float(
        var.stderr
    )


def test_last_linear_layer(x16):
    widths = (16, 24, 24, 24)
    zs = _relu_chain(widths, x16, 10000, seed=10)
    ratio = assembly.log_norm_ratio(zs, x16, last_linear=True)
    var = assembly.variance_with_stderr(ratio[torch.isfinite(ratio)])
    exact = assembly.log_norm_variance_exact(widths[1:], last_linear=True)
    assert abs(float(var.value) - exact) < 4 * float(var.stderr)
    # E[mean z^2 of the last layer / r^0] = sigma^2 = 2 under He initialisation
    mean = assembly.mean_with_stderr(torch.exp(ratio))
    assert abs(float(mean.value) - 2) < 4 * float(mean.stderr)


# ------------------------------------------------------------------------------------------
# chunked sampling
# ------------------------------------------------------------------------------------------


def test_sample_reduced_matches_the_ensemble_and_the_member_networks(x16):
    from asbbook import ensemble, nets

    x = x16[None, :]  # (P = 1, n_0 = 16)
    widths, k = (16, 8, 8), 7
    whole = ensemble.sample_ensemble(x, widths=widths, n_members=k, seed=3)
    # 16*8 + 8*8 = 192 weights per member: max_weights = 400 gives chunks of 2, 2, 2, 1
    chunked = assembly.sample_reduced(
        x, widths, k, lambda zs: torch.stack([z[:, 0, :] for z in zs], 1), seed=3, max_weights=400
    )
    assert chunked.shape == (k, 2, 8)
    torch.testing.assert_close(chunked, torch.stack([z[:, 0, :] for z in whole], 1))
    # row 5 is member 5's own network, evaluated without the ensemble engine
    spec = ensemble.member_specs(widths, k)[5]
    zs = nets.preactivations(ensemble.member_weights(spec, 3), x)
    torch.testing.assert_close(chunked[5], torch.cat(zs))
    # dict reductions; a prefix of a larger run is the smaller run; other seeds differ
    both = assembly.sample_reduced(
        x,
        widths,
        k + 5,
        lambda zs: {"ratio": assembly.log_norm_ratio(zs, x), "z1": zs[0]},
        seed=3,
        max_weights=1000,
    )
    assert set(both) == {"ratio", "z1"} and both["ratio"].shape == (k + 5, 1)
    torch.testing.assert_close(both["z1"][:k], whole[0])
    other = assembly.sample_reduced(x, widths, k, lambda zs: zs[0], seed=4)
    assert not torch.allclose(other, whole[0])


def test_sample_reduced_rejects_bad_input(x16):
    x = x16[None, :]
    for n_members, max_weights in ((0, 100), (2.5, 100), (3, 0), (True, 100)):
        with pytest.raises(ValueError):
            assembly.sample_reduced(
                x, (16, 4), n_members, lambda zs: zs[0], max_weights=max_weights
            )
    with pytest.raises(ValueError, match="leading dimension"):
        assembly.sample_reduced(x, (16, 4), 3, lambda zs: zs[0][0])
    with pytest.raises(ValueError, match="leading dimension"):
        assembly.sample_reduced(x, (16, 4), 3, lambda zs: {"z": zs[0], "bad": 1.0})
    with pytest.raises(ValueError, match="callable"):
        assembly.sample_reduced(x, (16, 4), 3, None)
    with pytest.raises(ValueError):
        assembly.sample_reduced(x, (16, 0), 3, lambda zs: zs[0])
