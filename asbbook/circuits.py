"""Chapter 2: circuits, the Ising-like circuit energy and the open-circuit count.

A *circuit* of a bias-free ReLU MLP with widths ``(n_0, ..., n_L)`` is an input-to-output path
``pi = (i_0, i_1, ..., i_L)`` that visits one unit per layer (BOOK_PLAN, Ch. 2). With
``J_pi = prod_l W^l_{i_l i_{l-1}}`` (the circuit's *coupling*) and
``S_pi(x) = prod_{l<L} g^l_{i_l}(x)`` in ``{0, 1}`` (the circuit is *open* or *closed*), the
layered computation ``f = W^L G^{L-1} W^{L-1} ... G^1 W^1 x`` is the path sum::

    f(x) = sum_pi x_{i_0} J_pi S_pi(x),            (n_0 n_1 ... n_L circuits)

the standard path expansion of ReLU networks (used, e.g., by Choromanska et al. 2015). The
squared loss over a dataset ``(x_mu, y_mu)`` then reads::

    1/2 sum_mu (y_mu - f(x_mu))^2
        = 1/2 sum_mu y_mu^2 - sum_pi J_pi h_pi + 1/2 sum_{pi, pi'} J_pi J_pi' C_{pi pi'},
    h_pi       = sum_mu y_mu x_{mu, i_0} S_pi(x_mu)                         (field),
    C_{pi pi'} = sum_mu x_{mu, i_0} x_{mu, i'_0} S_pi(x_mu) S_pi'(x_mu)     (coupling),

a pairwise (Ising/Hopfield-like) energy in the circuit variables ``J_pi`` at a given gate
configuration.

Conventions: ``weights[l-1]`` is ``W^l`` with shape ``(n_l, n_{l-1})`` (see :mod:`asbbook.nets`);
inputs ``x`` are shaped ``(batch, n_0)``. Circuits are ordered row-major over
``(i_0, i_1, ..., i_L)`` (``i_0`` varies slowest, ``i_L`` fastest), the order of
:func:`circuit_indices` and of ``itertools.product(range(n_0), ..., range(n_L))``. Indices in code
are 0-based. The sympy derivations (``derive_*``) assert their identities and return the
expressions so the chapter can display them.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import sympy as sp
import torch

from asbbook import nets

#: Default refusal threshold for enumerating circuits (number of circuits of one network).
DEFAULT_MAX_CIRCUITS = 2_000_000
#: Default refusal threshold for the number of entries of an enumerated ``(batch, circuits)``
#: tensor (20 million float64 entries are 160 MB).
DEFAULT_MAX_ENTRIES = 20_000_000
#: Default refusal threshold for the explicit circuit-by-circuit coupling matrix ``C``.
DEFAULT_MAX_COUPLING_CIRCUITS = 2048


# --------------------------------------------------------------------------------------------
# Symbolic derivations (sympy)
# --------------------------------------------------------------------------------------------


def _sym_weights(widths: Sequence[int]) -> list[sp.Matrix]:
    """Symbolic ``W^l`` matrices with entries ``W^{(l)}_{ij}`` (1-based in the display)."""
    return [
        sp.Matrix(n_out, n_in, lambda i, j, ell=ell: sp.Symbol(f"W^{{({ell})}}_{{{i + 1}{j + 1}}}"))
        for ell, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True), start=1)
    ]


def _sym_units(
    name: str, widths: Sequence[int], example: int | None = None
) -> list[list[sp.Symbol]]:
    """Symbols ``name^{(l)}_{i}`` (or ``name^{(l)}_{mu i}`` for example ``mu``) of hidden layers."""
    tag = "" if example is None else f"{example},"
    return [
        [sp.Symbol(f"{name}^{{({ell})}}_{{{tag}{i + 1}}}") for i in range(widths[ell])]
        for ell in range(1, len(widths) - 1)
    ]


def _sym_inputs(n_0: int, example: int | None = None) -> list[sp.Symbol]:
    if example is None:
        return [sp.Symbol(f"x_{{{i + 1}}}") for i in range(n_0)]
    return [sp.Symbol(f"x_{{{example},{i + 1}}}") for i in range(n_0)]


def _layered_output(W: list[sp.Matrix], gates: list[list[sp.Expr]], x: list[sp.Expr]) -> sp.Expr:
    """``W^L G^{L-1} W^{L-1} ... G^1 W^1 x`` with ``G^l = diag(gates[l-1])`` (scalar output)."""
    h = sp.Matrix(x)
    for ell, w in enumerate(W):
        h = w * h
        if ell < len(W) - 1:
            h = sp.diag(*gates[ell]) * h
    return h[0]


def _sym_circuit_parts(W, gates, x, widths):
    """For every circuit ``pi`` (row-major order): ``(pi, x_{i_0}, J_pi, S_pi)``."""
    L = len(widths) - 1
    for pi in itertools.product(*(range(n) for n in widths)):
        J = sp.Mul(*(W[ell][pi[ell + 1], pi[ell]] for ell in range(L)))
        S = sp.Mul(*(gates[ell][pi[ell + 1]] for ell in range(L - 1)))
        yield pi, x[pi[0]], J, S


def _require_scalar_output_widths(widths: Sequence[int], min_layers: int = 2) -> tuple[int, ...]:
    widths = nets.check_widths(widths)
    if widths[-1] != 1:
        raise ValueError(f"the derivation needs a scalar output (n_L = 1), got widths {widths}")
    if len(widths) - 1 < min_layers:
        raise ValueError(f"the derivation needs at least {min_layers} weight layers, got {widths}")
    return widths


def derive_path_expansion(widths: Sequence[int] = (2, 3, 2, 1)) -> dict:
    """Prove ``W^L G^{L-1} ... G^1 W^1 x = sum_pi x_{i_0} J_pi S_pi`` on a symbolic network.

    Weights, gates and inputs are independent symbols. Asserts (BOOK_PLAN Ch. 2):

    * the expanded layered computation minus the circuit sum is identically zero;
    * there are ``n_0 n_1 ... n_L`` circuits, and they are ``n_0 ... n_L`` *distinct*
      monomials of the layered computation (no two circuits merge, none cancels).

    Returns ``{"layered", "circuit_sum", "n_circuits", "circuits"}``, where ``circuits`` lists
    ``(pi, x_{i_0}, J_pi, S_pi)`` in row-major circuit order (0-based ``pi``).
    """
    widths = _require_scalar_output_widths(widths)
    W = _sym_weights(widths)
    g = _sym_units("g", widths)
    x = _sym_inputs(widths[0])
    layered = _layered_output(W, g, x)
    parts = list(_sym_circuit_parts(W, g, x, widths))
    terms = [xi * J * S for _, xi, J, S in parts]
    circuit_sum = sp.Add(*terms)
    n_circuits = math.prod(widths)
    assert sp.expand(layered - circuit_sum) == 0, "layered computation != circuit sum"
    assert len(terms) == n_circuits
    assert len(sp.Add.make_args(sp.expand(layered))) == n_circuits, "circuits are not distinct"
    return {
        "layered": layered,
        "circuit_sum": circuit_sum,
        "n_circuits": n_circuits,
        "circuits": parts,
    }


def _pinned_linear_coefficient(W: list[sp.Matrix], x: list[sp.Expr], pins) -> sp.Expr:
    """``W^L ... W^1 x`` with the path forced through unit ``i`` of layer ``l`` for every
    ``(l, i)`` in ``pins`` (a projector ``e_i e_i^T`` inserted after layer ``l``)."""
    pinned = dict(pins)
    v = sp.Matrix(x)
    for ell, w in enumerate(W, start=1):
        v = w * v
        if ell in pinned:
            keep = pinned[ell]
            v = sp.Matrix([v[i] if i == keep else 0 for i in range(v.rows)])
    return v[0]


def derive_spin_form(widths: Sequence[int] = (2, 2, 2, 2, 1)) -> dict:
    """Spin form of the circuit sum: put ``g^l_i = (1 + s^l_i)/2`` with ``s^l_i = +-1``.

    Then ``f = sum_pi x_{i_0} J_pi prod_{l<L} (1 + s^l_{i_l})/2`` is a multilinear polynomial in
    the gate spins. Every circuit visits exactly one unit per hidden layer, so every monomial
    holds *at most one spin per layer*; hence the degree is at most ``L - 1`` and there are no
    same-layer couplings. The coefficient of ``s^{l_1}_{u_1} ... s^{l_k}_{u_k}``
    (``l_1 < ... < l_k``) is ``2^{-(L-1)}`` times the *linear* network ``W^L ... W^1 x`` with the
    path pinned through the units ``u_r`` of layers ``l_r``:

        k = 0:  2^{-(L-1)} (W^L ... W^1 x)
        k = 1:  2^{-(L-1)} [W^L ... W^{l+1}]_{i} [W^l ... W^1 x]_i                    (field on s^l_i)
        k = 2:  2^{-(L-1)} [W^L..W^{m+1}]_j [W^m..W^{l+1}]_{ji} [W^l..W^1 x]_i        (l < m)

    Asserts: the polynomial equals the gate form after ``s = 2g - 1``; degree ``== L - 1``
    (generic symbols); no monomial repeats a layer; every coefficient matches the pinned
    formula; the number of k-body terms is the elementary symmetric polynomial
    ``e_k(n_1, ..., n_{L-1})``. Needs ``L - 1 >= 2`` hidden layers to show 2-body terms.

    Returns ``{"f_spin", "degree", "constant", "one_body", "two_body", "terms_by_order"}`` where
    ``one_body`` maps a spin symbol to its coefficient and ``two_body`` a pair of spins to theirs.
    """
    widths = _require_scalar_output_widths(widths, min_layers=3)
    L = len(widths) - 1
    W = _sym_weights(widths)
    x = _sym_inputs(widths[0])
    g = _sym_units("g", widths)
    s = _sym_units("s", widths)
    where = {s[ell][i]: (ell + 1, i) for ell in range(L - 1) for i in range(widths[ell + 1])}
    spins = list(where)
    f_gate = sp.Add(*(xi * J * S for _, xi, J, S in _sym_circuit_parts(W, g, x, widths)))
    to_spin = {
        g[ell][i]: (1 + s[ell][i]) / 2 for ell in range(L - 1) for i in range(widths[ell + 1])
    }
    f_spin = sp.expand(f_gate.subs(to_spin))
    to_gate = {s[ell][i]: 2 * g[ell][i] - 1 for ell in range(L - 1) for i in range(widths[ell + 1])}
    assert sp.expand(f_spin.subs(to_gate) - f_gate) == 0, "spin form != gate form"

    poly = sp.Poly(f_spin, *spins)
    degree = poly.total_degree()
    assert degree <= L - 1 and degree == L - 1, f"degree {degree}, expected L-1 = {L - 1}"
    scale = sp.Rational(1, 2 ** (L - 1))
    constant = sp.Integer(0)
    one_body: dict = {}
    two_body: dict = {}
    terms_by_order = [0] * L
    for monom, coeff in poly.terms():
        present = [spins[k] for k, e in enumerate(monom) if e]
        assert all(e <= 1 for e in monom), "the spin polynomial must be multilinear"
        layers = [where[sp_][0] for sp_ in present]
        assert len(set(layers)) == len(layers), "two spins of the same layer in one term"
        pins = sorted(where[sp_] for sp_ in present)
        predicted = scale * _pinned_linear_coefficient(W, x, pins)
        assert sp.expand(coeff - predicted) == 0, f"coefficient of {present} mismatches"
        terms_by_order[len(present)] += 1
        if len(present) == 0:
            constant = coeff
        elif len(present) == 1:
            one_body[present[0]] = coeff
        elif len(present) == 2:
            two_body[tuple(present)] = coeff
    hidden = widths[1:-1]
    for k in range(L):
        e_k = sum(math.prod(c) for c in itertools.combinations(hidden, k))
        assert terms_by_order[k] == e_k, f"{terms_by_order[k]} {k}-body terms, expected {e_k}"
    return {
        "f_spin": f_spin,
        "degree": degree,
        "constant": constant,
        "one_body": one_body,
        "two_body": two_body,
        "terms_by_order": terms_by_order,
    }


def derive_circuit_energy(widths: Sequence[int] = (2, 2, 2, 1), n_examples: int = 2) -> dict:
    """Prove the squared loss is a pairwise energy in the circuit couplings ``J_pi``::

        1/2 sum_mu (y_mu - f(x_mu))^2 = 1/2 sum_mu y_mu^2 - sum_pi J_pi h_pi
                                        + 1/2 sum_{pi,pi'} J_pi J_pi' C_{pi pi'},
        h_pi = sum_mu y_mu x_{mu,i_0} S_pi(x_mu),
        C_{pi pi'} = sum_mu x_{mu,i_0} x_{mu,i'_0} S_pi(x_mu) S_pi'(x_mu).

    On a symbolic net and dataset (every example has its own gate symbols ``g^{(l)}_{mu,i}``,
    and ``f`` is computed layer by layer, independently of the circuit sum). Asserts the
    identity, the symmetry of ``C``, and the two shortcuts used by
    :func:`circuit_energy_terms`: ``sum_pi J_pi h_pi = sum_mu y_mu f(x_mu)`` and
    ``1/2 J^T C J = 1/2 sum_mu f(x_mu)^2``.

    Returns ``{"loss", "constant", "field_term", "interaction_term", "fields", "coupling"}``
    (``fields`` a list over circuits, ``coupling`` a sympy Matrix).
    """
    widths = _require_scalar_output_widths(widths)
    if n_examples < 1:
        raise ValueError(f"n_examples must be >= 1, got {n_examples}")
    W = _sym_weights(widths)
    ys = [sp.Symbol(f"y_{{{mu + 1}}}") for mu in range(n_examples)]
    xs = [_sym_inputs(widths[0], mu + 1) for mu in range(n_examples)]
    gs = [_sym_units("g", widths, mu + 1) for mu in range(n_examples)]
    fs = [_layered_output(W, gs[mu], xs[mu]) for mu in range(n_examples)]
    loss = sp.Rational(1, 2) * sp.Add(*((ys[mu] - fs[mu]) ** 2 for mu in range(n_examples)))
    # per example: the list of x_{mu,i_0} S_pi(x_mu) over circuits, and the J_pi
    J: list[sp.Expr] = []
    xS: list[list[sp.Expr]] = [[] for _ in range(n_examples)]
    for mu in range(n_examples):
        for _, xi, Jpi, S in _sym_circuit_parts(W, gs[mu], xs[mu], widths):
            xS[mu].append(xi * S)
            if mu == 0:
                J.append(Jpi)
    n = len(J)
    fields = [sp.Add(*(ys[mu] * xS[mu][p] for mu in range(n_examples))) for p in range(n)]
    coupling = sp.Matrix(
        n, n, lambda p, q: sp.Add(*(xS[mu][p] * xS[mu][q] for mu in range(n_examples)))
    )
    constant = sp.Rational(1, 2) * sp.Add(*(y**2 for y in ys))
    field_term = sp.Add(*(J[p] * fields[p] for p in range(n)))
    interaction_term = sp.Rational(1, 2) * sp.Add(
        *(J[p] * J[q] * coupling[p, q] for p in range(n) for q in range(n))
    )
    assert sp.expand(loss - (constant - field_term + interaction_term)) == 0, "energy identity"
    assert coupling == coupling.T
    assert sp.expand(field_term - sp.Add(*(y * f for y, f in zip(ys, fs, strict=True)))) == 0
    assert sp.expand(interaction_term - sp.Rational(1, 2) * sp.Add(*(f**2 for f in fs))) == 0
    return {
        "loss": loss,
        "constant": constant,
        "field_term": field_term,
        "interaction_term": interaction_term,
        "fields": fields,
        "coupling": coupling,
    }


def _orbit_average_open_circuits(widths: Sequence[int], seed: int) -> tuple[Fraction, int]:
    """Exact average of the open-circuit count over the row-sign-flip orbit of one network.

    Weights and input are fixed random non-zero rationals; the orbit flips the sign of any
    subset of rows of ``W^1 .. W^{L-1}`` (``2^{n_1 + ... + n_{L-1}}`` networks). Asserts that no
    pre-activation is exactly zero unless its layer input is the zero vector (genericity).
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
) -> dict:
    """Expected number of open circuits at initialisation: ``n_0 n_L prod_{0<l<L} (n_l / 2)``.

    The count for input ``x`` is ``N(x) = sum_pi S_pi(x)`` (all ``n_0 n_L`` input/output ends).
    By linearity ``E N(x) = sum_pi P(S_pi(x) = 1)``, and every circuit is open with probability
    ``p_{L-1}`` where ``p_l = p_{l-1} / 2``, ``p_0 = 1``: condition on everything below layer
    ``l`` and on the other rows of ``W^l``; if the circuit's gates below ``l`` are open then
    ``h^{l-1} != 0``, flipping the sign of row ``i_l`` of ``W^l`` is a symmetry of the ensemble
    that flips ``z^l_{i_l}``, and leaves every gate below layer ``l`` unchanged, so the gate
    ``g^l_{i_l}`` opens with conditional probability exactly ``1/2``.

    Conditions for the *exact* statement: ``x != 0``; the rows of the hidden-layer weight
    matrices ``W^1 .. W^{L-1}`` are independent and each row's law is invariant under
    ``w -> -w`` (i.i.d. symmetric entries suffice, e.g. He's Gaussian initialisation); and
    ``P(w . h = 0) = 0`` for every fixed ``h != 0`` (true for any law with a density). Sparse
    or discrete weights break the last condition (ties ``z = 0`` close gates) and lower the
    expectation. The gates are *not* independent -- gates of one layer share their input, and
    if a layer is fully closed so are all later ones -- yet the expectation is still the
    product because each circuit visits exactly one unit per layer. Higher moments
    (``Var N``) do not factorise.

    Asserts: the recursion solves to ``2^{-(L-1)}`` and gives the product formula for symbolic
    widths (``L - 1 = 1 .. max_hidden_layers``); and, exactly in rational arithmetic, that the
    average of ``N(x)`` over the whole sign-flip orbit of rows of a fixed generic network
    equals the formula for each of ``check_widths``.

    Returns ``{"per_circuit_probability", "formula", "orbit_checks"}`` where the formula is in
    symbols ``n_0 .. n_L`` for ``L = 3`` and ``orbit_checks`` lists
    ``(widths, orbit_size, orbit_average, predicted)``.
    """
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
        w = nets.check_widths(w)
        average, n_orbit = _orbit_average_open_circuits(w, seed + k)
        predicted = Fraction(w[0] * w[-1]) * math.prod(Fraction(m, 2) for m in w[1:-1])
        assert average == predicted, f"orbit average {average} != {predicted} for widths {w}"
        checks.append(
            (
                tuple(w),
                n_orbit,
                sp.Rational(average.numerator, average.denominator),
                sp.Rational(predicted.numerator, predicted.denominator),
            )
        )
    return {"per_circuit_probability": p_sol, "formula": formula, "orbit_checks": checks}


# --------------------------------------------------------------------------------------------
# Torch: enumeration of circuits
# --------------------------------------------------------------------------------------------


def _weight_widths(
    weights: Sequence[torch.Tensor], *, allow_ensemble: bool = False
) -> tuple[int, ...]:
    """Validate the layer chain and return ``(n_0, ..., n_L)``."""
    if len(weights) < 1:
        raise ValueError("weights must hold at least one matrix")
    lead = weights[0].shape[:-2]
    for ell, w in enumerate(weights, start=1):
        if w.ndim < 2 or (w.ndim != 2 and not allow_ensemble):
            raise ValueError(f"W^{ell} must be a matrix (n_l, n_(l-1)), got shape {tuple(w.shape)}")
        if w.shape[:-2] != lead:
            raise ValueError("all weight matrices must share the same leading ensemble shape")
    widths = [weights[0].shape[-1]] + [w.shape[-2] for w in weights]
    for ell in range(1, len(weights)):
        if weights[ell].shape[-1] != weights[ell - 1].shape[-2]:
            raise ValueError(
                f"W^{ell + 1} has {weights[ell].shape[-1]} inputs but W^{ell} has {weights[ell - 1].shape[-2]} outputs"
            )
    return tuple(int(n) for n in widths)


def _check_inputs(x: torch.Tensor, widths: tuple[int, ...]) -> None:
    if x.ndim != 2 or x.shape[1] != widths[0]:
        raise ValueError(f"x must be shaped (batch, {widths[0]}), got {tuple(x.shape)}")


def _gates_and_output(weights: Sequence[torch.Tensor], x: torch.Tensor):
    """Hidden gates ``[g^1..g^{L-1}]`` (float, ``(..., batch, n_l)``) and ``z^L`` ``(..., batch, n_L)``.

    Same computation as :func:`asbbook.nets.preactivations`, written with ``.mT`` so that the
    weights may carry leading ensemble dimensions.
    """
    gates = []
    h = x
    for w in weights[:-1]:
        z = h @ w.mT
        g = (z > 0).to(z.dtype)
        gates.append(g)
        h = g * z
    return gates, h @ weights[-1].mT


def circuit_count(widths: Sequence[int]) -> int:
    """Number of circuits ``n_0 n_1 ... n_L`` of a network with these widths."""
    return math.prod(nets.check_widths(widths))


def circuit_indices(
    widths: Sequence[int],
    *,
    max_circuits: int = DEFAULT_MAX_CIRCUITS,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Index tuples ``(i_0, ..., i_L)`` of all circuits, shaped ``(n_circuits, L + 1)`` (0-based).

    Row ``k`` is the circuit of column ``k`` of :func:`circuit_contributions`: row-major order
    over ``(i_0, ..., i_L)``, i.e. ``itertools.product(range(n_0), ..., range(n_L))``.
    """
    widths = nets.check_widths(widths)
    n = math.prod(widths)
    _refuse(n, 1, max_circuits, n)
    flat = torch.arange(n, device=device)
    return torch.stack(torch.unravel_index(flat, widths), dim=1)


def _refuse(n_circuits: int, batch: int, max_circuits: int, max_entries: int) -> None:
    if n_circuits > max_circuits:
        raise ValueError(
            f"the network has {n_circuits:,} circuits, more than max_circuits={max_circuits:,}; "
            "enumeration refused (log_open_circuits, circuit_energy_terms and "
            "circuit_magnetisation work without enumerating)"
        )
    if batch * n_circuits > max_entries:
        raise ValueError(
            f"enumerating {n_circuits:,} circuits for {batch:,} inputs needs "
            f"{batch * n_circuits:,} entries, more than max_entries={max_entries:,}; "
            "use a smaller batch"
        )


def _path_products(first, edges, nodes, *, max_circuits: int, max_entries: int) -> torch.Tensor:
    """``out[b, pi] = first[b, i_0] prod_l edges[l][i_l, i_{l-1}] prod_{l<L} nodes[l][b, i_l]``.

    ``first`` is ``(batch, n_0)``, ``edges[l]`` is ``(n_{l+1}, n_l)`` and ``nodes[l]`` is
    ``(batch, n_{l+1})`` or ``None``. Output ``(batch, prod n)`` in row-major circuit order; the
    intermediate tensors are never larger than the output, which is checked before allocation.
    """
    widths = [first.shape[1]] + [e.shape[0] for e in edges]
    n = math.prod(widths)
    batch = first.shape[0]
    _refuse(n, batch, max_circuits, max_entries)
    c = first.unsqueeze(1)  # (batch, K=1, n_0)
    for ell, e in enumerate(edges):
        c = c.unsqueeze(-1) * e.mT  # (batch, K, n_ell, n_{ell+1})
        c = c.reshape(batch, -1, e.shape[0])
        if ell < len(nodes) and nodes[ell] is not None:
            c = c * nodes[ell].unsqueeze(1)
    return c.reshape(batch, n)


def circuit_couplings(
    weights: Sequence[torch.Tensor], *, max_circuits: int = DEFAULT_MAX_CIRCUITS
) -> torch.Tensor:
    """Couplings ``J_pi = prod_l W^l_{i_l i_{l-1}}`` of every circuit, shaped ``(n_circuits,)``."""
    widths = _weight_widths(weights)
    first = torch.ones(1, widths[0], dtype=weights[0].dtype, device=weights[0].device)
    return _path_products(
        first, list(weights), [], max_circuits=max_circuits, max_entries=max_circuits
    )[0]


def circuit_states(
    weights: Sequence[torch.Tensor],
    x: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_CIRCUITS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> torch.Tensor:
    """Circuit states ``S_pi(x) = prod_{l<L} g^l_{i_l}(x)`` in ``{0, 1}``, shaped ``(batch, n_circuits)``."""
    widths = _weight_widths(weights)
    _check_inputs(x, widths)
    gates, _ = _gates_and_output(weights, x)
    ones = [torch.ones_like(w) for w in weights]
    first = torch.ones_like(x)
    return _path_products(first, ones, gates, max_circuits=max_circuits, max_entries=max_entries)


def circuit_contributions(
    weights: Sequence[torch.Tensor],
    x: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_CIRCUITS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> torch.Tensor:
    """Per-circuit contributions ``x_{i_0} J_pi S_pi(x)``, shaped ``(batch, n_circuits)``.

    Their sum over circuits is the network output ``f(x)`` (:func:`asbbook.nets.forward`) up to
    round-off (path expansion, BOOK_PLAN Ch. 2); with ``n_L > 1`` the circuits ending in output
    ``k`` sum to output ``k``. Columns follow :func:`circuit_indices`. Refuses with a
    ``ValueError`` giving the count when the network has more than ``max_circuits`` circuits or
    the result would have more than ``max_entries`` entries, so memory is never exhausted.
    """
    widths = _weight_widths(weights)
    _check_inputs(x, widths)
    gates, _ = _gates_and_output(weights, x)
    return _path_products(
        x, list(weights), gates, max_circuits=max_circuits, max_entries=max_entries
    )


def _require_scalar_output(widths: tuple[int, ...]) -> None:
    if widths[-1] != 1:
        raise ValueError(f"this function needs a scalar output (n_L = 1), got widths {widths}")


def _check_labels(X: torch.Tensor, y: torch.Tensor) -> None:
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be shaped ({X.shape[0]},), got {tuple(y.shape)}")


def label_signed_contributions(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    open_only: bool = True,
    max_circuits: int = DEFAULT_MAX_CIRCUITS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> torch.Tensor:
    """Label-signed contributions ``y_mu x_{mu,i_0} J_pi S_pi(x_mu)`` (for histograms).

    With ``open_only`` (default) a flat 1-D tensor over the pairs ``(mu, pi)`` with
    ``S_pi(x_mu) = 1`` (closed circuits contribute an exact zero and would swamp a histogram);
    otherwise the full ``(P, n_circuits)`` array. Positive values push ``y_mu f(x_mu)`` up
    (label-aligned), negative values against the label.
    """
    widths = _weight_widths(weights)
    _require_scalar_output(widths)
    _check_inputs(X, widths)
    _check_labels(X, y)
    gates, _ = _gates_and_output(weights, X)
    c = _path_products(X, list(weights), gates, max_circuits=max_circuits, max_entries=max_entries)
    signed = y.unsqueeze(1) * c
    if not open_only:
        return signed
    ones = [torch.ones_like(w) for w in weights]
    states = _path_products(
        torch.ones_like(X), ones, gates, max_circuits=max_circuits, max_entries=max_entries
    )
    return signed[states > 0]


# --------------------------------------------------------------------------------------------
# Torch: counting open circuits without enumeration
# --------------------------------------------------------------------------------------------


def log_open_circuits(
    weights: Sequence[torch.Tensor],
    x: torch.Tensor,
    *,
    nonzero_couplings_only: bool = False,
) -> torch.Tensor:
    """Natural log of the number of open circuits ``N(x) = sum_pi S_pi(x)`` per input, no enumeration.

    ``N(x)`` counts every circuit whose hidden gates are all open, whatever its input component
    and output unit: ``N(x) = 1^T A^L G^{L-1} A^{L-1} ... G^1 A^1 1`` with ``G^l = diag(g^l(x))``
    and ``A^l`` the 0/1 adjacency of layer ``l``. For a dense network ``A^l`` is all ones and the
    product collapses to ``n_0 n_L prod_{l<L} k_l(x)`` with ``k_l`` the number of open gates of
    layer ``l``, computed as ``log n_0 + log n_L + sum_l log k_l``. With
    ``nonzero_couplings_only`` the adjacency is ``A^l = 1[W^l != 0]`` (so only circuits with
    ``J_pi != 0`` count, relevant for pruned nets) and the gated products are carried out with
    each layer's count vector rescaled by its maximum and the log scale accumulated (a layer
    without zero weights is applied as a sum, not a matrix product). Both are
    exact up to float64 round-off of the logarithm even when ``N`` overflows float64.

    Returns float64 ``(..., batch)``; ``-inf`` when no circuit is open (never NaN). The weights
    may carry leading ensemble dimensions ``(..., n_l, n_{l-1})``.
    """
    widths = _weight_widths(weights, allow_ensemble=True)
    _check_inputs(x, widths)
    gates, _ = _gates_and_output(weights, x)
    if not nonzero_couplings_only:
        lead = tuple(weights[0].shape[:-2])
        log_ends = math.log(widths[0] * widths[-1])
        out = torch.full((*lead, x.shape[0]), log_ends, dtype=torch.float64, device=x.device)
        for g in gates:
            out = out + torch.log(g.sum(-1, dtype=torch.float64))
        return out
    v = torch.ones(x.shape[0], widths[0], dtype=torch.float64, device=x.device)
    log_scale = torch.zeros((), dtype=torch.float64, device=x.device)
    for ell, w in enumerate(weights):
        adjacency = w != 0
        if bool(adjacency.all()):  # dense layer: every unit receives the total count
            v = v.sum(-1, keepdim=True).expand(*v.shape[:-1], w.shape[-2])
        else:
            v = v @ adjacency.to(torch.float64).mT
        if ell < len(weights) - 1:
            v = v * gates[ell].to(torch.float64)
            m = v.amax(-1, keepdim=True)
            log_scale = log_scale + torch.log(m.squeeze(-1))
            v = v / torch.where(m > 0, m, torch.ones_like(m))
    return log_scale + torch.log(v.sum(-1))


def expected_open_circuits(widths: Sequence[int]) -> float:
    """Ensemble mean of the open-circuit count at initialisation, ``n_0 n_L prod_{0<l<L} (n_l / 2)``.

    Exact for any ``x != 0`` under the conditions of :func:`derive_expected_open_circuits`
    (independent rows with sign-symmetric laws that have a density, e.g. He initialisation).
    """
    return math.exp(log_expected_open_circuits(widths))


def log_expected_open_circuits(widths: Sequence[int]) -> float:
    """``log(n_0 n_L) + sum_{0<l<L} log(n_l / 2)`` (no overflow for wide, deep nets)."""
    widths = nets.check_widths(widths)
    return math.log(widths[0] * widths[-1]) + sum(math.log(n / 2) for n in widths[1:-1])


# --------------------------------------------------------------------------------------------
# Torch: circuit energy and circuit magnetisation
# --------------------------------------------------------------------------------------------


class CircuitEnergy(NamedTuple):
    """The three parts of ``H = 1/2 sum (y - f)^2 = constant - field + interaction``.

    ``constant = 1/2 sum_mu y_mu^2``; ``field = sum_pi J_pi h_pi``;
    ``interaction = 1/2 sum_{pi,pi'} J_pi J_pi' C_{pi pi'}`` (0-dim tensors).
    """

    constant: torch.Tensor
    field: torch.Tensor
    interaction: torch.Tensor

    @property
    def loss(self) -> torch.Tensor:
        """``constant - field + interaction``, the summed squared loss ``1/2 sum (y - f)^2``."""
        return self.constant - self.field + self.interaction


def circuit_energy_terms(
    weights: Sequence[torch.Tensor], X: torch.Tensor, y: torch.Tensor
) -> CircuitEnergy:
    """The circuit-energy split of the squared loss, without building the coupling matrix.

    By the path expansion, ``sum_pi J_pi h_pi = sum_mu y_mu f(x_mu)`` and
    ``1/2 sum J_pi J_pi' C_{pi pi'} = 1/2 sum_mu f(x_mu)^2`` (asserted symbolically in
    :func:`derive_circuit_energy`), so one forward pass suffices. :func:`circuit_energy_terms_enumerated`
    computes the same terms from explicit ``J``, ``h`` and ``C`` for small nets.
    """
    widths = _weight_widths(weights)
    _require_scalar_output(widths)
    _check_inputs(X, widths)
    _check_labels(X, y)
    _, out = _gates_and_output(weights, X)
    f = out[:, 0]
    return CircuitEnergy(0.5 * (y * y).sum(), (y * f).sum(), 0.5 * (f * f).sum())


def circuit_fields(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_CIRCUITS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> torch.Tensor:
    """Fields ``h_pi = sum_mu y_mu x_{mu,i_0} S_pi(x_mu)``, shaped ``(n_circuits,)`` (enumerates)."""
    widths = _weight_widths(weights)
    _require_scalar_output(widths)
    _check_inputs(X, widths)
    _check_labels(X, y)
    gates, _ = _gates_and_output(weights, X)
    ones = [torch.ones_like(w) for w in weights]
    xS = _path_products(X, ones, gates, max_circuits=max_circuits, max_entries=max_entries)
    return y @ xS


def circuit_coupling_matrix(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_COUPLING_CIRCUITS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> torch.Tensor:
    """Circuit-circuit couplings ``C_{pi pi'} = sum_mu x_{mu,i_0} x_{mu,i'_0} S_pi S_pi'``.

    Shaped ``(n_circuits, n_circuits)``; meant for small nets (refuses above ``max_circuits``,
    default 2048, i.e. a 32 MB float64 matrix).
    """
    widths = _weight_widths(weights)
    _check_inputs(X, widths)
    gates, _ = _gates_and_output(weights, X)
    ones = [torch.ones_like(w) for w in weights]
    xS = _path_products(X, ones, gates, max_circuits=max_circuits, max_entries=max_entries)
    return xS.T @ xS


def circuit_energy_terms_enumerated(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_COUPLING_CIRCUITS,
) -> CircuitEnergy:
    """:func:`circuit_energy_terms` from explicit ``J_pi``, ``h_pi`` and ``C_{pi pi'}`` (small nets)."""
    J = circuit_couplings(weights, max_circuits=max_circuits)
    h = circuit_fields(weights, X, y, max_circuits=max_circuits)
    C = circuit_coupling_matrix(weights, X, max_circuits=max_circuits)
    return CircuitEnergy(0.5 * (y * y).sum(), J @ h, 0.5 * (J @ (C @ J)))


def absolute_contribution_mass(weights: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``A(x) = sum_pi |x_{i_0} J_pi S_pi(x)|`` per input, ``(..., batch)``, without enumeration.

    ``A(x) = 1^T |W^L| G^{L-1} |W^{L-1}| ... G^1 |W^1| |x|``: the gated network of absolute
    weights, with the gates ``G^l`` of the original network. Ensemble dimensions are allowed.
    """
    widths = _weight_widths(weights, allow_ensemble=True)
    _check_inputs(x, widths)
    gates, _ = _gates_and_output(weights, x)
    h = x.abs()
    for ell, w in enumerate(weights):
        h = h @ w.abs().mT
        if ell < len(weights) - 1:
            h = h * gates[ell]
    return h.sum(-1)


def circuit_magnetisation(
    weights: Sequence[torch.Tensor], X: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Circuit magnetisation: the contribution-weighted mean label alignment of circuits::

        m = sum_{mu, pi} y_mu c_{mu pi} / sum_{mu, pi} |y_mu c_{mu pi}|,
        c_{mu pi} = x_{mu, i_0} J_pi S_pi(x_mu),

    i.e. the mean of ``sign(y_mu c_{mu pi})`` over examples and open circuits, each weighted by
    ``|y_mu c_{mu pi}|``. ``m`` lies in ``[-1, 1]``; ``(1 + m)/2`` is the fraction of the
    contribution mass that is label-aligned. ``m = 1`` when every open circuit pushes every
    output towards its label. The numerator is ``sum_mu y_mu f(x_mu)`` (the field term of
    :func:`circuit_energy_terms`) and the denominator ``sum_mu |y_mu| A(x_mu)``
    (:func:`absolute_contribution_mass`), so nothing is enumerated. Flipping the sign of
    ``W^L`` flips ``m`` and leaves the initial ensemble invariant, so ``E m = 0`` at
    initialisation. Defined as 0 when no circuit is open. Ensemble dimensions give ``(...)``.
    """
    widths = _weight_widths(weights, allow_ensemble=True)
    _require_scalar_output(widths)
    _check_inputs(X, widths)
    _check_labels(X, y)
    _, out = _gates_and_output(weights, X)
    num = (y * out[..., 0]).sum(-1)
    den = (y.abs() * absolute_contribution_mass(weights, X)).sum(-1)
    return torch.where(
        den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num)
    )


# --------------------------------------------------------------------------------------------
# Experiments of the chapter: features, a small trained net, an initial ensemble
# --------------------------------------------------------------------------------------------


def principal_features(X: torch.Tensor, n_features: int) -> torch.Tensor:
    """Project ``X`` (``(P, d)``) on its top ``n_features`` principal axes, each scaled to unit variance.

    Columns are centred, the axes come from an SVD and each axis's sign is fixed so that its
    largest-magnitude loading is positive (deterministic). Keeps the circuit count of a net on
    the digits small enough to enumerate.
    """
    if X.ndim != 2 or not 1 <= n_features <= min(X.shape):
        raise ValueError(f"n_features must be between 1 and {min(X.shape)}, got {n_features}")
    Xc = X - X.mean(0, keepdim=True)
    _, _, Vh = torch.linalg.svd(Xc, full_matrices=False)
    V = Vh[:n_features].T
    sign = torch.sign(V.gather(0, V.abs().argmax(0, keepdim=True)))
    Z = Xc @ (V * sign)
    return Z / Z.std(0, keepdim=True)


@dataclass
class TrainingRun:
    """Result of :func:`train_small_net`: weight snapshots and the loss curve.

    ``snapshot_steps[k]`` is the step of ``snapshots[k]`` (a list of ``W^l``); ``loss[t]`` is the
    mean squared loss ``1/(2P) sum (y - f)^2`` before update ``t`` (``loss[steps]`` at the end).
    """

    snapshot_steps: list[int]
    snapshots: list[list[torch.Tensor]]
    loss: torch.Tensor


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Use ``n`` intra-op threads inside the block and restore the previous setting afterwards
    (``None``: leave it alone). Small nets run fastest on one thread; on a busy machine, extra
    threads waiting for each other can slow tiny matrix products down by an order of magnitude."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_small_net(
    X: torch.Tensor,
    y: torch.Tensor,
    widths: Sequence[int],
    *,
    steps: int,
    lr: float = 0.05,
    snapshot_steps: Sequence[int] | None = None,
    sigma2: float = 2.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    threads: int | None = 1,
) -> TrainingRun:
    """Full-batch gradient descent on ``1/(2P) sum_mu (y_mu - f(x_mu))^2`` for one small net.

    He-style initialisation from :func:`asbbook.nets.init_weights` seeded by ``seed``; plain
    ``W <- W - lr grad`` steps (autograd) in the dtype of ``X``; snapshots (detached copies) at
    ``snapshot_steps`` (default: 0 and ``steps``). Deterministic on the CPU. ``threads``: see
    :func:`torch_threads` (restored on return).
    """
    widths = nets.check_widths(widths)
    if X.ndim != 2 or X.shape[1] != widths[0] or widths[-1] != 1:
        raise ValueError(
            f"X must be (P, {widths[0]}) and n_L must be 1, got {tuple(X.shape)}, {widths}"
        )
    _check_labels(X, y)
    if steps < 0 or not lr > 0:
        raise ValueError(f"steps must be >= 0 and lr > 0, got {steps}, {lr}")
    wanted = sorted(set(snapshot_steps if snapshot_steps is not None else (0, steps)))
    if wanted and (wanted[0] < 0 or wanted[-1] > steps):
        raise ValueError(f"snapshot steps must lie in [0, {steps}], got {wanted}")
    X = X.to(device)
    y = y.to(device=device, dtype=X.dtype)
    gen = torch.Generator().manual_seed(seed)
    weights = [
        w.requires_grad_(True)
        for w in nets.init_weights(widths, sigma2, generator=gen, dtype=X.dtype, device=device)
    ]
    losses = torch.empty(steps + 1, dtype=torch.float64)
    snaps: list[list[torch.Tensor]] = []
    with torch_threads(threads):
        for t in range(steps + 1):
            loss = 0.5 * ((y - nets.forward(weights, X)) ** 2).mean()
            losses[t] = loss.detach().to(torch.float64).cpu()
            if t in wanted:
                snaps.append([w.detach().clone() for w in weights])
            if t == steps:
                break
            grads = torch.autograd.grad(loss, weights)
            with torch.no_grad():
                for w, g in zip(weights, grads, strict=True):
                    w -= lr * g
    return TrainingRun(snapshot_steps=wanted, snapshots=snaps, loss=losses)


@dataclass
class InitialEnsemble:
    """Per-network statistics of an ensemble at initialisation (:func:`initial_ensemble`).

    ``open_ratio[r]``: mean over the inputs of ``N(x_mu) / (n_0 n_L prod (n_l/2))`` for net ``r``
    (expected value 1); ``magnetisation[r]``: :func:`circuit_magnetisation` of net ``r``
    (expected value 0). Networks are independent, so standard errors are ``std / sqrt(R)``.
    """

    open_ratio: torch.Tensor
    magnetisation: torch.Tensor

    @staticmethod
    def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
        """Sample mean and its standard error ``std / sqrt(R)``."""
        return float(values.mean()), float(values.std() / math.sqrt(values.numel()))


def initial_ensemble(
    X: torch.Tensor,
    y: torch.Tensor,
    widths: Sequence[int],
    *,
    n_nets: int,
    sigma2: float = 2.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    threads: int | None = 1,
    max_entries: int = 4_000_000,
) -> InitialEnsemble:
    """Draw ``n_nets`` independent He-initialised nets and measure their open-circuit count and
    circuit magnetisation on ``(X, y)`` (counted in log space, nothing enumerated).

    Net ``r`` is the ``r``-th draw of :func:`asbbook.nets.init_weights` from one generator seeded
    by ``seed``. Nets are processed in chunks so that a chunk's activations hold at most
    ``max_entries`` numbers; ``threads``: see :func:`torch_threads`.
    """
    widths = nets.check_widths(widths)
    if n_nets < 2:
        raise ValueError(f"n_nets must be >= 2 for a standard error, got {n_nets}")
    gen = torch.Generator().manual_seed(seed)
    X = X.to(device)
    y = y.to(device=device, dtype=X.dtype)
    chunk = max(1, max_entries // (X.shape[0] * max(widths)))
    log_theory = log_expected_open_circuits(widths)
    ratios, mags = [], []
    with torch_threads(threads):
        for start in range(0, n_nets, chunk):
            draws = [
                nets.init_weights(widths, sigma2, generator=gen, dtype=X.dtype, device=device)
                for _ in range(min(chunk, n_nets - start))
            ]
            ensemble = [torch.stack(layer) for layer in zip(*draws, strict=True)]
            log_n = log_open_circuits(ensemble, X)
            ratios.append(torch.exp(log_n - log_theory).mean(-1).cpu())
            mags.append(circuit_magnetisation(ensemble, X, y).to(torch.float64).cpu())
    return InitialEnsemble(open_ratio=torch.cat(ratios), magnetisation=torch.cat(mags))
