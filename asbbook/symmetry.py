"""Chapter 3: circuit symmetry, adaptive symmetry and the invariance of variance.

Three layers of symmetry of a bias-free ReLU MLP (notation of :mod:`asbbook.nets`):

* **Exact symmetries of the function.** Permuting the units of a hidden layer, and rescaling a
  hidden unit by ``c > 0`` (``c`` times its in-weights, ``1/c`` times its out-weights), leave
  ``f`` unchanged. The rescaling also leaves every gate and every circuit coupling
  ``J_pi = prod_l W^l_{i_l i_{l-1}}`` unchanged, so a circuit is a gauge-invariant object
  (the positive homogeneity of ReLU, ``relu(c z) = c relu(z)`` for ``c > 0``).
* **Sign-flip symmetry of the initial ensemble** (the book's "adaptive symmetry"): i.i.d. weights
  symmetric about 0 give ``E J_pi = 0``, ``E J_pi J_pi' = 0`` for ``pi != pi'``,
  ``E J_pi^2 = prod_l sigma_l^2 / n_{l-1}``, gates open with probability 1/2 and
  ``E[g z^2] = E[z^2] / 2``.
* **Invariance of variance.** ``q^1 = sigma_1^2 mean(x^2)`` and ``q^l = sigma_l^2 q^{l-1} / 2``,
  preserved across depth iff ``sigma^2 = 2`` (He et al. 2015), otherwise vanishing or exploding as
  ``(sigma^2/2)^L`` (Poole et al. 2016 study the same map for general nonlinearities).

The module holds the sympy derivations (``derive_*``: each asserts its identity and returns
expressions for display), the exact-symmetry transformations of a weight list, the theoretical
variance map and the order parameters used to follow the symmetry's breaking during training.
Measurement functions accept leading ensemble dimensions: pre-activations ``(..., P, n)`` and
outputs ``(..., P)``, e.g. the ``(K, P, n_l)`` tensors of a batched ensemble.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence

import numpy as np
import sympy as sp
import torch

from asbbook.order import (
    class_open_fractions,
    gate_label_information_bits,
    label_alignment,
    layer_second_moments,
    open_fraction,
    preactivation_variance,
    second_moment,
    variance_drift,
)
from asbbook.order import layer_reservoir_bits as gate_reservoir_bits
from asbbook.order import mean_gate_entropy_bits as gate_entropy_bits
from asbbook.stats import Estimate, binary_entropy_bits, mean_with_stderr
from asbbook.symbolic import flip_witness, symmetric_expectation

__all__ = [
    "Estimate",
    "permute_hidden",
    "rescale_unit",
    "path_couplings",
    "preactivation_variance",
    "second_moment",
    "layer_second_moments",
    "variance_drift",
    "open_fraction",
    "binary_entropy_bits",
    "gate_entropy_bits",
    "gate_reservoir_bits",
    "class_open_fractions",
    "gate_label_information_bits",
    "label_alignment",
    "mean_with_stderr",
    "symmetric_expectation",
    "derive_gate_scale_invariance",
    "derive_rescaling_symmetry",
    "derive_permutation_symmetry",
    "derive_sign_flip_moments",
    "derive_symmetric_split",
    "derive_variance_map",
]


# --------------------------------------------------------------------------------------------
# Exact symmetries acting on a weight list
# --------------------------------------------------------------------------------------------


def _check_weight_chain(weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    weights = list(weights)
    if not weights:
        raise ValueError("weights must hold at least one matrix W^1")
    for k, w in enumerate(weights):
        if not isinstance(w, torch.Tensor) or w.ndim < 2:
            raise ValueError(f"weights[{k}] must be a tensor shaped (..., n_l, n_(l-1))")
    for k in range(1, len(weights)):
        if weights[k].shape[-1] != weights[k - 1].shape[-2]:
            raise ValueError(
                f"weights[{k}] has {weights[k].shape[-1]} inputs but weights[{k - 1}] has "
                f"{weights[k - 1].shape[-2]} outputs"
            )
    return weights


def _check_hidden_layer(weights: list[torch.Tensor], layer) -> int:
    depth = len(weights)
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
        raise ValueError(f"layer must be an integer hidden-layer index, got {layer!r}")
    if depth < 2:
        raise ValueError("the network has no hidden layer (it has a single weight matrix)")
    if not 1 <= layer <= depth - 1:
        raise ValueError(
            f"layer must be a hidden layer between 1 and {depth - 1} (L = {depth}), got {layer}"
        )
    return int(layer)


def _as_permutation(perm, n: int) -> torch.Tensor:
    if isinstance(perm, torch.Tensor):
        if perm.dtype in (torch.bool,) or perm.is_floating_point() or perm.is_complex():
            raise ValueError(f"perm must hold integers, got a tensor of dtype {perm.dtype}")
        idx = perm.detach().cpu().to(torch.long)
    elif isinstance(perm, np.ndarray):
        if perm.dtype.kind not in "iu":
            raise ValueError(f"perm must hold integers, got an array of dtype {perm.dtype}")
        idx = torch.as_tensor(perm, dtype=torch.long)
    elif isinstance(perm, Sequence) and not isinstance(perm, str):
        if any(isinstance(p, bool) or not isinstance(p, numbers.Integral) for p in perm):
            raise ValueError(f"perm must be a sequence of integers, got {perm!r}")
        idx = torch.tensor([int(p) for p in perm], dtype=torch.long)
    else:
        raise ValueError(f"perm must be a sequence of integers, got {perm!r}")
    if idx.ndim != 1 or idx.numel() != n:
        raise ValueError(f"perm must be a permutation of 0..{n - 1} (length {n}), got {perm!r}")
    if not torch.equal(torch.sort(idx).values, torch.arange(n)):
        raise ValueError(f"perm is not a permutation of 0..{n - 1}: {perm!r}")
    return idx


def permute_hidden(weights: Sequence[torch.Tensor], layer: int, perm) -> list[torch.Tensor]:
    """Relabel the units of hidden layer ``layer`` (``1 <= layer <= L-1``): new unit ``i`` is old
    unit ``perm[i]``.

    ``W'^l = W^l[perm, :]`` and ``W'^{l+1} = W^{l+1}[:, perm]``, so ``z'^l_i = z^l_{perm[i]}``,
    ``g'^l_i = g^l_{perm[i]}``, every other layer is unchanged and ``f' = f`` exactly; the
    circuit ``(.., i_l = i, ..)`` of the new net carries the coupling and gates of the circuit
    ``(.., i_l = perm[i], ..)`` of the old one. Weights may carry leading ensemble dimensions
    ``(..., n_l, n_{l-1})``. Returns a new list of new tensors; the input is never modified.
    """
    weights = _check_weight_chain(weights)
    layer = _check_hidden_layer(weights, layer)
    n = weights[layer - 1].shape[-2]
    idx = _as_permutation(perm, n)
    new = [w.clone() for w in weights]
    new[layer - 1] = weights[layer - 1].index_select(-2, idx.to(weights[layer - 1].device))
    new[layer] = weights[layer].index_select(-1, idx.to(weights[layer].device))
    return new


def rescale_unit(
    weights: Sequence[torch.Tensor], layer: int, unit: int, c: float
) -> list[torch.Tensor]:
    """Positive rescaling of unit ``unit`` of hidden layer ``layer``: ``W^l_{unit,:} -> c W^l_{unit,:}``
    and ``W^{l+1}_{:,unit} -> W^{l+1}_{:,unit} / c`` with ``c > 0``.

    Because ``relu(c z) = c relu(z)`` and ``1[c z > 0] = 1[z > 0]`` for ``c > 0``, the output,
    every gate and every circuit coupling ``J_pi`` are unchanged (a path through the unit picks up
    ``c * 1/c``). Weights may carry leading ensemble dimensions. Returns a new list of new tensors;
    the input is never modified.
    """
    weights = _check_weight_chain(weights)
    layer = _check_hidden_layer(weights, layer)
    n = weights[layer - 1].shape[-2]
    if isinstance(unit, bool) or not isinstance(unit, numbers.Integral) or not 0 <= unit < n:
        raise ValueError(f"unit must be an integer between 0 and {n - 1}, got {unit!r}")
    if isinstance(c, bool) or not isinstance(c, numbers.Real) or not math.isfinite(c) or c <= 0:
        raise ValueError(f"c must be a finite positive number, got {c!r}")
    new = [w.clone() for w in weights]
    new[layer - 1][..., unit, :] *= float(c)
    new[layer][..., :, unit] /= float(c)
    return new


def path_couplings(weights: Sequence[torch.Tensor], paths) -> torch.Tensor:
    """Couplings ``J_pi = prod_{l=1}^{L} W^l_{i_l i_{l-1}}`` of the given circuits only (no
    enumeration of all ``n_0 n_1 ... n_L`` circuits).

    ``paths`` is an integer array ``(M, L + 1)`` of 0-based circuits ``(i_0, ..., i_L)``;
    ``weights`` may carry leading ensemble dimensions ``(..., n_l, n_{l-1})``. Returns
    ``(..., M)``. Under :func:`rescale_unit` a circuit through the rescaled unit picks up
    ``c * (1/c)``, so its coupling is unchanged (up to round-off).
    """
    weights = _check_weight_chain(weights)
    if isinstance(paths, torch.Tensor):
        bad = paths.dtype == torch.bool or paths.is_floating_point() or paths.is_complex()
    else:
        paths = np.asarray(paths)
        bad = paths.dtype.kind not in "iu"
    if bad:
        raise ValueError("paths must hold integer unit indices")
    idx = torch.as_tensor(paths, dtype=torch.long)
    depth = len(weights)
    if idx.ndim != 2 or idx.shape[1] != depth + 1:
        raise ValueError(
            f"paths must be shaped (M, L + 1) = (M, {depth + 1}), got {tuple(idx.shape)}"
        )
    widths = [weights[0].shape[-1]] + [w.shape[-2] for w in weights]
    for k, n in enumerate(widths):
        if idx.shape[0] and (int(idx[:, k].min()) < 0 or int(idx[:, k].max()) >= n):
            raise ValueError(f"paths[:, {k}] must lie in 0..{n - 1}")
    out = None
    for layer, w in enumerate(weights):
        rows = idx[:, layer + 1].to(w.device)
        cols = idx[:, layer].to(w.device)
        factor = w[..., rows, cols]
        out = factor if out is None else out * factor
    return out


# --------------------------------------------------------------------------------------------
# sympy derivations
# --------------------------------------------------------------------------------------------

_C = sp.Symbol("c", positive=True)


def _sym_net(widths: Sequence[int]):
    """Symbolic weights (real symbols ``W^l_{ij}``) and input ``x`` of a small net."""
    ws = [
        sp.Matrix(
            n_out,
            n_in,
            lambda i, j, layer=layer: sp.Symbol(f"W^{{{layer}}}_{{{i + 1}{j + 1}}}", real=True),
        )
        for layer, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True), start=1)
    ]
    x = sp.Matrix(widths[0], 1, lambda i, _: sp.Symbol(f"x_{i + 1}", real=True))
    return ws, x


def _gate(z: sp.Expr) -> sp.Expr:
    """``1[z > 0]`` as ``Heaviside(z, 0)``, after dropping positive factors of ``z`` — allowed by
    :func:`derive_gate_scale_invariance` (``Heaviside(c u) = Heaviside(u)`` for ``c > 0``)."""
    arg = sp.factor_terms(z)
    if isinstance(arg, sp.Mul):
        arg = sp.Mul(*[a for a in arg.args if not a.is_positive])
    return sp.Heaviside(arg, 0)


def _sym_forward(ws, x):
    """Layered computation ``z^l = W^l h^{l-1}``, ``g^l = 1[z^l > 0]``, ``h^l = g^l z^l``
    (expanded), returning ``(zs, gates)`` with ``gates`` for the hidden layers."""
    zs, gates = [], []
    h = x
    for layer, w in enumerate(ws):
        z = (w * h).applyfunc(sp.expand)
        zs.append(z)
        if layer < len(ws) - 1:
            g = z.applyfunc(_gate)
            gates.append(g)
            h = z.multiply_elementwise(g).applyfunc(sp.expand)
    return zs, gates


def _sym_circuits(ws) -> dict[tuple[int, ...], sp.Expr]:
    """Every circuit ``pi = (i_0, .., i_L)`` and its coupling ``J_pi = prod_l W^l_{i_l i_{l-1}}``."""
    widths = [ws[0].shape[1]] + [w.shape[0] for w in ws]
    out = {}
    for path in itertools.product(*[range(n) for n in widths]):
        out[path] = sp.Mul(*[w[path[k + 1], path[k]] for k, w in enumerate(ws)])
    return out


def _circuit_sum(ws, x, gates) -> sp.Matrix:
    """``f_k = sum_{pi ending at k} x_{i_0} J_pi S_pi`` (chapter 2's path expansion)."""
    n_out = ws[-1].shape[0]
    f = [sp.Integer(0)] * n_out
    for path, coupling in _sym_circuits(ws).items():
        s = sp.Mul(*[g[path[k + 1]] for k, g in enumerate(gates)])
        f[path[-1]] += x[path[0]] * coupling * s
    return sp.Matrix(f).applyfunc(sp.expand)


def derive_gate_scale_invariance() -> sp.Eq:
    """Lemma: ``Heaviside(c z) = Heaviside(z)`` and ``relu(c z) = c relu(z)`` for every real ``z``
    and ``c > 0``, proved case by case (``z > 0``, ``z < 0``, ``z = 0``; gate ``1[z > 0]``)."""
    u = sp.Symbol("u", positive=True)
    for z, expected in ((u, 1), (-u, 0), (sp.Integer(0), 0)):
        assert sp.Heaviside(_C * z, 0) == sp.Heaviside(z, 0) == expected
        assert sp.simplify(_C * z * sp.Heaviside(_C * z, 0) - _C * (z * sp.Heaviside(z, 0))) == 0
    z = sp.Symbol("z", real=True)
    return sp.Eq(sp.Heaviside(_C * z), sp.Heaviside(z), evaluate=False)


def derive_rescaling_symmetry(
    widths: Sequence[int] = (2, 3, 2, 1), layer: int = 1, unit: int = 0
) -> dict[str, sp.Basic]:
    """Prove on a symbolic net that the positive rescaling of one hidden unit (``c > 0``) leaves
    the output, every gate and every circuit coupling ``J_pi`` unchanged.

    The layered computation of both nets is built with the gate ``Heaviside(z, 0)``, simplified by
    the lemma of :func:`derive_gate_scale_invariance`; the output is also checked against the sum
    over circuits. Returns display expressions: ``lemma``, ``coupling`` (a path through the
    rescaled unit), ``output`` (the network function, unchanged) and ``n_circuits``.
    """
    lemma = derive_gate_scale_invariance()
    ws, x = _sym_net(widths)
    if not 1 <= layer <= len(ws) - 1 or not 0 <= unit < widths[layer]:
        raise ValueError("layer must be hidden and unit must exist")
    ws2 = [w.copy() for w in ws]
    ws2[layer - 1][unit, :] = _C * ws[layer - 1][unit, :]
    ws2[layer][:, unit] = ws[layer][:, unit] / _C

    zs, gates = _sym_forward(ws, x)
    zs2, gates2 = _sym_forward(ws2, x)
    for g, g2 in zip(gates, gates2, strict=True):
        assert g == g2, "a gate changed under positive rescaling"
    f, f2 = zs[-1], zs2[-1]
    assert (f2 - f).applyfunc(sp.expand) == sp.zeros(*f.shape), "f changed under rescaling"
    assert (_circuit_sum(ws, x, gates) - f).applyfunc(sp.expand) == sp.zeros(*f.shape)
    circuits, circuits2 = _sym_circuits(ws), _sym_circuits(ws2)
    assert all(sp.simplify(circuits2[p] - circuits[p]) == 0 for p in circuits)
    assert ws2 != ws  # the weights really changed

    a = ws[layer - 1][unit, 0]
    b = ws[layer][0, unit]
    through = sp.Mul(
        sp.Mul(_C, a, evaluate=False), sp.Mul(b, 1 / _C, evaluate=False), evaluate=False
    )
    return {
        "lemma": lemma,
        "coupling": sp.Eq(through, a * b, evaluate=False),
        "output": f[0] if f.shape == (1, 1) else f,
        "n_circuits": sp.Integer(len(circuits)),
    }


def derive_permutation_symmetry(
    widths: Sequence[int] = (2, 3, 2, 1), layer: int = 1, perm: Sequence[int] | None = None
) -> dict[str, sp.Basic]:
    """Prove on a symbolic net that relabelling the units of a hidden layer (new unit ``i`` = old
    unit ``perm[i]``) leaves the output unchanged, permutes that layer's gates, and maps every
    circuit's coupling onto the coupling of the relabelled circuit. Default ``perm`` is a cyclic
    shift. Returns ``output`` (unchanged), ``perm`` and ``n_circuits`` for display."""
    ws, x = _sym_net(widths)
    n = widths[layer]
    if not 1 <= layer <= len(ws) - 1:
        raise ValueError("layer must be a hidden layer")
    perm = list(range(1, n)) + [0] if perm is None else list(perm)
    assert sorted(perm) == list(range(n)) and perm != list(range(n))
    ws2 = [w.copy() for w in ws]
    ws2[layer - 1] = ws[layer - 1].extract(perm, list(range(widths[layer - 1])))
    ws2[layer] = ws[layer].extract(list(range(widths[layer + 1])), perm)

    zs, gates = _sym_forward(ws, x)
    zs2, gates2 = _sym_forward(ws2, x)
    f, f2 = zs[-1], zs2[-1]
    assert (f2 - f).applyfunc(sp.expand) == sp.zeros(*f.shape), "f changed under permutation"
    for k, (g, g2) in enumerate(zip(gates, gates2, strict=True), start=1):
        expected = g.extract(perm, [0]) if k == layer else g
        assert g2 == expected
    assert gates2[layer - 1] != gates[layer - 1]  # the labels really moved
    circuits, circuits2 = _sym_circuits(ws), _sym_circuits(ws2)
    for path, coupling in circuits2.items():
        moved = tuple(perm[i] if k == layer else i for k, i in enumerate(path))
        assert coupling == circuits[moved]
    return {
        "output": f[0] if f.shape == (1, 1) else f,
        "perm": sp.Tuple(*perm),
        "n_circuits": sp.Integer(len(circuits)),
    }


def derive_sign_flip_moments(widths: Sequence[int] = (2, 3, 2, 1)) -> dict[str, sp.Basic]:
    """Moments of the circuit couplings over an ensemble of independent weights, each symmetric
    about 0 with ``E (W^l_{ij})^2 = sigma_l^2 / n_{l-1}``.

    Sign-flip argument: if flipping one weight ``w -> -w`` (a symmetry of the ensemble) maps a
    monomial ``M`` to ``-M``, then ``E M = -E M = 0``. Every ``J_pi`` and every ``J_pi J_pi'``
    with ``pi != pi'`` has such a weight (an edge used by exactly one of the two circuits), so
    their means vanish; ``J_pi^2`` is a product of independent squares, so
    ``E J_pi^2 = prod_l sigma_l^2 / n_{l-1}``. Checked on every circuit and pair of ``widths``
    and, for one circuit, against Gaussian integration with ``sympy.stats``.
    """
    import sympy.stats as st

    ws, _ = _sym_net(widths)
    depth = len(ws)
    sig = sp.symbols(f"sigma_1:{depth + 1}", positive=True)
    var = {s: sig[layer] ** 2 / widths[layer] for layer, w in enumerate(ws) for s in w}

    circuits = list(_sym_circuits(ws).values())
    product = sp.Mul(*[sig[k] ** 2 / widths[k] for k in range(depth)])
    for coupling in circuits:
        assert flip_witness(coupling, var) is not None
        assert symmetric_expectation(coupling, var) == 0
        assert sp.simplify(symmetric_expectation(coupling**2, var) - product) == 0
    for a, b in itertools.combinations(circuits, 2):
        assert flip_witness(a * b, var) is not None
        assert symmetric_expectation(a * b, var) == 0

    # Gaussian cross-check for the first circuit.
    normals = {
        s: st.Normal(f"N_{k}", 0, sp.sqrt(var[s]))
        for k, s in enumerate(sorted(circuits[0].free_symbols, key=str))
    }
    gaussian = st.E(circuits[0].subs(normals) ** 2)
    assert sp.simplify(gaussian - product) == 0

    ell, big_l = sp.symbols("l L", integer=True, positive=True)
    sigma_i, n_i = sp.IndexedBase(r"\sigma"), sp.IndexedBase("n")
    general = sp.Product(sigma_i[ell] ** 2 / n_i[ell - 1], (ell, 1, big_l))
    concrete = general.subs(big_l, depth).doit()
    concrete = concrete.subs({sigma_i[k + 1]: sig[k] for k in range(depth)})
    concrete = concrete.subs({n_i[k]: widths[k] for k in range(depth)})
    assert sp.simplify(concrete - product) == 0

    ej = sp.Symbol(r"\mathbb{E}\,J_{\pi}")
    ejj = sp.Symbol(r"\mathbb{E}\,J_{\pi} J_{\pi'}")
    ej2 = sp.Symbol(r"\mathbb{E}\,J_{\pi}^{2}")
    return {
        "mean": sp.Eq(ej, 0),
        "cross": sp.Eq(ejj, 0),
        "square": sp.Eq(ej2, general),
        "square_example": sp.Eq(ej2, product),
        "n_circuits": sp.Integer(len(circuits)),
    }


def derive_symmetric_split() -> dict[str, sp.Basic]:
    """For ``z`` with a density symmetric about 0, ``P(g = 1) = 1/2`` and ``E[g z^2] = E[z^2]/2``.

    Symmetric split: ``int_{-oo}^0 F(z) p(z) dz = int_0^oo F(-u) p(-u) du`` (change of variables
    ``z = -u``) and ``p(-u) = p(u)``, so with ``F = 1`` and ``F = z^2`` the two half-lines carry
    equal weight. Checked by Gaussian integration (``E[g z^2] = q/2``), by a Laplace density, and
    shown to fail for a non-symmetric (shifted Gaussian) ``z``. A conditional version holds in a
    net: given ``h^{l-1} != 0``, flipping row ``i`` of ``W^l`` maps ``z^l_i -> -z^l_i`` and leaves
    ``h^{l-1}`` alone (in a finite net ``P(g=1) = (1 - P(h^{l-1} = 0))/2``, with
    ``P(h^{l-1} = 0)`` of order ``2^{-n_{l-1}}``)."""
    z = sp.Symbol("z", real=True)
    u = sp.Symbol("u", positive=True)
    p = sp.Function("p")

    def halves(integrand_of_z):
        upper = sp.Integral(integrand_of_z.subs(z, u) * p(u), (u, 0, sp.oo))
        lower_integrand = (integrand_of_z * p(z)).subs(z, -u).subs(p(-u), p(u))
        lower = sp.Integral(lower_integrand, (u, 0, sp.oo))
        return upper, lower

    up1, low1 = halves(sp.Integer(1))
    assert up1 == low1
    up2, low2 = halves(z**2)
    assert up2 == low2
    # normalisation: upper + lower = 1  =>  P(g = 1) = upper = 1/2
    prob = sp.Symbol("P", positive=True)
    assert sp.solve(sp.Eq(2 * prob, 1), prob) == [sp.Rational(1, 2)]

    q, b = sp.symbols("q b", positive=True)
    gauss = sp.exp(-(z**2) / (2 * q)) / sp.sqrt(2 * sp.pi * q)
    assert sp.integrate(gauss, (z, 0, sp.oo)) == sp.Rational(1, 2)
    half_gauss = sp.integrate(z**2 * gauss, (z, 0, sp.oo))
    assert sp.simplify(half_gauss - sp.integrate(z**2 * gauss, (z, -sp.oo, sp.oo)) / 2) == 0
    assert sp.simplify(half_gauss - q / 2) == 0
    laplace = sp.exp(-sp.Abs(z) / b) / (2 * b)
    half_lap = sp.integrate((z**2 * laplace).subs(sp.Abs(z), z), (z, 0, sp.oo))
    assert sp.simplify(half_lap - sp.integrate(z**2 * laplace, (z, -sp.oo, sp.oo)) / 2) == 0
    mu = sp.Symbol("mu", positive=True)
    shifted = sp.exp(-((z - mu) ** 2) / 2) / sp.sqrt(2 * sp.pi)
    half_shift = sp.integrate(z**2 * shifted, (z, 0, sp.oo))
    full_shift = sp.integrate(z**2 * shifted, (z, -sp.oo, sp.oo))
    assert (half_shift - full_shift / 2).subs(mu, 1).evalf() > 0.1

    g_sym, e = sp.Symbol("g"), sp.Function(r"\mathbb{E}")
    return {
        "probability": sp.Eq(sp.Symbol(r"P(g = 1)"), sp.Rational(1, 2)),
        "half_moment": sp.Eq(e(g_sym * z**2), e(z**2) / 2),
        "gaussian": sp.Eq(sp.Integral(z**2 * gauss, (z, 0, sp.oo)), q / 2),
    }


def derive_variance_map() -> dict[str, sp.Basic]:
    """The variance map of the initial ensemble and its fixed point.

    ``q^1 = E (sum_j W^1_{ij} x_j)^2 = sigma^2/n_0 sum_j x_j^2 = sigma^2 mean(x^2)`` (checked for
    ``n_0 = 4``), then ``q^l = sum_j sigma^2/n_{l-1} E (h^{l-1}_j)^2 = sigma^2 q^{l-1}/2`` by
    :func:`derive_symmetric_split`. ``rsolve`` gives ``q^l = 2 mean(x^2) (sigma^2/2)^l``: constant
    iff ``sigma^2 = 2`` (He et al. 2015), ``-> 0`` for ``sigma^2 < 2`` and ``-> oo`` for
    ``sigma^2 > 2``, with ``q^L / q^1 = (sigma^2/2)^(L-1)``."""
    s2, m = sp.symbols("sigma^2 m", positive=True)
    ell = sp.Symbol("l", integer=True, positive=True)
    q = sp.Function("q")

    xs = sp.symbols("x_1:5", real=True)
    ws = sp.symbols("w_1:5", real=True)
    z1 = sum(w * xv for w, xv in zip(ws, xs, strict=True))
    first = symmetric_expectation(z1**2, {w: s2 / len(ws) for w in ws})
    assert sp.simplify(first - s2 * sum(xv**2 for xv in xs) / len(xs)) == 0

    sol = sp.rsolve(q(ell + 1) - s2 * q(ell) / 2, q(ell), {q(1): s2 * m})
    closed = 2 * m * (s2 / 2) ** ell
    assert sp.simplify(sol - closed) == 0
    assert sp.simplify(sol.subs(ell, ell + 1) / sol - s2 / 2) == 0
    assert sp.solve(sp.Eq(s2 / 2, 1), s2) == [2]
    assert sp.simplify(closed.subs(s2, 2) - 2 * m) == 0
    assert sp.limit(closed.subs(s2, sp.Rational(3, 2)), ell, sp.oo) == 0
    assert sp.limit(closed.subs(s2, sp.Rational(5, 2)), ell, sp.oo) == sp.oo
    return {
        "first_layer": sp.Eq(q(1), s2 * m),
        "recursion": sp.Eq(q(ell + 1), s2 * q(ell) / 2),
        "solution": sp.Eq(q(ell), closed),
        "fixed_point": sp.Eq(s2, 2),
    }
