"""Tests of the chapter-5 jamming machinery: padded training with the linear and quadratic hinge,
the architecture ladders, the cells' reservoir measures and the analysis of the transitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from asbbook import data, ensemble, nets
from asbbook.capacity import analysis, jamming, training
from asbbook.stats import Estimate

# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["hinge", "quadratic_hinge"])
def test_margin_loss_gradient_matches_autograd(loss):
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(3, 10, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 2, (3, 10), generator=gen).double() * 2 - 1
    value, grad, unsat = training.margin_loss_and_grad(f, y, loss)
    gap = torch.relu(1 - y * f)
    ref = gap.mean(-1) if loss == "hinge" else (gap**2).mean(-1) / 2
    (auto,) = torch.autograd.grad(ref.sum(), f)
    assert torch.allclose(value, ref) and torch.allclose(grad, auto)
    assert torch.equal(unsat, (y * f < 1).sum(-1))


def test_padding_is_exact():
    """A narrow member padded into a wide group trains as it does alone."""
    X, y = data.gaussian_patterns(24, 4, seed=3)
    alone = training.padded_initial_weights([(4, 3, 2, 1)], [0], seed=5)
    both = training.padded_initial_weights([(4, 3, 2, 1), (4, 5, 5, 1)], [0, 0], seed=5)
    spec = ensemble.MemberSpec((4, 3, 2, 1), 0)
    for a, b, w in zip(alone, both, ensemble.member_weights(spec, 5), strict=True):
        assert torch.equal(a[0], w) and torch.equal(b[0, : w.shape[0], : w.shape[1]], w)
        assert (b[0, w.shape[0] :] == 0).all() and (b[0, :, w.shape[1] :] == 0).all()
    for loss in ("hinge", "quadratic_hinge"):
        a = training.train_padded(alone, X, y, loss=loss, steps=200)
        b = training.train_padded(both, X, y, loss=loss, steps=200)
        assert a.steps[0] == b.steps[0] and a.n_unsatisfied[0] == b.n_unsatisfied[0]
        fa = nets.forward([w[0] for w in a.weights], X)
        fb = nets.forward([w[0] for w in b.weights], X)
        assert torch.allclose(fa, fb, atol=1e-9)
        # the padded weights stayed exactly zero
        assert (b.weights[0][0, 3:] == 0).all() and (b.weights[1][0, :, 3:] == 0).all()


def test_training_stops_at_zero_loss_and_counts_unsatisfied_margins():
    X, y = data.gaussian_patterns(16, 5, seed=1)
    w = training.padded_initial_weights([(5, 40, 1), (5, 1, 1)], [0, 0], seed=2)
    res = training.train_padded(w, X, y, loss="quadratic_hinge", steps=3000, lr=0.01)
    assert res.converged[0] and res.steps[0] < 3000 and res.n_unsatisfied[0] == 0
    f = nets.forward([v[0] for v in res.weights], X)
    assert (y * f >= 1).all() and res.loss[0] == 0.0
    # a single hidden unit cannot fit 16 random labels: unsatisfied margins remain
    assert not res.converged[1] and res.steps[1] == 3000 and res.n_unsatisfied[1] > 0
    f1 = nets.forward([v[1] for v in res.weights], X)
    assert res.n_unsatisfied[1] == int((y * f1 < 1).sum())


def test_training_refuses_bad_input():
    w = training.padded_initial_weights([(3, 2, 1)], [0], seed=0)
    X, y = data.gaussian_patterns(5, 3, seed=0)
    with pytest.raises(ValueError, match="loss"):
        training.train_padded(w, X, y, loss="squared")
    with pytest.raises(ValueError, match="y"):
        training.train_padded(w, X, y * 2)
    with pytest.raises(TypeError, match="X"):
        training.train_padded(w, X.long(), y)
    with pytest.raises(ValueError, match="X"):
        training.train_padded(w, X[:, :2], y)
    with pytest.raises(TypeError, match="steps"):
        training.train_padded(w, X, y, steps=1.5)
    with pytest.raises(ValueError, match="widths_list"):
        training.padded_initial_weights([(3, 2, 1), (3, 2, 2, 1)], [0, 1], seed=0)
    with pytest.raises(ValueError, match="widths_list"):
        training.padded_initial_weights([(10**5, 10**5, 1)] * 100, list(range(100)), seed=0)


# ---------------------------------------------------------------------------------------------
# Ladders and cells
# ---------------------------------------------------------------------------------------------


def test_ladders():
    assert jamming.near_equal_widths(1, 3) == [(1,), (2,), (3,)]
    assert (1, 2) in jamming.near_equal_widths(2, 3) and (2, 1) in jamming.near_equal_widths(2, 3)
    cands = jamming.architecture_ladder(8, 3, 40, 400)
    counts = [n for n, _ in cands]
    assert counts == sorted(counts) and 40 <= counts[0] and counts[-1] <= 400
    assert all(n == nets.parameter_count((8, *h, 1)) for n, h in cands)
    fine = jamming.fine_rungs(cands, 150, 1.5, 1.12)
    n_fine = np.array([nets.parameter_count((8, *h, 1)) for h in fine])
    assert n_fine.min() >= 100 and n_fine.max() <= 225
    assert (n_fine[1:] / n_fine[:-1]).max() <= 1.12  # deep ladders are fine enough
    # one hidden layer: the step is (h+1)/h, so x1.12 needs h >= 9
    one = jamming.fine_rungs(jamming.architecture_ladder(8, 1, 10, 400), 60, 1.5, 1.12)
    widths = [h[0] for h in one]
    assert widths == list(range(widths[0], widths[-1] + 1))
    assert analysis.ladder_ratio_near([45, 54, 63, 72], 54) == pytest.approx(54 / 45)
    assert analysis.ladder_ratio_near([30, 54, 60, 63, 100], 60) == pytest.approx(54 / 30)
    with pytest.raises(ValueError):
        jamming.fine_rungs(cands, 10**6, 1.1, 1.12)


def test_coarse_centre_stays_on_the_coarse_ladder():
    from asbbook.capacity import sweeps

    n = [40, 60, 90, 135, 200]
    # only the top rung ever fits, once: the logistic crossing lies far above the ladder
    far = sweeps.coarse_centre(n, [0, 0, 0, 0, 0.5], 2)
    assert n[0] <= far <= n[-1]
    assert sweeps.coarse_centre(n, [0] * 5, 2) == 200
    assert sweeps.coarse_centre(n, [1] * 5, 2) == 40
    inside = sweeps.coarse_centre(n, [0, 0, 0.5, 1, 1], 2)
    assert 60 < inside < 135


def _point(**kw):
    point = dict(
        dataset="gaussian",
        P=12,
        n_inputs=4,
        n_test=30,
        loss="quadratic_hinge",
        hidden=[[2], [6]],
        n_runs=3,
        steps=40,
        lr=0.01,
        seed=0,
        measures=True,
        torch_threads=1,
    )
    point.update(kw)
    return point


def test_jamming_cell_shapes_pairing_and_measures():
    out = jamming.jamming_cell(_point())
    assert out["n_params"] == [10, 30] and out["n_hidden"] == [2, 6]
    for key in ("converged", "steps", "n_unsatisfied", "gate_entropy", "jacobian_rank"):
        assert np.asarray(out[key]).shape == (2, 3), key
    # the Jacobian's rank is at most min(P, N - n_hidden) (one gauge direction per hidden unit)
    assert (np.asarray(out["jacobian_rank"]) <= [[8], [12]]).all()
    # the gate entropy: at most one bit per hidden unit
    assert (np.asarray(out["gate_entropy"]) <= [[2], [6]]).all()
    # the two losses share data and initial networks (paired); runs differ from each other
    X0, y0, *_ = jamming.run_data(_point(), 0)
    X1, *_ = jamming.run_data(_point(loss="hinge"), 0)
    X2, *_ = jamming.run_data(_point(), 1)
    assert torch.equal(X0, X1) and not torch.equal(X0, X2)
    assert jamming.jamming_cell(_point()) == out  # deterministic
    dig = jamming.jamming_cell(_point(dataset="digits", hidden=[[1], [3]], measures=False))
    err = np.asarray(dig["test_error"])
    assert err.shape == (2, 3) and ((0 <= err) & (err <= 1)).all()
    Xd, yd, Xt, yt = jamming.run_data(_point(dataset="digits"), 0)
    assert Xd.shape == (12, 64) and Xt.shape == (30, 64)
    # held-out images are not training images
    assert not any(torch.equal(a, b) for a in Xt for b in Xd)
    with pytest.raises(ValueError):
        jamming.jamming_cell(_point(loss="squared"))


def test_jacobian_rank_equals_a_direct_svd():
    X, _ = data.gaussian_patterns(30, 5, seed=2)
    w = training.padded_initial_weights([(5, 4, 3, 1), (5, 2, 2, 1)], [0, 1], seed=1)
    ranks = jamming.jacobian_rank(w, torch.stack([X, X]))
    for k, widths in enumerate([(5, 4, 3, 1), (5, 2, 2, 1)]):
        ws = [
            v[k, :b, :a].clone().requires_grad_(True)
            for v, a, b in zip(w, widths[:-1], widths[1:], strict=True)
        ]
        rows = []
        for mu in range(30):
            grads = torch.autograd.grad(nets.forward(ws, X[mu : mu + 1])[0], ws)
            rows.append(torch.cat([g.flatten() for g in grads]))
        assert ranks[k] == int(torch.linalg.matrix_rank(torch.stack(rows)))
        assert ranks[k] <= nets.parameter_count(widths) - nets.hidden_unit_count(widths)


# ---------------------------------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------------------------------


def test_extrapolation_chooses_the_law_and_detects_a_curved_line():
    rng = np.random.default_rng(1)
    P = np.array([32.0, 48.0, 64.0, 96.0])
    se = np.full(4, 2.0)
    prop = analysis.extrapolate(P, 1.5 * P + se * rng.standard_normal(4), se, [192], [288], [3])
    assert prop.chosen == "proportional" and abs(prop.z[0]) < 4
    aff = analysis.extrapolate(P, 1.2 * P + 40 + se * rng.standard_normal(4), se, [192], [270], [3])
    assert aff.chosen == "affine" and aff.delta_aic > 10 and abs(aff.z[0]) < 4
    # a quadratic law fitted by a line at small P fails the extrapolation
    curved = 0.02 * P**2 + P
    bad = analysis.extrapolate(P, curved, se, [192], [0.02 * 192**2 + 192], [3])
    assert abs(bad.z[0]) > 5


@pytest.mark.parametrize("intercept", [0.0, 20.0])
def test_extrapolation_z_is_calibrated_under_the_law(intercept):
    """Under a true linear law (with or without intercept) the z of the extrapolated point is
    centred with at most unit spread (the Birge scaling can only widen the error bars)."""
    rng = np.random.default_rng(7)
    P = np.array([32.0, 48.0, 64.0])
    se = np.array([3.0, 4.0, 5.0])
    zs = []
    for _ in range(400):
        star = 1.3 * P + intercept + se * rng.standard_normal(3)
        meas = 1.3 * 128 + intercept + 8 * rng.standard_normal()
        ex = analysis.extrapolate(P, star, se, [128], [meas], [8.0])
        zs.append(ex.z[0])
    # a 4-SE window on the mean and the spread of 400 draws
    assert abs(np.mean(zs)) < 4 / math.sqrt(400)
    assert 0.7 < np.std(zs) < 1.1


def _column(n, fraction, n_runs=20, **extra):
    n = np.asarray(n, dtype=float)
    conv = np.array([[r < f * n_runs for r in range(n_runs)] for f in fraction])
    steps = np.where(conv, 100.0, 1000.0)
    return analysis.CellColumn(
        n_params=n,
        n_hidden=np.full(len(n), 5.0),
        converged=conv,
        steps=extra.get("steps", steps),
        n_unsatisfied=extra.get("unsat", np.where(conv, 0.0, 10.0)),
        test_error=extra.get("test_error", np.array([])),
        measures=extra.get("measures", {"parameters": np.repeat(n[:, None], n_runs, 1)}),
    )


def test_isostaticity_reads_the_rungs_around_the_transition():
    col = _column([50, 80, 100, 120], [0.0, 0.2, 0.8, 1.0])
    iso = analysis.isostaticity(col, 90.0)
    assert iso.below.value == pytest.approx(8.0 / 80) and iso.above.value == pytest.approx(
        2.0 / 100
    )
    assert iso.below.stderr > 0 and list(iso.load) == pytest.approx(
        [50 / 90, 80 / 90, 100 / 90, 4 / 3]
    )


def test_slowing_down_recovers_a_known_exponent():
    rng = np.random.default_rng(3)
    n_star, z = 100.0, 1.5
    pairs = []
    for _ in range(3):
        n = np.array([110.0, 120.0, 140.0, 170.0, 200.0])
        t = 50 * ((n - n_star) / n_star) ** (-z)
        steps = t[:, None] * np.exp(0.1 * rng.standard_normal((5, 30)))
        pairs.append((_column(n, [1.0] * 5, n_runs=30, steps=steps), n_star))
    fit = analysis.slowing_down(pairs)
    assert abs(fit.exponent.value - z) < 4 * fit.exponent.stderr and fit.exponent.stderr < 0.1
    with pytest.raises(ValueError):
        analysis.slowing_down([(_column([50, 60], [0.0, 0.0]), 100.0)])


def test_cusp_interpolates_at_the_transition_and_twice_it():
    err = np.array([[0.2] * 4, [0.4] * 4, [0.3] * 4, [0.1] * 4])
    err = err + np.array([0.0, 0.01, -0.01, 0.0])[None, :]
    col = _column([50, 100, 150, 200], [0.0, 0.5, 1.0, 1.0], n_runs=4, test_error=err)
    c = analysis.cusp(col, 100.0)
    assert c.at_star.value == pytest.approx(0.4) and c.at_twice.value == pytest.approx(0.1)
    assert c.ratio.value == pytest.approx(4.0) and c.peak_load == pytest.approx(1.0)


def test_a_saturated_measure_locates_no_transition():
    n = np.array([40.0, 60.0, 80.0, 100.0, 120.0])
    frac = [0.0, 0.1, 0.5, 0.9, 1.0]
    rank = np.minimum(n, 70.0)  # saturates at P = 70
    col = _column(
        n,
        frac,
        measures={
            "rank": np.repeat(rank[:, None], 20, 1),
            "parameters": np.repeat(n[:, None], 20, 1),
        },
    )
    assert analysis.measure_transition(col, "rank") is None
    t = analysis.measure_transition(col, "parameters")
    assert t is not None and 60 < t.x_star < 100
    cols = {(d, P): col for d in (1, 2) for P in (64,)}
    spreads = {
        s.name: s for s in analysis.measure_spreads(cols, ["rank", "parameters"], (1, 2), [64])
    }
    assert math.isnan(spreads["rank"].spread.value)
    assert spreads["parameters"].spread.value == 0.0  # identical depths collapse perfectly
    assert isinstance(spreads["parameters"].patterns_per_unit, Estimate)


# ---------------------------------------------------------------------------------------------
# Bad input: a named error or a finite result, never a silent NaN
# ---------------------------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
    P=st.one_of(st.integers(-3, 40), st.floats(allow_nan=True), st.booleans(), st.none()),
    N=st.one_of(st.integers(-3, 40), st.floats(allow_nan=True), st.booleans()),
)
def test_counting_and_training_refuse_bad_sizes_by_name(P, N):
    from asbbook import capacity

    for call in (
        lambda: capacity.cover_fraction(P, N),
        lambda: capacity.perceptron_hinge_training(P, N, 2, max_steps=3),
    ):
        try:
            out = call()
        except (TypeError, ValueError) as err:
            assert any(name in str(err) for name in ("P", "N")), err
            continue
        value = out if isinstance(out, float) else float(np.nanmax(out.final_loss))
        assert math.isfinite(value)


@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(
    lr=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 2)),
    steps=st.one_of(st.integers(-2, 5), st.floats(allow_nan=True)),
    loss=st.sampled_from(["hinge", "quadratic_hinge", "squared", ""]),
)
def test_train_padded_refuses_bad_arguments_by_name(lr, steps, loss):
    X, y = data.gaussian_patterns(6, 3, seed=0)
    w = training.padded_initial_weights([(3, 2, 1)], [0], seed=0)
    try:
        res = training.train_padded(w, X, y, loss=loss, lr=lr, steps=steps)
    except (TypeError, ValueError) as err:
        assert any(name in str(err) for name in ("lr", "steps", "loss")), err
        return
    assert np.isfinite(res.loss).all() or res.diverged.any()


def test_locate_refuses_a_crossing_outside_the_rungs():
    from asbbook.transitions import transition_point

    x, fraction = [10, 20, 40, 80], [0.5, 0.25, 0.5, 0.5]
    assert transition_point(x, fraction, 4).x_star > 80  # a nearly flat fit
    assert analysis.locate(x, fraction, 4) is None
    inside = analysis.locate(x, [0.0, 0.25, 0.75, 1.0], 4)
    assert inside is not None and 20 < inside.x_star < 40
