"""asbbook.boltzmann: sympy identities, numerical stability, and Monte-Carlo against theory."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

from asbbook import boltzmann, nets

N_SE = 4.0  # Monte-Carlo tolerance: four standard errors


def test_derivations_return_the_closed_forms():
    gate = boltzmann.derive_gate()
    z, b = boltzmann.z, boltzmann.beta
    # Independent numerical spot check of the symbolic results at an arbitrary point.
    point = {z: sp.Rational(3, 7), b: sp.Rational(5, 2)}
    p = 1 / (1 + math.exp(-15 / 14))
    assert float(gate.open_probability.subs(point)) == pytest.approx(p, rel=1e-12)
    assert float(gate.activation_variance.subs(point)) == pytest.approx(
        (3 / 7) ** 2 * p * (1 - p), rel=1e-12
    )
    assert float(gate.free_energy.subs(point)) == pytest.approx(
        -math.log1p(math.exp(15 / 14)) / 2.5, rel=1e-12
    )
    assert boltzmann.derive_entropy_maximum() == sp.log(2)


def test_zero_temperature_limits_are_relu():
    limits = boltzmann.derive_zero_temperature_limits()
    zp = sp.Symbol("z", positive=True)
    assert limits["mean activation"] == (zp, 0)
    assert limits["free energy"] == (-zp, 0)
    assert limits["mean gate"] == (1, 0)


def test_sup_gap_is_lambert_w_over_beta():
    t_star, gap = boltzmann.derive_sup_gap()
    assert float(gap) == pytest.approx(0.2784645427610738, rel=1e-15)
    assert float(t_star) == pytest.approx(1.2784645427610738, rel=1e-15)
    # The closed form against a brute-force grid search, over four decades of beta.
    for beta in (0.5, 3.0, 40.0, 700.0):
        sup, where = boltzmann.grid_sup_relu_gap(beta)
        assert sup == pytest.approx(boltzmann.max_relu_gap(beta), rel=1e-7)
        assert where == pytest.approx(boltzmann.argmax_relu_gap(beta), rel=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("beta", [1e-3, 1.0, 1e3, 1e6])
def test_functions_are_finite_at_extreme_inputs(dtype, beta):
    z = torch.tensor([-1e3, -1.0, -1e-6, 0.0, 1e-6, 1.0, 1e3], dtype=dtype)
    for fn in (
        boltzmann.open_probability,
        boltzmann.mean_activation,
        boltzmann.activation_variance,
        boltzmann.gate_entropy,
    ):
        out = fn(z, beta)
        assert out.dtype == dtype
        assert torch.isfinite(out).all(), (fn.__name__, beta, out)
    var = boltzmann.activation_variance(z, beta)
    assert (var >= 0).all()
    # Large |beta z|: exactly the zero-temperature values.
    if beta >= 1e3:
        assert boltzmann.mean_activation(z, beta)[-1] == 1e3
        assert boltzmann.mean_activation(z, beta)[0] == 0
        assert var[0] == 0 and var[-1] == 0


def test_entropy_matches_the_bernoulli_formula_and_peaks_at_zero():
    z = torch.linspace(-3, 3, 601, dtype=torch.float64)
    p = boltzmann.open_probability(z, 2.0)
    reference = -(p * p.log() + (1 - p) * (1 - p).log())
    torch.testing.assert_close(boltzmann.gate_entropy(z, 2.0), reference, rtol=1e-10, atol=1e-12)
    assert boltzmann.gate_entropy(torch.zeros(1, dtype=torch.float64), 7.0).item() == pytest.approx(
        math.log(2)
    )


def test_bad_beta_is_refused():
    z = torch.zeros(3)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="beta"):
            boltzmann.mean_activation(z, bad)


def test_monte_carlo_gate_moments_match_theory():
    gen = torch.Generator().manual_seed(1)
    z = torch.linspace(-2, 2, 21, dtype=torch.float64)
    beta, n = 3.0, 40_000
    moments = boltzmann.mc_gate_moments(z, beta, n, generator=gen)
    mean_se, var_se = boltzmann.gate_moment_stderr(z, beta, n)
    assert ((moments["mean"] - boltzmann.mean_activation(z, beta)).abs() <= N_SE * mean_se).all()
    assert ((moments["var"] - boltzmann.activation_variance(z, beta)).abs() <= N_SE * var_se).all()
    # The samples' own standard errors agree with the predicted ones where the CLT holds.
    torch.testing.assert_close(moments["mean_se"][5:16], mean_se[5:16], rtol=0.05, atol=0)


def test_monte_carlo_detects_a_wrong_temperature():
    """The Monte-Carlo check is able to fail: samples at beta = 3 disagree with beta = 2.5."""
    gen = torch.Generator().manual_seed(2)
    z = torch.linspace(-2, 2, 21, dtype=torch.float64)
    moments = boltzmann.mc_gate_moments(z, 3.0, 40_000, generator=gen)
    mean_se, _ = boltzmann.gate_moment_stderr(z, 2.5, 40_000)
    assert ((moments["mean"] - boltzmann.mean_activation(z, 2.5)).abs() > N_SE * mean_se).any()


def test_stochastic_network_is_the_deterministic_one_at_zero_temperature():
    gen = torch.Generator().manual_seed(3)
    weights = nets.init_weights([5, 7, 6, 1], generator=gen)
    x = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    cold = boltzmann.stochastic_forward(weights, x, 1e9, 4, generator=gen)
    torch.testing.assert_close(cold, nets.forward(weights, x).expand(4, 9))


def test_sampled_gates_follow_the_layered_bernoulli_model():
    gen = torch.Generator().manual_seed(4)
    weights = nets.init_weights([3, 4, 1], generator=gen)
    x = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    n = 50_000
    _, sampled = boltzmann.stochastic_forward(weights, x, 1.5, n, generator=gen, return_gates=True)
    p = boltzmann.open_probability(x @ weights[0].T, 1.5)
    se = (p * (1 - p) / n).sqrt()
    assert ((sampled[0].mean(0) - p).abs() <= N_SE * se).all()


def test_one_hidden_layer_mean_output_matches_monte_carlo():
    gen = torch.Generator().manual_seed(5)
    weights = nets.init_weights([4, 16, 1], generator=gen)
    x = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    samples = boltzmann.stochastic_forward(weights, x, 2.0, 50_000, generator=gen)
    mean, se = boltzmann.mean_and_stderr(samples)
    exact = boltzmann.one_hidden_layer_mean_output(weights, x, 2.0)
    assert ((mean - exact).abs() <= N_SE * se).all()
    value, stderr = boltzmann.relative_mean_output_gap(weights, x, 2.0, 50_000, generator=gen)
    assert abs(value - boltzmann.exact_relative_mean_output_gap(weights, x, 2.0)) <= N_SE * stderr
    with pytest.raises(ValueError, match="one hidden layer"):
        boltzmann.one_hidden_layer_mean_output(
            nets.init_weights([4, 3, 3, 1], generator=gen), x, 1.0
        )


def test_monte_carlo_gap_at_the_argmax():
    gen = torch.Generator().manual_seed(6)
    for beta in (1.0, 10.0):
        gap, se = boltzmann.mc_gap_at_argmax(beta, 40_000, generator=gen)
        assert abs(gap - boltzmann.max_relu_gap(beta)) <= N_SE * se


def test_variance_stderr_is_calibrated():
    """Over many repetitions the variance estimator's spread matches its reported standard error."""
    gen = torch.Generator().manual_seed(7)
    samples = torch.rand(400, 2000, generator=gen, dtype=torch.float64) ** 3  # skewed, non-Gaussian
    var, se = boltzmann.variance_and_stderr(samples, dim=1)
    assert float(var.std()) == pytest.approx(float(se.mean()), rel=0.15)
