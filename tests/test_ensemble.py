"""Tests of the batched ensemble engine ``asbbook.ensemble`` (CPU, float64 unless stated).

Reference computations are independent of the engine: per-network autograd through
``asbbook.nets`` and ``torch.optim.Adam``. Nothing here is timed (see ``bench/``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from asbbook import ensemble as E
from asbbook import nets
from asbbook.data import gaussian_patterns

# Reference loop vs engine: the engine uses bmm and a hand-written backward pass, the reference
# mm and autograd, so the two may round differently. Over the few hundred float64 steps below
# the measured differences are at most 2e-15 relative (0 for hinge/GD); 1e-11 leaves room for
# other BLAS builds without hiding a bug (a wrong gradient term moves weights by O(lr) = 1e-2).
REFERENCE_RTOL = 1e-11
# One gradient evaluation: engine vs autograd, both float64.
GRADIENT_RTOL = 1e-12


@pytest.fixture(scope="module")
def data():
    return gaussian_patterns(40, 6, seed=3)


def _hinge(weights, X, y) -> float:
    return torch.relu(1 - y * nets.forward(weights, X)).mean().item()


def _reference_train(spec, X, y, *, loss, optimizer, lr, steps, seed=0):
    """One network, plain autograd, the engine's stopping rule: (weights, steps, converged)."""
    ws = [w.clone().requires_grad_(True) for w in E.member_weights(spec, seed)]
    adam = torch.optim.Adam(ws, lr=lr) if optimizer == "adam" else None
    for t in range(steps + 1):
        f = nets.forward(ws, X)
        if bool((y * f >= 1).all()):
            return [w.detach() for w in ws], t, True
        if t == steps:
            break
        if loss == "hinge":
            value = torch.relu(1 - y * f).mean()
        else:
            value = 0.5 * ((y - f) ** 2).mean()
        grads = torch.autograd.grad(value, ws)
        with torch.no_grad():
            if adam is None:
                for w, g in zip(ws, grads, strict=True):
                    w -= lr * g
            else:
                for w, g in zip(ws, grads, strict=True):
                    w.grad = g
                adam.step()
    return [w.detach() for w in ws], steps, False


# ---------------------------------------------------------------------------------------------
# Member specs and seeds
# ---------------------------------------------------------------------------------------------


def test_member_seed_depends_on_every_field_and_nothing_else():
    base = E.MemberSpec((6, 12, 1), 3, 2.0)
    variants = [
        E.MemberSpec((6, 12, 1), 4, 2.0),
        E.MemberSpec((6, 13, 1), 3, 2.0),
        E.MemberSpec((6, 12, 1), 3, 1.5),
        E.MemberSpec((6, 12, 12, 1), 3, 2.0),
    ]
    seed = E.member_seed(0, base)
    assert seed == E.member_seed(0, E.MemberSpec([6, 12, 1], 3, 2))  # list / int inputs
    assert 0 <= seed < 2**63
    assert len({seed, E.member_seed(1, base), *(E.member_seed(0, v) for v in variants)}) == 6


def test_member_weights_are_init_weights_with_the_member_generator():
    spec = E.MemberSpec((5, 7, 1), 2, 1.5)
    gen = torch.Generator().manual_seed(E.member_seed(11, spec))
    expected = nets.init_weights((5, 7, 1), 1.5, generator=gen)
    got = E.member_weights(spec, 11)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    got32 = E.member_weights(spec, 11, dtype=torch.float32)
    assert all(torch.equal(a, b.float()) for a, b in zip(got32, expected, strict=True))


def test_member_specs_grid():
    specs = E.member_specs([(3, 4, 1), (3, 2, 1)], 2, sigma2=1.0)
    assert [(s.widths, s.replicate) for s in specs] == [
        ((3, 4, 1), 0),
        ((3, 4, 1), 1),
        ((3, 2, 1), 0),
        ((3, 2, 1), 1),
    ]
    assert E.member_specs((3, 4, 1), 2) == [E.MemberSpec((3, 4, 1), r) for r in range(2)]
    assert E.member_specs(np.array([3, 4, 1]), 1) == [E.MemberSpec((3, 4, 1), np.int64(0))]


# ---------------------------------------------------------------------------------------------
# Batched forward / backward against per-network autograd
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", E.LOSSES)
def test_hand_written_backward_matches_autograd(data, loss):
    X, y = data
    specs = E.member_specs((6, 9, 5, 1), 3)
    stacked = E.stacked_weights(specs, 0)
    values, grads = E.batched_gradients(stacked, X, y, loss)
    for k, spec in enumerate(specs):
        ws = [w.clone().requires_grad_(True) for w in E.member_weights(spec, 0)]
        f = nets.forward(ws, X)
        value = torch.relu(1 - y * f).mean() if loss == "hinge" else 0.5 * ((y - f) ** 2).mean()
        expected = torch.autograd.grad(value, ws)
        assert math.isclose(values[k].item(), value.item(), rel_tol=GRADIENT_RTOL)
        for g, e in zip(grads, expected, strict=True):
            assert e.abs().max() > 0
            torch.testing.assert_close(g[k], e, rtol=GRADIENT_RTOL, atol=1e-15)


def test_subgradients_at_the_kinks_match_autograd():
    """At a margin of exactly 1 the hinge contributes no gradient, and a unit with z = 0
    exactly passes none back (ReLU's derivative at 0 is 0): the same choices as autograd."""
    X = torch.tensor([[1.0, 0.0], [0.5, -1.0], [0.0, 0.25]], dtype=torch.float64)
    y = torch.ones(3, dtype=torch.float64)
    ws = [torch.eye(2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)]
    f = nets.forward(ws, X)
    assert f.tolist() == [1.0, 0.5, 0.25]  # margins 1 (the kink), 0.5, 0.25
    assert (nets.preactivations(ws, X)[0] == 0).sum() == 2  # two units sit at z = 0
    stacked = [torch.stack([w, 2 * w]) for w in ws]  # a second member, away from the kinks
    _, grads = E.batched_gradients(stacked, X, y, "hinge")
    for k, scale in enumerate((1, 2)):
        member = [(scale * w).requires_grad_(True) for w in ws]
        value = torch.relu(1 - y * nets.forward(member, X)).mean()
        for g, e in zip(grads, torch.autograd.grad(value, member), strict=True):
            assert torch.equal(g[k], e)
    assert grads[1][0].tolist() == [[-0.5 / 3, -0.25 / 3]]  # example 1 contributes nothing


def test_flops_per_step_matches_torch_flop_counter(data):
    X, y = data
    ws = [w.requires_grad_(True) for w in E.member_weights(E.MemberSpec((6, 9, 5, 1)), 0)]
    with FlopCounterMode(display=False) as counter:
        torch.relu(1 - y * nets.forward(ws, X)).mean().backward()
    assert E.flops_per_step((6, 9, 5, 1), X.shape[0]) == counter.get_total_flops()


# ---------------------------------------------------------------------------------------------
# Training: reference loop, batch independence, determinism
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "optimizer", "lr", "steps"),
    [("hinge", "gd", 0.2, 600), ("squared", "gd", 0.05, 300), ("hinge", "adam", 0.01, 600)],
)
def test_single_member_matches_plain_autograd_loop(data, loss, optimizer, lr, steps):
    X, y = data
    spec = E.MemberSpec((6, 12, 1), 1)
    res = E.train_ensemble([spec], X, y, loss=loss, optimizer=optimizer, lr=lr, steps=steps)
    ref_w, ref_steps, ref_conv = _reference_train(
        spec, X, y, loss=loss, optimizer=optimizer, lr=lr, steps=steps
    )
    assert (res.steps[0], res.converged[0]) == (ref_steps, ref_conv)
    assert not res.diverged[0]
    moved = max(
        (a - b).abs().max().item() for a, b in zip(ref_w, E.member_weights(spec, 0), strict=True)
    )
    assert moved > 0.1  # the comparison is about a real trajectory
    for a, b in zip(res.weights[0], ref_w, strict=True):
        torch.testing.assert_close(a, b, rtol=REFERENCE_RTOL, atol=REFERENCE_RTOL)


def test_some_runs_converge_in_the_reference_setting(data):
    """Guards the previous test: in the hinge/adam setting the member really converges."""
    X, y = data
    res = E.train_ensemble(
        [E.MemberSpec((6, 12, 1), 1)], X, y, optimizer="adam", lr=0.01, steps=600
    )
    assert res.converged[0] and 0 < res.steps[0] < 600


@pytest.mark.parametrize(
    ("loss", "optimizer", "lr", "dtype"),
    [
        ("hinge", "adam", 0.01, torch.float64),
        ("hinge", "adam", 0.01, torch.float32),
        ("hinge", "gd", 0.3, torch.float64),
        ("squared", "gd", 0.1, torch.float64),
    ],
)
def test_member_result_does_not_depend_on_the_rest_of_the_batch(data, loss, optimizer, lr, dtype):
    """Bitwise: the target trains alone, then between members of its own shape (which stop
    earlier, so its group shrinks around it) and of other shapes and depths. The squared loss
    (on targets 1.5 y, so that members stop) feeds every output's rounding into the gradient;
    the recorded values are compared too."""
    X, y = data
    y = 1.5 * y if loss == "squared" else y
    target = E.MemberSpec((6, 12, 1), 0)
    mates = [E.MemberSpec((6, 12, 1), r) for r in (1, 2, 3)]
    others = E.member_specs([(6, 5, 7, 1), (6, 30, 1)], 2)
    batch = [*mates, target, *others]
    kw = dict(loss=loss, optimizer=optimizer, lr=lr, steps=1200, dtype=dtype, record_every=100)
    alone = E.train_ensemble([target], X, y, **kw)
    together = E.train_ensemble(batch, X, y, **kw)
    k = batch.index(target)
    assert (alone.steps[0], alone.converged[0]) == (together.steps[k], together.converged[k])
    assert alone.loss[0] == together.loss[k]
    for a, b in zip(alone.weights[0], together.weights[k], strict=True):
        assert a.dtype == dtype and torch.equal(a, b)
    for key in ("loss", "n_unsatisfied"):
        np.testing.assert_array_equal(alone.history[key][0], together.history[key][k])
    # the batch really changed around the target while it trained
    assert min(together.steps[:3]) < together.steps[k]


def test_training_is_deterministic(data):
    X, y = data
    specs = E.member_specs([(6, 12, 1), (6, 4, 4, 1)], 3)
    kw = dict(optimizer="adam", lr=0.02, steps=300, record_every=50)
    a, b = E.train_ensemble(specs, X, y, **kw), E.train_ensemble(specs, X, y, **kw)
    for field in ("loss", "train_error", "n_unsatisfied", "steps", "converged", "diverged"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    for wa, wb in zip(a.weights, b.weights, strict=True):
        assert all(torch.equal(u, v) for u, v in zip(wa, wb, strict=True))
    for key in a.history.keys():
        np.testing.assert_array_equal(a.history[key], b.history[key])
    c = E.train_ensemble(specs, X, y, **{**kw, "record_every": None}, seed=1)
    assert not np.array_equal(a.loss, c.loss)  # the seed matters


# ---------------------------------------------------------------------------------------------
# Training: reported results, stopping, divergence
# ---------------------------------------------------------------------------------------------


def test_reported_results_match_an_independent_evaluation(data):
    X, y = data
    specs = E.member_specs([(6, 16, 1), (6, 2, 1)], 2)
    res = E.train_ensemble(specs, X, y, optimizer="adam", lr=0.02, steps=400)
    assert res.converged.any() and not res.converged.all()
    np.testing.assert_array_equal(res.n_params, [nets.parameter_count(s.widths) for s in specs])
    for k in range(len(specs)):
        f = nets.forward(res.weights[k], X)
        assert res.n_unsatisfied[k] == int((y * f < 1).sum())
        assert res.train_error[k] == pytest.approx(float((torch.sign(f) != y).double().mean()))
        assert res.loss[k] == pytest.approx(_hinge(res.weights[k], X, y), rel=1e-12, abs=0)
        assert res.converged[k] == (res.loss[k] == 0.0)
        assert res.steps[k] == 400 or res.converged[k]


def test_converged_members_are_frozen_at_their_step(data):
    """Adam's momentum would keep moving a member past zero loss: freezing stops it."""
    X, y = data
    spec = E.MemberSpec((6, 12, 1), 0)
    kw = dict(optimizer="adam", lr=0.01)
    res = E.train_ensemble([spec], X, y, steps=800, **kw)
    s = int(res.steps[0])
    assert res.converged[0] and s < 800
    exact = E.train_ensemble([spec], X, y, steps=s, stop_at_zero_hinge=False, **kw)
    assert all(torch.equal(a, b) for a, b in zip(res.weights[0], exact.weights[0], strict=True))
    assert exact.converged[0] and exact.steps[0] == s
    early = E.train_ensemble([spec], X, y, steps=s - 1, stop_at_zero_hinge=False, **kw)
    assert not early.converged[0]  # s is the first step with zero hinge loss
    later = E.train_ensemble([spec], X, y, steps=s + 50, stop_at_zero_hinge=False, **kw)
    assert not all(torch.equal(a, b) for a, b in zip(res.weights[0], later.weights[0], strict=True))


def test_squared_loss_also_stops_at_zero_hinge(data):
    """Regression on targets 1.5 y: the margins y f pass 1 on the way, and training stops there."""
    X, y = data
    specs = E.member_specs((6, 40, 1), 2)
    res = E.train_ensemble(specs, X, 1.5 * y, loss="squared", lr=0.05, steps=3000)
    assert res.converged.all() and (res.steps < 3000).all()
    for k in range(2):
        f = nets.forward(res.weights[k], X)
        assert bool((1.5 * y * f >= 1).all())
        assert res.loss[k] == pytest.approx(0.5 * ((1.5 * y - f) ** 2).mean().item(), rel=1e-12)
        assert res.loss[k] > 0


def test_divergent_member_stops_without_disturbing_the_batch(data):
    X, y = data
    wild = E.MemberSpec((6, 8, 8, 1), 0, sigma2=1e100)
    tame = E.MemberSpec((6, 8, 8, 1), 1)
    res = E.train_ensemble([tame, wild], X, y, loss="squared", lr=0.05, steps=200)
    assert res.diverged.tolist() == [False, True]
    assert not res.converged[1] and res.steps[1] < 200 and not np.isfinite(res.loss[1])
    alone = E.train_ensemble([tame], X, y, loss="squared", lr=0.05, steps=200)
    assert all(torch.equal(a, b) for a, b in zip(alone.weights[0], res.weights[0], strict=True))
    huge_lr = E.train_ensemble([tame], X, y, loss="squared", lr=1e6, steps=200)
    assert huge_lr.diverged[0] and huge_lr.steps[0] < 200


# ---------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------


def _q_and_margin(zs, f, y):
    return {
        "q": torch.stack([(z**2).mean(dim=(1, 2)) for z in zs], dim=1),  # (K, L)
        "margin": (y * f).mean(dim=1),  # (K,)
    }


def test_history_shapes_values_and_frozen_members(data):
    X, y = data
    specs = E.member_specs([(6, 16, 1), (6, 3, 1)], 2)
    res = E.train_ensemble(
        specs, X, y, optimizer="adam", lr=0.02, steps=301, record_every=25, record_fn=_q_and_margin
    )
    h = res.history
    np.testing.assert_array_equal(h.steps, [*range(0, 301, 25), 301])
    assert h["q"].shape == (4, 14, 2) and h["margin"].shape == (4, 14)
    assert h["loss"].shape == h["n_unsatisfied"].shape == (4, 14)
    # step 0 is the initial ensemble
    for k, spec in enumerate(specs):
        zs = nets.preactivations(E.member_weights(spec, 0), X)
        expected = [(z**2).mean().item() for z in zs]
        np.testing.assert_allclose(h["q"][k, 0], expected, rtol=1e-12)
    # the last column is the final state
    np.testing.assert_array_equal(h["loss"][:, -1], res.loss)
    np.testing.assert_array_equal(h["n_unsatisfied"][:, -1], res.n_unsatisfied)
    # converged members repeat their values from the step where they stopped
    frozen = np.flatnonzero(res.converged)
    assert len(frozen) >= 1
    for k in frozen:
        after = h.steps >= res.steps[k]
        assert after[-2]  # there are recorded steps after the freeze
        assert (h["loss"][k, after] == 0).all() and (h["n_unsatisfied"][k, after] == 0).all()
        assert (h["margin"][k, after] == h["margin"][k, -1]).all()
        f = nets.forward(res.weights[k], X)
        assert h["margin"][k, -1] == pytest.approx((y * f).mean().item(), rel=1e-12)
        assert h["n_unsatisfied"][k, ~after][0] > 0


def test_record_fn_errors(data):
    X, y = data
    specs = [E.MemberSpec((6, 4, 1))]
    with pytest.raises(ValueError, match="reserved"):
        E.train_ensemble(
            specs, X, y, steps=2, record_every=1, record_fn=lambda z, f, y: {"loss": f}
        )
    with pytest.raises(ValueError, match="leading dimension"):
        E.train_ensemble(specs, X, y, steps=2, record_every=1, record_fn=lambda z, f, y: {"a": y})
    with pytest.raises(ValueError, match="record_every"):
        E.train_ensemble(specs, X, y, steps=2, record_fn=_q_and_margin)


# ---------------------------------------------------------------------------------------------
# Sampling at initialisation
# ---------------------------------------------------------------------------------------------


def test_sample_ensemble_matches_member_networks(data, monkeypatch):
    X, _ = data
    specs = [E.MemberSpec((6, 10, 10, 3), r, s) for r, s in [(0, 2.0), (1, 1.0), (2, 3.0)]]
    zs = E.sample_ensemble(X, specs, seed=4)
    assert [tuple(z.shape) for z in zs] == [(3, 40, 10), (3, 40, 10), (3, 40, 3)]
    for k, spec in enumerate(specs):
        ref = nets.preactivations(E.member_weights(spec, 4), X)
        for z, r in zip(zs, ref, strict=True):
            torch.testing.assert_close(z[k], r, rtol=1e-12, atol=1e-14)
    again = E.sample_ensemble(X, widths=(6, 10, 10, 3), n_members=2, sigma2=2.0, seed=4)
    assert torch.equal(again[2][0], zs[2][0])  # replicate 0, sigma2 = 2 in both calls
    monkeypatch.setattr(E, "SAMPLE_CHUNK", 2)  # chunks of 2 and 1 members: the same numbers
    chunked = E.sample_ensemble(X, specs, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(chunked, zs, strict=True))


def test_sample_ensemble_first_layer_variance():
    """E (z^1_i)^2 = sigma2 |x|^2 / n_0 (He init). 2000 nets x 64 units per input; the check
    is at 5 Monte-Carlo standard errors of the mean of z^2 over nets (units are independent)."""
    X = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.2, 0.2, -1.0, 0.0]])
    (z1, _) = E.sample_ensemble(X, widths=(4, 64, 1), n_members=2000, sigma2=1.7, seed=2)
    sq = (z1**2).permute(1, 0, 2).reshape(X.shape[0], -1)  # (inputs, nets x units)
    mean, se = sq.mean(dim=1), sq.std(dim=1) / math.sqrt(sq.shape[1])
    theory = 1.7 * (X**2).sum(dim=1) / 4
    assert ((mean - theory).abs() < 5 * se).all()


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(members=[]), "empty"),
        (dict(members=[(6, 4, 1)]), "MemberSpec"),
        (dict(members=[E.MemberSpec((5, 4, 1))]), "n_0"),
        (dict(members=[E.MemberSpec((6, 4, 2))]), "output width"),
        (dict(y="half"), r"\{-1, \+1\}"),
        (dict(y="nan"), "NaN"),
        (dict(X="inf"), "NaN or inf"),
        (dict(y="short"), "shape"),
        (dict(loss="mse"), "loss"),
        (dict(optimizer="sgd"), "optimizer"),
        (dict(lr=0.0), "lr"),
        (dict(lr=-1.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(steps=0), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(record_every=0), "record_every"),
        (dict(dtype=torch.int64), "dtype"),
    ],
)
def test_bad_training_input_raises(data, change, message):
    X, y = data
    y = {"half": y * 0.5, "nan": torch.where(y > 0, float("nan"), y), "short": y[:-1]}.get(
        change.pop("y", None), y
    )
    X = {"inf": torch.where(X > 1, float("inf"), X)}.get(change.pop("X", None), X)
    kw = dict(members=[E.MemberSpec((6, 4, 1))], steps=3) | change
    with pytest.raises((ValueError, TypeError), match=message):
        E.train_ensemble(kw.pop("members"), X, y, **kw)


@pytest.mark.parametrize(
    "spec_args",
    [((0, 3, 1),), ((4, -1, 1),), ((4,),), ((4, 2.0, 1),), ((4, 3, 1), -1), ((4, 3, 1), 0, 0.0)],
)
def test_bad_member_spec_raises(spec_args):
    with pytest.raises((ValueError, TypeError)):
        E.MemberSpec(*spec_args)


def test_bad_sampling_input_raises(data):
    X, _ = data
    with pytest.raises(ValueError, match="same widths"):
        E.sample_ensemble(X, [E.MemberSpec((6, 3, 1)), E.MemberSpec((6, 4, 1))])
    with pytest.raises(ValueError, match="either"):
        E.sample_ensemble(X)
    with pytest.raises(ValueError, match="n_members"):
        E.sample_ensemble(X, widths=(6, 3, 1), n_members=0)
    with pytest.raises(ValueError, match="n_0"):
        E.sample_ensemble(X, widths=(5, 3, 1), n_members=2)


def test_squared_loss_accepts_real_labels_and_progress_bar(data, capsys):
    X, y = data
    res = E.train_ensemble(
        [E.MemberSpec((6, 4, 1))], X, 0.5 * y, loss="squared", steps=5, progress=True
    )
    assert res.steps[0] == 5 and "train_ensemble" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Several datasets in one call, padded groups, the perceptron step, CUDA
# ---------------------------------------------------------------------------------------------


def _weights_equal(a, b) -> bool:
    return all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("optimizer", "lr", "dtype"), [("adam", 0.01, torch.float32), ("gd", 0.3, torch.float64)]
)
def test_members_of_several_datasets_train_as_if_alone(optimizer, lr, dtype):
    """Bitwise: a member trained in one call with members of two other datasets (in its own
    shape group and in others) ends exactly as when trained alone on its own (P, n_0) data."""
    datasets = [gaussian_patterns(30, 6, seed=s) for s in (5, 6, 7)]
    X = torch.stack([x for x, _ in datasets])
    y = torch.stack([t for _, t in datasets])
    members = [E.MemberSpec((6, 12, 1), r) for r in range(3)] + [E.MemberSpec((6, 4, 5, 1), 0)]
    index = [0, 1, 2, 1]
    kw = dict(optimizer=optimizer, lr=lr, steps=500, dtype=dtype, record_every=100)
    together = E.train_ensemble(members * 2, X, y, datasets=index + [2, 0, 1, 0], **kw)
    for k, (m, d) in enumerate(zip(members * 2, index + [2, 0, 1, 0], strict=True)):
        alone = E.train_ensemble([m], *datasets[d], **kw)
        assert (alone.steps[0], alone.converged[0]) == (together.steps[k], together.converged[k])
        assert _weights_equal(alone.weights[0], together.weights[k])
        np.testing.assert_array_equal(alone.history["loss"][0], together.history["loss"][k])
    assert len(set(together.steps.tolist())) > 1  # members stopped at different steps


def test_padded_members_are_batch_independent_and_close_to_unpadded(data):
    """With pad_to a member trains in the padded shape: bitwise the same alone or with others
    (of its padded shape, of other shapes, of other datasets), its weights come back in its own
    shape, and it follows the unpadded trajectory up to rounding (float64)."""
    X, y = data
    small = [E.MemberSpec((6, 3, 1), 0), E.MemberSpec((6, 5, 1), 1), E.MemberSpec((6, 4, 4, 1))]
    others = [E.MemberSpec((6, 20, 1), 0), E.MemberSpec((6, 8, 8, 1), 2)]
    kw = dict(optimizer="adam", lr=0.02, steps=400, pad_to=8)
    together = E.train_ensemble(small + others, X, y, **kw)
    for k, m in enumerate(small):
        alone = E.train_ensemble([m], X, y, **kw)
        assert _weights_equal(alone.weights[0], together.weights[k])
        assert alone.steps[0] == together.steps[k]
        assert [tuple(w.shape) for w in alone.weights[0]] == [
            (b, a) for a, b in zip(m.widths[:-1], m.widths[1:], strict=True)
        ]
        plain = E.train_ensemble([m], X, y, **{**kw, "pad_to": None})
        assert plain.steps[0] == alone.steps[0]
        for a, b in zip(plain.weights[0], alone.weights[0], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert E.padded_widths((6, 3, 1), 8) == (6, 8, 1)
    assert E.padded_widths((6, 3, 9, 1), 8) == (6, 3, 9, 1)
    assert E.padded_widths((6, 3, 1), None) == (6, 3, 1)


def test_multi_dataset_and_padding_input_errors(data):
    X, y = data
    member = [E.MemberSpec((6, 4, 1))]
    with pytest.raises(ValueError, match="datasets needs X"):
        E.train_ensemble(member, X, y, steps=2, datasets=[0])
    with pytest.raises(ValueError, match="one dataset index per member"):
        E.train_ensemble(member, X[None], y[None], steps=2)
    with pytest.raises(ValueError, match="< 1"):
        E.train_ensemble(member, X[None], y[None], steps=2, datasets=[1])
    with pytest.raises(ValueError, match=r"y must have shape \(1, 40\)"):
        E.train_ensemble(member, X[None], y, steps=2, datasets=[0])
    with pytest.raises(ValueError, match="pad_to"):
        E.train_ensemble(member, X, y, steps=2, pad_to=0)
    with pytest.raises(ValueError, match="record_fn"):
        E.train_ensemble(member, X, y, steps=2, pad_to=8, record_every=1, record_fn=_q_and_margin)


def test_batched_perceptron_hinge_step():
    """Margins y w.x and the step w + (lr/P) sum_{margin<1} y x, per trial, against a direct
    computation; a trial's numbers do not depend on the other trials (bitwise)."""
    g = torch.Generator().manual_seed(1)
    YX = torch.randn(5, 30, 7, generator=g, dtype=torch.float64)
    w = 0.3 * torch.randn(5, 7, generator=g, dtype=torch.float64)
    margins, w_next = E.batched_perceptron_hinge_step(w, YX, 0.5)
    for t in range(5):
        m = YX[t] @ w[t]
        torch.testing.assert_close(margins[t], m, rtol=1e-13, atol=1e-13)
        expected = w[t] + 0.5 / 30 * YX[t][m < 1].sum(dim=0)
        torch.testing.assert_close(w_next[t], expected, rtol=1e-13, atol=1e-13)
        assert 0 < int((m < 1).sum()) < 30  # both kinds of margins occur
        alone_m, alone_w = E.batched_perceptron_hinge_step(w[t : t + 1], YX[t : t + 1], 0.5)
        assert torch.equal(alone_m[0], margins[t]) and torch.equal(alone_w[0], w_next[t])
    fixed = 10 * w / margins.abs().min(dim=1).values[:, None]  # rescaled: no step is taken
    _, same = E.batched_perceptron_hinge_step(fixed * torch.sign(margins[:, :1]), YX[:, :1], 1.0)
    assert torch.equal(same, fixed * torch.sign(margins[:, :1]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_training_on_cuda_matches_the_cpu():
    X, y = gaussian_patterns(40, 6, seed=3)
    specs = E.member_specs([(6, 12, 1), (6, 5, 5, 1)], 3)
    kw = dict(optimizer="adam", lr=0.01, steps=300, stop_at_zero_hinge=False)
    cpu = E.train_ensemble(specs, X, y, **kw)
    gpu = E.train_ensemble(specs, X, y, device="cuda", **kw)
    np.testing.assert_allclose(gpu.loss, cpu.loss, rtol=1e-9, atol=1e-12)
    merged = E.train_ensemble(
        specs, X[None], y[None], datasets=[0] * 6, pad_to=16, device="cuda", **kw
    )
    np.testing.assert_allclose(merged.loss, cpu.loss, rtol=1e-6, atol=1e-9)
