"""A moment closure for deep networks of Boltzmann gates (book, Chapter 1).

With one hidden layer the mean output is exact (``W^2 <h^1>``). Deeper, the gates of layer
``l+1`` see the noise of layer ``l``, and the mean output has no closed form. The mean-field
(moment) closure keeps, for every unit ``i`` of layer ``l`` and every input, only the mean
``mu^l_i`` and variance ``v^l_i`` of its pre-activation over the gate noise, and assumes

1. ``z^l_i ~ N(mu^l_i, v^l_i)`` (a sum of many independent gate contributions), and
2. the units of one layer are uncorrelated (their shared noise from below is neglected).

Then ``h = g z`` with ``E[g z | z] = z sigmoid(beta z)`` and ``E[(g z)^2 | z] = z^2 sigmoid(beta z)``
(``g^2 = g``) give

    m^l_i = E_N[z sigmoid(beta z)],   s^l_i = E_N[z^2 sigmoid(beta z)],
    mu^{l+1} = W^{l+1} m^l,           v^{l+1} = (W^{l+1} o W^{l+1}) (s^l - (m^l)^2),

starting from ``mu^1 = W^1 x``, ``v^1 = 0``; the predicted mean output is ``mu^L``. At one
hidden layer this is exact. ``E[g z | z] = z sigmoid(beta z)`` is the stochastic-gate reading of
SiLU/GELU (Hendrycks & Gimpel 2016); propagating a mean and a variance through a layer under a
Gaussian assumption is assumed density filtering / moment matching (Minka 2001), the closure
used for stochastic and Bayesian networks (e.g. Wang & Manning 2013 for dropout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch

from asbbook import nets, validation
from asbbook.boltzmann.gate import check_beta, sigmoid_expr
from asbbook.boltzmann.network import _check_network, _finite_output, relative_gap
from asbbook.symbolic import DerivationResult

N_QUADRATURE = 256  # Gauss-Hermite nodes: relative error < 1e-3 up to beta sqrt(v) = 20


@dataclass(frozen=True)
class MeanFieldDerivation(DerivationResult):
    """The closure's ingredients, each asserted by :func:`derive_mean_field`."""

    conditional_mean: sp.Expr  # E[g z | z] = z sigmoid(beta z)
    conditional_second_moment: sp.Expr  # E[(g z)^2 | z] = z^2 sigmoid(beta z)
    next_mean: sp.Expr  # E z' = sum_j w_j E h_j
    next_variance: sp.Expr  # Var z' = sum_j w_j^2 Var h_j (independent gates)
    relu_gaussian_mean: sp.Expr  # beta -> inf: E[z 1(z > 0)] = mu Phi(mu/s) + s phi(mu/s)
    relu_gaussian_second_moment: sp.Expr  # E[z^2 1(z>0)] = (mu^2 + s^2) Phi + mu s phi


def derive_mean_field() -> MeanFieldDerivation:
    """Derive the closure step by step and assert every identity with sympy.

    * the conditional moments of ``h = g z`` from the two-point law of ``g``;
    * the law of total variance: ``E[Var(h|z)] + Var E[h|z] = E[z^2 sigma] - (E[z sigma])^2``;
    * the layer step ``z' = w_1 h_1 + w_2 h_2``, computed exactly over the four configurations of
      two independent gates at fixed ``z`` (the first hidden layer, where it is exact);
    * the zero-temperature limit of the Gaussian moments: the rectified-Gaussian moments
      (integrals done by sympy).
    """
    zz = sp.Symbol("z", real=True)
    b = sp.Symbol("beta", positive=True)
    p = sigmoid_expr(b * zz)
    law = ((0, 1 - p), (1, p))
    cond_mean = sum(v * zz * prob for v, prob in law)
    cond_second = sum((v * zz) ** 2 * prob for v, prob in law)
    assert sp.simplify(cond_mean - zz * p) == 0
    assert sp.simplify(cond_second - zz**2 * p) == 0
    # Law of total variance, integrand by integrand: Var(h|z) + E[h|z]^2 = E[h^2|z].
    assert sp.simplify(zz**2 * p * (1 - p) + (zz * p) ** 2 - cond_second) == 0

    # Two gated units feeding one unit of the next layer.
    z1, z2, w1, w2 = sp.symbols("z_1 z_2 w_1 w_2", real=True)
    p1, p2 = sp.symbols("p_1 p_2", positive=True)
    configs = [((g1, g2), (p1 if g1 else 1 - p1) * (p2 if g2 else 1 - p2)) for g1 in (0, 1)
               for g2 in (0, 1)]  # fmt: skip
    out = [(w1 * g1 * z1 + w2 * g2 * z2, prob) for (g1, g2), prob in configs]
    mean = sp.expand(sum(o * q for o, q in out))
    var = sp.expand(sum(o**2 * q for o, q in out) - mean**2)
    next_mean = w1 * z1 * p1 + w2 * z2 * p2
    next_var = w1**2 * z1**2 * p1 * (1 - p1) + w2**2 * z2**2 * p2 * (1 - p2)
    assert sp.simplify(mean - next_mean) == 0
    assert sp.simplify(var - next_var) == 0

    # beta -> infinity: sigma(beta z) -> 1[z > 0]; the Gaussian moments of ReLU, from
    # antiderivatives checked by differentiation and evaluated between 0 and infinity.
    mu = sp.Symbol("mu", real=True)
    s = sp.Symbol("s", positive=True)
    density = sp.exp(-((zz - mu) ** 2) / (2 * s**2)) / (s * sp.sqrt(2 * sp.pi))

    def Phi(u):
        return (1 + sp.erf(u / sp.sqrt(2))) / 2

    def phi(u):
        return sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi)

    u = (zz - mu) / s
    antiderivatives = (mu * Phi(u) - s * phi(u), (mu**2 + s**2) * Phi(u) - s * (zz + mu) * phi(u))
    relu_mean = mu * Phi(mu / s) + s * phi(mu / s)
    relu_second = (mu**2 + s**2) * Phi(mu / s) + mu * s * phi(mu / s)
    for power, A, expected in zip((1, 2), antiderivatives, (relu_mean, relu_second), strict=True):
        assert sp.simplify(sp.diff(A, zz) - zz**power * density) == 0
        assert sp.simplify(sp.limit(A, zz, sp.oo) - A.subs(zz, 0) - expected) == 0
    return MeanFieldDerivation(cond_mean, cond_second, next_mean, next_var, relu_mean, relu_second)


def gaussian_gate_moments(
    mean: torch.Tensor, variance: torch.Tensor, beta, *, n_nodes: int = N_QUADRATURE
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E[z sigmoid(beta z)], Var(g z))`` for ``z ~ N(mean, variance)``, elementwise.

    Gauss-Hermite quadrature with the probabilists' weight (``numpy.polynomial.hermite_e``):
    ``E f(z) = sum_k w_k f(mean + sqrt(variance) t_k) / sqrt(2 pi)``; at ``variance = 0`` it is
    ``f(mean)`` exactly. ``Var(g z) = E[z^2 sigmoid(beta z)] - (E[z sigmoid(beta z)])^2``.
    """
    mean = validation.as_float_tensor("mean", mean)
    variance = validation.as_float_tensor("variance", variance)
    beta = check_beta(beta)
    n_nodes = validation.check_int("n_nodes", n_nodes, minimum=1)
    if mean.shape != variance.shape:
        raise ValueError(f"variance must have the shape of mean {tuple(mean.shape)}")
    if bool((variance < 0).any()):
        raise ValueError("variance must be non-negative")
    validation.check_memory("mean", 4.0 * mean.element_size() * mean.numel() * n_nodes)
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    t = torch.as_tensor(nodes, dtype=mean.dtype, device=mean.device)
    w = torch.as_tensor(weights / np.sqrt(2 * np.pi), dtype=mean.dtype, device=mean.device)
    z = mean.unsqueeze(-1) + variance.sqrt().unsqueeze(-1) * t
    zp = z * torch.sigmoid(beta * z)
    first = (zp * w).sum(-1)
    second = (z * zp * w).sum(-1)
    return first, (second - first.square()).clamp_min(0)


@dataclass(frozen=True)
class MeanFieldState:
    """Per-layer means and variances of the pre-activations ``z^l`` over the gate noise,
    each ``(P, n_l)``, from :func:`mean_field_propagate`."""

    means: tuple[torch.Tensor, ...]
    variances: tuple[torch.Tensor, ...]

    @property
    def output_mean(self) -> torch.Tensor:
        """The predicted ``E f_beta(x)``: ``(P,)`` for ``n_L = 1``."""
        out = self.means[-1]
        return out[:, 0] if out.shape[1] == 1 else out


def mean_field_propagate(weights: Sequence[torch.Tensor], X, beta) -> MeanFieldState:
    """The closure of the module docstring, layer by layer, for inputs ``X`` ``(P, n_0)``."""
    widths, weights, X = _check_network(weights, X)
    beta = validation.check_real("beta", beta, positive=True)
    validation.check_memory("X", 4.0 * X.element_size() * X.shape[0] * max(widths) * N_QUADRATURE)
    mu = X @ weights[0].T
    var = torch.zeros_like(mu)
    means, variances = [mu], [var]
    for w in weights[1:]:
        m, v = gaussian_gate_moments(mu, var, beta)
        mu, var = _finite_output(m @ w.T), _finite_output(v @ (w * w).T)
        means.append(mu)
        variances.append(var)
    return MeanFieldState(tuple(means), tuple(variances))


def mean_field_relative_gap(weights: Sequence[torch.Tensor], X, beta) -> float:
    """The closure's prediction of ``D(beta) = mean_x (E f_beta - f)^2 / mean_x f^2``."""
    _, weights, X = _check_network(weights, X)
    state = mean_field_propagate(weights, X, beta)
    return relative_gap(state.output_mean, nets.forward(weights, X))
