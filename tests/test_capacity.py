"""Tests of asbbook.capacity (Chapter 5): Cover counting, exact separability, hinge training."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from functools import cache

import numpy as np
import pytest
import sympy as sp
import torch
from scipy.optimize import linprog

from asbbook import capacity, nets

# ---------------------------------------------------------------------------------------------
# Derivations
# ---------------------------------------------------------------------------------------------


def test_cover_recursion_derivation():
    d = capacity.derive_cover_recursion(grid=30)
    P, N = capacity.P_sym, capacity.N_sym
    # the displayed closed form evaluates to the exact counts
    for p, n in [(3, 2), (9, 4), (16, 8)]:
        rhs = d.closed_form.rhs.subs({P: p, N: n}).doit()
        assert int(rhs) == capacity.cover_count(p, n)
    C = sp.Function("C")
    assert d.recursion == sp.Eq(C(P + 1, N), C(P, N) + C(P, N - 1))


def test_cover_special_values_derivation():
    d = capacity.derive_cover_special(n_check=60)
    assert d.fraction_at_alpha_2 == sp.Rational(1, 2)
    N = capacity.N_sym
    for n in (1, 4, 11):
        assert d.at_twice_dimension.rhs.subs(N, n) == capacity.cover_count(2 * n, n)


def test_cover_step_derivation():
    d = capacity.derive_cover_step(n_numeric=1000)
    assert d.limits == {"alpha<2": 1, "alpha=2": sp.Rational(1, 2), "alpha>2": 0}
    # the displayed argument reproduces cover_fraction_normal
    P, N = capacity.P_sym, capacity.N_sym
    u = sp.Symbol("u", real=True)
    for p, n in [(30, 20), (50, 20), (41, 20)]:
        zval = float(d.standardised_argument.subs({P: p, N: n}))
        phi = float(d.normal_form.subs(u, zval))
        assert phi == pytest.approx(capacity.cover_fraction_normal(p, n), abs=1e-12)


def test_hinge_derivation():
    d = capacity.derive_hinge_versus_zero_one()
    assert sp.simplify(d.rescaled_hinge) == 0
    s = {sym.name: sym for sym in d.steps_bound.free_symbols}
    val = d.steps_bound.subs({s["P"]: 10, s["eta"]: 2, s["R"]: 3, s["gamma"]: sp.Rational(1, 2)})
    assert val == 10 * (1 + 9) * 4


# ---------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------


@cache
def _cover_by_recursion(P: int, N: int) -> int:
    """Independent implementation: Cover's recursion with its boundary conditions only."""
    if N == 0:
        return 0
    if P == 1 or N == 1:
        return 2
    return _cover_by_recursion(P - 1, N) + _cover_by_recursion(P - 1, N - 1)


def test_cover_count_matches_recursion():
    for P in range(1, 41):
        for N in range(1, 41):
            assert capacity.cover_count(P, N) == _cover_by_recursion(P, N), (P, N)


def test_cover_count_equals_brute_force_lp_enumeration():
    """Count the separable labelings of P random points in R^N with the LP: exactly C(P, N)."""
    rng = np.random.default_rng(1234)
    for N, P_max in [(1, 6), (2, 8), (3, 8)]:
        for P in range(1, P_max + 1):
            X = rng.standard_normal((P, N))
            count = 0
            for labels in itertools.product((-1.0, 1.0), repeat=P):
                count += capacity.is_linearly_separable(X, np.array(labels))
            assert count == capacity.cover_count(P, N), (P, N, count)


def test_cover_fraction_against_exact_fractions():
    for P in [1, 2, 3, 7, 40, 151, 400]:
        for N in [1, 2, 5, 20, 75, 200, 450]:
            exact = Fraction(capacity.cover_count(P, N), 2**P)
            got = capacity.cover_fraction(P, N)
            assert abs(got - float(exact)) <= 1e-12 * max(float(exact), 1e-300), (P, N)
    # P <= N: every dichotomy is realisable; P = 2N: exactly one half
    assert capacity.cover_fraction(30, 30) == 1.0
    for n in (1, 10, 500, 5000):
        assert capacity.cover_fraction(2 * n, n) == pytest.approx(0.5, abs=1e-12)


def test_cover_fraction_large_P_monotone_and_step():
    N = 1000
    P = np.arange(1000, 10001, 250)
    f = capacity.cover_fraction(P, N)
    assert np.all(np.isfinite(f)) and np.all((f >= 0) & (f <= 1))
    assert np.all(np.diff(f) <= 0)  # more patterns, fewer realisable dichotomies
    assert np.all(np.diff(capacity.cover_fraction(4000, np.arange(100, 4001, 100))) >= 0)
    # the step sharpens with N: the width of the transition in alpha shrinks like N^{-1/2}
    for n in (100, 1000, 5000):
        assert capacity.cover_fraction(int(1.8 * n), n) > capacity.cover_fraction(180, 100) - 1e-15
        assert capacity.cover_fraction(int(2.2 * n), n) < capacity.cover_fraction(220, 100) + 1e-15
    assert capacity.cover_fraction(18000, 10000) == pytest.approx(1.0, abs=1e-20)
    assert capacity.cover_fraction(10000, 4500) < 1e-20
    # array and scalar forms agree
    assert f[4] == capacity.cover_fraction(int(P[4]), N)


def test_cover_fraction_normal_approximation():
    for n in (200, 2000):
        for a in (1.5, 1.9, 2.0, 2.1, 2.5):
            p = int(round(a * n))
            exact = capacity.cover_fraction(p, n)
            assert abs(capacity.cover_fraction_normal(p, n) - exact) < 2.0 / n, (n, a)
    assert capacity.cover_fraction_normal(1, 3) == 1.0
    assert capacity.cover_fraction_normal(40, 20) == 0.5


# ---------------------------------------------------------------------------------------------
# Exact separability
# ---------------------------------------------------------------------------------------------


def _feasibility_lp(X, y) -> bool:
    """Independent formulation: is {w : y_mu w.x_mu >= 1} non-empty? (free w)."""
    P, N = X.shape
    res = linprog(np.zeros(N), A_ub=-(y[:, None] * X), b_ub=-np.ones(P), bounds=[(None, None)] * N)
    assert res.status in (0, 2), res.message
    return res.status == 0


def test_known_separable_and_non_separable_cases():
    sep = capacity.is_linearly_separable
    # a point and its negative with the same label: impossible through the origin
    assert not sep(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([1.0, 1.0]))
    assert sep(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([1.0, -1.0]))
    # XOR, made homogeneous by appending a constant coordinate: not separable; AND is
    X = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    assert not sep(X, np.array([-1.0, 1.0, 1.0, -1.0]))
    assert sep(X, np.array([-1.0, -1.0, -1.0, 1.0]))
    # the same pattern with both labels, and a zero pattern
    assert not sep(np.array([[1.0, 2.0], [1.0, 2.0]]), np.array([1.0, -1.0]))
    assert not sep(np.array([[0.0, 0.0], [1.0, 2.0]]), np.array([1.0, -1.0]))
    # separable with a small margin, at any overall scale; torch input accepted
    X = np.array([[1.0, 0.0], [1.0, 1e-4]])
    y = np.array([1.0, -1.0])
    for scale in (1e-6, 1.0, 1e6):
        assert sep(X * scale, y)
        assert sep(torch.as_tensor(X * scale), torch.as_tensor(y))
    # P <= N Gaussian patterns are always separable
    rng = np.random.default_rng(0)
    for _ in range(5):
        X = rng.standard_normal((6, 6))
        assert sep(X, rng.choice([-1.0, 1.0], 6))


def test_certificate_and_agreement_with_feasibility_lp():
    rng = np.random.default_rng(7)
    verdicts = []
    for _ in range(40):
        N = 8
        X = rng.standard_normal((16, N))
        y = rng.choice([-1.0, 1.0], 16)
        cert = capacity.separation_margin(X, y)
        verdict = capacity.is_linearly_separable(X, y)
        assert verdict == _feasibility_lp(X, y)
        verdicts.append(verdict)
        if verdict:  # the returned weights really separate the raw patterns
            assert np.all(y * (X @ cert.weights) > 0)
            assert np.max(np.abs(cert.weights)) <= 1 + 1e-9
        else:
            assert cert.margin <= 1e-9
    assert 5 < sum(verdicts) < 35  # both outcomes occur at alpha = 2


@pytest.mark.parametrize("P,N", [(10, 10), (18, 10), (20, 10), (25, 10), (30, 6)])
def test_separable_fraction_matches_cover(P, N):
    n_trials = 300
    f, se = capacity.separable_fraction(P, N, n_trials, seed=3)
    p = capacity.cover_fraction(P, N)
    se_pred = math.sqrt(p * (1 - p) / n_trials)
    assert abs(f - p) <= 4 * se_pred + 1e-12, (f, p, se_pred)
    assert se == pytest.approx(math.sqrt(f * (1 - f) / n_trials))


def test_separable_fraction_is_seeded():
    assert capacity.separable_fraction(12, 6, 20, seed=5) == capacity.separable_fraction(
        12, 6, 20, seed=5
    )


# ---------------------------------------------------------------------------------------------
# Hinge training
# ---------------------------------------------------------------------------------------------


def _hinge_gd_numpy(X, y, lr, max_steps):
    """Independent single-trial loop of the documented update rule."""
    P = len(y)
    w = np.zeros(X.shape[1])
    for step in range(max_steps + 1):
        m = y * (X @ w)
        act = m < 1
        if not act.any():
            return step
        if step == max_steps:
            return -1
        w = w + lr / P * ((act * y) @ X)
    return -1


def test_hinge_training_matches_reference_loop():
    P, N, lr, budget = 24, 12, 0.5, 400
    run = capacity.perceptron_hinge_training(P, N, 6, max_steps=budget, lr=lr, seed=11)
    for t in range(6):
        X, y = capacity.trial_patterns(P, N, t, seed=11)
        assert run.steps[t] == _hinge_gd_numpy(X.numpy(), y.numpy(), lr, budget)
    again = capacity.perceptron_hinge_training(P, N, 6, max_steps=budget, lr=lr, seed=11)
    np.testing.assert_array_equal(run.steps, again.steps)


def test_hinge_training_reaches_zero_only_when_separable_and_within_bound():
    P, N, lr = 36, 20, 1.0
    run = capacity.perceptron_hinge_training(
        P, N, 30, max_steps=3000, lr=lr, seed=2, check_separable=True
    )
    assert not np.any(run.reached & ~run.separable)  # zero hinge loss implies separability
    assert np.all(run.final_loss[run.reached] == 0)
    assert np.all(run.final_loss[~run.reached] > 0)
    # Batch Novikoff bound P (2/lr + R^2) / gamma^2 with gamma bounded below by the LP separator
    for t in np.flatnonzero(run.separable):
        X, y = (a.numpy() for a in capacity.trial_patterns(P, N, t, seed=2))
        w = capacity.separation_margin(X, y).weights
        gamma = np.min(y * (X @ w)) / np.linalg.norm(w)
        R2 = np.max(np.sum(X**2, axis=1))
        bound = P * (2 / lr + R2) / gamma**2
        if run.reached[t]:
            assert run.steps[t] <= bound
        else:
            assert bound > run.max_steps  # not reaching within the budget is allowed only then


def test_hinge_training_below_capacity_and_slowdown():
    N = 20
    easy = capacity.perceptron_hinge_training(N, N, 40, max_steps=2000, seed=4)
    assert easy.fraction == 1.0 and easy.stderr == 0.0
    hard = capacity.perceptron_hinge_training(36, N, 40, max_steps=2000, seed=4)
    assert hard.median_steps > 3 * easy.median_steps  # slower near alpha = 2


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("P,N", [(0, 3), (3, 0), (-1, 2), (2.5, 2), (True, 2), ("3", 2)])
def test_counts_reject_bad_sizes(P, N):
    with pytest.raises(ValueError):
        capacity.cover_count(P, N)
    with pytest.raises(ValueError):
        capacity.cover_fraction(P, N)


def test_arrays_reject_bad_sizes():
    with pytest.raises(ValueError):
        capacity.cover_fraction(np.array([3, 0]), 2)
    with pytest.raises(ValueError):
        capacity.cover_fraction(np.array([3.0, 4.0]), 2)


@pytest.mark.parametrize(
    "X,y,match",
    [
        (np.ones((3, 2)), np.ones(2), "shape"),
        (np.ones(3), np.ones(3), "shape"),
        (np.ones((0, 2)), np.ones(0), "shape"),
        (np.ones((3, 2)), np.array([1.0, 0.0, 1.0]), "labels"),
        (np.ones((3, 2)), np.array([1.0, 2.0, -1.0]), "labels"),
        (np.array([[1.0, np.nan], [1.0, 2.0]]), np.ones(2), "NaN"),
        (np.ones((2, 2)), np.array([1.0, np.nan]), "NaN"),
    ],
)
def test_separability_rejects_bad_data(X, y, match):
    with pytest.raises(ValueError, match=match):
        capacity.is_linearly_separable(X, y)


def test_training_rejects_bad_arguments():
    with pytest.raises(ValueError):
        capacity.perceptron_hinge_training(0, 3, 2)
    with pytest.raises(ValueError):
        capacity.perceptron_hinge_training(3, 3, 2, lr=0.0)
    with pytest.raises(ValueError):
        capacity.perceptron_hinge_training(3, 3, 2, max_steps=-1)
    with pytest.raises(TypeError, match="max_steps"):
        capacity.perceptron_hinge_training(3, 3, 2, max_steps=2.5)
    with pytest.raises(TypeError, match="dtype"):
        capacity.perceptron_hinge_training(3, 3, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match="device"):
        capacity.perceptron_hinge_training(3, 3, 2, device="tpu")
    with pytest.raises(ValueError):
        capacity.separable_fraction(3, 3, 0)


# ---------------------------------------------------------------------------------------------
# Phase-diagram analysis
# ---------------------------------------------------------------------------------------------


def _simulate_logistic(rng, x, x_star, width, n):
    p = 1 / (1 + np.exp(-(np.log(x) - np.log(x_star)) / width))
    return rng.binomial(n, p) / n


@pytest.mark.parametrize("method", ["logistic", "interpolate"])
def test_transition_point_recovers_known_crossing(method):
    rng = np.random.default_rng(5)
    x = np.geomspace(20, 400, 9)
    x_star, width, n = 90.0, 0.35, 24
    z = []
    for rep in range(60):
        f = _simulate_logistic(rng, x, x_star, width, n)
        t = capacity.transition_point(x, f, n, method=method, n_bootstrap=200, seed=rep)
        assert t.x_star_se == pytest.approx(t.x_star * t.log_x_star_se)
        z.append((t.log_x_star - np.log(x_star)) / t.log_x_star_se)
    z = np.asarray(z)
    # the error bars cover the truth (~95% nominal; measured 0.92-0.96 for the logistic fit and
    # 0.89-0.96 for the bootstrap of the interpolation, over 300 replicates)
    assert np.mean(np.abs(z) < 2) > (0.85 if method == "logistic" else 0.8)
    assert abs(np.mean(z)) < 0.5  # no large bias
    assert np.std(z) > 0.5  # and they are not grossly inflated either


def test_transition_point_on_perceptron_data():
    """The analysis applied to exact Cover fractions along N at fixed P finds N* = P/2."""
    P = 60
    N = np.arange(18, 44, 2)
    f = capacity.cover_fraction(P, N)  # treated as fractions of 10^6 trials
    t = capacity.transition_point(N, f, 10**6)
    assert abs(t.x_star - P / 2) < 0.5
    # Monte-Carlo fractions from the LP
    fm = np.array(
        [capacity.separable_fraction(40, int(n), 60, seed=9)[0] for n in range(12, 31, 3)]
    )
    tm = capacity.transition_point(np.arange(12, 31, 3), fm, 60)
    assert abs(tm.x_star - 20) < 4 * tm.x_star_se + 0.5


def test_transition_point_sharp_step_is_finite():
    x = np.array([10, 20, 40, 80, 160])
    f = np.array([0, 0, 1, 1, 1.0])
    for method in ("logistic", "interpolate"):
        t = capacity.transition_point(x, f, 8, method=method)
        assert 20 < t.x_star < 40 and np.isfinite(t.x_star_se) and t.x_star_se > 0


def test_transition_point_rejects_bad_input():
    x = np.array([1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="straddle"):
        capacity.transition_point(x, [0.6, 0.8, 1.0], 10)
    with pytest.raises(ValueError):
        capacity.transition_point(x, [0.0, 0.5], 10)
    with pytest.raises(ValueError):
        capacity.transition_point([0.0, 1.0, 2.0], [0.0, 0.5, 1.0], 10)
    with pytest.raises(ValueError):
        capacity.transition_point(x, [0.0, np.nan, 1.0], 10)
    with pytest.raises(ValueError):
        capacity.transition_point(x, [0.0, 0.5, 1.2], 10)
    with pytest.raises(ValueError):
        capacity.transition_point(x, [0.0, 0.5, 1.0], 0)
    with pytest.raises(ValueError):
        capacity.transition_point(x, [1.0, 0.5, 0.0], 10)  # decreasing
    with pytest.raises(ValueError):
        capacity.transition_point(x, [0.0, 0.5, 1.0], 10, method="spline")


def test_fit_transition_line_recovers_slope_and_coverage():
    rng = np.random.default_rng(8)
    P = np.array([32.0, 64, 128, 256, 512])
    se = 0.05 * P + 2
    hits_slope, hits_icpt = 0, 0
    for _ in range(200):
        y = 0.7 * P + 15 + rng.normal(0, se)
        line = capacity.fit_transition_line(P, y, se)
        hits_slope += abs(line.slope - 0.7) < 2 * line.slope_se
        hits_icpt += abs(line.intercept - 15) < 2 * line.intercept_se
    assert hits_slope > 170 and hits_icpt > 170
    # the prediction error at a held-out P matches a direct Monte-Carlo of the refit
    preds = []
    for _ in range(300):
        y = 0.7 * P + 15 + rng.normal(0, se)
        preds.append(capacity.fit_transition_line(P, y, se).predict(192.0))
    line = capacity.fit_transition_line(P, 0.7 * P + 15, se)
    assert float(line.predict_se(192.0)) == pytest.approx(np.std(preds), rel=0.15)
    # through the origin, noise-free perceptron line N* = P/2: capacity 2 per parameter
    line = capacity.fit_transition_line(P, P / 2, np.ones_like(P), through_origin=True)
    assert line.slope == pytest.approx(0.5) and line.intercept == 0.0
    assert line.patterns_per_unit == pytest.approx(2.0)
    assert line.patterns_per_unit_se == pytest.approx(line.slope_se / 0.25)
    np.testing.assert_allclose(line.predict(P), P / 2)


def test_fit_transition_line_inflates_errors_for_excess_scatter():
    P = np.array([10.0, 20, 30, 40, 50, 60])
    y = 2 * P + np.array([5.0, -5, 5, -5, 5, -5])
    small = capacity.fit_transition_line(P, y, np.full(6, 0.1))
    assert small.chi2 / small.dof > 100
    # with the Birge ratio the slope error reflects the real scatter, not the 0.1 claimed
    honest = capacity.fit_transition_line(P, y, np.full(6, 5.0))
    assert small.slope_se == pytest.approx(honest.slope_se, rel=1e-6)


def test_fit_transition_line_rejects_bad_input():
    with pytest.raises(ValueError):
        capacity.fit_transition_line([1.0, 2.0], [1.0], [1.0, 1.0])
    with pytest.raises(ValueError):
        capacity.fit_transition_line([1.0, 1.0], [1.0, 2.0], [1.0, 1.0])
    with pytest.raises(ValueError):
        capacity.fit_transition_line([1.0, 2.0], [1.0, 2.0], [1.0, 0.0])


# ---------------------------------------------------------------------------------------------
# Gate entropy (reservoir measure)
# ---------------------------------------------------------------------------------------------


def test_gate_entropy_of_a_hand_made_net():
    # two hidden units: one opens on exactly half the inputs (1 bit), one always (0 bits)
    X = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, 2.0], [-1.0, 3.0]], dtype=torch.float64)
    W1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    W2 = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    assert float(capacity.gate_entropy_bits([W1, W2], X)) == pytest.approx(1.0)
    # a 1-of-4 split: H_2(1/4)
    W1b = torch.tensor([[1.0, -0.6]], dtype=torch.float64)  # open only for x = (1, 1)
    h = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
    assert float(capacity.gate_entropy_bits([W1b, torch.ones(1, 1, dtype=torch.float64)], X)) == (
        pytest.approx(h)
    )
    # stacked form agrees member by member
    stacked = [torch.stack([W1, W1]), torch.stack([W2, 2 * W2])]
    np.testing.assert_allclose(capacity.gate_entropy_bits(stacked, X).numpy(), [1.0, 1.0])


def test_gate_entropy_first_layer_matches_binomial_theory():
    leading = capacity.derive_gate_entropy_first_layer().leading
    P, n0, n1, K = 32, 6, 20, 150
    # average over datasets and networks: the derivation treats the inputs as random
    gen = torch.Generator().manual_seed(3)
    s = []
    for r in range(K):
        X, _ = capacity.trial_patterns(P, n0, r, seed=1)
        w = nets.init_weights((n0, n1, 1), generator=gen)
        s.append(float(capacity.gate_entropy_bits(w, X)) / n1)  # per unit
    s = np.asarray(s)
    # exact expectation for one unit: E H_2(Bin(P, 1/2) / P)
    exact = sum(
        math.comb(P, j) / 2**P * float(capacity.binary_entropy_bits(torch.tensor(j / P)))
        for j in range(P + 1)
    )
    assert abs(float(leading.subs(sp.Symbol("P", positive=True), P)) - exact) < 2 / P**2
    assert abs(s.mean() - exact) < 4 * s.std(ddof=1) / math.sqrt(K)
    # the batched form on one fixed dataset agrees with the single-network form
    from asbbook import ensemble

    members = ensemble.member_specs((n0, n1, 1), 5)
    stacked = ensemble.stacked_weights(members, 3)
    single = [float(capacity.gate_entropy_bits(ensemble.member_weights(m, 3), X)) for m in members]
    np.testing.assert_allclose(capacity.gate_entropy_bits(stacked, X).numpy(), single)
    K = 5
    mean, se = capacity.gate_entropy_at_init((n0, n1, 1), X, K, seed=3)
    assert mean == pytest.approx(np.mean(single)) and se > 0


def test_gate_entropy_rejects_bad_input():
    W = [torch.ones(3, 2, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64)]
    with pytest.raises(ValueError):
        capacity.gate_entropy_bits(W, torch.ones(4, 3))
    with pytest.raises(ValueError):
        capacity.gate_entropy_bits(W, torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(TypeError, match="weights"):
        capacity.gate_entropy_bits([], torch.ones(4, 2))


# ---------------------------------------------------------------------------------------------
# Deep-net sweep cells
# ---------------------------------------------------------------------------------------------


def test_width_ladder():
    ladder = capacity.width_ladder(8, 2, 20, 400, 8)
    counts = [nets.parameter_count((8, *h, 1)) for h in ladder]
    assert all(len(h) == 1 for h in ladder)
    assert counts == sorted(set(counts))  # strictly increasing
    assert 0.5 * 20 <= counts[0] <= 2 * 20 and 0.5 * 400 <= counts[-1] <= 1.5 * 400
    deep = capacity.width_ladder(8, 4, 50, 2000, 10)
    assert all(len(h) == 3 and len(set(h)) == 1 for h in deep)
    dcounts = [nets.parameter_count((8, *h, 1)) for h in deep]
    ratios = np.diff(np.log(dcounts))
    assert np.all(ratios > 0) and ratios.max() < 4 * np.log(2000 / 50) / 9
    with pytest.raises(ValueError):
        capacity.width_ladder(8, 1, 10, 100, 5)
    with pytest.raises(ValueError):
        capacity.width_ladder(8, 2, 100, 10, 5)


def _cell_point(**kw):
    point = dict(
        dataset="gaussian",
        P=12,
        n_inputs=4,
        data_seed=1,
        hidden=[[1], [16]],
        n_init=2,
        seed=0,
        optimizer="adam",
        lr=0.02,
        steps=600,
        torch_threads=1,
    )
    point.update(kw)
    return point


def test_random_label_cell_and_aggregation():
    threads = torch.get_num_threads()
    a = capacity.random_label_cell(_cell_point())
    assert torch.get_num_threads() == threads  # the thread setting is scoped
    b = capacity.random_label_cell(_cell_point(data_seed=2))
    assert a["n_params"] == [nets.parameter_count((4, 1, 1)), nets.parameter_count((4, 16, 1))]
    # one hidden unit cannot fit 12 random labels in 4-D (a linear unit fits at most ~8);
    # 16 units (96 parameters) can
    assert not any(a["converged"][0]) and all(a["converged"][1])
    assert capacity.random_label_cell(_cell_point()) == a  # seeded
    col = capacity.aggregate_cells([a, b])
    assert col.n_runs == 4
    np.testing.assert_allclose(
        col.fraction, np.mean(np.r_[a["converged"], b["converged"]].reshape(2, 2, 2), axis=(0, 2))
    )
    # gate entropy at init: at most one bit per hidden unit, and about one for the first layer
    assert np.all(col.gate_entropy <= np.array([1, 16]) + 1e-12)
    assert col.gate_entropy[1] > 0.8 * 16
    assert np.isnan(col.median_steps[0]) and col.median_steps[1] > 0
    # the cell's data are the seeded Gaussian patterns with +-1 labels
    X, y = capacity.cell_data(_cell_point())
    assert X.shape == (12, 4) and set(y.tolist()) <= {-1.0, 1.0}


def test_cell_data_digits_and_bad_points():
    Xt, yt = capacity.cell_data(_cell_point(dataset="digits", P=50))
    Xs, ys = capacity.cell_data(_cell_point(dataset="digits_shuffled", P=50))
    assert Xt.shape == (50, 64) and torch.equal(Xt, Xs)
    assert not torch.equal(yt, ys) and sorted(yt.tolist()) == sorted(ys.tolist())
    with pytest.raises(ValueError):
        capacity.cell_data(_cell_point(dataset="mnist"))
    with pytest.raises(ValueError):
        capacity.random_label_cell(_cell_point(hidden=[]))
    with pytest.raises(ValueError):
        capacity.aggregate_cells([])
    with pytest.raises(ValueError):
        capacity.aggregate_cells(
            [
                {"n_params": [1], "converged": [[True]], "steps": [[1]], "gate_entropy": [[1.0]]},
                {"n_params": [2], "converged": [[True]], "steps": [[1]], "gate_entropy": [[1.0]]},
            ]
        )


def test_depth_spread():
    x = {2: [100.0, 200.0], 3: [110.0, 180.0]}
    spread, se = capacity.depth_spread(x)
    assert spread == pytest.approx((math.log(1.1) + math.log(200 / 180)) / 2) and math.isnan(se)
    spread, se = capacity.depth_spread(x, {2: [10.0, 20.0], 3: [11.0, 18.0]})
    assert se == pytest.approx(math.sqrt(4 * 0.1**2) / 2)  # every relative error is 0.1
    assert capacity.depth_spread({2: [5.0, 7.0], 4: [5.0, 7.0]})[0] == 0.0  # perfect collapse
    three = capacity.depth_spread({2: [1.0], 3: [2.0], 4: [4.0]})[0]
    assert three == pytest.approx(math.log(2) * (1 + 2 + 1) / 3)
    with pytest.raises(ValueError):
        capacity.depth_spread({2: [1.0, 2.0]})
    with pytest.raises(ValueError):
        capacity.depth_spread({2: [1.0, 2.0], 3: [1.0]})
    with pytest.raises(ValueError):
        capacity.depth_spread({2: [1.0, -2.0], 3: [1.0, 2.0]})


# ---------------------------------------------------------------------------------------------
# The chapter's sweeps
# ---------------------------------------------------------------------------------------------


def _tiny_parameters(**kw):
    values = dict(
        perceptron_dims=[4, 6],
        alpha_step=1.0,
        alpha_max=3.0,
        n_trials=12,
        hinge_dim=6,
        hinge_trials=4,
        hinge_steps=50,
        hinge_lr=1.0,
        n_inputs=4,
        hidden_layers=[1, 2],
        losses=["hinge", "quadratic_hinge"],
        P_fit=[8, 12],
        P_predict=[24],
        coarse_min=0.5,
        coarse_max=4.0,
        coarse_rungs=3,
        coarse_runs=1,
        fine_span=1.3,
        ladder_ratio=1.2,
        runs_per_cell=2,
        steps_per_example=2,
        lr=0.01,
        digits_P=16,
        digits_test=20,
        digits_runs=2,
        digits_span=2.0,
        digits_rungs=3,
        seed=0,
        # not sweep parameters: ignored
        assert_transitions=False,
        executor="processes",
    )
    values.update(kw)
    return values


def test_load_grid_and_patterns_for_load():
    assert capacity.load_grid(0.25, 1.0) == [0.25, 0.5, 0.75, 1.0]
    assert capacity.load_grid(0.1, 0.3) == [0.1, 0.2, 0.3]  # 0.3 / 0.1 = 2.9999999999999996
    assert len(capacity.load_grid(0.25, 4.0)) == 16
    assert capacity.patterns_for_load(0.25, 10) == 3  # 2.5 rounds half up
    assert capacity.patterns_for_load(0.01, 10) == 1
    assert capacity.patterns_for_load(2.0, 40) == 80
    with pytest.raises(ValueError):
        capacity.load_grid(0.5, 0.25)


def test_separability_and_hinge_cells_match_the_library_functions():
    P, N, n = 14, 7, 15
    lp = capacity.separability_cell({"P": P, "N": N, "n_trials": n, "seed": 4})
    assert len(lp["separable"]) == n and all(isinstance(v, bool) for v in lp["separable"])
    assert np.mean(lp["separable"]) == capacity.separable_fraction(P, N, n, seed=4).value
    point = {"P": P, "N": N, "n_trials": 6, "max_steps": 300, "lr": 1.0, "seed": 4}
    cell = capacity.hinge_training_cell({**point, "torch_threads": 1})
    run = capacity.perceptron_hinge_training(P, N, 6, max_steps=300, seed=4, check_separable=True)
    assert cell["steps"] == run.steps.tolist()
    assert cell["final_loss"] == run.final_loss.tolist()
    # the LP verdicts the chapter reuses are those of the hinge cell's own datasets
    assert run.separable.tolist() == lp["separable"][:6]
    assert "separable" not in cell


def test_perceptron_bmm_step_matches_the_elementwise_update():
    """The batched bmm step equals w <- w + (lr/P) sum_{m < 1} y x, written out by hand."""
    P, N, steps = 12, 5, 7
    run = capacity.perceptron_hinge_training(P, N, 3, max_steps=steps, lr=0.5, seed=8)
    for t in range(3):
        X, y = capacity.trial_patterns(P, N, t, seed=8)
        w = torch.zeros(N, dtype=torch.float64)
        for step in range(steps + 1):
            m = y * (X @ w)
            if (m >= 1).all():
                assert run.steps[t] == step
                break
            if step == steps:
                assert run.steps[t] == -1
                loss = torch.clamp(1 - m, min=0).mean()
                assert run.final_loss[t] == pytest.approx(float(loss), rel=1e-12)
                break
            w = w + 0.5 / P * ((m < 1).double()[:, None] * y[:, None] * X).sum(0)


def test_sweep_parameters_normalise_and_reject():
    from asbbook.params import ParameterError

    a = capacity.sweep_parameters(_tiny_parameters(hinge_lr=1, coarse_max=4))
    b = capacity.sweep_parameters(_tiny_parameters())
    assert a == b and isinstance(a["hinge_lr"], float) and "assert_transitions" not in a
    assert set(a) == set(capacity.SWEEP_PARAMETERS)
    bad = [
        ({"n_trials": 0}, "'n_trials'"),
        ({"hinge_dim": 5}, "'hinge_dim'"),  # its LP verdicts must exist
        ({"hinge_trials": 13}, "'hinge_trials'"),
        ({"hidden_layers": [0, 1]}, "'hidden_layers'"),
        ({"hidden_layers": [1, 1]}, "'hidden_layers'"),
        ({"hidden_layers": [2]}, "'hidden_layers'"),  # the chapter compares depths
        ({"losses": ["hinge", "squared"]}, "'losses'"),
        ({"P_fit": [64]}, "'P_fit'"),
        ({"P_predict": [10]}, "'P_predict'"),  # inside the fitted range: not an extrapolation
        ({"P_predict": [12]}, "'P_predict'"),
        ({"coarse_max": 0.25}, "'coarse_max'"),
        ({"ladder_ratio": 1.0}, "'ladder_ratio'"),
        ({"alpha_max": 0.5}, "'alpha_max'"),
        ({"alpha_step": 0.001}, "'alpha_step'"),
        ({"lr": -0.1}, "'lr'"),
        ({"digits_P": 5000}, "'digits_P'"),
        ({"digits_P": 1700, "digits_test": 500}, "'digits_test'"),
        (
            {"steps_per_example": 10**4, "runs_per_cell": 1000},
            "'steps_per_example'",
        ),  # refused before any work
        ({"seed": 1.5}, "'seed'"),
    ]
    for change, name in bad:
        with pytest.raises(ParameterError, match=name):
            capacity.sweep_parameters(_tiny_parameters(**change))
    values = _tiny_parameters()
    del values["steps_per_example"]
    with pytest.raises(ParameterError, match="missing chapter parameter.*steps_per_example"):
        capacity.sweep_parameters(values)


def test_chapter_sweeps_build_the_four_sweeps():
    specs = capacity.chapter_sweeps(_tiny_parameters())
    assert [s.name for s in specs] == [
        "ch05-perceptron-lp",
        "ch05-perceptron-hinge",
        "ch05-jamming",
        "ch05-digits",
    ]
    lp, hinge, deep, digits = specs
    assert lp.fn is capacity.separability_cell and hinge.fn is capacity.hinge_training_cell
    assert deep.fn is capacity.adaptive_cell and digits.fn is capacity.adaptive_cell
    assert sorted((q["N"], q["P"]) for q in lp.points) == sorted(
        (N, N * k) for N in (4, 6) for k in (1, 2, 3)
    )
    # every hinge dataset is one the LP sweep decided
    lp_keys = {(q["N"], q["P"]) for q in lp.points}
    assert all((q["N"], q["P"]) in lp_keys and q["n_trials"] <= 12 for q in hinge.points)
    assert sorted(q["P"] for q in hinge.points) == [6, 12, 18]
    # deep cells: every loss, depth and P, largest P first; reservoir measures with the hinge
    assert [q["P"] for q in deep.points] == [24] * 4 + [12] * 4 + [8] * 4
    assert {(q["loss"], q["hidden_layers"]) for q in deep.points} == {
        (loss, d) for loss in ("hinge", "quadratic_hinge") for d in (1, 2)
    }
    assert all(q["measures"] == (q["loss"] == "hinge") for q in deep.points)
    assert all(q["torch_threads"] == 1 for q in deep.points + digits.points)
    assert all(q["steps"] == 2 * q["P"] for q in deep.points + digits.points)  # budget ~ P
    assert digits.points[0]["dataset"] == "digits" and digits.points[0]["n_test"] == 20
    again = capacity.chapter_sweeps(_tiny_parameters())
    assert [(s.points, s.data_fingerprint) for s in again] == [
        (s.points, s.data_fingerprint) for s in specs
    ]
    other = capacity.chapter_sweeps(_tiny_parameters(seed=1))
    assert all(a.data_fingerprint != b.data_fingerprint for a, b in zip(specs, other, strict=True))


def test_chapter_sweeps_run_and_summarise(tmp_path):
    from asbbook import sweep
    from asbbook.capacity import chapter

    specs = capacity.chapter_sweeps(_tiny_parameters(P_fit=[8, 12], P_predict=[24]))
    deep = specs[2]
    results = sweep.run_spec(deep, cache_dir=tmp_path, executor="inprocess", progress=False)
    summary = chapter.summarise_jamming(deep.points, results, [8, 12], [24])
    assert set(summary.columns) == {
        (loss, d, P) for loss in ("hinge", "quadratic_hinge") for d in (1, 2) for P in (8, 12, 24)
    }
    col = summary.columns["hinge", 2, 24]
    assert col.n_runs == 2 and col.converged.shape == (len(col.n_params), 2)
    assert set(col.measures) == {
        "parameters",
        "parameters_minus_gauge",
        "jacobian_rank",
        "gate_entropy",
    }
    assert (
        col.measures["jacobian_rank"] <= np.minimum(24, col.n_params - col.n_hidden)[:, None]
    ).all()
    assert "jacobian_rank" not in summary.columns["quadratic_hinge", 2, 24].measures
    assert (tmp_path / "ch05-jamming").is_dir()
    assert sweep.run_spec(deep, cache_dir=tmp_path, executor="inprocess", progress=False) == results


def _notebook_defaults(path) -> dict:
    """The chapter's parameters cell executed on its own: the values a notebook run starts from."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    values: dict = {}
    exec(cell.source, {}, values)  # plain literal assignments with annotations
    return values, dict(nb.metadata["asbbook"]["smoke_parameters"]), nb.metadata["asbbook"]


def test_notebook_defaults_and_smoke_parameters_are_valid(root):
    chapter = root / "book" / "05-capacity.ipynb"
    defaults, smoke, meta = _notebook_defaults(chapter)
    assert meta["sweeps"] == "asbbook.capacity:chapter_sweeps"
    full = capacity.sweep_parameters(defaults)
    small = capacity.sweep_parameters({**defaults, **smoke})
    # the headline design: extrapolation to at least twice the fitted sizes, 1 to 3 hidden
    # layers, both losses, >= 24 runs per cell near the transition, rungs at most x1.12 apart
    assert min(full["P_predict"]) >= 2 * max(full["P_fit"])
    assert full["hidden_layers"] == [1, 2, 3] and full["runs_per_cell"] >= 24
    assert set(full["losses"]) == {"hinge", "quadratic_hinge"} and full["ladder_ratio"] <= 1.12
    assert min(small["P_predict"]) >= 2 * max(small["P_fit"])
    assert smoke["assert_transitions"] is False and defaults["assert_transitions"] is True


def test_cli_sweep_warms_exactly_the_notebook_cache(tmp_path, root, capsys):
    """`asbbook sweep <chapter 5> --smoke -p ...` fills the cache entries the notebook will read."""
    from asbbook import cli, sweep

    chapter = root / "book" / "05-capacity.ipynb"
    defaults, smoke, _ = _notebook_defaults(chapter)
    tiny = {
        "perceptron_dims": "[4]",
        "alpha_step": "1.0",
        "alpha_max": "3",
        "n_trials": "10",
        "hinge_dim": "4",
        "hinge_trials": "2",
        "hinge_steps": "20",
        "n_inputs": "4",
        "hidden_layers": "[1, 2]",
        "losses": "[hinge]",
        "P_fit": "[8, 12]",
        "P_predict": "[24]",
        "coarse_rungs": "3",
        "coarse_runs": "1",
        "runs_per_cell": "2",
        "steps_per_example": "1",
        "digits_P": "16",
        "digits_test": "20",
        "digits_runs": "2",
        "digits_rungs": "3",
    }
    argv = [
        "sweep",
        str(chapter),
        "--smoke",
        "--executor",
        "inprocess",
        "--cache-dir",
        str(tmp_path),
    ]
    for name, value in tiny.items():
        argv += ["-p", name, value]
    assert cli.main(argv) == 0
    assert "ch05-digits: 1 points cached" in capsys.readouterr().out
    import yaml

    values = {**defaults, **smoke, **{k: yaml.safe_load(v) for k, v in tiny.items()}}
    for spec in capacity.chapter_sweeps(values):
        for point in spec.points:
            key = sweep.cache_key(spec.fn, point, spec.data_fingerprint)
            assert (tmp_path / spec.name / f"{key}.json").is_file(), (spec.name, point)
