"""Tests of asbbook.symmetry (chapter 3): exact symmetries, sign-flip moments, variance map."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy as sp
import torch

from asbbook import nets, order, symmetry
from asbbook.data import load_digits_binary

TIGHT = dict(rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------
# helpers (independent of the module under test)
# ------------------------------------------------------------------------------------------


def _tiny_net(widths=(3, 4, 3, 1), seed=0):
    gen = torch.Generator().manual_seed(seed)
    weights = nets.init_weights(widths, 2.0, generator=gen)
    x = torch.randn(6, widths[0], generator=gen, dtype=torch.float64)
    return weights, x


def _paths(weights):
    widths = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    return list(itertools.product(*[range(n) for n in widths]))


def _circuit_contributions(weights, x):
    """``x_{i_0} J_pi S_pi(x)`` for every circuit, by enumeration: ``(P, n_circuits)``."""
    gates = nets.gates(weights, x)
    cols = []
    for path in _paths(weights):
        coupling = math.prod(float(w[path[k + 1], path[k]]) for k, w in enumerate(weights))
        s = torch.ones(x.shape[0], dtype=x.dtype)
        for k, g in enumerate(gates):
            s = s * g[:, path[k + 1]]
        cols.append(x[:, path[0]] * coupling * s)
    return torch.stack(cols, dim=1)


def _batched_preactivations(weights, x):
    """``[z^1..z^L]`` each ``(K, P, n_l)`` for stacked weights ``(K, n_l, n_{l-1})``."""
    zs, h = [], x.expand(weights[0].shape[0], *x.shape)
    for k, w in enumerate(weights):
        z = torch.einsum("kij,kpj->kpi", w, h)
        zs.append(z)
        if k < len(weights) - 1:
            h = torch.relu(z)
    return zs


def _gaussian_ensemble(widths, n_members, sigma2, gen):
    sig = [sigma2] * (len(widths) - 1) if np.isscalar(sigma2) else list(sigma2)
    return [
        torch.randn((n_members, n_out, n_in), generator=gen, dtype=torch.float64)
        * math.sqrt(s / n_in)
        for n_in, n_out, s in zip(widths[:-1], widths[1:], sig, strict=True)
    ]


# ------------------------------------------------------------------------------------------
# exact symmetries, numerically
# ------------------------------------------------------------------------------------------


def test_circuit_enumeration_reconstructs_output():
    weights, x = _tiny_net()
    contrib = _circuit_contributions(weights, x)
    torch.testing.assert_close(contrib.sum(dim=1), nets.forward(weights, x), **TIGHT)


@pytest.mark.parametrize("layer", [1, 2])
def test_permutation_leaves_function_and_permutes_gates_and_circuits(layer):
    weights, x = _tiny_net()
    n = weights[layer - 1].shape[0]
    perm = list(range(1, n)) + [0]
    new = symmetry.permute_hidden(weights, layer, perm)
    assert any(not torch.equal(a, b) for a, b in zip(new, weights, strict=True))
    torch.testing.assert_close(nets.forward(new, x), nets.forward(weights, x), **TIGHT)
    g_old, g_new = nets.gates(weights, x), nets.gates(new, x)
    for k, (a, b) in enumerate(zip(g_old, g_new, strict=True), start=1):
        expected = a[:, perm] if k == layer else a
        assert torch.equal(b, expected)
    c_old, c_new = _circuit_contributions(weights, x), _circuit_contributions(new, x)
    index = {p: i for i, p in enumerate(_paths(weights))}
    for i, path in enumerate(_paths(new)):
        moved = tuple(perm[j] if k == layer else j for k, j in enumerate(path))
        torch.testing.assert_close(c_new[:, i], c_old[:, index[moved]], **TIGHT)


@pytest.mark.parametrize(("layer", "unit", "c"), [(1, 0, 0.3), (1, 3, 7.0), (2, 2, 1e3)])
def test_rescaling_leaves_function_gates_and_every_circuit(layer, unit, c):
    weights, x = _tiny_net(seed=1)
    new = symmetry.rescale_unit(weights, layer, unit, c)
    assert not torch.equal(new[layer - 1], weights[layer - 1])
    torch.testing.assert_close(nets.forward(new, x), nets.forward(weights, x), **TIGHT)
    for a, b in zip(nets.gates(weights, x), nets.gates(new, x), strict=True):
        assert torch.equal(a, b)
    torch.testing.assert_close(
        _circuit_contributions(new, x), _circuit_contributions(weights, x), **TIGHT
    )
    # the circuit couplings themselves (not just the contributions) are unchanged
    for path in _paths(weights):
        j_old = math.prod(float(w[path[k + 1], path[k]]) for k, w in enumerate(weights))
        j_new = math.prod(float(w[path[k + 1], path[k]]) for k, w in enumerate(new))
        assert j_new == pytest.approx(j_old, rel=1e-12, abs=1e-15)


def test_negative_scale_would_break_the_symmetry():
    """The check above can fail: flipping a unit's in- and out-weights changes f."""
    weights, x = _tiny_net(seed=2)
    flipped = [w.clone() for w in weights]
    flipped[0][1, :] *= -1.0
    flipped[1][:, 1] *= -1.0
    assert not torch.allclose(nets.forward(flipped, x), nets.forward(weights, x))


def test_transformations_accept_batched_weights():
    gen = torch.Generator().manual_seed(3)
    weights = _gaussian_ensemble((5, 6, 4, 1), 7, 2.0, gen)
    x = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    f = _batched_preactivations(weights, x)[-1]
    perm = torch.tensor([2, 0, 1, 3])
    for new in (
        symmetry.permute_hidden(weights, 2, perm),
        symmetry.rescale_unit(weights, 1, 5, 0.25),
    ):
        assert [w.shape for w in new] == [w.shape for w in weights]
        torch.testing.assert_close(_batched_preactivations(new, x)[-1], f, **TIGHT)


def test_inputs_are_never_modified_and_outputs_are_new_tensors():
    weights, _ = _tiny_net()
    before = [w.clone() for w in weights]
    for new in (
        symmetry.permute_hidden(weights, 1, [3, 2, 1, 0]),
        symmetry.rescale_unit(weights, 2, 1, 4.0),
    ):
        assert isinstance(new, list) and new is not weights
        for w_new in new:
            w_new.mul_(0.0).add_(123.0)
        for w, b in zip(weights, before, strict=True):
            assert torch.equal(w, b)


@pytest.mark.parametrize("layer", [0, 3, -1, 1.0, True, "1"])
def test_bad_layer_is_rejected(layer):
    weights, _ = _tiny_net()
    with pytest.raises((TypeError, ValueError), match="layer"):
        symmetry.permute_hidden(weights, layer, [0, 1, 2, 3])
    with pytest.raises((TypeError, ValueError), match="layer"):
        symmetry.rescale_unit(weights, layer, 0, 2.0)


def test_network_without_hidden_layer_is_rejected():
    w = [torch.randn(1, 3, dtype=torch.float64)]
    with pytest.raises((TypeError, ValueError), match="no hidden layer"):
        symmetry.rescale_unit(w, 1, 0, 2.0)


@pytest.mark.parametrize(
    "perm",
    [
        [0, 1, 2],
        [0, 1, 2, 2],
        [0, 1, 2, 4],
        [0.0, 1.0, 2.0, 3.0],
        [True, False, 2, 3],
        torch.tensor([0.0, 1.0, 2.0, 3.0]),
        np.array([0.0, 1.0, 2.0, 3.0]),
        torch.tensor([[0, 1], [2, 3]]),
        "0123",
        None,
    ],
)
def test_non_permutation_is_rejected(perm):
    weights, _ = _tiny_net()
    with pytest.raises((TypeError, ValueError), match="perm"):
        symmetry.permute_hidden(weights, 1, perm)


@pytest.mark.parametrize("unit", [-1, 4, 1.0, True])
def test_bad_unit_is_rejected(unit):
    weights, _ = _tiny_net()
    with pytest.raises((TypeError, ValueError), match="unit"):
        symmetry.rescale_unit(weights, 1, unit, 2.0)


@pytest.mark.parametrize("c", [0.0, -1.0, float("nan"), float("inf"), True, "2"])
def test_bad_scale_is_rejected(c):
    weights, _ = _tiny_net()
    with pytest.raises((TypeError, ValueError), match="c must be"):
        symmetry.rescale_unit(weights, 1, 0, c)


def test_inconsistent_weight_shapes_are_rejected():
    with pytest.raises((TypeError, ValueError), match="inputs"):
        symmetry.permute_hidden([torch.zeros(4, 3), torch.zeros(1, 5)], 1, [0, 1, 2, 3])


# ------------------------------------------------------------------------------------------
# sympy derivations
# ------------------------------------------------------------------------------------------


def test_sympy_exact_symmetries():
    lemma = symmetry.derive_gate_scale_invariance()
    assert isinstance(lemma.gate, sp.Eq) and isinstance(lemma.relu, sp.Eq)
    res = symmetry.derive_rescaling_symmetry()
    assert res.n_circuits == 2 * 3 * 2 * 1
    assert sp.simplify(res.coupling.lhs - res.coupling.rhs) == 0
    res = symmetry.derive_permutation_symmetry()
    assert res.n_circuits == 12
    # another net, layer and permutation
    res = symmetry.derive_permutation_symmetry((2, 3, 3, 1), layer=2, perm=(2, 1, 0))
    assert res.perm == sp.Tuple(2, 1, 0)
    symmetry.derive_rescaling_symmetry((2, 2, 3, 1), layer=2, unit=2)


def test_sympy_rescaling_proof_can_fail(monkeypatch):
    """With a negative 'scale' the gate lemma no longer applies and the derivation must fail."""
    monkeypatch.setattr(symmetry.derivations, "_C", sp.Symbol("c", negative=True))
    with pytest.raises(AssertionError):
        symmetry.derive_rescaling_symmetry()


def test_sympy_sign_flip_moments():
    res = symmetry.derive_sign_flip_moments()
    assert res.mean.rhs == 0 and res.cross.rhs == 0
    s1, s2, s3 = sp.symbols("sigma_1:4", positive=True)
    assert sp.simplify(res.square_example.rhs - s1**2 * s2**2 * s3**2 / (2 * 3 * 2)) == 0


def test_symmetric_expectation_rule():
    w1, w2 = sp.symbols("w1 w2", real=True)
    a = sp.Symbol("a")
    m = {w1: 3, w2: 5}
    assert symmetry.symmetric_expectation(w1 * w2, m) == 0
    assert symmetry.symmetric_expectation((a * w1 + w2) ** 2, m) == 3 * a**2 + 5
    with pytest.raises(NotImplementedError):
        symmetry.symmetric_expectation(w1**4, m)


def test_sympy_symmetric_split_and_variance_map():
    split = symmetry.derive_symmetric_split()
    assert split.probability.rhs == sp.Rational(1, 2)
    q = sp.Symbol("q", positive=True)
    assert sp.simplify(split.gaussian.rhs - q / 2) == 0
    vmap = symmetry.derive_variance_map()
    assert vmap.fixed_point.rhs == 2
    s2, m = sp.symbols("sigma^2 m", positive=True)
    ell = sp.Symbol("l", integer=True, positive=True)
    sol = vmap.solution.rhs
    # agrees with the numerical map for a few values
    for sigma2 in (1.5, 2.0, 2.5):
        num = symmetry.preactivation_variance(0.7, sigma2, 6)
        sym = [float(sol.subs({s2: sigma2, m: 0.7, ell: k})) for k in range(1, 7)]
        np.testing.assert_allclose(num, sym, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# the variance map, numerically
# ------------------------------------------------------------------------------------------


def test_preactivation_variance_values_and_validation():
    np.testing.assert_allclose(symmetry.preactivation_variance(1.0, 2.0, 5), np.full(5, 2.0))
    np.testing.assert_allclose(
        symmetry.preactivation_variance(2.0, 1.0, 3), [2.0, 1.0, 0.5], rtol=1e-15
    )
    np.testing.assert_allclose(
        symmetry.preactivation_variance(1.0, [1.0, 4.0, 3.0], 3), [1.0, 2.0, 3.0], rtol=1e-15
    )
    assert symmetry.preactivation_variance(np.array([1.0, 2.0]), 2.0, 4).shape == (2, 4)
    q = symmetry.preactivation_variance(1.0, 2.5, 40)
    assert q[-1] / q[0] == pytest.approx(1.25**39)
    for bad in [(1.0, 0.0, 3), (1.0, -2.0, 3), (1.0, 2.0, 0), (1.0, 2.0, 2.5), (-1.0, 2.0, 3)]:
        with pytest.raises((TypeError, ValueError)):
            symmetry.preactivation_variance(*bad)
    with pytest.raises((TypeError, ValueError)):
        symmetry.preactivation_variance(1.0, [1.0, 2.0], 3)


@pytest.mark.parametrize("sigma2", [1.5, 2.0, 2.5])
def test_variance_map_and_gate_probability_monte_carlo(sigma2):
    """q^l over a batched Gaussian ensemble matches the exact map within 4 SE at every layer;
    each hidden gate is open with probability 1/2; the drift has ensemble mean 0."""
    n_members, depth = 1500, 5
    widths = (64,) + (48,) * depth
    x, _ = load_digits_binary(4, seed=0)  # rows have mean(x^2) = 1
    gen = torch.Generator().manual_seed(int(sigma2 * 100))
    zs = _batched_preactivations(_gaussian_ensemble(widths, n_members, sigma2, gen), x)
    q_theory = symmetry.preactivation_variance(1.0, sigma2, depth)
    est = symmetry.mean_with_stderr(symmetry.layer_second_moments(zs))
    assert est.value.shape == (depth,)
    dev = (est.value.numpy() - q_theory) / est.stderr.numpy()
    assert np.all(np.abs(dev) < 4), dev
    # the measurement resolves the vanishing / exploding trend
    if sigma2 != 2.0:
        ratio = est.value[-1] / est.value[0]
        assert abs(float(ratio) - (sigma2 / 2) ** (depth - 1)) < 0.5 * abs((sigma2 / 2) ** 4 - 1)
    drift = symmetry.mean_with_stderr(symmetry.variance_drift(zs, q_theory))
    assert np.all(np.abs(drift.value.numpy()) < 4 * drift.stderr.numpy())
    for z in zs[:-1]:
        frac = symmetry.open_fraction(z).mean(dim=-1)  # (K,)
        p = symmetry.mean_with_stderr(frac)
        assert abs(float(p.value) - 0.5) < 4 * float(p.stderr)
    # label alignment of the initial ensemble averages to 0 (last-layer sign flip)
    y = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    m = symmetry.mean_with_stderr(symmetry.label_alignment(zs[-1][..., 0], y))
    assert abs(float(m.value)) < 4 * float(m.stderr)


def test_circuit_coupling_moments_monte_carlo():
    """E J = 0, E J J' = 0 (pi != pi') and E J^2 = prod sigma_l^2 / n_{l-1}, averaged over all
    circuits of each member by gated-free matrix products, within 4 SE over the ensemble."""
    widths, sig = (6, 5, 4, 3), (1.0, 2.0, 3.0)
    n_members = 20000
    gen = torch.Generator().manual_seed(11)
    ws = _gaussian_ensemble(widths, n_members, sig, gen)
    n_circ = math.prod(widths)
    ones = torch.ones(n_members, widths[0], 1, dtype=torch.float64)
    total, total_sq = ones, ones
    for w in ws:
        total, total_sq = torch.bmm(w, total), torch.bmm(w * w, total_sq)
    sum_j, sum_j2 = total.sum(dim=(1, 2)), total_sq.sum(dim=(1, 2))
    # the matrix-product sums equal explicit enumeration for one member
    member = [w[0] for w in ws]
    js = [math.prod(float(w[p[k + 1], p[k]]) for k, w in enumerate(member)) for p in _paths(member)]
    assert len(js) == n_circ
    assert float(sum_j[0]) == pytest.approx(sum(js), rel=1e-12)
    assert float(sum_j2[0]) == pytest.approx(sum(j * j for j in js), rel=1e-12)

    mean_j = symmetry.mean_with_stderr(sum_j / n_circ)
    assert abs(float(mean_j.value)) < 4 * float(mean_j.stderr)
    cross = symmetry.mean_with_stderr((sum_j**2 - sum_j2) / (n_circ * (n_circ - 1)))
    assert abs(float(cross.value)) < 4 * float(cross.stderr)
    predicted = math.prod(s / n for s, n in zip(sig, widths[:-1], strict=True))
    sq = symmetry.mean_with_stderr(sum_j2 / n_circ)
    assert abs(float(sq.value) - predicted) < 4 * float(sq.stderr)
    assert float(sq.stderr) < 0.05 * predicted  # the test has resolving power


# ------------------------------------------------------------------------------------------
# order parameters
# ------------------------------------------------------------------------------------------


def test_open_fraction_and_gate_entropy():
    z = torch.tensor(
        [[1.0, -1.0, 2.0], [2.0, -3.0, -1.0], [0.5, -0.1, 4.0], [3.0, -2.0, -5.0]],
        dtype=torch.float64,
    )  # P = 4, n = 3: unit 0 always open, unit 1 never, unit 2 half the time
    torch.testing.assert_close(
        symmetry.open_fraction(z), torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    )
    assert float(order.mean_gate_entropy_bits(z)) == pytest.approx(1 / 3)
    assert float(order.layer_reservoir_bits(z)) == pytest.approx(1.0)
    batched = torch.stack([z, -z, torch.zeros_like(z)])  # (3, P, n); z = 0 counts as closed
    assert symmetry.open_fraction(batched).shape == (3, 3)
    torch.testing.assert_close(
        order.mean_gate_entropy_bits(batched),
        torch.tensor([1 / 3, 1 / 3, 0.0], dtype=torch.float64),
    )
    p = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    h = symmetry.binary_entropy_bits(p)
    expected = [0.0, -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75)), 1.0]
    torch.testing.assert_close(h[:3], torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(h, h.flip(0))
    with pytest.raises((TypeError, ValueError)):
        symmetry.binary_entropy_bits(torch.tensor([1.5]))
    with pytest.raises((TypeError, ValueError)):
        symmetry.open_fraction(torch.zeros(3))


def test_label_alignment():
    y = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    f = torch.stack([3 * y, -2 * y, torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64)])
    torch.testing.assert_close(
        symmetry.label_alignment(f, y), torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)
    )
    g = torch.tensor([2.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    # E[y f] = (2 + 0 + 1 - 1)/4 = 0.5, E f^2 = (4 + 0 + 1 + 1)/4 = 1.5
    assert float(symmetry.label_alignment(g, y)) == pytest.approx(0.5 / math.sqrt(1.5))
    assert math.isnan(float(symmetry.label_alignment(torch.zeros(4, dtype=torch.float64), y)))
    with pytest.raises((TypeError, ValueError)):
        symmetry.label_alignment(g, y[:3])


def test_variance_drift_and_second_moments():
    signs = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    zs = [math.sqrt(2.0) * signs, math.sqrt(3.0) * signs.expand(2, 3, 2)]  # q_hat = 2 and 3
    torch.testing.assert_close(
        symmetry.layer_second_moments([zs[1]]), torch.full((2, 1), 3.0, dtype=torch.float64)
    )
    drift = symmetry.variance_drift([zs[1], zs[1]], [2.0, 3.0])
    torch.testing.assert_close(drift, torch.tensor([[0.5, 0.0]] * 2, dtype=torch.float64))
    with pytest.raises((TypeError, ValueError)):
        symmetry.variance_drift([zs[1]], [1.0, 2.0])
    with pytest.raises((TypeError, ValueError)):
        symmetry.variance_drift([zs[1]], [0.0])


def test_mean_with_stderr():
    est = symmetry.mean_with_stderr(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    assert float(est.value) == 2.5
    assert float(est.stderr) == pytest.approx(math.sqrt(5 / 3) / 2)
    with pytest.raises((TypeError, ValueError)):
        symmetry.mean_with_stderr(torch.tensor([1.0]))


def _h2(p):
    return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def test_class_open_fractions_and_gate_label_information():
    y = torch.tensor([1.0, 1.0, 1.0, -1.0], dtype=torch.float64)  # pi_+ = 3/4
    # unit 0: the gate is the label; unit 1: open on patterns 0, 1, 3 (p+ = 2/3, p- = 1);
    # unit 2: always open (no information)
    z = torch.tensor(
        [[1.0, 2.0, 1.0], [3.0, 1.0, 2.0], [0.5, -1.0, 3.0], [-2.0, 4.0, 1.0]], dtype=torch.float64
    )
    p_pos, p_neg = symmetry.class_open_fractions(z, y)
    torch.testing.assert_close(p_pos, torch.tensor([1.0, 2 / 3, 1.0], dtype=torch.float64))
    torch.testing.assert_close(p_neg, torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64))
    per_unit = [_h2(0.75), _h2(0.75) - 0.75 * _h2(2 / 3), 0.0]
    expected = sum(per_unit) / 3
    assert float(symmetry.gate_label_information_bits(z, y)) == pytest.approx(expected, rel=1e-12)
    # swapping open/closed or the labels leaves it unchanged (no z is exactly 0 here)
    assert float(symmetry.gate_label_information_bits(-z, y)) == pytest.approx(expected)
    assert float(symmetry.gate_label_information_bits(z, -y)) == pytest.approx(expected)
    # balanced labels and a gate equal to the label: exactly 1 bit; equal class fractions: 0
    yb = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    assert float(symmetry.gate_label_information_bits(yb[:, None], yb)) == pytest.approx(1.0)
    same = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]], dtype=torch.float64)  # p+ = p- = 1/2
    assert float(symmetry.gate_label_information_bits(same, yb)) == 0.0


def test_gate_label_information_batched_and_bounded():
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(5, 40, 7, generator=gen, dtype=torch.float64) + 0.3
    y = torch.where(torch.rand(40, generator=gen) < 0.3, 1.0, -1.0).to(torch.float64)
    batched = symmetry.gate_label_information_bits(z, y)
    assert batched.shape == (5,)
    for k in range(5):
        assert float(batched[k]) == pytest.approx(
            float(symmetry.gate_label_information_bits(z[k], y))
        )
    h_y = _h2(float((y == 1).to(torch.float64).mean()))
    assert bool(torch.all(batched > 0)) and bool(torch.all(batched <= h_y))
    # a label-dependent shift makes the gates informative
    shifted = z + 2.0 * y[:, None]
    assert bool(torch.all(symmetry.gate_label_information_bits(shifted, y) > batched))


@pytest.mark.parametrize(
    "y",
    [
        torch.tensor([1.0, 0.0, 1.0, -1.0]),
        torch.tensor([1.0, 1.0, 1.0, 1.0]),
        torch.tensor([1.0, -1.0, 1.0]),
    ],
)
def test_gate_label_information_rejects_bad_labels(y):
    z = torch.ones(4, 2, dtype=torch.float64)
    with pytest.raises((TypeError, ValueError)):
        symmetry.gate_label_information_bits(z, y)
    with pytest.raises((TypeError, ValueError)):
        symmetry.class_open_fractions(z, y)


def test_path_couplings_match_enumeration_and_survive_rescaling():
    weights, _ = _tiny_net((3, 4, 3, 1), seed=5)
    paths = _paths(weights)
    enumerated = [math.prod(float(w[p[k + 1], p[k]]) for k, w in enumerate(weights)) for p in paths]
    got = symmetry.path_couplings(weights, paths)
    torch.testing.assert_close(got, torch.tensor(enumerated, dtype=torch.float64), **TIGHT)
    stacked = [torch.stack([w, -w]) for w in weights]  # (2, n_l, n_{l-1}); L = 3 flips: J -> -J
    batched = symmetry.path_couplings(stacked, np.array(paths))
    assert batched.shape == (2, len(paths))
    torch.testing.assert_close(batched[1], -got, **TIGHT)
    through = [p for p in paths if p[2] == 1]  # circuits through unit 1 of hidden layer 2
    rescaled = symmetry.rescale_unit(weights, 2, 1, 7.5)
    torch.testing.assert_close(
        symmetry.path_couplings(rescaled, through), symmetry.path_couplings(weights, through)
    )
    untouched = symmetry.rescale_unit(weights, 2, 1, 7.5)
    untouched[1] = weights[1]  # rescale only the out-weights: couplings through the unit change
    assert not torch.allclose(
        symmetry.path_couplings(untouched, through), symmetry.path_couplings(weights, through)
    )


@pytest.mark.parametrize(
    "paths", [[[0, 0, 0]], [[0, 0, 0, 1]], [[0, 4, 0, 0]], [[0.0, 0.0, 0.0, 0.0]], [[-1, 0, 0, 0]]]
)
def test_path_couplings_reject_bad_paths(paths):
    weights, _ = _tiny_net((3, 4, 3, 1))
    with pytest.raises((TypeError, ValueError)):
        symmetry.path_couplings(weights, paths)


# ------------------------------------------------------------------------------------------
# deprecated names and frozen derivation results
# ------------------------------------------------------------------------------------------


def test_deprecated_aliases_warn_and_agree_with_the_core():
    z = torch.randn(2, 9, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with pytest.warns(DeprecationWarning, match="mean_gate_entropy_bits"):
        old = symmetry.gate_entropy_bits(z)
    torch.testing.assert_close(old, order.mean_gate_entropy_bits(z))
    with pytest.warns(DeprecationWarning, match="layer_reservoir_bits"):
        old = symmetry.gate_reservoir_bits(z)
    torch.testing.assert_close(old, order.layer_reservoir_bits(z))


def test_derivation_results_are_frozen_and_keep_the_old_item_access():
    vmap = symmetry.derive_variance_map()
    with pytest.raises(AttributeError):
        vmap.fixed_point = None
    with pytest.warns(DeprecationWarning, match=r"\.fixed_point"):
        assert vmap["fixed_point"] == vmap.fixed_point
    with pytest.raises(KeyError):
        vmap["no such key"]


# ------------------------------------------------------------------------------------------
# the backward pass
# ------------------------------------------------------------------------------------------


def test_sympy_gradient_map_matches_the_numerical_prediction():
    res = symmetry.derive_gradient_map((2, 3, 2, 1))
    assert res.recursion.lhs != res.recursion.rhs
    symmetry.derive_gradient_map((3, 2, 2, 2, 1))  # a deeper net passes too
    hidden, weight = symmetry.gradient_prediction((5, 4, 3, 1), [1.0, 3.0, 1.5], 0.5)
    np.testing.assert_allclose(hidden, [1.5 * 0.75, 0.75])
    np.testing.assert_allclose(weight, [5 * 0.5 * 1.5 * 0.75, 4 * 0.5 * 0.5 * 0.75, 3 * 0.5 * 0.75])
    with pytest.raises(ValueError, match="single output"):
        symmetry.derive_gradient_map((2, 3, 2))


def test_top_down_expectation_refuses_a_term_odd_in_a_flipped_row():
    """E[g W] != E[W]/2: a gate times an odd power of its own row must not be halved."""
    from asbbook.symbolic import weight_symbols

    ws = weight_symbols((1, 1, 1))
    g = sp.Symbol("g")
    var = {w: 1 for m in ws for w in m}
    with pytest.raises(AssertionError, match="odd"):
        symmetry.derivations._expect_top_down(g * ws[0][0, 0], ws, [[g]], var, 1)


def test_preactivation_gradients_match_autograd():
    weights, x = _tiny_net((4, 5, 3, 1), seed=5)
    stacked = [torch.stack([w, 2 * w]) for w in weights]  # an ensemble dimension
    deltas = symmetry.preactivation_gradients(stacked, x)
    zs = [z.detach().requires_grad_() for z in nets.preactivations(weights, x)]
    for layer in range(len(weights)):
        # f as a function of z^l: the layers above, evaluated from z^l
        h = torch.relu(zs[layer]) if layer < len(weights) - 1 else zs[layer]
        for w in weights[layer + 1 :]:
            z = h @ w.T
            h = torch.relu(z) if w is not weights[-1] else z
        (grad,) = torch.autograd.grad(h.sum(), zs[layer])
        torch.testing.assert_close(deltas[layer][0], grad, **TIGHT)
    delta_sq, weight_sq = symmetry.gradient_second_moments(weights, x)
    w_req = [w.clone().requires_grad_() for w in weights]
    for p in range(x.shape[0]):
        grads = torch.autograd.grad(nets.forward(w_req, x[p : p + 1]).sum(), w_req)
        if p == 0:
            norms = torch.stack([g.square().sum() for g in grads]) / x.shape[0]
        else:
            norms += torch.stack([g.square().sum() for g in grads]) / x.shape[0]
    torch.testing.assert_close(weight_sq, norms, **TIGHT)
    assert delta_sq.shape == (2,)


@pytest.mark.parametrize("sigma2", [1.5, 2.0])
def test_gradient_second_moments_monte_carlo(sigma2):
    widths = (6, 8, 8, 1)
    gen = torch.Generator().manual_seed(11)
    weights = _gaussian_ensemble(widths, 4000, sigma2, gen)
    x = torch.randn(5, widths[0], generator=gen, dtype=torch.float64)
    delta_sq, weight_sq = symmetry.gradient_second_moments(weights, x)
    hidden, weight = symmetry.gradient_prediction(widths, sigma2, float((x**2).mean()))
    for samples, predicted in ((delta_sq, hidden), (weight_sq, weight)):
        est = symmetry.mean_with_stderr(samples)
        z = (est.value.numpy() - predicted) / est.stderr.numpy()
        assert np.all(np.abs(z) < 4.5), z
    # and a wrong prediction (off the fixed point) is detected
    est = symmetry.mean_with_stderr(delta_sq)
    wrong = np.ones_like(hidden) * (0.5 if sigma2 == 2.0 else 1.0)
    assert np.any(np.abs((est.value.numpy() - wrong) / est.stderr.numpy()) > 6)


# ------------------------------------------------------------------------------------------
# the information bias
# ------------------------------------------------------------------------------------------


def test_sympy_information_bias():
    res = symmetry.derive_information_bias()
    big_n = sp.Symbol("N", positive=True)
    assert sp.simplify(res.binary.rhs - 1 / (2 * big_n * sp.log(2))) == 0
    assert symmetry.first_order_bias_bits(300) == pytest.approx(1 / (600 * math.log(2)), rel=1e-12)


def test_null_bias_is_exact_and_tends_to_the_first_order_formula():
    table = symmetry.information_null_bias_bits(30, 12)
    assert table[0] == table[30] == 0 and table.shape == (31,)
    # exact against enumeration of the hypergeometric law, for k = 7
    from scipy import stats as sstats

    j = np.arange(0, 8)
    exact = sum(
        sstats.hypergeom.pmf(jj, 30, 12, 7)
        * float(symmetry.information_from_counts_bits(jj, 7, 12, 30))
        for jj in j
    )
    assert table[7] == pytest.approx(exact, rel=1e-12)
    # first order at large P, for a unit open on half of the patterns
    for n in (400, 2000):
        b = symmetry.information_null_bias_bits(n, n // 2)[n // 2]
        assert b / symmetry.first_order_bias_bits(n) == pytest.approx(1, abs=3.0 / n)


def test_gate_statistics_agree_with_the_order_parameters():
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(3, 40, 6, generator=gen, dtype=torch.float64)
    y = torch.tensor([1.0, -1.0] * 15 + [1.0] * 10, dtype=torch.float64)
    g = symmetry.gate_statistics(z, y)
    torch.testing.assert_close(g["information"], order.gate_label_information_bits(z, y))
    torch.testing.assert_close(g["entropy"], order.mean_gate_entropy_bits(z))
    torch.testing.assert_close(g["open_fraction"], order.open_fraction(z))
    p_pos, p_neg = order.class_open_fractions(z, y)
    torch.testing.assert_close(g["open_positive"], p_pos)
    torch.testing.assert_close(g["open_negative"], p_neg)
    # one labelling per network gives the same as each network on its own
    ys = symmetry.shuffled_labels(y, 3, seed=4)
    batched = symmetry.gate_label_information_debiased_bits(z, ys)
    single = [symmetry.gate_label_information_debiased_bits(z[k], ys[k]) for k in range(3)]
    torch.testing.assert_close(batched, torch.stack(single))


def test_debiased_information_has_mean_zero_under_shuffled_labels():
    gen = torch.Generator().manual_seed(8)
    z = torch.randn(60, 7, generator=gen, dtype=torch.float64) + torch.linspace(-2, 2, 7)
    y = torch.tensor([1.0] * 25 + [-1.0] * 35, dtype=torch.float64)
    ys = symmetry.shuffled_labels(y, 3000, seed=1)
    debiased = symmetry.gate_label_information_debiased_bits(z.expand(3000, -1, -1), ys)
    plug_in = symmetry.gate_statistics(z.expand(3000, -1, -1), ys)["information"]
    est = symmetry.mean_with_stderr(debiased)
    assert abs(float(est.value)) < 4 * float(est.stderr)
    raw = symmetry.mean_with_stderr(plug_in)  # the plug-in estimate is visibly biased
    assert float(raw.value) > 10 * float(raw.stderr)


# ------------------------------------------------------------------------------------------
# half-times and the order of breaking
# ------------------------------------------------------------------------------------------


def test_half_time():
    steps = [0, 2, 4, 6, 8]
    series = np.array([[0, 1, 2, 3, 4.0], [0, -3, -3, -4, -4], [1, 1, 1, 1, 1], [0, -1, 2, 3, 2]])
    np.testing.assert_array_equal(symmetry.half_time(series, steps), [4, 2, 0, 4])
    assert symmetry.half_time([0.0, 0.0, 1.0], [1, 5, 9]) == 9
    with pytest.raises(ValueError, match="steps"):
        symmetry.half_time(series, [0, 2, 4])
    with pytest.raises(ValueError, match="steps"):
        symmetry.half_time(series, [0, 2, 2, 6, 8])
    with pytest.raises(TypeError, match="series"):
        symmetry.half_time(np.arange(5), steps)


def test_order_comparison_is_a_calibrated_one_sided_test():
    from asbbook import report

    first = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    ahead = symmetry.OrderComparison("a before b", first, first + 5)
    assert ahead.successes == ahead.trials == 10 and ahead.p_value() == 1.0
    assert ahead.sign_test_p == pytest.approx(2 * 0.5**10)
    assert ahead.gap.value == pytest.approx(5.0)
    behind = symmetry.OrderComparison("a before b", first + 5, first)
    assert behind.p_value() == pytest.approx(0.5**10)
    assert report.evaluate([behind], alpha=0.01).failures
    assert not report.evaluate([ahead], alpha=0.01).failures
    ties = symmetry.OrderComparison("ties", first, first)
    assert ties.trials == 0 and ties.p_value() == 1.0 and ties.detectable(0.01) == math.inf
    assert 0 < ahead.detectable(0.01) < 0.5
    # calibration: under P(a first) = 1/2 exactly, rejections at level 0.05 are at most 5%
    rng = np.random.default_rng(0)
    rejections = 0
    for _ in range(2000):
        a = rng.random(32)
        rejections += symmetry.OrderComparison("x", a, rng.random(32)).p_value() < 0.05
    assert rejections / 2000 < 0.05 + 3 * math.sqrt(0.05 * 0.95 / 2000)
    with pytest.raises(ValueError, match="paired"):
        symmetry.OrderComparison("x", first, first[:3])


def test_joint_row_is_hotellings_test():
    gen = torch.Generator().manual_seed(0)
    samples = torch.randn(50, 3, generator=gen, dtype=torch.float64) + torch.tensor([1.0, 2, 3])
    row = symmetry.joint_row("x", [1.0, 2.0, 3.0], samples)
    s = samples.numpy()
    d = s.mean(0) - [1, 2, 3]
    t2 = 50 * d @ np.linalg.solve(np.cov(s, rowvar=False), d)
    assert row.statistic == pytest.approx(t2) and row.n_samples == 50
    assert symmetry.joint_row("x", [1.0, 2.0, 4.0], samples).p_value() < 1e-3


def test_random_circuits_and_exact_symmetry_residuals():
    widths = (4, 5, 3, 1)
    paths, partners = symmetry.random_circuits(widths, 100, seed=3)
    assert paths.shape == (100, 4) and torch.equal(paths[:, 1:], partners[:, 1:])
    assert bool((paths[:, 0] != partners[:, 0]).all())
    again, _ = symmetry.random_circuits(widths, 100, seed=3)
    assert torch.equal(paths, again)
    weights, x = _tiny_net(widths, seed=1)
    res = symmetry.exact_symmetry_residuals(weights, x, paths, seed=0)
    assert res["f, permuted"] < 1e-13 and res["f, rescaled"] < 1e-13
    assert res["J, rescaled"] < 1e-13 and res["gates changed, rescaled"] == 0
    assert res["f, one unit sign-flipped"] > 1e-3


def test_log_coupling_moment_monte_carlo():
    widths = (5, 4, 3, 1)
    res = symmetry.derive_sign_flip_moments(widths)
    assert res.log_square.rhs.has(sp.EulerGamma)
    predicted = symmetry.log_coupling_prediction(widths, 2.0)
    expected = sum(math.log(2.0 / n) for n in widths[:-1]) - 3 * (np.euler_gamma + math.log(2))
    assert predicted == pytest.approx(expected, rel=1e-14)
    gen = torch.Generator().manual_seed(4)
    weights = _gaussian_ensemble(widths, 20000, 2.0, gen)
    paths = torch.tensor([[0, 0, 0, 0], [4, 3, 2, 0]])
    log_j2 = symmetry.path_couplings(weights, paths).square().log()
    est = symmetry.mean_with_stderr(log_j2)
    assert np.all(np.abs((est.value.numpy() - predicted) / est.stderr.numpy()) < 4.5)
    # sigma2 = 1 instead of 2 shifts it by 3 ln 2, which is detected
    assert np.all(
        np.abs(est.value.numpy() - predicted - 3 * math.log(0.5)) > 8 * est.stderr.numpy()
    )
