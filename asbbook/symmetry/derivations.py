"""sympy derivations of chapter 3. Every ``derive_*`` asserts its identity and returns a frozen
dataclass of expressions for display.

The symbolic network is the one of :mod:`asbbook.symbolic` (``weight_symbols``,
``input_symbols``, ``layered_forward``, ``circuit_couplings``, ``circuit_sum``). Weights of
layer ``l`` are independent, symmetric about 0, with ``E (W^l_ij)^2 = sigma_l^2 / n_{l-1}``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

from asbbook import validation
from asbbook.symbolic import (
    DerivationResult,
    circuit_couplings,
    circuit_sum,
    flip_witness,
    input_symbols,
    layered_forward,
    symmetric_expectation,
    unit_symbols,
    weight_symbols,
)

_C = sp.Symbol("c", positive=True)


def _symbolic_net(widths: Sequence[int]):
    widths = validation.check_widths(widths)
    validation.check_int("number of circuits", math.prod(widths), maximum=4096)
    return widths, weight_symbols(widths), sp.Matrix(input_symbols(widths[0]))


def _check_hidden(widths, layer: int) -> int:
    layer = validation.check_int("layer", layer)
    if not 1 <= layer <= len(widths) - 2:
        raise ValueError(f"layer must be a hidden layer 1..{len(widths) - 2}, got {layer}")
    return layer


# --------------------------------------------------------------------------------------------
# Exact symmetries of the function
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleInvariance(DerivationResult):
    """``gate``: ``H(c z) = H(z)``; ``relu``: ``relu(c z) = c relu(z)`` (``c > 0``)."""

    gate: sp.Eq
    relu: sp.Eq


def derive_gate_scale_invariance() -> ScaleInvariance:
    """Lemma: ``Heaviside(c z) = Heaviside(z)`` and ``relu(c z) = c relu(z)`` for every real ``z``
    and ``c > 0``, proved case by case (``z > 0``, ``z < 0``, ``z = 0``; gate ``1[z > 0]``):
    the positive homogeneity of ReLU."""
    u = sp.Symbol("u", positive=True)
    for z, expected in ((u, 1), (-u, 0), (sp.Integer(0), 0)):
        assert sp.Heaviside(_C * z, 0) == sp.Heaviside(z, 0) == expected
        assert sp.simplify(_C * z * sp.Heaviside(_C * z, 0) - _C * (z * sp.Heaviside(z, 0))) == 0
    z = sp.Symbol("z", real=True)
    relu = sp.Function("ReLU")
    return ScaleInvariance(
        gate=sp.Eq(sp.Heaviside(_C * z), sp.Heaviside(z), evaluate=False),
        relu=sp.Eq(relu(_C * z), _C * relu(z), evaluate=False),
    )


@dataclass(frozen=True)
class RescalingSymmetry(DerivationResult):
    """``lemma`` (:func:`derive_gate_scale_invariance`), ``coupling`` (a path through the
    rescaled unit keeps its ``J``), ``output`` (the unchanged network function) and
    ``n_circuits``."""

    lemma: ScaleInvariance
    coupling: sp.Eq
    output: sp.Expr
    n_circuits: int


def derive_rescaling_symmetry(
    widths: Sequence[int] = (2, 3, 2, 1), layer: int = 1, unit: int = 0
) -> RescalingSymmetry:
    """Prove on a symbolic net that rescaling one hidden unit (in-weights times ``c > 0``,
    out-weights times ``1/c``) leaves the output, every gate and every circuit coupling
    ``J_pi = prod_l W^l_{i_l i_{l-1}}`` unchanged (Neyshabur et al. 2015).

    Both nets are computed layer by layer with the gate ``Heaviside(z, 0)``, simplified by
    :func:`derive_gate_scale_invariance`; the output is also checked against the circuit sum
    ``f = sum_pi x_{i_0} J_pi S_pi``."""
    lemma = derive_gate_scale_invariance()
    widths, ws, x = _symbolic_net(widths)
    layer = _check_hidden(widths, layer)
    unit = validation.check_int("unit", unit, minimum=0, maximum=widths[layer] - 1)
    ws2 = [w.copy() for w in ws]
    ws2[layer - 1][unit, :] = _C * ws[layer - 1][unit, :]
    ws2[layer][:, unit] = ws[layer][:, unit] / _C

    zs, gates = layered_forward(ws, x)
    zs2, gates2 = layered_forward(ws2, x)
    for g, g2 in zip(gates, gates2, strict=True):
        assert g == g2, "a gate changed under positive rescaling"
    f, f2 = zs[-1], zs2[-1]
    assert (f2 - f).applyfunc(sp.expand) == sp.zeros(*f.shape), "f changed under rescaling"
    assert (circuit_sum(ws, x, gates) - f).applyfunc(sp.expand) == sp.zeros(*f.shape)
    circuits, circuits2 = circuit_couplings(ws), circuit_couplings(ws2)
    assert all(sp.simplify(circuits2[p] - circuits[p]) == 0 for p in circuits)
    assert ws2 != ws  # the weights really changed

    a, b = ws[layer - 1][unit, 0], ws[layer][0, unit]
    through = sp.Mul(
        sp.Mul(_C, a, evaluate=False), sp.Mul(b, 1 / _C, evaluate=False), evaluate=False
    )
    return RescalingSymmetry(
        lemma=lemma,
        coupling=sp.Eq(through, a * b, evaluate=False),
        output=f[0] if f.shape == (1, 1) else f,
        n_circuits=len(circuits),
    )


@dataclass(frozen=True)
class PermutationSymmetry(DerivationResult):
    """``output`` (unchanged), ``perm`` (new unit ``i`` = old unit ``perm[i]``), ``n_circuits``."""

    output: sp.Expr
    perm: sp.Tuple
    n_circuits: int


def derive_permutation_symmetry(
    widths: Sequence[int] = (2, 3, 2, 1), layer: int = 1, perm: Sequence[int] | None = None
) -> PermutationSymmetry:
    """Prove on a symbolic net that relabelling the units of a hidden layer
    (``W'^l = P W^l``, ``W'^{l+1} = W^{l+1} P^T``) leaves the output unchanged, permutes that
    layer's gates and maps every circuit's coupling onto the relabelled circuit's (Chen et al.
    1993). Default ``perm``: a cyclic shift."""
    widths, ws, x = _symbolic_net(widths)
    layer = _check_hidden(widths, layer)
    n = widths[layer]
    perm = list(range(1, n)) + [0] if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(n)) or perm == list(range(n)):
        raise ValueError(f"perm must be a non-trivial permutation of 0..{n - 1}, got {perm}")
    ws2 = [w.copy() for w in ws]
    ws2[layer - 1] = ws[layer - 1].extract(perm, list(range(widths[layer - 1])))
    ws2[layer] = ws[layer].extract(list(range(widths[layer + 1])), perm)

    zs, gates = layered_forward(ws, x)
    zs2, gates2 = layered_forward(ws2, x)
    f, f2 = zs[-1], zs2[-1]
    assert (f2 - f).applyfunc(sp.expand) == sp.zeros(*f.shape), "f changed under permutation"
    for k, (g, g2) in enumerate(zip(gates, gates2, strict=True), start=1):
        assert g2 == (g.extract(perm, [0]) if k == layer else g)
    assert gates2[layer - 1] != gates[layer - 1]  # the labels really moved
    circuits, circuits2 = circuit_couplings(ws), circuit_couplings(ws2)
    for path, coupling in circuits2.items():
        moved = tuple(perm[i] if k == layer else i for k, i in enumerate(path))
        assert coupling == circuits[moved]
    return PermutationSymmetry(
        output=f[0] if f.shape == (1, 1) else f, perm=sp.Tuple(*perm), n_circuits=len(circuits)
    )


# --------------------------------------------------------------------------------------------
# The sign-flip symmetry of the initial ensemble
# --------------------------------------------------------------------------------------------


def _layer_variances(ws, widths):
    sig = sp.symbols(f"sigma_1:{len(ws) + 1}", positive=True)
    var = {s: sig[ell] ** 2 / widths[ell] for ell, w in enumerate(ws) for s in w}
    return sig, var


@dataclass(frozen=True)
class SignFlipMoments(DerivationResult):
    """``mean``: ``E J_pi = 0``; ``cross``: ``E J_pi J_pi' = 0``; ``square``: the general
    ``E J_pi^2 = prod_l sigma_l^2 / n_{l-1}``; ``square_example``: its value for ``widths``;
    ``log_square``: for Gaussian weights, ``E ln J_pi^2 = sum_l ln(sigma_l^2/n_{l-1}) - L(gamma +
    ln 2)``, the form whose estimate is nearly normal (``J_pi^2`` has kurtosis ``3^L``)."""

    mean: sp.Eq
    cross: sp.Eq
    square: sp.Eq
    square_example: sp.Eq
    n_circuits: int
    log_square: sp.Eq


def derive_sign_flip_moments(widths: Sequence[int] = (2, 3, 2, 1)) -> SignFlipMoments:
    """Moments of the circuit couplings over the initial ensemble.

    If flipping one weight (a symmetry of the ensemble) maps a monomial ``M`` to ``-M``, then
    ``E M = 0``. Every ``J_pi`` and every ``J_pi J_pi'`` (``pi != pi'``) has such a weight, so
    their means vanish; ``J_pi^2`` is a product of independent squares, so
    ``E J_pi^2 = prod_l sigma_l^2 / n_{l-1}``. Checked on every circuit and pair, and for one
    circuit against Gaussian integration with ``sympy.stats``. For Gaussian weights also
    ``E ln w^2 = ln s^2 - gamma - ln 2`` (``gamma``: Euler's constant), by integration."""
    import sympy.stats as st

    widths, ws, _ = _symbolic_net(widths)
    depth = len(ws)
    sig, var = _layer_variances(ws, widths)
    circuits = list(circuit_couplings(ws).values())
    product = sp.Mul(*[sig[k] ** 2 / widths[k] for k in range(depth)])
    for coupling in circuits:
        assert flip_witness(coupling, var) is not None
        assert symmetric_expectation(coupling, var) == 0
        assert sp.simplify(symmetric_expectation(coupling**2, var) - product) == 0
    for a, b in itertools.combinations(circuits, 2):
        assert flip_witness(a * b, var) is not None
        assert symmetric_expectation(a * b, var) == 0

    normals = {
        s: st.Normal(f"N_{k}", 0, sp.sqrt(var[s]))
        for k, s in enumerate(sorted(circuits[0].free_symbols, key=str))
    }
    assert sp.simplify(st.E(circuits[0].subs(normals) ** 2) - product) == 0

    ell, big_l = sp.symbols("l L", integer=True, positive=True)
    sigma_i, n_i = sp.IndexedBase(r"\sigma"), sp.IndexedBase("n")
    general = sp.Product(sigma_i[ell] ** 2 / n_i[ell - 1], (ell, 1, big_l))
    concrete = general.subs(big_l, depth).doit()
    concrete = concrete.subs({sigma_i[k + 1]: sig[k] for k in range(depth)})
    concrete = concrete.subs({n_i[k]: widths[k] for k in range(depth)})
    assert sp.simplify(concrete - product) == 0

    # Gaussian weights: E ln w^2 = ln s^2 - gamma - ln 2, so ln J^2 has an additive mean
    u, s = sp.Symbol("u", positive=True), sp.Symbol("s", positive=True)
    scaled = sp.log((s * u) ** 2) - sp.log(s**2) - sp.log(u**2)  # w = s u
    assert sp.expand_log(scaled) == 0
    half_normal = 2 * sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi)  # |u| of a standard normal
    e_log = sp.integrate(2 * sp.log(u) * half_normal, (u, 0, sp.oo))
    assert sp.simplify(e_log + sp.EulerGamma + sp.log(2)) == 0
    log_general = sp.Sum(sp.log(sigma_i[ell] ** 2 / n_i[ell - 1]), (ell, 1, big_l)) - big_l * (
        sp.EulerGamma + sp.log(2)
    )

    ej2 = sp.Symbol(r"\mathbb{E}\,J_{\pi}^{2}")
    return SignFlipMoments(
        log_square=sp.Eq(sp.Symbol(r"\mathbb{E}\,\ln J_{\pi}^{2}"), log_general),
        mean=sp.Eq(sp.Symbol(r"\mathbb{E}\,J_{\pi}"), 0),
        cross=sp.Eq(sp.Symbol(r"\mathbb{E}\,J_{\pi} J_{\pi'}"), 0),
        square=sp.Eq(ej2, general),
        square_example=sp.Eq(ej2, product),
        n_circuits=len(circuits),
    )


@dataclass(frozen=True)
class SymmetricSplit(DerivationResult):
    """``probability``: ``P(g = 1) = 1/2``; ``half_moment``: ``E[g z^2] = E[z^2]/2``;
    ``gaussian``: the Gaussian half-line integral ``q/2``."""

    probability: sp.Eq
    half_moment: sp.Eq
    gaussian: sp.Eq


def derive_symmetric_split() -> SymmetricSplit:
    """For ``z`` with a density symmetric about 0, ``P(g = 1) = 1/2`` and ``E[g z^2] = E[z^2]/2``.

    The substitution ``z = -u`` with ``p(-u) = p(u)`` maps the integral over ``z < 0`` onto the
    one over ``u > 0``. Checked by Gaussian and Laplace integration, and shown to fail for a
    shifted Gaussian. In a net, flipping row ``i`` of ``W^l`` maps ``z^l_i -> -z^l_i`` and leaves
    ``h^{l-1}`` alone (exact up to the event ``h^{l-1} = 0``, of probability ~``2^{-n_{l-1}}``)."""
    z = sp.Symbol("z", real=True)
    u = sp.Symbol("u", positive=True)
    p = sp.Function("p")

    def halves(integrand_of_z):
        upper = sp.Integral(integrand_of_z.subs(z, u) * p(u), (u, 0, sp.oo))
        lower_integrand = (integrand_of_z * p(z)).subs(z, -u).subs(p(-u), p(u))
        return upper, sp.Integral(lower_integrand, (u, 0, sp.oo))

    for integrand in (sp.Integer(1), z**2):
        upper, lower = halves(integrand)
        assert upper == lower
    prob = sp.Symbol("P", positive=True)
    assert sp.solve(sp.Eq(2 * prob, 1), prob) == [sp.Rational(1, 2)]

    q, b = sp.symbols("q b", positive=True)
    gauss = sp.exp(-(z**2) / (2 * q)) / sp.sqrt(2 * sp.pi * q)
    assert sp.integrate(gauss, (z, 0, sp.oo)) == sp.Rational(1, 2)
    half_gauss = sp.integrate(z**2 * gauss, (z, 0, sp.oo))
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
    return SymmetricSplit(
        probability=sp.Eq(sp.Symbol(r"P(g = 1)"), sp.Rational(1, 2)),
        half_moment=sp.Eq(e(g_sym * z**2), e(z**2) / 2),
        gaussian=sp.Eq(sp.Integral(z**2 * gauss, (z, 0, sp.oo)), q / 2),
    )


@dataclass(frozen=True)
class VarianceMap(DerivationResult):
    """``first_layer``: ``q^1 = sigma^2 m``; ``recursion``: ``q^{l+1} = sigma^2 q^l / 2``;
    ``solution``: ``q^l = 2 m (sigma^2/2)^l``; ``fixed_point``: ``sigma^2 = 2``."""

    first_layer: sp.Eq
    recursion: sp.Eq
    solution: sp.Eq
    fixed_point: sp.Eq


def derive_variance_map() -> VarianceMap:
    """The forward variance map of the initial ensemble and its fixed point (He et al. 2015;
    Poole et al. 2016 for general nonlinearities).

    ``q^1 = sigma^2 mean(x^2)`` (checked for ``n_0 = 4``), ``q^l = sigma^2 q^{l-1}/2`` by
    :func:`derive_symmetric_split`; ``rsolve`` gives ``q^l = 2 m (sigma^2/2)^l``: constant iff
    ``sigma^2 = 2``, vanishing for ``sigma^2 < 2`` and exploding for ``sigma^2 > 2``."""
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
    assert sp.solve(sp.Eq(s2 / 2, 1), s2) == [2]
    assert sp.limit(closed.subs(s2, sp.Rational(3, 2)), ell, sp.oo) == 0
    assert sp.limit(closed.subs(s2, sp.Rational(5, 2)), ell, sp.oo) == sp.oo
    return VarianceMap(
        first_layer=sp.Eq(q(1), s2 * m),
        recursion=sp.Eq(q(ell + 1), s2 * q(ell) / 2),
        solution=sp.Eq(q(ell), closed),
        fixed_point=sp.Eq(s2, 2),
    )


# --------------------------------------------------------------------------------------------
# The backward pass
# --------------------------------------------------------------------------------------------


def _symbolic_backward(ws, gates, x):
    """Forward and backward pass with the gates as free symbols (gates are locally constant in
    the weights): ``h^l = G^l W^l h^{l-1}``, ``delta^L = 1``,
    ``delta^{l} = G^l (W^{l+1})^T delta^{l+1}`` (``delta^l = df/dz^l``). Returns
    ``(zs, hs, deltas)`` with ``zs[k] = z^{k+1}``, ``hs[k] = h^k`` and ``deltas[k] = delta^{k+1}``."""
    zs, hs, h = [], [x], x
    for ell, w in enumerate(ws):
        zs.append(w * h)
        if ell < len(ws) - 1:
            h = sp.diag(*gates[ell]) * zs[-1]
            hs.append(h)
    deltas = [None] * len(ws)
    deltas[-1] = sp.ones(ws[-1].shape[0], 1)
    for ell in range(len(ws) - 2, -1, -1):
        deltas[ell] = sp.diag(*gates[ell]) * ws[ell + 1].T * deltas[ell + 1]
    return zs, hs, deltas


def _expect_top_down(expr, ws, gates, var, lowest: int) -> sp.Expr:
    """``E expr`` over layers ``L, L-1, .., lowest``, from the top down.

    At layer ``s``: (i) each gate ``g^s_j`` is replaced by 1/2. Flipping row ``j`` of ``W^s``
    (a symmetry of the ensemble) maps ``g^s_j -> 1 - g^s_j`` and changes no gate below, so
    ``E[g^s_j A] = E[A]/2`` for every ``A`` even in row ``j`` -- asserted term by term.
    (ii) ``W^s`` is integrated out with :func:`asbbook.symbolic.symmetric_expectation` (it is independent of
    everything below; the gates above are already gone)."""
    gate_set = {g for layer in gates for g in layer}
    for s in range(len(ws), lowest - 1, -1):
        expr = sp.expand(expr).replace(
            lambda e: e.is_Pow and e.base in gate_set, lambda e: e.base
        )  # g^2 = g for a 0/1 gate
        if s < len(ws):
            for j, g in enumerate(gates[s - 1]):
                row = set(ws[s - 1].row(j))
                for term in sp.Add.make_args(expr):
                    if term.has(g):
                        degree = sum(sp.degree(term, w) for w in row if term.has(w))
                        assert degree % 2 == 0, f"term odd in row {j} of W^{s}: {term}"
                expr = expr.subs(g, sp.Rational(1, 2))
        layer_var = {w: var[w] for w in ws[s - 1]}
        expr = symmetric_expectation(expr, layer_var)
    return sp.simplify(expr)


@dataclass(frozen=True)
class GradientMap(DerivationResult):
    """``recursion``: ``N^{l-1} = (sigma_l^2/2) N^l`` for ``N^l = E |df/dz^l|^2``;
    ``solution``: ``N^l = prod_{k>l} sigma_k^2/2``; ``weights``:
    ``E |df/dW^l|^2 = n_{l-1} m prod_{k != l} sigma_k^2/2``; ``euler``: ``f = delta^l . z^l``."""

    recursion: sp.Eq
    solution: sp.Eq
    weights: sp.Eq
    euler: sp.Eq


def derive_gradient_map(widths: Sequence[int] = (2, 3, 2, 1)) -> GradientMap:
    """The backward variance map of a ReLU net with scalar output ``f`` (Hanin 2018).

    ``delta^l = df/dz^l`` obeys ``delta^{l} = g^l * (W^{l+1})^T delta^{l+1}`` with
    ``delta^L = 1``. Over the initial ensemble, integrating the layers out from the top
    (``_expect_top_down``, which uses only the row sign-flip symmetry and independence):
    ``N^l = E |delta^l|^2 = prod_{k=l+1}^{L} sigma_k^2/2`` -- the mirror of the forward map,
    preserved across layers iff ``sigma^2 = 2`` -- and, since ``df/dW^l = delta^l (h^{l-1})^T``,
    ``E |df/dW^l|^2 = N^l E|h^{l-1}|^2 = n_{l-1} m prod_{k != l} sigma_k^2/2`` with
    ``m = mean_j x_j^2``. Exact at every width up to the events ``h^{l-1} = 0``. Asserted on
    the symbolic net of ``widths`` (scalar output), with Euler's ``f = delta^l . z^l``."""
    widths, ws, x = _symbolic_net(widths)
    if widths[-1] != 1:
        raise ValueError(f"widths must end in a single output unit, got {widths}")
    depth = len(ws)
    gates = [sp.Matrix(layer) for layer in unit_symbols("g", widths)]
    sig, var = _layer_variances(ws, widths)
    zs, hs, deltas = _symbolic_backward(ws, gates, x)
    f = zs[-1][0]
    for z, delta in zip(zs, deltas, strict=True):
        assert sp.expand((delta.T * z)[0] - f) == 0  # f is homogeneous of degree 1 in z^l
    m = sum(xi**2 for xi in x) / widths[0]
    for ell in range(1, depth + 1):
        above = sp.Mul(*[sig[k - 1] ** 2 / 2 for k in range(ell + 1, depth + 1)])
        n_sq = _expect_top_down((deltas[ell - 1].T * deltas[ell - 1])[0], ws, gates, var, ell)
        assert sp.simplify(n_sq - above) == 0, (ell, n_sq)
        grad_sq = sum(d**2 for d in deltas[ell - 1]) * sum(h**2 for h in hs[ell - 1])
        others = sp.Mul(*[sig[k - 1] ** 2 / 2 for k in range(1, depth + 1) if k != ell])
        expected = widths[ell - 1] * m * others
        assert sp.simplify(_expect_top_down(grad_sq, ws, gates, var, 1) - expected) == 0

    ell, k, big_l = sp.symbols("l k L", integer=True, positive=True)
    sigma_i, n_i = sp.IndexedBase(r"\sigma"), sp.IndexedBase("n")
    big_n = sp.Function("N")
    m_sym = sp.Symbol("m", positive=True)
    e_delta = sp.Symbol(r"\mathbb{E}\,|\partial f / \partial z^{l}|^{2}")
    e_grad = sp.Symbol(r"\mathbb{E}\,|\partial f / \partial W^{l}|^{2}")
    product = sp.Product(sigma_i[k] ** 2 / 2, (k, ell + 1, big_l))
    return GradientMap(
        recursion=sp.Eq(big_n(ell - 1), sigma_i[ell] ** 2 / 2 * big_n(ell)),
        solution=sp.Eq(e_delta, product),
        weights=sp.Eq(
            e_grad,
            n_i[ell - 1]
            * m_sym
            * sp.Product(sigma_i[k] ** 2 / 2, (k, 1, big_l))
            / (sigma_i[ell] ** 2 / 2),
        ),
        euler=sp.Eq(sp.Symbol("f"), sp.Symbol(r"\delta^{l} \cdot z^{l}")),
    )


# --------------------------------------------------------------------------------------------
# The plug-in bias of the gate-label information
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InformationBias(DerivationResult):
    """``entropy``: ``E H_hat - H = -(m-1)/(2N)`` nats (``m`` cells); ``information``:
    ``E I_hat - I = (|X|-1)(|Y|-1)/(2 N ln 2)`` bits; ``binary``: ``1/(2 N ln 2)`` bits."""

    entropy: sp.Eq
    information: sp.Eq
    binary: sp.Eq


def derive_information_bias() -> InformationBias:
    """First-order bias of plug-in entropies and of the plug-in mutual information from ``N``
    samples (Miller 1955; Panzeri & Treves 1996; Paninski 2003).

    ``H_hat = sum_i phi(p_hat_i)`` with ``phi(t) = -t ln t``; Taylor to second order with
    ``E p_hat_i = p_i`` and ``Var p_hat_i = p_i (1-p_i)/N``: ``E H_hat - H =
    sum_i phi''(p_i) p_i (1 - p_i) / (2N) = -(m-1)/(2N)`` (asserted for ``m = 2, 3, 4``).
    ``I = H(X) + H(Y) - H(X, Y)`` then has bias
    ``(-(|X|-1) - (|Y|-1) + (|X||Y|-1))/(2N) = (|X|-1)(|Y|-1)/(2N)`` nats, which for a binary
    gate and a binary label is ``1/(2 N ln 2)`` bits. It is independent of the true
    information to this order, so it biases the start and the end of training alike."""
    big_n = sp.Symbol("N", positive=True)
    t = sp.Symbol("t", positive=True)
    phi2 = sp.diff(-t * sp.log(t), t, 2)

    def entropy_bias(n_cells: int) -> sp.Expr:
        ps = sp.symbols(f"p_1:{n_cells + 1}", positive=True)
        bias = sum(phi2.subs(t, p) * p * (1 - p) / (2 * big_n) for p in ps)
        return sp.simplify(bias.subs(ps[-1], 1 - sum(ps[:-1])))

    for n_cells in (2, 3, 4):
        assert sp.simplify(entropy_bias(n_cells) + (n_cells - 1) / (2 * big_n)) == 0
    a, b, m = sp.symbols("a b m", positive=True, integer=True)

    def generic(cells):
        return -(cells - 1) / (2 * big_n)

    info_bias = generic(a) + generic(b) - generic(a * b)  # H(X) + H(Y) - H(X, Y)
    assert sp.simplify(info_bias - (a - 1) * (b - 1) / (2 * big_n)) == 0
    binary = sp.simplify(info_bias.subs({a: 2, b: 2}) / sp.log(2))
    assert sp.simplify(binary - 1 / (2 * big_n * sp.log(2))) == 0
    x_card, y_card = sp.Symbol("|X|"), sp.Symbol("|Y|")
    bias_sym = sp.Symbol(r"\mathbb{E}\,\hat I - I")
    return InformationBias(
        entropy=sp.Eq(sp.Symbol(r"\mathbb{E}\,\hat H - H"), -(m - 1) / (2 * big_n)),
        information=sp.Eq(bias_sym, (x_card - 1) * (y_card - 1) / (2 * big_n * sp.log(2))),
        binary=sp.Eq(bias_sym, binary),
    )
