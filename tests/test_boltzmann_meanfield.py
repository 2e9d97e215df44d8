"""asbbook.boltzmann.meanfield: the moment closure for deep stochastic networks."""

from __future__ import annotations

import pytest
import torch
from scipy import integrate, special, stats

from asbbook import boltzmann, nets


def test_the_derivation_asserts_and_returns_the_closure():
    d = boltzmann.derive_mean_field()
    mu, s = d.relu_gaussian_mean.free_symbols, d.relu_gaussian_second_moment.free_symbols
    assert {x.name for x in mu} == {"mu", "s"} and {x.name for x in s} == {"mu", "s"}
    values = {x.name: x for x in mu}
    point = {values["mu"]: 0.3, values["s"]: 0.7}
    expected = stats.norm(0.3, 0.7).expect(lambda z: max(z, 0.0))
    assert float(d.relu_gaussian_mean.subs(point)) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize(
    ("mean", "sd", "beta"),
    [(0.0, 0.1, 64.0), (0.3, 0.5, 4.0), (-0.2, 0.05, 16.0), (0.01, 0.3, 64.0)],
)
def test_gaussian_gate_moments_against_adaptive_quadrature(mean, sd, beta):
    def expect(f):
        integrand = lambda z: f(z) * special.expit(beta * z) * stats.norm.pdf(z, mean, sd)  # noqa: E731
        return integrate.quad(integrand, mean - 12 * sd, mean + 12 * sd, points=[0.0], limit=200)[0]

    first, second = expect(lambda z: z), expect(lambda z: z * z)
    m, v = boltzmann.gaussian_gate_moments(
        torch.tensor([mean], dtype=torch.float64), torch.tensor([sd**2], dtype=torch.float64), beta
    )
    assert float(m[0]) == pytest.approx(first, rel=1e-3, abs=1e-9)
    assert float(v[0]) == pytest.approx(second - first**2, rel=1e-3, abs=1e-9)


def test_zero_variance_gives_the_gate_mean_exactly():
    z = torch.linspace(-2, 2, 9, dtype=torch.float64)
    m, v = boltzmann.gaussian_gate_moments(z, torch.zeros_like(z), 3.0)
    torch.testing.assert_close(m, boltzmann.mean_activation(z, 3.0))
    torch.testing.assert_close(v, boltzmann.activation_variance(z, 3.0))


def test_the_closure_is_exact_for_one_hidden_layer():
    gen = torch.Generator().manual_seed(0)
    weights = nets.init_weights([5, 12, 1], generator=gen)
    X = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    state = boltzmann.mean_field_propagate(weights, X, 2.5)
    exact = boltzmann.one_hidden_layer_mean_output(weights, X, 2.5)
    torch.testing.assert_close(state.output_mean, exact)
    assert boltzmann.mean_field_relative_gap(weights, X, 2.5) == pytest.approx(
        boltzmann.exact_relative_mean_output_gap(weights, X, 2.5), rel=1e-12
    )


def test_the_closure_predicts_the_gap_of_a_deep_network():
    """Width 64, two hidden layers: prediction and Monte-Carlo agree within 10% + 4 SE; the
    closure without its variance propagation (v = 0) misses, so the test can fail."""
    gen = torch.Generator().manual_seed(11)
    weights = nets.init_weights([16, 64, 64, 1], generator=gen)
    X = torch.randn(16, 16, generator=gen, dtype=torch.float64)
    for beta in (1.0, 4.0):
        predicted = boltzmann.mean_field_relative_gap(weights, X, beta)
        measured = boltzmann.relative_mean_output_gap(weights, X, beta, 4000, generator=gen)
        assert abs(measured.value - predicted) <= 0.1 * predicted + 4 * measured.stderr
    # Dropping the propagated noise (every layer sees its mean only) misses at beta = 1.
    h = X
    for w in weights[:-1]:
        h = boltzmann.mean_activation(h @ w.T, 1.0)
    naive = boltzmann.relative_gap((h @ weights[-1].T)[:, 0], nets.forward(weights, X))
    measured = boltzmann.relative_mean_output_gap(weights, X, 1.0, 4000, generator=gen)
    assert abs(measured.value - naive) > 0.1 * naive + 4 * measured.stderr
