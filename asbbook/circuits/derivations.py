"""Symbolic derivations of the chapter (sympy), on the one symbolic network of
``asbbook.symbolic``. Each ``derive_*`` asserts its identities and returns a frozen dataclass
whose fields the chapter displays.

Circuits ``pi = (i_0, ..., i_L)`` are ordered row-major (``i_0`` slowest), as in
``asbbook.symbolic.circuit_parts``; indices in code are 0-based.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

from asbbook import symbolic, validation
from asbbook.circuits import _checks
from asbbook.symbolic import DerivationResult


@dataclass(frozen=True)
class PathExpansion(DerivationResult):
    """Result of :func:`derive_path_expansion`."""

    layered: sp.Expr  # W^L G^{L-1} ... G^1 W^1 x, computed layer by layer
    circuit_sum: sp.Expr  # sum_pi x_{i_0} J_pi S_pi
    n_circuits: int  # n_0 n_1 ... n_L
    circuits: list  # (pi, x_{i_0}, J_pi, S_pi) per circuit, row-major, 0-based pi


@dataclass(frozen=True)
class SpinForm(DerivationResult):
    """Result of :func:`derive_spin_form`: ``f`` as a polynomial in the spins ``s = 2g - 1``."""

    f_spin: sp.Expr  # the expanded polynomial
    degree: int  # L - 1 for generic weights
    constant: sp.Expr  # 0-body coefficient, 2^{-(L-1)} W^L ... W^1 x
    one_body: dict  # spin -> coefficient
    two_body: dict  # (spin, spin) -> coefficient
    terms_by_order: list  # number of k-body monomials, k = 0 .. L-1


@dataclass(frozen=True)
class CircuitEnergyDerivation(DerivationResult):
    """Result of :func:`derive_circuit_energy`."""

    loss: sp.Expr  # 1/2 sum_mu (y_mu - f(x_mu))^2 with f computed layer by layer
    constant: sp.Expr  # 1/2 sum_mu y_mu^2
    field_term: sp.Expr  # sum_pi J_pi h_pi
    interaction_term: sp.Expr  # 1/2 sum_{pi,pi'} J_pi J_pi' C_{pi pi'}
    fields: list  # h_pi per circuit
    coupling: sp.Matrix  # C, (n_circuits, n_circuits)
    features: sp.Matrix  # Phi_{mu pi} = x_{mu,i_0} S_pi(x_mu), (P, n_circuits); C = Phi^T Phi
    generic_rank: int  # rank of C at a random rational point: min(P, n_circuits)


@dataclass(frozen=True)
class OpenCircuitDerivation(DerivationResult):
    """Result of :func:`derive_expected_open_circuits`."""

    per_circuit_probability: sp.Expr  # p_l, the solution of p_l = p_{l-1} / 2, p_0 = 1
    formula: sp.Expr  # E N for L = 3 in symbols n_0 .. n_3
    orbit_checks: list  # (widths, orbit size, orbit average of N, predicted), exact rationals


def _circuit_terms(ws, gates, x) -> list[sp.Expr]:
    return [xi * J * S for _, xi, J, S in symbolic.circuit_parts(ws, gates, x)]


def derive_path_expansion(widths: Sequence[int] = (2, 3, 2, 1)) -> PathExpansion:
    """Prove ``W^L G^{L-1} ... G^1 W^1 x = sum_pi x_{i_0} J_pi S_pi`` on a symbolic network
    (the path expansion of ReLU networks, e.g. Choromanska et al. 2015).

    Weights, gates and inputs are independent symbols. Asserts that the layered computation minus
    the circuit sum expands to zero, and that the ``n_0 n_1 ... n_L`` circuits are as many
    *distinct* monomials of the layered computation (no two merge, none cancels).
    """
    widths = _checks.derivation_widths(widths)
    ws = symbolic.weight_symbols(widths)
    g = symbolic.unit_symbols("g", widths)
    x = symbolic.input_symbols(widths[0])
    layered = symbolic.gated_output(ws, g, x)
    parts = list(symbolic.circuit_parts(ws, g, x))
    circuit_sum = sp.Add(*(xi * J * S for _, xi, J, S in parts))
    n_circuits = math.prod(widths)
    assert sp.expand(layered - circuit_sum) == 0, "layered computation != circuit sum"
    assert len(parts) == n_circuits
    assert len(sp.Add.make_args(sp.expand(layered))) == n_circuits, "circuits are not distinct"
    return PathExpansion(layered, circuit_sum, n_circuits, parts)


def _pinned_linear_coefficient(ws: list[sp.Matrix], x, pins) -> sp.Expr:
    """``W^L ... W^1 x`` with the path forced through unit ``i`` of layer ``l`` for every
    ``(l, i)`` in ``pins`` (a projector ``e_i e_i^T`` inserted after layer ``l``)."""
    pinned = dict(pins)
    v = sp.Matrix(x)
    for ell, w in enumerate(ws, start=1):
        v = w * v
        if ell in pinned:
            keep = pinned[ell]
            v = sp.Matrix([v[i] if i == keep else 0 for i in range(v.rows)])
    return v[0]


def derive_spin_form(widths: Sequence[int] = (2, 2, 2, 2, 1)) -> SpinForm:
    """Spin form of the circuit sum: put ``g^l_i = (1 + s^l_i)/2`` with ``s^l_i = +-1``.

    ``f = sum_pi x_{i_0} J_pi prod_{l<L} (1 + s^l_{i_l})/2`` is multilinear in the spins, and
    every monomial holds *at most one spin per layer* (a circuit visits one unit per layer), so
    the degree is at most ``L - 1`` and there are no same-layer couplings. The coefficient of
    ``s^{l_1}_{u_1} ... s^{l_k}_{u_k}`` is ``2^{-(L-1)}`` times the *linear* network
    ``W^L ... W^1 x`` with the path pinned through the units ``u_r`` of layers ``l_r``.

    Asserts: the polynomial equals the gate form after ``s = 2g - 1``; degree ``L - 1``; no
    monomial repeats a layer; every coefficient matches the pinned formula; the number of
    k-body terms is the elementary symmetric polynomial ``e_k(n_1, ..., n_{L-1})``.
    """
    widths = _checks.derivation_widths(widths, min_layers=3)
    L = len(widths) - 1
    ws = symbolic.weight_symbols(widths)
    x = symbolic.input_symbols(widths[0])
    g = symbolic.unit_symbols("g", widths)
    s = symbolic.unit_symbols("s", widths)
    units = [(ell, i) for ell in range(L - 1) for i in range(widths[ell + 1])]
    where = {s[ell][i]: (ell + 1, i) for ell, i in units}
    spins = list(where)
    f_gate = sp.Add(*_circuit_terms(ws, g, x))
    f_spin = sp.expand(f_gate.subs({g[ell][i]: (1 + s[ell][i]) / 2 for ell, i in units}))
    back = f_spin.subs({s[ell][i]: 2 * g[ell][i] - 1 for ell, i in units})
    assert sp.expand(back - f_gate) == 0, "spin form != gate form"

    poly = sp.Poly(f_spin, *spins)
    degree = poly.total_degree()
    assert degree == L - 1, f"degree {degree}, expected L-1 = {L - 1}"
    scale = sp.Rational(1, 2 ** (L - 1))
    constant, one_body, two_body = sp.Integer(0), {}, {}
    terms_by_order = [0] * L
    for monom, coeff in poly.terms():
        assert all(e <= 1 for e in monom), "the spin polynomial must be multilinear"
        present = [spins[k] for k, e in enumerate(monom) if e]
        layers = [where[spin][0] for spin in present]
        assert len(set(layers)) == len(layers), "two spins of the same layer in one term"
        predicted = scale * _pinned_linear_coefficient(ws, x, sorted(where[p] for p in present))
        assert sp.expand(coeff - predicted) == 0, f"coefficient of {present} mismatches"
        terms_by_order[len(present)] += 1
        if not present:
            constant = coeff
        elif len(present) == 1:
            one_body[present[0]] = coeff
        elif len(present) == 2:
            two_body[tuple(present)] = coeff
    hidden = widths[1:-1]
    for k in range(L):
        e_k = sum(math.prod(c) for c in itertools.combinations(hidden, k))
        assert terms_by_order[k] == e_k, f"{terms_by_order[k]} {k}-body terms, expected {e_k}"
    return SpinForm(f_spin, degree, constant, one_body, two_body, terms_by_order)


def _generic_rank(matrix: sp.Matrix, seed: int) -> int:
    """Rank of ``matrix`` at a random rational point (the generic rank with probability 1)."""
    rng = random.Random(seed)
    point = {
        s: sp.Rational(rng.choice([-1, 1]) * rng.randint(1, 97), rng.randint(1, 89))
        for s in sorted(matrix.free_symbols, key=str)
    }
    return matrix.subs(point).rank()


def derive_circuit_energy(
    widths: Sequence[int] = (2, 2, 2, 1), n_examples: int = 2
) -> CircuitEnergyDerivation:
    """Prove that the squared loss is a pairwise energy in the circuit couplings ``J_pi``::

        1/2 sum_mu (y_mu - f(x_mu))^2 = 1/2 sum_mu y_mu^2 - sum_pi J_pi h_pi
                                        + 1/2 sum_{pi,pi'} J_pi J_pi' C_{pi pi'},
        h_pi = sum_mu y_mu Phi_{mu pi},   C = Phi^T Phi,   Phi_{mu pi} = x_{mu,i_0} S_pi(x_mu),

    so ``C`` is a Gram matrix of the ``P`` circuit-feature vectors ``Phi_mu``: positive
    semi-definite, of rank at most ``P`` -- the form of Hopfield's (1982) Hebbian couplings
    ``T = sum_mu xi_mu xi_mu^T``, with the examples as the stored patterns.

    On a symbolic network and dataset (each example has its own gate symbols, and ``f`` is
    computed layer by layer, independently of the circuit sum). Asserts the identity; ``C`` is
    symmetric and equals ``Phi^T Phi``; ``v^T C v = |Phi v|^2`` for a symbolic vector ``v``
    (positive semi-definite); the rank of ``C`` at a generic rational point is
    ``min(P, n_circuits)``; and the two shortcuts of :func:`circuit_energy_terms`:
    ``sum_pi J_pi h_pi = sum_mu y_mu f(x_mu)`` and ``1/2 J^T C J = 1/2 sum_mu f(x_mu)^2``.
    """
    widths = _checks.derivation_widths(widths, max_circuits=32)
    P = validation.check_int("n_examples", n_examples, minimum=1, maximum=8)
    ws = symbolic.weight_symbols(widths)
    ys = [sp.Symbol(f"y_{{{mu + 1}}}", real=True) for mu in range(P)]
    xs = [symbolic.input_symbols(widths[0], mu + 1) for mu in range(P)]
    gs = [symbolic.unit_symbols("g", widths, mu + 1) for mu in range(P)]
    fs = [symbolic.gated_output(ws, gs[mu], xs[mu]) for mu in range(P)]
    loss = sp.Rational(1, 2) * sp.Add(*((ys[mu] - fs[mu]) ** 2 for mu in range(P)))
    J = [coupling for _, _, coupling, _ in symbolic.circuit_parts(ws, gs[0], xs[0])]
    features = sp.Matrix(
        [[xi * S for _, xi, _, S in symbolic.circuit_parts(ws, gs[mu], xs[mu])] for mu in range(P)]
    )
    n = len(J)
    fields_ = [sp.Add(*(ys[mu] * features[mu, p] for mu in range(P))) for p in range(n)]
    coupling = sp.Matrix(
        n, n, lambda p, q: sp.Add(*(features[mu, p] * features[mu, q] for mu in range(P)))
    )
    constant = sp.Rational(1, 2) * sp.Add(*(y**2 for y in ys))
    field_term = sp.Add(*(J[p] * fields_[p] for p in range(n)))
    interaction_term = sp.Rational(1, 2) * sp.Add(
        *(J[p] * J[q] * coupling[p, q] for p in range(n) for q in range(n))
    )
    assert sp.expand(loss - (constant - field_term + interaction_term)) == 0, "energy identity"
    assert coupling == coupling.T
    assert (coupling - features.T * features).applyfunc(sp.expand) == sp.zeros(n, n)
    v = sp.Matrix(sp.symbols(f"v_1:{n + 1}", real=True))
    projected = features * v
    assert sp.expand((v.T * coupling * v)[0] - (projected.T * projected)[0]) == 0, "not a Gram form"
    rank = _generic_rank(coupling, seed=n + P)
    assert rank == min(P, n), f"generic rank {rank}, expected min(P, n_circuits) = {min(P, n)}"
    assert sp.expand(field_term - sp.Add(*(y * f for y, f in zip(ys, fs, strict=True)))) == 0
    assert sp.expand(interaction_term - sp.Rational(1, 2) * sp.Add(*(f**2 for f in fs))) == 0
    return CircuitEnergyDerivation(
        loss, constant, field_term, interaction_term, fields_, coupling, features, rank
    )


def _orbit_average_open_circuits(widths: Sequence[int], seed: int) -> tuple[Fraction, int]:
    """Exact average of the open-circuit count over the row-sign-flip orbit of one network.

    Weights and input are fixed random non-zero rationals; the orbit flips the sign of any
    subset of rows of the hidden-layer matrices ``W^1 .. W^{L-1}`` (``2^{n_1 + ... + n_{L-1}}``
    networks), each of which is equally likely under a sign-symmetric row law.
    """
    rng = random.Random(seed)

    def nonzero() -> Fraction:
        return Fraction(rng.choice([-1, 1]) * rng.randint(1, 97), rng.randint(1, 89))

    L = len(widths) - 1
    W = [
        [[nonzero() for _ in range(n_in)] for _ in range(n_out)]
        for n_in, n_out in itertools.pairwise(widths)
    ]
    x = [nonzero() for _ in range(widths[0])]
    rows = [(ell, i) for ell in range(L - 1) for i in range(widths[ell + 1])]
    total = Fraction(0)
    for signs in itertools.product((1, -1), repeat=len(rows)):
        flip = dict(zip(rows, signs, strict=True))
        h = x
        count = widths[0] * widths[-1]
        for ell in range(L - 1):
            z = [
                flip[(ell, i)] * sum(w * hj for w, hj in zip(W[ell][i], h, strict=True))
                for i in range(widths[ell + 1])
            ]
            assert all(zi != 0 for zi in z) or all(hj == 0 for hj in h), "non-generic weights"
            h = [zi if zi > 0 else Fraction(0) for zi in z]
            count *= sum(1 for zi in z if zi > 0)
        total += count
    n_orbit = 2 ** len(rows)
    return total / n_orbit, n_orbit


def derive_expected_open_circuits(
    max_hidden_layers: int = 5,
    check_widths: Sequence[Sequence[int]] = ((2, 3, 2, 1), (3, 2, 2, 2, 1), (2, 2, 3, 1, 2, 1)),
    seed: int = 0,
) -> OpenCircuitDerivation:
    """Expected number of open circuits at initialisation: ``n_0 n_L prod_{0<l<L} (n_l / 2)``.

    ``N(x) = sum_pi S_pi(x)``. By linearity ``E N(x) = sum_pi P(S_pi(x) = 1)``, and every circuit
    is open with probability ``p_{L-1}``, ``p_l = p_{l-1} / 2``, ``p_0 = 1``: condition on
    everything below layer ``l`` and on the other rows of ``W^l``; if the circuit's gates below
    ``l`` are open then ``h^{l-1} != 0``, and flipping the sign of row ``i_l`` of ``W^l`` -- a
    symmetry of the ensemble -- flips ``z^l_{i_l}`` and no gate below, so ``g^l_{i_l}`` opens
    with conditional probability exactly ``1/2``.

    Exact when ``x != 0``, the rows of ``W^1 .. W^{L-1}`` are independent with laws invariant
    under ``w -> -w`` (e.g. He et al. 2015's Gaussian initialisation), and ``P(w . h = 0) = 0``
    for every ``h != 0`` (any law with a density). The gates are *not* independent, yet the
    expectation is a product because each circuit visits one unit per layer.

    Asserts: the recursion solves to ``2^{-(L-1)}`` and gives the product formula for symbolic
    widths (``L - 1 = 1 .. max_hidden_layers``); and, exactly in rational arithmetic, that the
    average of ``N(x)`` over the whole sign-flip orbit of the rows of a fixed generic network
    equals the formula for each of ``check_widths``.
    """
    max_hidden_layers = validation.check_int(
        "max_hidden_layers", max_hidden_layers, minimum=1, maximum=12
    )
    seed = validation.check_seed("seed", seed)
    lvar = sp.Symbol("l", integer=True, nonnegative=True)
    p = sp.Function("p")
    p_sol = sp.rsolve(p(lvar) - p(lvar - 1) / 2, p(lvar), {p(0): 1})
    assert sp.simplify(p_sol - sp.Rational(1, 2) ** lvar) == 0
    formula = None
    for hidden in range(1, max_hidden_layers + 1):
        L = hidden + 1
        n = sp.symbols(f"n_0:{L + 1}", positive=True, integer=True)
        expected = n[0] * n[L] * sp.Mul(*n[1:L]) * p_sol.subs(lvar, L - 1)
        product_form = n[0] * n[L] * sp.Mul(*(n[ell] / 2 for ell in range(1, L)))
        assert sp.simplify(expected - product_form) == 0
        if L == 3:
            formula = product_form
    checks = []
    for k, w in enumerate(check_widths):
        w = validation.check_widths(w, name=f"check_widths[{k}]")
        if sum(w[1:-1]) > 16:
            raise ValueError(f"check_widths[{k}] has 2^{sum(w[1:-1])} sign flips: too many")
        average, n_orbit = _orbit_average_open_circuits(w, seed + k)
        predicted = Fraction(w[0] * w[-1]) * math.prod(Fraction(m, 2) for m in w[1:-1])
        assert average == predicted, f"orbit average {average} != {predicted} for widths {w}"
        checks.append((w, n_orbit, sp.Rational(average), sp.Rational(predicted)))
    return OpenCircuitDerivation(p_sol, formula, checks)
