"""Tests of asbbook.circuits (chapter 2: circuits and the circuit energy)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import sympy as sp
import torch

from asbbook import circuits, nets, report, stats, symbolic, validation
from asbbook.data import gaussian_patterns

DTYPES = [torch.float64, torch.float32]
# round-off allowance per unit of absolute contribution mass
RTOL = {torch.float64: 1e-12, torch.float32: 2e-5}


def _net(widths, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return nets.init_weights(widths, generator=gen, dtype=dtype)


def _inputs(n, dim, seed=1, dtype=torch.float64):
    X, y = gaussian_patterns(n, dim, seed=seed, dtype=dtype)
    return X, y


def _weight_subs(widths, weights):
    """Map the symbolic network's weight symbols to the entries of ``weights``."""
    return {
        sym: float(w[i, j])
        for ws, w in zip(symbolic.weight_symbols(widths), weights, strict=True)
        for (i, j), sym in zip(itertools.product(*map(range, ws.shape)), ws, strict=True)
    }


def _closed_net(widths, dtype=torch.float64):
    """A net whose first layer is all closed for positive inputs (W^1 = -1)."""
    weights = _net(widths, dtype=dtype)
    weights[0] = -torch.ones_like(weights[0])
    return weights


# --------------------------------------------------------------------------------------------
# sympy derivations
# --------------------------------------------------------------------------------------------


def test_path_expansion_identity_and_count():
    out = circuits.derive_path_expansion((2, 3, 2, 1))
    assert out.n_circuits == 12
    assert [c[0] for c in out.circuits] == list(
        itertools.product(range(2), range(3), range(2), range(1))
    )
    assert sp.expand(out.layered - out.circuit_sum) == 0
    # the identity is not vacuous: dropping one circuit breaks it
    terms = sp.Add.make_args(out.circuit_sum)
    assert len(terms) == 12
    assert sp.expand(out.layered - sp.Add(*terms[1:])) != 0
    with pytest.raises(ValueError):
        circuits.derive_path_expansion((2, 3, 2))


def test_path_expansion_numeric_against_torch():
    widths = (2, 3, 2, 1)
    out = circuits.derive_path_expansion(widths)
    weights = _net(widths, seed=3)
    x, _ = _inputs(1, 2, seed=4)
    gates = nets.gates(weights, x)
    subs = _weight_subs(widths, weights)
    for syms, g in zip(symbolic.unit_symbols("g", widths), gates, strict=True):
        subs.update({sym: float(g[0, i]) for i, sym in enumerate(syms)})
    subs.update({sym: float(x[0, i]) for i, sym in enumerate(symbolic.input_symbols(2))})
    value = float(out.circuit_sum.subs(subs))
    assert value == pytest.approx(float(nets.forward(weights, x)[0]), abs=1e-12)


def test_spin_form_degree_and_terms():
    out = circuits.derive_spin_form((2, 2, 2, 2, 1))
    assert out.degree == 3
    assert out.terms_by_order == [1, 6, 12, 8]
    assert len(out.one_body) == 6
    assert len(out.two_body) == 12  # 3 pairs of layers x 2 x 2 units, no same-layer pairs
    small = circuits.derive_spin_form((2, 3, 2, 1))
    assert small.degree == 2
    assert small.terms_by_order == [1, 5, 6]


def test_spin_form_constant_is_half_power_linear_net_and_matches_torch():
    widths = (2, 2, 2, 2, 1)
    out = circuits.derive_spin_form(widths)
    weights = _net(widths, seed=5)
    x, _ = _inputs(1, 2, seed=6)
    subs = _weight_subs(widths, weights)
    subs.update({sym: float(x[0, i]) for i, sym in enumerate(symbolic.input_symbols(2))})
    linear = x[0]
    for w in weights:
        linear = w @ linear
    assert float(out.constant.subs(subs)) == pytest.approx(float(linear[0]) / 8, abs=1e-12)
    # evaluating the spin polynomial at the spins s = 2g - 1 of the real net gives f(x)
    spins = symbolic.unit_symbols("s", widths)
    for syms, g in zip(spins, nets.gates(weights, x), strict=True):
        subs.update({sym: 2 * float(g[0, i]) - 1 for i, sym in enumerate(syms)})
    value = float(out.f_spin.subs(subs))
    assert value == pytest.approx(float(nets.forward(weights, x)[0]), abs=1e-12)


def test_circuit_energy_identity_numeric():
    widths = (2, 2, 2, 1)
    out = circuits.derive_circuit_energy(widths, n_examples=2)
    weights = _net(widths, seed=7)
    X, y = _inputs(2, 2, seed=8)
    subs = _weight_subs(widths, weights)
    gates = nets.gates(weights, X)
    for mu in range(2):
        subs[sp.Symbol(f"y_{{{mu + 1}}}", real=True)] = float(y[mu])
        xs = symbolic.input_symbols(2, mu + 1)
        subs.update({sym: float(X[mu, i]) for i, sym in enumerate(xs)})
        for syms, g in zip(symbolic.unit_symbols("g", widths, mu + 1), gates, strict=True):
            subs.update({sym: float(g[mu, i]) for i, sym in enumerate(syms)})
    energy = circuits.circuit_energy_terms(weights, X, y)
    assert float(out.constant.subs(subs)) == pytest.approx(float(energy.constant), abs=1e-12)
    assert float(out.field_term.subs(subs)) == pytest.approx(float(energy.field), abs=1e-12)
    assert float(out.interaction_term.subs(subs)) == pytest.approx(
        float(energy.interaction), abs=1e-12
    )
    assert out.coupling.shape == (8, 8)
    fields = torch.tensor([float(h.subs(subs)) for h in out.fields], dtype=torch.float64)
    assert torch.allclose(fields, circuits.circuit_fields(weights, X, y), atol=1e-12)
    features = torch.tensor(out.features.subs(subs).tolist(), dtype=torch.float64)
    assert torch.allclose(features, circuits.circuit_features(weights, X), atol=1e-12)
    # the Gram form: C = Phi^T Phi has rank at most P = 2 (8 circuits)
    assert out.generic_rank == 2
    coupling = torch.tensor(out.coupling.subs(subs).tolist(), dtype=torch.float64)
    assert torch.allclose(coupling, circuits.circuit_coupling_matrix(weights, X), atol=1e-12)
    assert int(torch.linalg.matrix_rank(coupling)) <= 2


def test_expected_open_circuits_derivation():
    out = circuits.derive_expected_open_circuits()
    n = sp.symbols("n_0:4", positive=True, integer=True)
    assert sp.simplify(out.formula - n[0] * n[1] * n[2] * n[3] / 4) == 0
    for widths, size, average, predicted in out.orbit_checks:
        assert size == 2 ** sum(widths[1:-1])
        assert average == predicted
        assert predicted == sp.Rational(widths[0] * widths[-1]) * sp.Mul(
            *(sp.Rational(m, 2) for m in widths[1:-1])
        )


# --------------------------------------------------------------------------------------------
# enumeration
# --------------------------------------------------------------------------------------------


def test_circuit_count_and_indices_order():
    widths = (2, 3, 1, 2)
    assert circuits.circuit_count(widths) == 12
    idx = circuits.circuit_indices(widths)
    assert idx.shape == (12, 4)
    assert [tuple(r) for r in idx.tolist()] == list(itertools.product(*(range(n) for n in widths)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_contributions_rebuild_forward(dtype):
    widths = (5, 7, 6, 4, 1)
    weights = _net(widths, seed=11, dtype=dtype)
    X, _ = _inputs(30, 5, seed=12, dtype=dtype)
    c = circuits.circuit_contributions(weights, X)
    assert c.shape == (30, circuits.circuit_count(widths)) and c.dtype == dtype
    f = nets.forward(weights, X)
    mass = circuits.absolute_contribution_mass(weights, X)
    assert torch.all((c.sum(1) - f).abs() <= RTOL[dtype] * mass + 1e-30)
    # closed circuits contribute exactly zero; some circuits are open, some closed
    states = circuits.circuit_states(weights, X)
    assert torch.all(c[states == 0] == 0)
    assert 0 < states.mean() < 1


def test_contributions_match_index_tuples():
    widths = (3, 4, 2, 1)
    weights = _net(widths, seed=13)
    X, _ = _inputs(4, 3, seed=14)
    c = circuits.circuit_contributions(weights, X)
    J = circuits.circuit_couplings(weights)
    S = circuits.circuit_states(weights, X)
    gates = nets.gates(weights, X)
    for k, pi in enumerate(circuits.circuit_indices(widths).tolist()):
        j = math.prod(float(weights[ell][pi[ell + 1], pi[ell]]) for ell in range(3))
        assert float(J[k]) == pytest.approx(j, rel=1e-14)
        for mu in range(4):
            s = math.prod(float(gates[ell][mu, pi[ell + 1]]) for ell in range(2))
            assert float(S[mu, k]) == s
            assert float(c[mu, k]) == pytest.approx(float(X[mu, pi[0]]) * j * s, rel=1e-14)


def test_contributions_multi_output_sum_per_output():
    widths = (3, 4, 2)
    weights = _net(widths, seed=15)
    X, _ = _inputs(6, 3, seed=16)
    c = circuits.circuit_contributions(weights, X)
    idx = circuits.circuit_indices(widths)
    f = nets.forward(weights, X)
    for k in range(2):
        assert torch.allclose(c[:, idx[:, -1] == k].sum(1), f[:, k], atol=1e-12)


def test_refuses_too_many_circuits_without_allocating():
    widths = (64, 256, 256, 256, 1)  # 1.07e9 circuits
    weights = _net(widths, seed=0)
    X, _ = _inputs(2, 64)
    with pytest.raises(ValueError, match="1,073,741,824 circuits"):
        circuits.circuit_contributions(weights, X)
    with pytest.raises(ValueError, match="max_circuits"):
        circuits.circuit_indices(widths)
    small = _net((4, 5, 5, 1))
    Xs, ys = _inputs(10, 4)
    with pytest.raises(ValueError, match="100 circuits"):
        circuits.circuit_contributions(small, Xs, max_circuits=99)
    with pytest.raises(ValueError, match="1,000 entries"):
        circuits.circuit_contributions(small, Xs, max_entries=999)
    assert circuits.circuit_contributions(small, Xs, max_circuits=100, max_entries=1000).shape == (
        10,
        100,
    )
    with pytest.raises(ValueError, match="circuits"):
        circuits.circuit_coupling_matrix(small, Xs, max_circuits=50)
    with pytest.raises(ValueError, match="circuits"):
        circuits.circuit_energy_terms_enumerated(small, Xs, ys, max_circuits=50)


def test_shape_validation():
    weights = _net((3, 4, 1))
    with pytest.raises(ValueError, match="^X must have n_0 = 3"):
        circuits.circuit_contributions(weights, torch.zeros(2, 5, dtype=torch.float64))
    bad = [weights[0], torch.zeros(1, 5, dtype=torch.float64)]
    with pytest.raises(ValueError, match="^weights\\[1\\] takes 5 inputs"):
        circuits.circuit_contributions(bad, torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="scalar output"):
        circuits.circuit_energy_terms(_net((3, 4, 2)), *_inputs(2, 3))
    with pytest.raises(ValueError, match="^y must have shape"):
        circuits.circuit_magnetisation(
            weights, torch.ones(2, 3, dtype=torch.float64), torch.ones(3)
        )


# --------------------------------------------------------------------------------------------
# counting open circuits without enumeration
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("widths", [(3, 5, 1), (4, 6, 5, 1), (2, 3, 4, 3, 2), (5, 2, 2, 2, 2, 1)])
def test_log_open_circuits_matches_enumeration(widths, dtype):
    weights = _net(widths, seed=sum(widths), dtype=dtype)
    X, _ = _inputs(40, widths[0], seed=len(widths), dtype=dtype)
    counted = circuits.circuit_states(weights, X).sum(1).to(torch.float64)
    log_n = circuits.log_open_circuits(weights, X)
    assert log_n.dtype == torch.float64
    open_ = counted > 0
    assert torch.all(torch.isneginf(log_n[~open_]))
    assert torch.allclose(torch.exp(log_n[open_]), counted[open_], rtol=1e-12, atol=0)
    log_nz = circuits.log_open_circuits(weights, X, nonzero_couplings_only=True)
    assert torch.equal(torch.isneginf(log_nz), ~open_)
    assert torch.allclose(log_nz[open_], log_n[open_], rtol=1e-12, atol=1e-12)


def test_log_open_circuits_pruned_net_counts_nonzero_couplings():
    widths = (4, 6, 6, 5, 1)
    weights = _net(widths, seed=21)
    gen = torch.Generator().manual_seed(22)
    weights = [w * (torch.rand(w.shape, generator=gen, dtype=w.dtype) > 0.4) for w in weights]
    X, _ = _inputs(50, 4, seed=23)
    S = circuits.circuit_states(weights, X)
    J = circuits.circuit_couplings(weights)
    counted = (S * (J != 0)).sum(1).to(torch.float64)
    log_nz = circuits.log_open_circuits(weights, X, nonzero_couplings_only=True)
    open_ = counted > 0
    assert open_.any()
    assert torch.all(torch.isneginf(log_nz[~open_]))
    assert torch.allclose(torch.exp(log_nz[open_]), counted[open_], rtol=1e-12)
    # the default count ignores the couplings, so it is larger for a pruned net
    assert torch.all(circuits.log_open_circuits(weights, X)[open_] > log_nz[open_])


def test_log_open_circuits_beyond_float64_range():
    widths = (16,) + (64,) * 240 + (1,)  # ~32^240 = 1e361 open circuits, beyond 1.8e308
    weights = _net(widths, seed=31)
    X, _ = _inputs(5, 16, seed=32)
    with validation.torch_threads(1):  # 240 tiny layers: threads only add overhead
        log_n = circuits.log_open_circuits(weights, X)
        pruned = [w.clone() for w in weights]
        pruned[120][:, 0] = 0.0  # forces the adjacency (matrix-product) path on one layer
        log_nz = circuits.log_open_circuits(pruned, X, nonzero_couplings_only=True)
        log_pruned = circuits.log_open_circuits(pruned, X)
    assert torch.all(torch.isfinite(log_n)) and torch.all(log_n > 800)
    ks = [g.sum(1) for g in nets.gates(weights, X)]
    direct = math.log(16) + sum(torch.log(k) for k in ks)
    assert torch.allclose(log_n, direct, rtol=1e-13)
    assert torch.all(torch.isfinite(log_nz)) and torch.all(log_nz > 800)
    assert torch.all(log_nz <= log_pruned + 1e-9)


def test_torch_threads_alias_warns_and_restores_setting():
    before = torch.get_num_threads()
    with pytest.warns(DeprecationWarning, match="validation.torch_threads"):
        with circuits.torch_threads(1):
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with validation.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with validation.torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with validation.torch_threads(None):
        assert torch.get_num_threads() == before


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_closed_gives_minus_inf_and_zero_contributions(dtype):
    widths = (3, 4, 3, 1)
    weights = _closed_net(widths, dtype=dtype)
    X = torch.rand(6, 3, dtype=dtype) + 0.1
    y = torch.ones(6, dtype=dtype)
    for nz in (False, True):
        log_n = circuits.log_open_circuits(weights, X, nonzero_couplings_only=nz)
        assert torch.all(torch.isneginf(log_n)) and not torch.isnan(log_n).any()
    assert torch.all(circuits.circuit_contributions(weights, X) == 0)
    assert torch.all(circuits.circuit_states(weights, X) == 0)
    assert torch.all(circuits.absolute_contribution_mass(weights, X) == 0)
    assert float(circuits.circuit_magnetisation(weights, X, y)) == 0.0
    assert circuits.label_signed_contributions(weights, X, y).numel() == 0
    energy = circuits.circuit_energy_terms(weights, X, y)
    assert float(energy.field) == 0 and float(energy.interaction) == 0
    # a mixed batch: negative inputs open the first layer
    Xm = torch.cat([X, -X])
    log_n = circuits.log_open_circuits(weights, Xm)
    assert torch.all(torch.isneginf(log_n[:6])) and torch.all(torch.isfinite(log_n[6:]))


def test_log_open_circuits_ensemble_dimension():
    widths = (3, 5, 4, 1)
    draws = [_net(widths, seed=s) for s in range(4)]
    stacked = [torch.stack(layer) for layer in zip(*draws, strict=True)]
    X, y = _inputs(9, 3, seed=40)
    for nz in (False, True):
        batched = circuits.log_open_circuits(stacked, X, nonzero_couplings_only=nz)
        assert batched.shape == (4, 9)
        for r, w in enumerate(draws):
            assert torch.equal(
                batched[r], circuits.log_open_circuits(w, X, nonzero_couplings_only=nz)
            )
    m = circuits.circuit_magnetisation(stacked, X, y)
    assert m.shape == (4,)
    for r, w in enumerate(draws):
        assert float(m[r]) == pytest.approx(
            float(circuits.circuit_magnetisation(w, X, y)), rel=1e-12
        )


def test_expected_open_circuits_formula():
    assert circuits.expected_open_circuits((3, 4, 5, 1)) == pytest.approx(3 * 2 * 2.5)
    assert circuits.log_expected_open_circuits((1024,) * 9 + (1,)) == pytest.approx(
        math.log(1024) + 8 * math.log(512)
    )


def test_open_circuits_at_init_match_theory():
    widths = (4, 6, 6, 6, 1)
    X, y = _inputs(8, 4, seed=50)
    ens = circuits.initial_ensemble(X, y, widths, n_members=3000, seed=51)
    mean, se = ens.open_ratio_estimate()
    assert se > 0
    rows = [
        report.Comparison("open ratio", 1.0, mean, se),
        report.Comparison("magnetisation", 0.0, *ens.magnetisation_estimate()),
        report.BinomialComparison("m > 0", 0.5, ens.positive_magnetisations(), 3000),
    ]
    assert not report.evaluate(rows, alpha=1e-3).failures
    assert ens.n_members == 3000 and 0 < ens.positive_magnetisations() < 3000
    with pytest.warns(DeprecationWarning, match="mean_with_stderr"):
        assert ens.mean_and_se(ens.open_ratio) == pytest.approx((mean, se))


def test_open_circuits_theory_fails_for_asymmetric_weights():
    """Negative control: weights with a positive mean break the sign-flip symmetry, and the
    same comparison then rejects the theory (the test above can fail)."""
    widths = (4, 6, 6, 6, 1)
    X, _ = _inputs(8, 4, seed=50)
    X = X.abs()
    gen = torch.Generator().manual_seed(52)
    draws = [nets.init_weights(widths, generator=gen) for _ in range(3000)]
    stacked = [torch.stack(layer) + 0.3 for layer in zip(*draws, strict=True)]
    log_n = circuits.log_open_circuits(stacked, X)
    ratio = torch.exp(log_n - circuits.log_expected_open_circuits(widths)).mean(-1)
    row = report.Comparison("open ratio", 1.0, *stats.mean_with_stderr(ratio).item())
    assert report.evaluate([row], alpha=1e-3).failures


# --------------------------------------------------------------------------------------------
# energy, magnetisation, signed contributions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_energy_terms_fast_equals_enumerated_and_loss(dtype):
    widths = (4, 5, 4, 1)
    weights = _net(widths, seed=60, dtype=dtype)
    X, y = _inputs(25, 4, seed=61, dtype=dtype)
    fast = circuits.circuit_energy_terms(weights, X, y)
    slow = circuits.circuit_energy_terms_enumerated(weights, X, y)
    tol = 1e-10 if dtype == torch.float64 else 1e-3
    for a, b in zip(fast, slow, strict=True):
        assert float(a) == pytest.approx(float(b), rel=tol, abs=tol)
    direct = 0.5 * ((y - nets.forward(weights, X)) ** 2).sum()
    assert float(fast.loss) == pytest.approx(float(direct), rel=tol)
    assert float(slow.loss) == pytest.approx(float(direct), rel=tol)
    assert float(fast.constant) == pytest.approx(12.5)


def test_coupling_matrix_and_fields_explicit():
    widths = (3, 4, 3, 1)
    weights = _net(widths, seed=62)
    X, y = _inputs(7, 3, seed=63)
    C = circuits.circuit_coupling_matrix(weights, X)
    h = circuits.circuit_fields(weights, X, y)
    idx = circuits.circuit_indices(widths)
    S = circuits.circuit_states(weights, X)
    xS = X[:, idx[:, 0]] * S
    n = circuits.circuit_count(widths)
    assert C.shape == (n, n) and torch.allclose(C, C.T)
    assert torch.linalg.eigvalsh(C).min() > -1e-10  # a Gram matrix
    p, q = 5, 17
    manual = sum(
        float(X[mu, idx[p, 0]] * X[mu, idx[q, 0]] * S[mu, p] * S[mu, q]) for mu in range(7)
    )
    assert float(C[p, q]) == pytest.approx(manual, abs=1e-14)
    assert torch.allclose(h, (y[:, None] * xS).sum(0), atol=1e-14)


def test_magnetisation_matches_enumeration_and_sign_flip():
    widths = (4, 6, 5, 1)
    weights = _net(widths, seed=70)
    X, y = _inputs(20, 4, seed=71)
    c = circuits.circuit_contributions(weights, X)
    expected = (y[:, None] * c).sum() / (y[:, None] * c).abs().sum()
    m = circuits.circuit_magnetisation(weights, X, y)
    assert float(m) == pytest.approx(float(expected), rel=1e-12)
    assert -1 <= float(m) <= 1
    flipped = weights[:-1] + [-weights[-1]]
    assert float(circuits.circuit_magnetisation(flipped, X, y)) == pytest.approx(-float(m))
    mass = circuits.absolute_contribution_mass(weights, X)
    assert torch.allclose(mass, c.abs().sum(1), rtol=1e-12)


def test_label_signed_contributions():
    widths = (3, 5, 4, 1)
    weights = _net(widths, seed=72)
    X, y = _inputs(11, 3, seed=73)
    full = circuits.label_signed_contributions(weights, X, y, open_only=False)
    c = circuits.circuit_contributions(weights, X)
    assert torch.equal(full, y[:, None] * c)
    S = circuits.circuit_states(weights, X)
    opened = circuits.label_signed_contributions(weights, X, y)
    assert opened.ndim == 1 and opened.numel() == int(S.sum())
    assert torch.equal(opened, full[S > 0])
    assert float(opened.sum()) == pytest.approx(float((y * nets.forward(weights, X)).sum()))


def test_training_run_and_determinism():
    X, y = _inputs(40, 4, seed=80)
    widths = (4, 8, 8, 1)
    run = circuits.train_small_net(
        X, y, widths, steps=300, lr=0.05, snapshot_steps=[0, 100, 300], seed=81
    )
    assert run.snapshot_steps == [0, 100, 300] and len(run.snapshots) == 3
    assert run.loss.shape == (301,)
    assert float(run.loss[-1]) < 0.5 * float(run.loss[0])
    final = 0.5 * ((y - nets.forward(run.snapshots[-1], X)) ** 2).mean()
    assert float(run.loss[-1]) == pytest.approx(float(final), rel=1e-12)
    # snapshot 0 is the initial net of the seed; the run is deterministic
    gen = torch.Generator().manual_seed(81)
    init = nets.init_weights(widths, generator=gen)
    assert all(torch.equal(a, b) for a, b in zip(run.snapshots[0], init, strict=True))
    again = circuits.train_small_net(
        X, y, widths, steps=300, lr=0.05, snapshot_steps=[300], seed=81
    )
    assert all(
        torch.equal(a, b) for a, b in zip(run.snapshots[-1], again.snapshots[0], strict=True)
    )
    with pytest.raises(ValueError):
        circuits.train_small_net(X, y, widths, steps=10, snapshot_steps=[11])
    with pytest.raises(ValueError):
        circuits.train_small_net(X, y, (5, 3, 1), steps=10)


def test_training_aligns_circuits_with_labels():
    """Over 5 seeds, training moves the circuit magnetisation from ~0 (init) to positive."""
    X, y = _inputs(40, 4, seed=80)
    start, end = [], []
    for seed in range(81, 86):
        run = circuits.train_small_net(X, y, (4, 8, 8, 1), steps=300, lr=0.05, seed=seed)
        m0, m1 = (float(circuits.circuit_magnetisation(w, X, y)) for w in run.snapshots)
        start.append(m0)
        end.append(m1)
    assert min(end) > 0
    assert sum(end) / 5 > 0.05
    assert sum(e - s for s, e in zip(start, end, strict=True)) / 5 > 0.03


def test_principal_features():
    X, _ = _inputs(100, 12, seed=90)
    Z = circuits.principal_features(X, 5)
    assert Z.shape == (100, 5)
    assert torch.allclose(Z.mean(0), torch.zeros(5, dtype=Z.dtype), atol=1e-12)
    assert torch.allclose(Z.std(0), torch.ones(5, dtype=Z.dtype), atol=1e-12)
    cov = torch.cov(Z.T)
    assert torch.allclose(cov, torch.eye(5, dtype=Z.dtype), atol=1e-10)
    # the first axis carries the most variance of the raw data
    Xc = X - X.mean(0)
    v1 = torch.linalg.lstsq(Z[:, :1], Xc).solution
    v2 = torch.linalg.lstsq(Z[:, 4:5], Xc).solution
    assert v1.norm() > v2.norm()
    assert torch.equal(Z, circuits.principal_features(X, 5))
    with pytest.raises(ValueError):
        circuits.principal_features(X, 13)


# --------------------------------------------------------------------------------------------
# the Gram (Hopfield) structure of C and the contribution mass
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("widths", "n_examples"),
    [((3, 4, 4, 1), 11), ((3, 4, 4, 1), 60), ((3, 16, 16, 1), 11), ((3, 8, 8, 1), 300)],
)
def test_coupling_matrix_is_a_gram_matrix_of_rank_at_most_p(widths, n_examples):
    weights = _net(widths, seed=100)
    X, _ = _inputs(n_examples, 3, seed=101)
    gram = circuits.coupling_gram_structure(weights, X)
    n = circuits.circuit_count(widths)
    assert gram.n_circuits == n and gram.n_examples == n_examples
    assert gram.rank_coupling == gram.rank_features <= min(n_examples, n)
    assert gram.rank_coupling <= gram.pattern_rank_bound <= min(n_examples, 3 * gram.n_patterns)
    assert gram.spectrum_error <= 1e-12
    assert gram.min_eigenvalue_ratio >= -1e-12
    if gram.n_patterns == n_examples and n_examples <= n:  # every example in its own region
        assert gram.rank_coupling == n_examples


def test_gram_rank_check_can_fail_for_a_non_gram_matrix():
    """Negative control: the numerical rank test used above sees full rank when C is
    replaced by a random symmetric matrix of the same size."""
    gen = torch.Generator().manual_seed(102)
    A = torch.randn(48, 48, generator=gen, dtype=torch.float64)
    assert int(torch.linalg.matrix_rank(A + A.T, hermitian=True)) == 48
    assert float(torch.linalg.eigvalsh(A + A.T)[0]) < 0


def test_contribution_mass_identity_with_magnetisation():
    widths = (4, 6, 5, 1)
    weights = _net(widths, seed=110)
    X, y = _inputs(30, 4, seed=111)
    mass = circuits.contribution_mass(weights, X, y)
    m = float(circuits.circuit_magnetisation(weights, X, y))
    f = nets.forward(weights, X)
    # m M = sum_mu y_mu f(x_mu), with M enumerated and m computed without enumeration
    assert m * mass.total == pytest.approx(float((y * f).sum()), rel=1e-12)
    assert mass.net == pytest.approx(float((y * f).sum()), rel=1e-10)
    assert mass.magnetisation == pytest.approx(m, rel=1e-10)
    assert mass.total == pytest.approx(float(circuits.absolute_contribution_mass(weights, X).sum()))
    assert mass.n_open == int(circuits.circuit_states(weights, X).sum())
    assert 0 < mass.random_sign_scale < 1


# --------------------------------------------------------------------------------------------
# deprecated spellings and refused inputs
# --------------------------------------------------------------------------------------------


def test_deprecated_spellings_warn_and_still_work():
    weights = _net((3, 4, 1))
    X, y = _inputs(5, 3)
    with pytest.warns(DeprecationWarning, match="'x' is deprecated"):
        old = circuits.circuit_states(weights, x=X)
    assert torch.equal(old, circuits.circuit_states(weights, X))
    with pytest.warns(DeprecationWarning, match="'n_nets' is deprecated"):
        ens = circuits.initial_ensemble(X, y, (3, 4, 1), n_nets=4)
    assert ens.n_members == 4
    with pytest.raises(TypeError, match="both"):
        circuits.log_open_circuits(weights, X=X, x=X)
    derived = circuits.derive_path_expansion((2, 2, 1))
    with pytest.warns(DeprecationWarning, match=r"\.n_circuits"):
        assert derived["n_circuits"] == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        derived.n_circuits = 5


def test_integer_inputs_are_refused_by_name():
    """Issue 12: integer X once gave an open ratio of 0.355 instead of 1.000."""
    weights = _net((3, 4, 1))
    X_int = torch.randint(-3, 4, (6, 3))
    y = torch.ones(6)
    with pytest.raises(TypeError, match="^X must hold real floating-point"):
        circuits.initial_ensemble(X_int, y, (3, 4, 4, 1), n_members=10)
    with pytest.raises(TypeError, match="^X must hold real floating-point"):
        circuits.log_open_circuits(weights, X_int)
    with pytest.raises(TypeError, match="^weights\\[0\\] must hold real"):
        circuits.circuit_contributions([w.long() for w in weights], X_int.double())
    with pytest.raises(TypeError, match="^X is torch.float32"):
        circuits.circuit_contributions(weights, X_int.float())


def test_nan_inputs_are_refused_by_name():
    weights = _net((3, 4, 4, 1))
    X, y = _inputs(5, 3)
    X[2, 1] = float("nan")
    for func in (circuits.log_open_circuits, circuits.absolute_contribution_mass):
        with pytest.raises(ValueError, match="^X contains NaN or inf"):
            func(weights, X)
    with pytest.raises(ValueError, match="^y must hold labels"):
        circuits.circuit_magnetisation(weights, _inputs(5, 3)[0], y * 0.5)


def test_principal_features_refuses_rank_deficient_inputs():
    X, _ = _inputs(40, 6, seed=120)
    X[:, 4] = X[:, 0] + X[:, 1]  # rank 5 after centring
    X[:, 5] = 2.0  # a constant column carries no variance: rank 5 still
    Z = circuits.principal_features(X, 4)
    assert torch.isfinite(Z).all()
    with pytest.raises(ValueError, match="^n_features=6 exceeds the rank 4"):
        circuits.principal_features(X, 6)
    with pytest.raises(ValueError, match="^n_features=5 exceeds the rank 4"):
        circuits.principal_features(X, 5)
    with pytest.raises(ValueError, match="^n_features"):
        circuits.principal_features(torch.ones(5, 3, dtype=torch.float64), 1)


def test_absurd_sizes_are_refused_before_work():
    X, y = _inputs(10, 4)
    with pytest.raises(ValueError, match="^steps=10,000,000,000 is above max_steps"):
        circuits.train_small_net(X, y, (4, 3, 1), steps=10**10)
    run = circuits.train_small_net(X, y, (4, 3, 1), steps=5, max_steps=5)
    assert run.loss.shape == (6,)
    with pytest.raises(ValueError, match="^n_members=1,000,000,000 is above max_members"):
        circuits.initial_ensemble(X, y, (4, 3, 1), n_members=10**9)
    with pytest.raises(ValueError, match="^n_members is too large"):
        circuits.initial_ensemble(X, y, (4, 3, 1), n_members=10**9, max_members=10**10)
    with pytest.raises(ValueError, match="^widths is too large"):
        circuits.train_small_net(X, y, (4, 100_000, 100_000, 1), steps=1)


# --------------------------------------------------------------------------------------------
# the drawn circuit
# --------------------------------------------------------------------------------------------


def test_drawn_circuit_marks_an_open_path_and_its_coupling():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = (3, 4, 4, 1)
    weights = _net(widths, seed=130)
    X, y = _inputs(20, 3, seed=131)
    x = X[:1]
    path = circuits.strongest_open_circuit(weights, x)
    k = circuits.circuit_indices(widths).tolist().index(list(path))
    assert float(circuits.circuit_states(weights, x)[0, k]) == 1.0
    contributions = circuits.circuit_contributions(weights, x)[0]
    opened = circuits.circuit_states(weights, x)[0] > 0
    assert float(contributions[k].abs()) == float(contributions[opened].abs().max())
    fig, ax = plt.subplots()
    field = float(circuits.circuit_fields(weights, X, y)[k])
    drawn = circuits.draw_circuit(ax, weights, x, path, field=field)
    plt.close(fig)
    assert drawn["S"] == 1
    assert drawn["J"] == pytest.approx(float(circuits.circuit_couplings(weights)[k]), rel=1e-12)
    assert drawn["contribution"] == pytest.approx(float(contributions[k]), rel=1e-12)
    with pytest.raises(ValueError, match="^path"):
        circuits.draw_circuit(ax, weights, x, (0, 5, 0, 0))


def test_chapter_helpers_exact_checks_and_sweep():
    widths = (4, 5, 5, 1)
    weights = _net(widths, seed=140)
    X, y = _inputs(12, 4, seed=141)
    checks = circuits.exact_checks(weights, X)
    assert checks.reconstruction_error <= 1e-12 * max(checks.output_scale, 1.0)
    assert checks.count_log_error <= 1e-12
    # a wrong count would be caught: one extra open circuit moves log N by log(1 + 1/N)
    assert math.log1p(1 / circuits.circuit_count(widths)) > 1e-12
    sweep = circuits.open_circuit_sweep(X, y, [3, 6], 2, n_members=20, seed=5)
    assert set(sweep) == {3, 6} and all(e.n_members == 20 for e in sweep.values())
    direct = circuits.initial_ensemble(X, y, (4, 6, 6, 1), n_members=20, seed=5)
    assert torch.equal(sweep[6].open_ratio, direct.open_ratio)
    assert circuits.expected_open_circuits_of(6, 2, 4) == pytest.approx(4 * 3 * 3)
