"""The core modules: the one forward pass, the one symbolic network, estimators and fits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from asbbook import data, nets, phase, stats, symbolic


def test_forward_pass_broadcasts_an_ensemble_against_shared_inputs():
    gen = torch.Generator().manual_seed(0)
    members = [nets.init_weights((5, 4, 3, 1), generator=gen) for _ in range(3)]
    stacked = [torch.stack(layer) for layer in zip(*members, strict=True)]
    X = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    together = nets.forward(stacked, X)
    assert together.shape == (3, 7)
    for k, member in enumerate(members):
        torch.testing.assert_close(together[k], nets.forward(member, X), rtol=0, atol=1e-12)


def test_activation_hook_replaces_the_relu():
    gen = torch.Generator().manual_seed(1)
    weights = nets.init_weights((3, 4, 1), generator=gen)
    X = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    linear = nets.preactivations(weights, X, activation=lambda z: z)[-1]
    torch.testing.assert_close(linear, X @ weights[0].T @ weights[1].T)


def test_symbolic_circuit_sum_equals_the_layered_network():
    ws = symbolic.weight_symbols((2, 3, 2, 1))
    x = sp.Matrix(symbolic.input_symbols(2))
    zs, gates = symbolic.layered_forward(ws, x)
    assert sp.expand(symbolic.circuit_sum(ws, x, gates)[0] - zs[-1][0]) == 0
    g = symbolic.unit_symbols("g", (2, 3, 2, 1))
    parts = list(symbolic.circuit_parts(ws, g, list(x)))
    assert len(parts) == 2 * 3 * 2 * 1
    total = sp.Add(*(xi * J * S for _, xi, J, S in parts))
    assert sp.expand(total - symbolic.gated_output(ws, g, list(x))) == 0


def test_symmetric_expectation_kills_odd_monomials():
    a, b = sp.symbols("a b", real=True)
    s2 = sp.Symbol("s", positive=True)
    moments = {a: s2, b: 2 * s2}
    assert symbolic.symmetric_expectation(a * b, moments) == 0
    assert sp.simplify(symbolic.symmetric_expectation((a + b) ** 2, moments) - 3 * s2) == 0


def test_weighted_least_squares_matches_numpy_and_scales_by_birge():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 30)
    se = np.full(30, 0.1)
    y = 2 * x + 1 + rng.normal(0, 0.3, 30)  # scatter 3x the stated errors
    fit = stats.weighted_least_squares(np.column_stack([x, np.ones_like(x)]), y, se)
    np.testing.assert_allclose(fit.coefficients, np.polyfit(x, y, 1), rtol=1e-10)
    assert fit.chi2 / fit.dof > 4
    plain = stats.weighted_least_squares(np.column_stack([x, np.ones_like(x)]), y, se, birge=False)
    assert fit.stderr[0] == pytest.approx(plain.stderr[0] * math.sqrt(fit.chi2 / fit.dof))
    with pytest.raises(ValueError, match="rank"):
        stats.weighted_least_squares(np.ones((5, 2)), np.ones(5), np.ones(5))


def test_mean_estimator_is_calibrated():
    gen = torch.Generator().manual_seed(2)
    samples = torch.rand(2000, 50, generator=gen, dtype=torch.float64)
    est = stats.mean_with_stderr(samples, dim=1)
    z = (est.value - 0.5) / est.stderr
    assert float((z.abs() > 1.96).double().mean()) == pytest.approx(0.05, abs=0.02)


def test_cell_points_share_images_between_true_and_shuffled_digits():
    kwargs = dict(P=40, n_inputs=64, ladder=[(3,)], n_data=2, n_init=2, steps=5, lr=0.01, seed=3)
    true = phase.cell_points(dataset="digits", **kwargs)
    shuffled = phase.cell_points(dataset="digits_shuffled", **kwargs)
    assert [p["data_seed"] for p in true] == [p["data_seed"] for p in shuffled]
    assert len({p["data_seed"] for p in true}) == 2
    X1, y1 = phase.cell_data(true[0])
    X2, y2 = phase.cell_data(shuffled[0])
    torch.testing.assert_close(X1, X2)
    assert sorted(y1.tolist()) == sorted(y2.tolist()) and not torch.equal(y1, y2)


def test_derive_seed_depends_on_every_label():
    base = data.derive_seed(1, purpose="a", index=0)
    assert base != data.derive_seed(2, purpose="a", index=0)
    assert base != data.derive_seed(1, purpose="b", index=0)
    assert base != data.derive_seed(1, purpose="a", index=1)
    assert base == data.derive_seed(1, index=0, purpose="a")  # order of labels is irrelevant


def test_reservoir_entropy_of_a_unit_splitting_the_data_is_one_bit():
    weights = [
        torch.tensor([[1.0, 0.0]], dtype=torch.float64),
        torch.ones(1, 1, dtype=torch.float64),
    ]
    X = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [2.0, 1.0], [-2.0, 1.0]], dtype=torch.float64)
    assert float(phase.reservoir_entropy_bits(weights, X)) == pytest.approx(1.0)


def test_sample_variance_law_matches_monte_carlo_for_the_exponential():
    """Exponential draws (cumulants k_j = (j-1)!): 40000 sample variances of n = 30 give the
    SD to ~0.6% (its kurtosis included) and the skewness to ~0.05; windows of ~4 SE."""
    from asbbook.stats import sample_variance_law

    gen = torch.Generator().manual_seed(3)
    n = 30
    draws = -torch.log(torch.rand(40_000, n, generator=gen, dtype=torch.float64))
    s2 = draws.var(dim=1)
    law = sample_variance_law([math.factorial(j - 1) for j in range(2, 7)], n)
    assert law.mean == 1.0
    assert abs(float(s2.mean()) - law.mean) < 4 * law.stderr / 200
    assert abs(float(s2.std()) / law.stderr - 1) < 0.04
    skew = float(((s2 - s2.mean()) ** 3).mean() / s2.std() ** 3)
    assert abs(skew - law.skewness) < 0.25 * law.skewness, (skew, law.skewness)
    with pytest.raises(ValueError, match="n_samples"):
        sample_variance_law([1, 0, 0, 0, 0], 3)
    with pytest.raises(ValueError, match="cumulants"):
        sample_variance_law([1, 0, 0], 30)


def test_weighted_least_squares_names_singular_normal_equations():
    design = np.column_stack([[16.0, 24.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="errors span"):
        stats.weighted_least_squares(design, [1.78e103, 128.8], [3.07e108, 14.8])
