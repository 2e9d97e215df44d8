"""Tests of asbbook.dynamics (Chapter 6): the chapter's sweep, the choice of the two rungs, the
recorded training runs and the predictions for the symmetric initial state."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import sympy as sp
import torch

from asbbook import (
    assembly,
    capacity,
    data,
    dynamics,
    ensemble,
    nets,
    phase,
    report,
    sweep,
    symmetry,
    transitions,
)

PARAMETERS = dict(
    P=40, n_inputs=5, depth=2, ladder_min=0.3, ladder_max=3.0, n_rungs=5, n_data=3, n_init=2,
    steps=200, lr=0.01, seed=7,
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The chapter's sweep and the two rungs
# ---------------------------------------------------------------------------------------------


def test_chapter_sweeps_builds_the_transition_sweep_from_the_parameters():
    (spec,) = dynamics.chapter_sweeps(PARAMETERS)
    assert spec.name == dynamics.SWEEP_NAME and spec.fn is capacity.random_label_cell
    ladder = capacity.width_ladder(5, 2, 0.3 * 40, 3.0 * 40, 5)
    seeds = [p["data_seed"] for p in spec.points]
    assert seeds == [phase.cell_data_seed(7, 40, d) for d in range(3)]
    assert len(set(seeds)) == 3
    for point in spec.points:
        assert point["hidden"] == [list(h) for h in ladder]
        assert (point["P"], point["n_inputs"], point["n_init"], point["seed"]) == (40, 5, 2, 7)
        assert (point["steps"], point["lr"], point["dataset"]) == (200, 0.01, "gaussian")
    # the points are what the cell expects: a cell runs and reports every rung
    small = dict(spec.points[0], hidden=spec.points[0]["hidden"][:2], steps=20, n_init=1)
    out = capacity.random_label_cell(small)
    assert len(out["n_params"]) == 2
    with pytest.raises(ValueError):
        dynamics.chapter_sweeps({**PARAMETERS, "ladder_max": -1.0})
    with pytest.raises(ValueError):
        dynamics.chapter_sweeps({**PARAMETERS, "n_data": 0})
    with pytest.raises(ValueError):  # a ladder of a single rung
        dynamics.chapter_sweeps({**PARAMETERS, "ladder_min": 0.5, "ladder_max": 0.51})


def test_choose_rungs_takes_the_nearest_clear_rungs_on_each_side():
    n = [20, 40, 60, 80, 100, 150, 200, 300]
    f = [0.0, 0.0, 0.0, 0.25, 0.75, 1.0, 1.0, 1.0]
    # N* = 85: below needs f = 0 and N <= 0.75 * 85; above f = 1 and N >= 1.5 * 85
    assert dynamics.choose_rungs(n, f, 85.0) == (2, 5)
    assert dynamics.choose_rungs(n, f, 85.0, below_factor=0.5, above_factor=2.0) == (1, 6)
    # a rung with f = 0 but above the factor is not taken
    assert dynamics.choose_rungs(n, [0, 0, 0, 0, 0.5, 1, 1, 1], 100.0) == (2, 5)
    with pytest.raises(ValueError, match="lower the bottom"):
        dynamics.choose_rungs(n, f, 85.0, below_factor=0.2)
    with pytest.raises(ValueError, match="raise the top"):
        dynamics.choose_rungs(n, f, 85.0, above_factor=4.0)
    with pytest.raises(ValueError):
        dynamics.choose_rungs(n, f, 85.0, below_factor=1.2)
    with pytest.raises(ValueError):
        dynamics.choose_rungs(n[::-1], f, 85.0)
    with pytest.raises(ValueError):
        dynamics.choose_rungs(n, f[:-1], 85.0)


# ---------------------------------------------------------------------------------------------
# Recording and training
# ---------------------------------------------------------------------------------------------


def test_order_parameter_recorder_matches_the_symmetry_and_assembly_functions():
    gen = torch.Generator().manual_seed(0)
    X, y = data.gaussian_patterns(30, 6, seed=1)
    w = ensemble.stacked_weights(ensemble.member_specs((6, 9, 7, 1), 4), 3)
    zs = ensemble.batched_preactivations(w, X)
    q = np.array([2.0, 2.2, 1.8])
    out = dynamics.order_parameter_recorder(q)(zs, zs[-1][..., 0], y)
    assert out["entropy"].shape == (4, 2) and out["drift"].shape == (4, 3)
    torch.testing.assert_close(out["entropy"][:, 1], symmetry.gate_entropy_bits(zs[1]))
    torch.testing.assert_close(
        out["information"][:, 0], symmetry.gate_label_information_bits(zs[0], y)
    )
    torch.testing.assert_close(out["alignment"], symmetry.label_alignment(zs[-1][..., 0], y))
    torch.testing.assert_close(out["drift"], symmetry.variance_drift(zs, q))
    r1 = assembly.layer_average_relu_sq(zs[1]).mean(-1)
    torch.testing.assert_close(out["activity_drift"][:, 1], (r1 - 1.1) / 1.1)
    # a gate that copies the label carries H_2(class frequency) bits
    z = torch.randn(1, 30, 2, generator=gen, dtype=torch.float64)
    z[0, :, 0] = y
    frac = float((y == 1).double().mean())
    info = dynamics.order_parameter_recorder([2.0, 2.0])([z, z[..., :1]], z[..., 0], y)
    assert float(info["information"][0, 0]) > 0.5 * float(
        symmetry.binary_entropy_bits(torch.tensor(frac))
    )
    with pytest.raises(ValueError):
        dynamics.order_parameter_recorder([2.0])
    with pytest.raises(ValueError):
        dynamics.order_parameter_recorder([2.0, -1.0])
    with pytest.raises(ValueError):
        dynamics.order_parameter_recorder([2.0, 2.0, 2.0])(zs[:2], zs[1][..., 0], y)


def _small_points(**kw):
    options = dict(P=24, n_replicas=3, first_replica=5, steps=400, lr=0.02, record_every=10, seed=1)
    options.update(kw)
    return dynamics.dynamics_points([(4, 2, 1), (4, 24, 1)], **options)


def test_dynamics_cell_trains_both_widths_and_records_the_order_parameters():
    point = _small_points()[0]
    out = dynamics.dynamics_cell(point)
    assert out["steps"][0] == 0 and out["steps"][-1] == 400
    assert np.all(np.diff(out["steps"]) > 0)
    T = len(out["steps"])
    for key in ("loss", "n_unsatisfied", "alignment", "entropy", "information", "drift"):
        assert len(out["values"][key]) == 2 and len(out["values"][key][0]) == T
    # 2 hidden units cannot fit 24 random labels in 4-D; 24 units (144 parameters) can
    assert out["converged"] == [False, True]
    assert out["final_unsatisfied"][0] > 0 and out["final_unsatisfied"][1] == 0
    assert out["final_loss"][1] == 0.0 and out["final_loss"][0] > 0
    assert out["stop_step"][0] == 400 and 0 < out["stop_step"][1] < 400
    # the converged member repeats its last values after it stopped
    stop = np.searchsorted(out["steps"], out["stop_step"][1])
    alignment = np.asarray(out["values"]["alignment"][1])
    assert np.all(alignment[stop:] == alignment[stop])
    assert np.asarray(out["values"]["n_unsatisfied"][1])[-1] == 0
    # it is the member that train_ensemble trains on the same data, alone, with the same seeds
    d = point["data_seed"]
    X, y = data.gaussian_patterns(24, 4, seed=d)
    alone = ensemble.train_ensemble(
        [ensemble.MemberSpec((4, 24, 1), replicate=d)], X, y, optimizer="adam", lr=0.02,
        steps=400, seed=1,
    )  # fmt: skip
    assert int(alone.steps[0]) == out["stop_step"][1] and alone.loss[0] == 0.0
    # at step 0 the recorded margins are those of the initial networks
    w0 = ensemble.member_weights(ensemble.MemberSpec((4, 2, 1), d), 1)
    f0 = torch.relu(X @ w0[0].T) @ w0[1].T
    assert out["values"]["n_unsatisfied"][0][0] == int((y * f0[:, 0] < 1).sum())
    threads = torch.get_num_threads()
    assert dynamics.dynamics_cell(point) == out  # seeded, and thread setting scoped
    assert torch.get_num_threads() == threads


def test_dynamics_runs_through_the_sweep_cache_and_collect(tmp_path):
    points = _small_points(steps=150)
    spec = dynamics.dynamics_spec(
        [(4, 2, 1), (4, 24, 1)], P=24, n_replicas=3, first_replica=5, steps=150, lr=0.02,
        record_every=10, seed=1,
    )  # fmt: skip
    assert spec.name == dynamics.DYNAMICS_SWEEP_NAME and spec.points == points
    fresh = sweep.run_spec(spec, cache_dir=tmp_path, progress=False)
    cached = sweep.run_spec(spec, cache_dir=tmp_path, progress=False)
    assert fresh == cached
    runs = dynamics.collect_dynamics(points, fresh)
    assert runs.widths == ((4, 2, 1), (4, 24, 1)) and runs.P == 24
    assert runs["alignment"].shape == (2, 3, len(runs.steps))
    assert runs["drift"].shape == (2, 3, len(runs.steps), 2)
    assert runs.converged.shape == (2, 3) and runs.data_seeds.tolist() == [
        dynamics.runs.replica_data_seed(1, r) for r in (5, 6, 7)
    ]
    np.testing.assert_array_equal(dynamics.unsatisfied_fraction(runs), runs["n_unsatisfied"] / 24)
    # replica r is the cell of data seed 5 + r
    assert runs.final_unsatisfied[:, 1].tolist() == fresh[1]["final_unsatisfied"]
    direct = dynamics.train_replicas(
        [(4, 2, 1), (4, 24, 1)], P=24, n_replicas=3, first_replica=5, steps=150, lr=0.02,
        record_every=10, seed=1,
    )  # fmt: skip
    for key in runs.values:
        np.testing.assert_array_equal(direct[key], runs[key])
    with pytest.raises(ValueError):
        dynamics.collect_dynamics(points, fresh[:2])
    with pytest.raises(ValueError):
        dynamics.collect_dynamics(points, [fresh[0], fresh[1], {**fresh[2], "steps": [0]}])


def test_initial_state_is_the_step_zero_of_the_training_runs():
    points = _small_points(steps=5, record_every=1)
    runs = dynamics.collect_dynamics(points, [dynamics.dynamics_cell(p) for p in points])
    state = dynamics.initial_state(
        [(4, 2, 1), (4, 24, 1)], P=24, n_members=5, first_replica=5, seed=1
    )
    assert state["drift"].shape == (2, 5, 2) and state["alignment"].shape == (2, 5)
    for key in ("entropy", "information", "alignment", "drift", "activity_drift", "loss"):
        np.testing.assert_array_equal(state[key][:, :3], runs[key][:, :, 0])
    np.testing.assert_array_equal(
        state["unsatisfied"][:, :3], dynamics.unsatisfied_fraction(runs)[:, :, 0]
    )
    # a different base seed gives different networks
    other = dynamics.initial_state(
        [(4, 2, 1), (4, 24, 1)], P=24, n_members=2, first_replica=5, seed=2
    )
    assert not np.array_equal(other["loss"], state["loss"][:, :2])
    with pytest.raises(ValueError):
        dynamics.initial_state([(4, 2, 1)], P=24, n_members=1, first_replica=0, seed=0)


def test_dynamics_points_reject_bad_arguments():
    with pytest.raises(ValueError):
        _small_points(n_replicas=1)
    with pytest.raises(ValueError):
        _small_points(device="auto")
    with pytest.raises(ValueError):
        _small_points(record_every=0)
    with pytest.raises(ValueError):
        dynamics.dynamics_points([(4, 2, 1), (5, 3, 1)], P=24, n_replicas=2, first_replica=0,
                                 steps=10, lr=0.1, record_every=1, seed=0)  # fmt: skip
    with pytest.raises(ValueError):
        dynamics.dynamics_points([(4, 2, 2)], P=24, n_replicas=2, first_replica=0, steps=10,
                                 lr=0.1, record_every=1, seed=0)  # fmt: skip
    with pytest.raises(ValueError):
        dynamics.dynamics_points([(4, 1)], P=24, n_replicas=2, first_replica=0, steps=10,
                                 lr=0.1, record_every=1, seed=0)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The symmetric initial state
# ---------------------------------------------------------------------------------------------


def test_initial_hinge_closed_forms_match_gaussian_sampling():
    d = dynamics.derive_initial_hinge()
    s = sp.Symbol("s", positive=True)
    unsat = sp.lambdify(s, d.unsatisfied.rhs)
    hinge = sp.lambdify(s, d.hinge.rhs)
    assert d.limits == sp.Tuple(sp.Rational(1, 2), 1)
    rng = np.random.default_rng(0)
    for scale in (0.3, 2.0, 9.0):
        f = rng.normal(0.0, math.sqrt(scale), 200_000)
        y = rng.choice([-1.0, 1.0], f.size, p=[0.3, 0.7])  # any label frequencies
        u_mc, h_mc = (y * f < 1), np.maximum(0, 1 - y * f)
        for exact, sample in ((unsat(scale), u_mc), (hinge(scale), h_mc)):
            se = sample.std() / math.sqrt(f.size)
            assert abs(sample.mean() - exact) < 4 * se


def test_initial_scale_samples_have_the_he_mean_and_dead_layers():
    for widths in ((8, 7, 1), (3, 5, 4, 1)):
        s = dynamics.initial_scale_samples(widths, 400_000, seed=1)
        # E s = sigma^(2L) E r_0 prod E A_l = 2^L (1/2)^(L-1) = 2
        assert abs(s.mean() - 2.0) < 4 * s.std() / math.sqrt(s.size)
        assert s.min() >= 0
    # sigma^2 scales s by sigma^(2L)
    s1 = dynamics.initial_scale_samples((3, 5, 4, 1), 1000, sigma2=1.0, seed=1)
    s2 = dynamics.initial_scale_samples((3, 5, 4, 1), 1000, sigma2=2.0, seed=1)
    np.testing.assert_allclose(s2, 8 * s1)
    s = dynamics.initial_scale_samples((2, 1, 1), 100_000, seed=2)
    # one hidden unit is closed with probability 1/2: then f = 0
    assert abs((s == 0).mean() - 0.5) < 0.01
    assert np.array_equal(s, dynamics.initial_scale_samples((2, 1, 1), 100_000, seed=2))
    with pytest.raises(ValueError):
        dynamics.initial_scale_samples((8, 7, 1), 0)


@pytest.mark.parametrize("widths", [(8, 7, 1), (3, 4, 6, 1)])
def test_initial_margin_prediction_matches_independent_networks(widths):
    # K independent (input, label, network) triples, one example each
    K = 60_000
    gen = torch.Generator().manual_seed(3)
    h = torch.randn(K, 1, widths[0], generator=gen, dtype=torch.float64)
    for layer, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        w = torch.randn(K, n_out, n_in, generator=gen, dtype=torch.float64) * math.sqrt(2 / n_in)
        h = h @ w.transpose(1, 2)
        if layer < len(widths) - 2:
            h = torch.relu(h)
    f = h[:, 0, 0].numpy()
    y = np.where(np.random.default_rng(4).random(K) < 0.5, -1.0, 1.0)
    pred = dynamics.predict_initial_margins(widths, 400_000, seed=5)
    for key, sample in (("unsatisfied", y * f < 1), ("hinge", np.maximum(0, 1 - y * f))):
        se = math.hypot(sample.std() / math.sqrt(K), pred[key][1])
        assert abs(sample.mean() - pred[key][0]) < 4 * se, (key, sample.mean(), pred[key])
    # the prediction depends on the width: narrow layers fluctuate more (Jensen)
    assert (
        pred["unsatisfied"][0]
        > dynamics.predict_initial_margins((8, 400, 1), 100_000)["unsatisfied"][0]
    )


def test_expected_gate_entropy_against_leading_order_and_sampling():
    # P = 4 by hand: K = 0..4 with weights 1, 4, 6, 4, 1 (/16), H_2(1/4) = 2 - (3/4) log2 3
    h_quarter = 2 - 0.75 * math.log2(3)
    assert dynamics.expected_gate_entropy_bits(4) == pytest.approx((8 * h_quarter + 6) / 16)
    for P in (16, 64, 128):
        exact = dynamics.expected_gate_entropy_bits(P)
        assert abs(exact - (1 - 1 / (2 * P * math.log(2)))) < 1.0 / P**2
    # first-layer gates of He-initialised networks, each on its own Gaussian dataset
    values = []
    for d in range(200):
        X, _ = data.gaussian_patterns(32, 5, seed=d)
        w = ensemble.member_weights(ensemble.MemberSpec((5, 20, 1), d), 0)
        values.append(float(symmetry.gate_entropy_bits(X @ w[0].T)))
    sample = np.asarray(values)
    se = sample.std(ddof=1) / math.sqrt(sample.size)
    assert abs(sample.mean() - dynamics.expected_gate_entropy_bits(32)) < 4 * se


def test_expected_plugin_information_against_sampling_and_leading_order():
    for P in (20, 64, 128):
        exact = dynamics.expected_plugin_information_bits(P)
        leading = 1 / (2 * (P - 1) * math.log(2))
        assert 0 < exact - leading < 1.0 / P**2, (P, exact, leading)
    # gates and labels drawn independently, each Bernoulli(1/2) on each example
    P, gen = 20, torch.Generator().manual_seed(0)
    values = []
    for _ in range(300):
        y = torch.where(torch.rand(P, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
        z = torch.randn(P, 50, generator=gen, dtype=torch.float64)
        if bool(torch.all(y == y[0])):  # a table with one label carries no information
            values.append(0.0)
            continue
        values.append(float(symmetry.gate_label_information_bits(z, y)))
    sample = np.asarray(values)
    se = sample.std(ddof=1) / math.sqrt(sample.size)
    assert abs(sample.mean() - dynamics.expected_plugin_information_bits(P)) < 4 * se
    with pytest.raises(ValueError):
        dynamics.expected_plugin_information_bits(1)


def test_plugin_information_bias_derivation():
    d = dynamics.derive_plugin_information_bias()
    P = d.P
    assert sp.simplify(d.phi2.rhs - 1 / (P - 1)) == 0
    assert sp.simplify(d.bias.rhs - 1 / (2 * (P - 1) * sp.log(2))) == 0
    # the leading term agrees with the exact mutual information for a small deviation e
    symbols = {s.name: s for s in d.series.rhs.free_symbols}
    a_, b_, e_ = 0.3, 0.6, 1e-3
    cells = [a_ * b_ + e_, a_ * (1 - b_) - e_, (1 - a_) * b_ - e_, (1 - a_) * (1 - b_) + e_]
    prods = [a_ * b_, a_ * (1 - b_), (1 - a_) * b_, (1 - a_) * (1 - b_)]
    exact = sum(p * math.log(p / q) for p, q in zip(cells, prods, strict=True))
    value = float(d.series.rhs.subs({symbols["alpha"]: a_, symbols["beta"]: b_, symbols["e"]: e_}))
    assert value == pytest.approx(exact, rel=1e-2)
    # Var c is the hypergeometric variance
    values = {s.name: s for s in d.variance.rhs.free_symbols}
    var = float(d.variance.rhs.subs({values["P"]: 30, values["a"]: 11, values["b"]: 7}))
    from scipy import stats

    assert var == pytest.approx(stats.hypergeom(30, 11, 7).var())


# --------------------------------------------------------------------------------------------
# Near the transition: widths, the sweep's prediction and the plateau statistic
# --------------------------------------------------------------------------------------------


def test_near_transition_widths_round_to_the_nearest_parameter_count():
    near = dynamics.runs.near_transition_widths(8, 2, 90.0, [1.25, 0.8, 0.9, 1.1])
    assert near.widths == ((8, 8, 1), (8, 9, 1), (8, 11, 1), (8, 12, 1))  # N = 9 h
    assert near.n_params == (72, 81, 99, 108)
    assert near.ratios == pytest.approx((0.8, 0.9, 1.1, 1.2))
    merged = dynamics.runs.near_transition_widths(8, 2, 20.0, [0.9, 1.0, 1.1])
    assert len(merged.widths) == 1 and merged.factors == (0.9,)
    deep = dynamics.runs.near_transition_widths(8, 3, 300.0, [1.0])
    (h,) = set(deep.widths[0][1:-1])
    assert (
        abs(nets.parameter_count(deep.widths[0]) - 300)
        <= nets.parameter_count((8, h + 1, h + 1, 1)) - 300
    )
    with pytest.raises((TypeError, ValueError), match="factors"):
        dynamics.runs.near_transition_widths(8, 2, 90.0, [float("nan")])


def test_success_probability_is_one_half_at_n_star_with_the_delta_method_error():
    transition = transitions.Transition(
        x_star=100.0,
        x_star_se=5.0,
        log_x_star=math.log(100.0),
        log_x_star_se=0.05,
        width=0.2,
        method="logistic",
    )
    p, se = dynamics.runs.success_probability(transition, [100.0, 100.0 * math.exp(0.2)])
    assert p[0] == pytest.approx(0.5) and se[0] == pytest.approx(0.25 * 0.05 / 0.2)
    assert p[1] == pytest.approx(1 / (1 + math.exp(-1)))
    interpolated = transitions.Transition(
        100.0, 5.0, math.log(100.0), 0.05, math.nan, "interpolate"
    )
    with pytest.raises(ValueError, match="logistic"):
        dynamics.runs.success_probability(interpolated, [100.0])


def test_success_probability_law_spreads_the_fit_by_its_error():
    """The law's mean and spread against the delta method, and its mean against a direct
    Monte-Carlo average over ln N* (50,000 draws: ~1e-3)."""
    transition = transitions.Transition(100.0, 5.0, math.log(100.0), 0.05, 0.2, "logistic")
    n = [100.0 * math.exp(0.1)]
    probabilities, weights = dynamics.runs.success_probability_law(transition, n)
    p, se = dynamics.runs.success_probability(transition, n)
    mean = float(weights @ probabilities[0])
    spread = math.sqrt(float(weights @ (probabilities[0] - mean) ** 2))
    assert spread == pytest.approx(se[0], rel=0.05)
    draws = np.random.default_rng(0).normal(math.log(100.0), 0.05, 50_000)
    direct = np.mean(1 / (1 + np.exp(-(math.log(n[0]) - draws) / 0.2)))
    assert mean == pytest.approx(direct, abs=3e-3) and abs(mean - p[0]) < 0.01
    with pytest.raises(ValueError, match="n_nodes"):
        dynamics.runs.success_probability_law(transition, n, n_nodes=1)


def test_late_relative_decrease_reads_the_last_quarter():
    steps = np.arange(0, 101, 10)
    loss = np.array([[2.0] * 8 + [1.2, 1.1, 1.0], [1.0] * 10 + [0.0]])
    delta = dynamics.runs.late_relative_decrease(loss, steps)
    assert delta[0] == pytest.approx((1.2 - 1.0) / 1.0)  # from step 80, the first >= 75
    assert np.isnan(delta[1])  # converged: no plateau to measure
    with pytest.raises(ValueError):
        dynamics.runs.late_relative_decrease(loss, steps[:-1])


def test_half_time_and_replica_curves():
    steps = np.array([0, 10, 20, 30])
    assert dynamics.runs.half_time([0.0, 0.2, 0.6, 1.0], steps) == 20
    assert dynamics.runs.half_time([1.0, 0.9, 0.4, 0.0], steps) == 20
    runs = dynamics.train_replicas(
        [(4, 2, 1), (4, 24, 1)],
        P=24,
        n_replicas=3,
        first_replica=0,
        steps=30,
        lr=0.02,
        record_every=10,
        seed=1,
    )
    curves = dynamics.runs.replica_curves(runs)
    assert len(curves) == 2
    np.testing.assert_allclose(curves[1]["loss"].value, runs["loss"][1].mean(axis=0))
    assert curves[0]["unsatisfied"].stderr.shape == runs.steps.shape


def test_derivations_are_frozen_dataclasses_with_deprecated_key_access():
    d = dynamics.derive_initial_hinge()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.hinge = None
    with pytest.warns(DeprecationWarning):
        assert d["limits"] == d.limits


def test_initial_output_law_matches_the_first_margins_of_initial_networks():
    """The theory's draws of f and the measured first margins y_1 f(x_1) of independent
    initial networks agree in law (rank-sum rows at 1e-3 each), including the atom at f = 0
    of networks whose hidden layer is closed on x_1; a width's law is not another's."""
    widths = [(8, 3, 1), (8, 12, 1)]
    state = dynamics.initial_state(widths, P=16, n_members=600, seed=7)
    theory = {w: dynamics.initial_output_samples(w, 100_000, seed=8) for w in widths}
    for k, w in enumerate(widths):
        margin = state["margin_first"][k]
        assert margin.shape == (600,)
        for name, x, y in (("y f", margin, theory[w]), ("|f|", abs(margin), abs(theory[w]))):
            row = report.RankSumComparison.from_samples(name, x, y)
            assert row.p_value() > 1e-3, (w, name, row)
        # a closed hidden layer (probability 2^-n_1) gives f = 0 in both
        assert abs((margin == 0).mean() - 2.0 ** -w[1]) < 4 * math.sqrt(2.0 ** -w[1] / 600) + 1e-9
    narrow = report.RankSumComparison.from_samples(
        "x", abs(theory[widths[0]]), abs(theory[widths[1]])
    )
    assert narrow.p_value() < 1e-6  # the narrow output's magnitude has another law
    again = dynamics.initial_output_samples(widths[0], 1000, seed=8)
    np.testing.assert_array_equal(again, dynamics.initial_output_samples(widths[0], 1000, seed=8))
    assert not np.array_equal(again, dynamics.initial_output_samples(widths[0], 1000, seed=9))
