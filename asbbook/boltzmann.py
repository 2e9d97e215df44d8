"""Constituent 1: the Boltzmann-like distribution of a ReLU gate (book, Chapter 1).

A gate ``g in {0, 1}`` in front of a pre-activation ``z`` has energy ``E(g; z) = -g z``. At inverse
temperature ``beta`` it is Boltzmann distributed,

    P(g | z) = exp(beta g z) / Z,   Z = 1 + exp(beta z),   F = -(1/beta) ln Z,

so ``P(g = 1 | z) = sigmoid(beta z)``, ``<g> = -dF/dz`` and the stochastic activation ``h = g z`` has
``<h> = z sigmoid(beta z)`` (SiLU/Swish at ``beta = 1``, Elfwing et al. 2018) and
``Var h = z^2 sigmoid(beta z) (1 - sigmoid(beta z))``. As ``beta -> infinity`` the gate becomes the
ReLU step. Stacking such gates layer by layer gives a directed graphical model
``P(g^1..g^{L-1} | x) = prod_l prod_i Bernoulli(g^l_i; sigmoid(beta z^l_i))`` whose zero-temperature
limit is the deterministic ReLU network (the book's reading of the paper's "stochastic definition of
DNNs as a multilayer probabilistic graphical model", Li 2022).

The module holds the sympy derivations (each ends in assertions) and their torch counterparts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp
import torch

# ---------------------------------------------------------------------------------------------
# Derivations (sympy)
# ---------------------------------------------------------------------------------------------

z, beta = sp.symbols("z beta", real=True)
beta_pos = sp.Symbol("beta", positive=True)
g = sp.Symbol("g", integer=True, nonnegative=True)


def sigmoid_expr(x):
    """``sigma(x) = 1 / (1 + e^{-x})`` as a sympy expression."""
    return 1 / (1 + sp.exp(-x))


@dataclass(frozen=True)
class GateDerivation:
    """The closed forms of a single Boltzmann gate, all verified by :func:`derive_gate`."""

    energy: sp.Expr
    partition_function: sp.Expr
    free_energy: sp.Expr
    open_probability: sp.Expr
    mean_gate: sp.Expr
    mean_activation: sp.Expr
    activation_variance: sp.Expr
    entropy: sp.Expr


def derive_gate() -> GateDerivation:
    """Derive the gate distribution, free energy, moments and entropy, asserting each identity.

    * ``Z = sum_{g in {0,1}} e^{-beta E(g)} = 1 + e^{beta z}``;
    * ``P(g=1) = e^{beta z} / Z = sigmoid(beta z)``;
    * ``<g> = -dF/dz`` with ``F = -(1/beta) ln Z``;
    * ``<h> = z <g>``, ``Var h = z^2 <g>(1 - <g>)`` since ``g^2 = g``;
    * ``S = -sum_g P ln P``.
    """
    energy = -g * z
    Z = sum(sp.exp(-beta * energy.subs(g, v)) for v in (0, 1))
    assert sp.simplify(Z - (1 + sp.exp(beta * z))) == 0

    p_open = sp.exp(-beta * energy.subs(g, 1)) / Z
    assert sp.simplify(p_open - sigmoid_expr(beta * z)) == 0

    F = -sp.log(Z) / beta
    mean_gate = -sp.diff(F, z)
    assert sp.simplify(mean_gate - p_open) == 0

    # Moments of h = g z from the two-point distribution of g.
    p = sigmoid_expr(beta * z)
    mean_h = sum(v * z * prob for v, prob in ((0, 1 - p), (1, p)))
    second_h = sum((v * z) ** 2 * prob for v, prob in ((0, 1 - p), (1, p)))
    var_h = sp.simplify(second_h - mean_h**2)
    assert sp.simplify(mean_h - z * p) == 0
    assert sp.simplify(var_h - z**2 * p * (1 - p)) == 0
    # SiLU / Swish at beta = 1.
    assert sp.simplify(mean_h.subs(beta, 1) - z / (1 + sp.exp(-z))) == 0

    entropy = -(p * sp.log(p) + (1 - p) * sp.log(1 - p))
    return GateDerivation(
        energy=energy,
        partition_function=Z,
        free_energy=F,
        open_probability=sigmoid_expr(beta * z),
        mean_gate=sigmoid_expr(beta * z),
        mean_activation=z * sigmoid_expr(beta * z),
        activation_variance=z**2 * sigmoid_expr(beta * z) * (1 - sigmoid_expr(beta * z)),
        entropy=entropy,
    )


def derive_entropy_maximum() -> sp.Expr:
    """The gate entropy ``S(p) = -p ln p - (1-p) ln(1-p)`` peaks at ``p = 1/2`` (``z = 0``) with ``S = ln 2``.

    Equal-probability pathways at ``z = 0`` are the single-gate face of the book's "adaptive
    symmetry". Returns the maximal entropy ``ln 2``.
    """
    p = sp.Symbol("p", positive=True)
    S = -(p * sp.log(p) + (1 - p) * sp.log(1 - p))
    stationary = sp.solve(sp.Eq(sp.diff(S, p), 0), p)
    assert stationary == [sp.Rational(1, 2)]
    assert sp.diff(S, p, 2).subs(p, sp.Rational(1, 2)) < 0
    s_max = sp.simplify(S.subs(p, sp.Rational(1, 2)))
    assert sp.simplify(s_max - sp.log(2)) == 0
    # p = sigmoid(beta z) = 1/2 exactly at z = 0, for every beta.
    assert sp.simplify(sigmoid_expr(beta * z).subs(z, 0) - sp.Rational(1, 2)) == 0
    return s_max


def derive_zero_temperature_limits() -> dict[str, tuple[sp.Expr, sp.Expr]]:
    """Limits as ``beta -> infinity`` on each side of ``z = 0``.

    ``<g> -> step(z)``, ``<h> -> ReLU(z)``, ``F -> -ReLU(z)``, ``Var h -> 0``. Returns, for each
    quantity, the pair (limit for ``z > 0``, limit for ``z < 0``).
    """
    zp = sp.Symbol("z", positive=True)
    zn = sp.Symbol("z", negative=True)
    b = beta_pos
    p_of = {s: 1 / (1 + sp.exp(-b * s)) for s in (zp, zn)}
    out = {}
    for name, build, expected in (
        ("mean gate", lambda s: p_of[s], (1, 0)),
        ("mean activation", lambda s: s * p_of[s], (zp, 0)),
        ("free energy", lambda s: -sp.log(1 + sp.exp(b * s)) / b, (-zp, 0)),
        ("activation variance", lambda s: s**2 * p_of[s] * (1 - p_of[s]), (0, 0)),
    ):
        lim_pos = sp.limit(build(zp), b, sp.oo)
        lim_neg = sp.limit(build(zn), b, sp.oo)
        assert sp.simplify(lim_pos - expected[0]) == 0, (name, lim_pos)
        assert sp.simplify(lim_neg - expected[1]) == 0, (name, lim_neg)
        out[name] = (lim_pos, lim_neg)
    return out


def derive_sup_gap() -> tuple[sp.Expr, sp.Expr]:
    """``sup_z |<h>(z) - ReLU(z)| = W(1/e) / beta``, attained at ``|z| = (1 + W(1/e)) / beta``.

    The gap is even in ``z``: ``ReLU(z) - z sigmoid(beta z) = |z| sigmoid(-beta |z|)``. With
    ``t = beta |z|`` it is ``G(t)/beta``, ``G(t) = t / (1 + e^t)``. ``G'(t) = 0`` gives
    ``e^t (t - 1) = 1``, i.e. ``(t-1) e^{t-1} = 1/e``, so ``t* = 1 + W(1/e)`` (Lambert W,
    Corless et al. 1996) and ``G(t*) = t* - 1 = W(1/e)``. Returns ``(t*, G(t*))``.
    """
    t = sp.Symbol("t", positive=True)
    u = sp.Symbol("u", positive=True)
    b = beta_pos
    # The gap equals |z| sigmoid(-beta |z|) on both sides of zero.
    relu_gap_pos = u - u * sigmoid_expr(b * u)
    relu_gap_neg = 0 - (-u) * sigmoid_expr(-b * u)
    assert sp.simplify(relu_gap_pos - u * sigmoid_expr(-b * u)) == 0
    assert sp.simplify(relu_gap_neg - u * sigmoid_expr(-b * u)) == 0
    assert sp.simplify(relu_gap_pos.subs(u, t / b) * b - t / (1 + sp.exp(t))) == 0

    G = t / (1 + sp.exp(t))
    w = sp.LambertW(sp.exp(-1))
    t_star = 1 + w
    # Stationarity: the numerator of G' is 1 + e^t (1 - t). At t* it becomes 1 - e W e^W, which
    # vanishes by the defining identity of the Lambert function, W e^W = 1/e.
    W = sp.Symbol("W", positive=True)

    def at_t_star(expr):
        expr = sp.expand(expr.subs(t, t_star), power_exp=True).subs(w, W)
        return sp.simplify(expr.subs(sp.exp(W), sp.exp(-1) / W)).subs(W, w)

    assert at_t_star(sp.numer(sp.together(sp.diff(G, t)))) == 0
    G_star = at_t_star(G)
    assert sp.simplify(G_star - w) == 0
    # It is a maximum: G'' < 0 there (checked numerically to 30 digits), and the endpoints give 0.
    assert sp.N(sp.diff(G, t, 2).subs(t, t_star), 30) < 0
    assert sp.limit(G, t, 0) == 0 and sp.limit(G, t, sp.oo) == 0
    return t_star, w


# ---------------------------------------------------------------------------------------------
# Torch counterparts
# ---------------------------------------------------------------------------------------------

LAMBERT_W_INV_E = float(sp.N(sp.LambertW(sp.exp(-1)), 20))  # W(1/e) = 0.27846...


def _check_beta(beta) -> None:
    b = torch.as_tensor(beta)
    if not bool(torch.all(b > 0)) or not bool(torch.all(torch.isfinite(b))):
        raise ValueError(f"beta must be positive and finite, got {beta!r}")


def open_probability(z: torch.Tensor, beta) -> torch.Tensor:
    """``P(g = 1 | z) = sigmoid(beta z)``. ``torch.sigmoid`` saturates cleanly, so the result is
    finite for any finite ``beta z`` and for ``beta z = +-inf``."""
    _check_beta(beta)
    return torch.sigmoid(beta * z)


def mean_activation(z: torch.Tensor, beta) -> torch.Tensor:
    """``<h> = z sigmoid(beta z)``. Stable: ``|z| <= 1e3`` and ``beta <= 1e6`` stay finite."""
    _check_beta(beta)
    return z * torch.sigmoid(beta * z)


def activation_variance(z: torch.Tensor, beta) -> torch.Tensor:
    """``Var h = z^2 sigmoid(beta z) sigmoid(-beta z)``.

    ``sigmoid(-x)`` replaces ``1 - sigmoid(x)``, which cancels catastrophically for large ``x``;
    ``z`` is multiplied in twice rather than squared first, so float32 cannot overflow at
    ``|z| = 1e3`` even where the sigmoids are not yet tiny.
    """
    _check_beta(beta)
    bz = beta * z
    return (z * torch.sigmoid(bz)) * (z * torch.sigmoid(-bz))


def gate_entropy(z: torch.Tensor, beta) -> torch.Tensor:
    """Entropy in nats of the gate, ``S = softplus(x) - x sigmoid(x)`` with ``x = beta z``
    (equal to ``-p ln p - (1-p) ln(1-p)``, written so that it is finite for any ``x``)."""
    _check_beta(beta)
    x = beta * z
    return torch.nn.functional.softplus(-x.abs()) + x.abs() * torch.sigmoid(-x.abs())


def max_relu_gap(beta) -> float | torch.Tensor:
    """The theoretical ``sup_z |<h>(z) - ReLU(z)| = W(1/e) / beta`` (:func:`derive_sup_gap`)."""
    _check_beta(beta)
    return LAMBERT_W_INV_E / beta


def argmax_relu_gap(beta) -> float | torch.Tensor:
    """Where the gap is largest: ``|z*| = (1 + W(1/e)) / beta``."""
    _check_beta(beta)
    return (1.0 + LAMBERT_W_INV_E) / beta


def sample_activation(z: torch.Tensor, beta, n_samples: int, *, generator=None) -> torch.Tensor:
    """Draw ``n_samples`` stochastic activations ``h = g z`` per entry of ``z``; shape ``(n_samples, *z.shape)``."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    p = open_probability(z, beta).expand(n_samples, *z.shape)
    u = torch.rand(p.shape, generator=generator, dtype=p.dtype).to(p.device)
    return (u < p).to(z.dtype) * z


def stochastic_forward(
    weights: Sequence[torch.Tensor],
    x: torch.Tensor,
    beta: float,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
    return_gates: bool = False,
):
    """Ancestral sampling of the layered graphical model at inverse temperature ``beta``.

    For each of ``n_samples`` independent draws and each input: ``z^l = W^l h^{l-1}``,
    ``g^l_i ~ Bernoulli(sigmoid(beta z^l_i))``, ``h^l = g^l z^l`` for ``l < L``; the output is
    ``z^L``. Returns outputs shaped ``(n_samples, batch)`` (for ``n_L = 1``), and with
    ``return_gates`` also the sampled gates ``[(n_samples, batch, n_l)]``. Random numbers are
    drawn on the CPU from ``generator`` so the draw is the same on every device.
    """
    _check_beta(beta)
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    h = x.unsqueeze(0).expand(n_samples, *x.shape)
    sampled_gates = []
    for layer, w in enumerate(weights):
        z_l = h @ w.T
        if layer == len(weights) - 1:
            out = z_l[..., 0] if z_l.shape[-1] == 1 else z_l
            return (out, sampled_gates) if return_gates else out
        u = torch.rand(z_l.shape, generator=generator, dtype=z_l.dtype).to(z_l.device)
        gate = (u < torch.sigmoid(beta * z_l)).to(z_l.dtype)
        sampled_gates.append(gate)
        h = gate * z_l
    raise ValueError("weights must contain at least one matrix")


def one_hidden_layer_mean_output(
    weights: Sequence[torch.Tensor], x: torch.Tensor, beta: float
) -> torch.Tensor:
    """Exact ``E f`` of a stochastic net with ONE hidden layer: ``W^2 (z^1 sigmoid(beta z^1))``.

    With a single gated layer the output is linear in the gates, so its mean follows from
    :func:`mean_activation` alone. Deeper nets have no such closed form (the gates of layer
    ``l+1`` see the noise of layer ``l``), which the chapter measures instead.
    """
    if len(weights) != 2:
        raise ValueError(f"the closed form needs exactly one hidden layer, got {len(weights) - 1}")
    w1, w2 = weights
    out = mean_activation(x @ w1.T, beta) @ w2.T
    return out[:, 0] if out.shape[1] == 1 else out


def mean_and_stderr(samples: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample mean and its standard error ``s / sqrt(n)`` along ``dim``."""
    n = samples.shape[dim]
    if n < 2:
        raise ValueError("need at least two samples for a standard error")
    return samples.mean(dim), samples.std(dim, unbiased=True) / math.sqrt(n)


def variance_and_stderr(samples: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Unbiased sample variance and its large-sample standard error
    ``sqrt((m4 - s^4 (n-3)/(n-1)) / n)`` (valid for non-Gaussian samples; ``m4`` the 4th central moment)."""
    n = samples.shape[dim]
    if n < 4:
        raise ValueError("need at least four samples for the variance's standard error")
    centred = samples - samples.mean(dim, keepdim=True)
    var = centred.pow(2).sum(dim) / (n - 1)
    m4 = centred.pow(4).mean(dim)
    se = ((m4 - var**2 * (n - 3) / (n - 1)).clamp_min(0) / n).sqrt()
    return var, se


# ---------------------------------------------------------------------------------------------
# Experiments of Chapter 1 (small functions the chapter calls)
# ---------------------------------------------------------------------------------------------


def mc_gate_moments(
    z: torch.Tensor, beta: float, n_samples: int, *, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Monte-Carlo ``<h>`` and ``Var h`` at each ``z``, with their standard errors (CLT)."""
    h = sample_activation(z, beta, n_samples, generator=generator)
    mean, mean_se = mean_and_stderr(h)
    var, var_se = variance_and_stderr(h)
    return {"mean": mean, "mean_se": mean_se, "var": var, "var_se": var_se}


def gate_moment_stderr(
    z: torch.Tensor, beta: float, n_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard errors of the sample mean and sample variance of ``h = g z`` under the theory.

    ``g ~ Bernoulli(p)``, ``p = sigmoid(beta z)``, has central moments ``mu2 = z^2 p q`` and
    ``mu4 = z^4 p q (1 - 3 p q)`` (``q = 1 - p``), so ``SE(mean) = sqrt(mu2 / n)`` and
    ``SE(var) = sqrt((mu4 - mu2^2 (n-3)/(n-1)) / n)``. Testing a measurement against the prediction
    with these null-hypothesis errors stays valid in the tails, where a finite sample may hold no
    open gate at all and its own sample variance is zero.
    """
    _check_beta(beta)
    pq = torch.sigmoid(beta * z) * torch.sigmoid(-beta * z)
    mu2 = z * z * pq
    mu4 = mu2 * z * z * (1 - 3 * pq)
    n = n_samples
    return (mu2 / n).sqrt(), ((mu4 - mu2 * mu2 * (n - 3) / (n - 1)).clamp_min(0) / n).sqrt()


def grid_sup_relu_gap(
    beta: float, *, n_grid: int = 200_001, dtype=torch.float64
) -> tuple[float, float]:
    """Brute-force ``sup_z |<h>(z) - ReLU(z)|`` on a dense grid of ``|z| <= 20 / beta``.

    An independent numerical check of :func:`derive_sup_gap`; returns ``(sup, argmax |z|)``.
    """
    _check_beta(beta)
    zs = torch.linspace(-20.0 / beta, 20.0 / beta, n_grid, dtype=dtype)
    gap = (torch.relu(zs) - mean_activation(zs, beta)).abs()
    i = int(torch.argmax(gap))
    return float(gap[i]), float(zs[i].abs())


def mc_gap_at_argmax(
    beta: float, n_samples: int, *, generator: torch.Generator | None = None
) -> tuple[float, float]:
    """Monte-Carlo estimate of ``ReLU(z*) - <h>(z*)`` at ``z* = (1 + W(1/e))/beta``, with its standard error."""
    z_star = torch.tensor([argmax_relu_gap(beta)], dtype=torch.float64)
    h = sample_activation(z_star, beta, n_samples, generator=generator)[:, 0]
    mean, se = mean_and_stderr(h)
    return float(z_star[0] - mean), float(se)


def relative_mean_output_gap(
    weights: Sequence[torch.Tensor],
    x: torch.Tensor,
    beta: float,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """How far the stochastic net's mean output is from the deterministic ReLU net.

    ``D = mean_x (E f_beta(x) - f(x))^2 / mean_x f(x)^2``, estimated from ``n_samples`` ancestral
    samples per input. The Monte-Carlo noise ``se_x`` of each mean inflates the naive square by
    ``se_x^2``, which is subtracted; the returned standard error,
    ``sqrt(sum_x (4 d_x^2 se_x^2 + 2 se_x^4)) / (n mean f^2)``, is that of the Monte-Carlo noise.
    """
    from asbbook.nets import forward

    f_det = forward(weights, x)
    samples = stochastic_forward(weights, x, beta, n_samples, generator=generator)
    mean, se = mean_and_stderr(samples)
    d = mean - f_det
    norm = f_det.pow(2).mean()
    n = d.shape[0]
    estimate = (d.pow(2) - se.pow(2)).mean() / norm
    stderr = (4 * d.pow(2) * se.pow(2) + 2 * se.pow(4)).sum().sqrt() / (n * norm)
    return float(estimate), float(stderr)


def exact_relative_mean_output_gap(
    weights: Sequence[torch.Tensor], x: torch.Tensor, beta: float
) -> float:
    """``D`` of :func:`relative_mean_output_gap` in closed form for one hidden layer."""
    from asbbook.nets import forward

    f_det = forward(weights, x)
    d = one_hidden_layer_mean_output(weights, x, beta) - f_det
    return float(d.pow(2).mean() / f_det.pow(2).mean())
