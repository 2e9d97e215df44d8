"""asbbook.boltzmann: sympy identities, numerical stability, and Monte-Carlo against theory."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

from asbbook import boltzmann, nets, stats

N_SE = 4.0  # Monte-Carlo tolerance of the seeded tests: four standard errors


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
    assert boltzmann.derive_entropy_maximum().entropy == sp.log(2)


def test_zero_temperature_limits_are_relu():
    limits = boltzmann.derive_zero_temperature_limits()
    zp = sp.Symbol("z", positive=True)
    assert limits.mean_activation == (zp, 0)
    assert limits.free_energy == (-zp, 0)
    assert limits.mean_gate == (1, 0)
    assert dict(limits.items())["activation variance"] == (0, 0)


def test_sup_gap_is_lambert_w_over_beta():
    t_star, gap = boltzmann.derive_sup_gap()
    assert float(gap) == pytest.approx(0.2784645427610738, rel=1e-15)
    assert float(t_star) == pytest.approx(1.2784645427610738, rel=1e-15)
    closed = float(boltzmann.derive_sup_gap().closed_probability)
    assert closed == pytest.approx(1 / (1 + math.exp(1.2784645427610738)), rel=1e-14)
    assert closed == pytest.approx(boltzmann.closed_probability_at_argmax(), rel=1e-14)
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


def _grid_row(moments, beta):
    return boltzmann.minority_gate_family(
        "gates", moments.z, beta, moments.open_count.tolist(), moments.n_samples
    )


def test_monte_carlo_gate_moments_match_theory():
    gen = torch.Generator().manual_seed(1)
    z = torch.linspace(-2, 2, 21, dtype=torch.float64)
    beta, n = 3.0, 40_000
    moments = boltzmann.sample_gate_moments(z, beta, n, generator=gen)
    # The count is the sufficient statistic: the moments are functions of it.
    k = moments.open_count.double()
    torch.testing.assert_close(moments.mean.value, z * k / n)
    torch.testing.assert_close(moments.variance.value, z * z * k * (n - k) / (n * (n - 1)))
    assert _grid_row(moments, beta).p_value() > 1e-3
    mean_se, var_se = boltzmann.gate_moment_stderr(z, beta, n)
    assert ((moments.variance.value - boltzmann.activation_variance(z, beta)).abs()
            <= N_SE * var_se).all()  # fmt: skip
    # The samples' own standard errors agree with the predicted ones where the CLT holds.
    torch.testing.assert_close(moments.mean.stderr[5:16], mean_se[5:16], rtol=0.05, atol=0)


def test_monte_carlo_detects_a_wrong_temperature():
    """The exact grid test is able to fail: samples at beta = 3 disagree with beta = 2.5."""
    gen = torch.Generator().manual_seed(2)
    z = torch.linspace(-2, 2, 21, dtype=torch.float64)
    moments = boltzmann.sample_gate_moments(z, 3.0, 40_000, generator=gen)
    assert _grid_row(moments, 2.5).p_value() < 1e-6


def test_grid_row_combines_exact_tests_by_sidak():
    from scipy import stats as sstats

    from asbbook.report import BinomialComparison

    points = [BinomialComparison("a", 0.5, 50, 100), BinomialComparison("b", 0.001, 3, 100)]
    row = boltzmann.SidakFamily("g", points, ["a", "b"])

    def equal_tailed(k, n, p):
        return min(1.0, 2 * min(sstats.binom.cdf(k, n, p), sstats.binom.sf(k - 1, n, p)))

    p_points = [equal_tailed(50, 100, 0.5), equal_tailed(3, 100, 0.001)]
    assert row.p_value() == pytest.approx(1 - (1 - min(p_points)) ** 2, rel=1e-6)
    assert row.labels[row.worst] == "b"
    assert 0 < row.detectable(0.001) < 0.5
    with pytest.raises(ValueError, match="open_count"):
        boltzmann.minority_gate_family("g", [0.5], 1.0, [101], 100)
    # The minority count is tested: closed gates above zero, open gates below.
    family = boltzmann.minority_gate_family("g", [-1.0, 1.0], 2.0, [3, 97], 100)
    assert [r.successes for r in family.rows] == [3, 3]


def test_the_deprecated_estimators_delegate_to_stats():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match="mean_with_stderr"):
        old = boltzmann.mean_and_stderr(x)
    assert all(torch.equal(a, b) for a, b in zip(old, stats.mean_with_stderr(x), strict=True))
    with pytest.warns(DeprecationWarning, match="variance_with_stderr"):
        old = boltzmann.variance_and_stderr(x)
    assert all(torch.equal(a, b) for a, b in zip(old, stats.variance_with_stderr(x), strict=True))
    with pytest.warns(DeprecationWarning, match="sample_gate_moments"):
        boltzmann.mc_gate_moments(torch.zeros(2, dtype=torch.float64), 1.0, 10)


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
    mean, se = stats.mean_with_stderr(samples)
    exact = boltzmann.one_hidden_layer_mean_output(weights, x, 2.0)
    assert ((mean - exact).abs() <= N_SE * se).all()
    value, stderr = boltzmann.relative_mean_output_gap(weights, x, 2.0, 50_000, generator=gen)
    assert abs(value - boltzmann.exact_relative_mean_output_gap(weights, x, 2.0)) <= N_SE * stderr
    with pytest.raises(ValueError, match="weights: .*one hidden layer"):
        boltzmann.one_hidden_layer_mean_output(
            nets.init_weights([4, 3, 3, 1], generator=gen), x, 1.0
        )


def test_monte_carlo_gap_at_the_argmax():
    gen = torch.Generator().manual_seed(6)
    for beta in (1.0, 10.0):
        gap, se = boltzmann.mc_gap_at_argmax(beta, 40_000, generator=gen)
        assert abs(gap - boltzmann.max_relu_gap(beta)) <= N_SE * se


def test_the_stochastic_forward_pass_is_the_core_one_with_a_stochastic_gate():
    """Same uniforms, same gates: stochastic_forward is nets.preactivations + stochastic_gate."""
    weights = nets.init_weights([3, 5, 4, 1], generator=torch.Generator().manual_seed(8))
    X = torch.randn(6, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    out = boltzmann.stochastic_forward(
        weights, X, 2.0, 7, generator=torch.Generator().manual_seed(1)
    )
    gate = boltzmann.stochastic_gate(2.0, torch.Generator().manual_seed(1))
    expected = nets.preactivations(weights, X.expand(7, 6, 3), activation=gate)[-1][..., 0]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_monte_carlo_gap_binomial_count():
    sample = boltzmann.sample_gap_at_argmax(2.0, 1000, generator=torch.Generator().manual_seed(3))
    assert sample.gap.value == pytest.approx(sample.z_star * sample.closed_count / 1000, rel=1e-12)


def test_upper_half_exponent_recovers_a_power_law():
    betas = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0], dtype=torch.float64)
    assert boltzmann.upper_half_exponent(betas, 3 * betas**-2.5) == pytest.approx(-2.5)
    # Only the upper half enters: a different law below does not matter.
    values = torch.where(betas < 4, betas**-1.0, 3 * betas**-2.5)
    assert boltzmann.upper_half_exponent(betas, values) == pytest.approx(-2.5)
    with pytest.raises(ValueError):
        boltzmann.upper_half_exponent(betas[:1], betas[:1])


def test_the_graphical_model_diagram_has_one_gate_per_hidden_unit():
    from matplotlib import patches
    from matplotlib import pyplot as plt

    fig, ax = boltzmann.draw_graphical_model((2, 3, 2, 1))
    gates = [p for p in ax.patches if isinstance(p, patches.Circle)
             and p.get_facecolor()[:3] != (0.8666666666666667,) * 3]  # fmt: skip
    assert len(gates) == 3 + 2
    plt.close(fig)
    with pytest.raises(ValueError, match="widths"):
        boltzmann.draw_graphical_model((2, 30, 1))
