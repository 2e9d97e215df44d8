"""The symbolic network: sympy weights, the layered forward pass and the circuit (path) sum.

One definition serves every derivation of the book. A network with widths ``(n_0, ..., n_L)``
has weight matrices ``W^{(l)}`` of real symbols ``W^{(l)}_{ij}`` (1-based in the display), gates
``g^{(l)}_i`` and inputs ``x_i``. A *circuit* ``pi = (i_0, ..., i_L)`` picks one unit per layer;
its coupling is ``J_pi = prod_l W^{(l)}_{i_l i_{l-1}}`` and its gate product
``S_pi = prod_{l<L} g^{(l)}_{i_l}``, and the output is the circuit sum
``f = sum_pi x_{i_0} J_pi S_pi`` (the path expansion of ReLU networks, e.g. Choromanska et al. 2015).
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Iterator, Sequence

import sympy as sp

from asbbook import validation


class DerivationResult:
    """Base of the frozen dataclasses that every ``derive_*`` returns.

    ``result["name"]`` still works, with a ``DeprecationWarning``, for readers' code written
    when the derivations returned dicts; an unknown name raises ``KeyError``."""

    def __getitem__(self, key: str):
        if key not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(key)
        warnings.warn(
            f"{type(self).__name__}[{key!r}] is deprecated; use the attribute .{key}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(self, key)


def weight_symbols(widths: Sequence[int]) -> list[sp.Matrix]:
    """Symbolic ``W^{(l)}`` matrices ``(n_l, n_{l-1})`` of real symbols ``W^{(l)}_{ij}``."""
    widths = validation.check_widths(widths)
    return [
        sp.Matrix(
            n_out,
            n_in,
            lambda i, j, ell=ell: sp.Symbol(f"W^{{({ell})}}_{{{i + 1}{j + 1}}}", real=True),
        )
        for ell, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True), start=1)
    ]


def input_symbols(n_0: int, example: int | None = None) -> list[sp.Symbol]:
    """Real input symbols ``x_i`` (or ``x_{mu,i}`` for example ``mu``)."""
    n_0 = validation.check_int("n_0", n_0, minimum=1)
    tag = "" if example is None else f"{example},"
    return [sp.Symbol(f"x_{{{tag}{i + 1}}}", real=True) for i in range(n_0)]


def unit_symbols(
    name: str, widths: Sequence[int], example: int | None = None
) -> list[list[sp.Symbol]]:
    """Symbols ``name^{(l)}_i`` (or ``name^{(l)}_{mu,i}``) of the hidden layers ``l = 1..L-1``."""
    widths = validation.check_widths(widths)
    tag = "" if example is None else f"{example},"
    return [
        [sp.Symbol(f"{name}^{{({ell})}}_{{{tag}{i + 1}}}") for i in range(widths[ell])]
        for ell in range(1, len(widths) - 1)
    ]


def heaviside_gate(z: sp.Expr) -> sp.Expr:
    """``1[z > 0]`` as ``Heaviside(z, 0)``, after dropping positive factors of ``z``
    (``Heaviside(c u) = Heaviside(u)`` for ``c > 0``: ReLU's positive homogeneity)."""
    arg = sp.factor_terms(z)
    if isinstance(arg, sp.Mul):
        arg = sp.Mul(*[a for a in arg.args if not a.is_positive])
    return sp.Heaviside(arg, 0)


def layered_forward(ws: Sequence[sp.Matrix], x: sp.Matrix):
    """The layered computation ``z^l = W^l h^{l-1}``, ``g^l = 1[z^l > 0]``, ``h^l = g^l z^l``
    (expanded). Returns ``(zs, gates)``, the gates of the hidden layers only."""
    zs, gates = [], []
    h = sp.Matrix(x)
    for layer, w in enumerate(ws):
        z = (w * h).applyfunc(sp.expand)
        zs.append(z)
        if layer < len(ws) - 1:
            g = z.applyfunc(heaviside_gate)
            gates.append(g)
            h = z.multiply_elementwise(g).applyfunc(sp.expand)
    return zs, gates


def gated_output(ws: Sequence[sp.Matrix], gates, x) -> sp.Expr:
    """``W^L G^{L-1} W^{L-1} ... G^1 W^1 x`` with ``G^l = diag(gates[l-1])`` and the gates
    treated as free symbols (scalar output)."""
    h = sp.Matrix(x)
    for ell, w in enumerate(ws):
        h = w * h
        if ell < len(ws) - 1:
            h = sp.diag(*gates[ell]) * h
    return h[0]


def widths_of(ws: Sequence[sp.Matrix]) -> tuple[int, ...]:
    """``(n_0, ..., n_L)`` of a list of symbolic weight matrices."""
    return (ws[0].shape[1], *(w.shape[0] for w in ws))


def circuit_parts(ws: Sequence[sp.Matrix], gates, x) -> Iterator[tuple]:
    """For every circuit ``pi`` in row-major order: ``(pi, x_{i_0}, J_pi, S_pi)``."""
    widths = widths_of(ws)
    depth = len(ws)
    for pi in itertools.product(*(range(n) for n in widths)):
        J = sp.Mul(*(ws[ell][pi[ell + 1], pi[ell]] for ell in range(depth)))
        S = sp.Mul(*(gates[ell][pi[ell + 1]] for ell in range(depth - 1)))
        yield pi, x[pi[0]], J, S


def circuit_couplings(ws: Sequence[sp.Matrix]) -> dict[tuple[int, ...], sp.Expr]:
    """Every circuit ``pi = (i_0, .., i_L)`` and its coupling ``J_pi = prod_l W^l_{i_l i_{l-1}}``."""
    widths = widths_of(ws)
    return {
        pi: sp.Mul(*(w[pi[k + 1], pi[k]] for k, w in enumerate(ws)))
        for pi in itertools.product(*(range(n) for n in widths))
    }


def circuit_sum(ws: Sequence[sp.Matrix], x, gates) -> sp.Matrix:
    """``f_k = sum_{pi ending at k} x_{i_0} J_pi S_pi``, expanded (one entry per output unit)."""
    f = [sp.Integer(0)] * ws[-1].shape[0]
    for pi, coupling in circuit_couplings(ws).items():
        s = sp.Mul(*(g[pi[k + 1]] for k, g in enumerate(gates)))
        f[pi[-1]] += x[pi[0]] * coupling * s
    return sp.Matrix(f).applyfunc(sp.expand)


def flip_witness(mono: sp.Expr, weights) -> sp.Symbol | None:
    """A weight ``w`` whose sign flip maps the monomial to its negative (odd power), if any."""
    for s in sorted(mono.free_symbols & set(weights), key=str):
        if sp.expand(mono.subs(s, -s) + mono) == 0:
            return s
    return None


def symmetric_expectation(expr: sp.Expr, second_moments: dict) -> sp.Expr:
    """``E expr`` over independent weights, each symmetric about 0, with ``E w^2`` given.

    Expanded into monomials: a monomial with an odd power of some weight has mean 0 (the flip of
    that weight is a symmetry of the ensemble and negates the monomial); one where every weight is
    squared factorises into the given second moments. Higher even powers are not needed here.
    """
    total = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(expr)):
        if flip_witness(term, second_moments) is not None:
            continue
        powers = term.as_powers_dict()
        factor = sp.Integer(1)
        for base, power in powers.items():
            if base in second_moments:
                if power != 2:
                    raise NotImplementedError(f"moment of order {power} not specified")
                factor *= second_moments[base]
            else:
                factor *= base**power
        total += factor
    return total
