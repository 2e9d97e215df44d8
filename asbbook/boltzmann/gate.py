"""One Boltzmann gate: its sympy derivations and their torch counterparts (book, Chapter 1).

A gate ``g in {0, 1}`` in front of a pre-activation ``z`` has energy ``E(g; z) = -g z``. At inverse
temperature ``beta`` it is Boltzmann distributed,

    P(g | z) = exp(beta g z) / Z,   Z = 1 + exp(beta z),   F = -(1/beta) ln Z,

so ``P(g = 1 | z) = sigmoid(beta z)``, ``<g> = -dF/dz`` and the stochastic activation ``h = g z`` has
``<h> = z sigmoid(beta z)`` (SiLU/Swish at ``beta = 1``, Elfwing et al. 2018; the expected output
of a stochastic 0/1 gate, Hendrycks & Gimpel 2016) and
``Var h = z^2 sigmoid(beta z) (1 - sigmoid(beta z))``. As ``beta -> infinity`` the gate becomes the
ReLU step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import numpy as np
import sympy as sp
import torch

from asbbook import stats, validation
from asbbook.symbolic import DerivationResult

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
class GateDerivation(DerivationResult):
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


@dataclass(frozen=True)
class EntropyMaximum(DerivationResult):
    """Where the gate entropy peaks (:func:`derive_entropy_maximum`)."""

    open_probability: sp.Expr  # p* = 1/2
    pre_activation: sp.Expr  # z* = 0, for every beta
    entropy: sp.Expr  # S(p*) = ln 2 nats


def derive_entropy_maximum() -> EntropyMaximum:
    """The gate entropy ``S(p) = -p ln p - (1-p) ln(1-p)`` peaks at ``p = 1/2`` (``z = 0``),
    where ``S = ln 2``.

    Equal-probability pathways at ``z = 0`` are the single-gate face of the book's "adaptive
    symmetry".
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
    return EntropyMaximum(sp.Rational(1, 2), sp.Integer(0), s_max)


@dataclass(frozen=True)
class ZeroTemperatureLimits(DerivationResult):
    """Each quantity's limit ``beta -> infinity`` as a pair ``(z > 0, z < 0)``."""

    mean_gate: tuple[sp.Expr, sp.Expr]  # the step 1[z > 0]
    mean_activation: tuple[sp.Expr, sp.Expr]  # ReLU(z)
    free_energy: tuple[sp.Expr, sp.Expr]  # -ReLU(z)
    activation_variance: tuple[sp.Expr, sp.Expr]  # 0

    def items(self):
        """``(name, (limit z > 0, limit z < 0))`` pairs, for tables."""
        return [
            (name.replace("_", " "), getattr(self, name)) for name in (f.name for f in fields(self))
        ]


def derive_zero_temperature_limits() -> ZeroTemperatureLimits:
    """Limits as ``beta -> infinity`` on each side of ``z = 0``.

    ``<g> -> step(z)``, ``<h> -> ReLU(z)``, ``F -> -ReLU(z)``, ``Var h -> 0``.
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
        out[name.replace(" ", "_")] = (lim_pos, lim_neg)
    return ZeroTemperatureLimits(**out)


@dataclass(frozen=True)
class SupGap(DerivationResult):
    """The largest gap to ReLU (:func:`derive_sup_gap`); unpacks as ``t_star, gap = ...``."""

    t_star: sp.Expr  # beta |z*| = 1 + W(1/e)
    gap: sp.Expr  # beta sup_z |<h> - ReLU| = W(1/e)
    closed_probability: sp.Expr  # P(g = 0 | z*) = W / (1 + W), the same for every beta

    def __iter__(self):
        return iter((self.t_star, self.gap))


def derive_sup_gap() -> SupGap:
    """``sup_z |<h>(z) - ReLU(z)| = W(1/e) / beta``, attained at ``|z| = (1 + W(1/e)) / beta``.

    The gap is even in ``z``: ``ReLU(z) - z sigmoid(beta z) = |z| sigmoid(-beta |z|)``. With
    ``t = beta |z|`` it is ``G(t)/beta``, ``G(t) = t / (1 + e^t)``. ``G'(t) = 0`` gives
    ``e^t (t - 1) = 1``, i.e. ``(t-1) e^{t-1} = 1/e``, so ``t* = 1 + W(1/e)`` (Lambert W,
    Corless et al. 1996) and ``G(t*) = t* - 1 = W(1/e)``. At ``z*`` the gate is closed with
    probability ``sigmoid(-t*) = G(t*) / t* = W / (1 + W)``, whatever ``beta``: the Monte-Carlo
    gap at ``z*`` is ``z*`` times a binomial fraction.
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
    closed = sigmoid_expr(-t_star)
    assert sp.simplify(closed - G.subs(t, t_star) / t_star) == 0
    assert sp.simplify(at_t_star(G / t) - w / (1 + w)) == 0
    return SupGap(t_star, w, w / (1 + w))


# ---------------------------------------------------------------------------------------------
# Argument checks (the rules of asbbook.validation, applied to this chapter's arguments)
# ---------------------------------------------------------------------------------------------

LAMBERT_W_INV_E = float(sp.N(sp.LambertW(sp.exp(-1)), 20))  # W(1/e) = 0.27846...
SAMPLING_TEMPORARIES = 4  # tensors of the sampled shape alive at once: uniforms, p, gates, h


def check_beta(value, name: str = "beta"):
    """A positive finite inverse temperature: a real number, or a float tensor/array of them."""
    if isinstance(value, torch.Tensor | np.ndarray):
        value = validation.as_float_tensor(name, value)
        if not bool(torch.all(value > 0)):
            raise ValueError(f"{name} must be positive")
        return value
    return validation.check_real(name, value, positive=True)


def check_pre_activations(value, name: str = "z") -> torch.Tensor:
    """Pre-activations as a real float tensor: numpy arrays and lists of floats are accepted;
    integer, bool, complex, NaN and inf are refused by name."""
    return validation.as_float_tensor(name, value)


def check_n_samples(n_samples, *, minimum: int = 1) -> int:
    """A count of Monte-Carlo draws: an integer ``>= minimum`` (never a float or a bool)."""
    return validation.check_int("n_samples", n_samples, minimum=minimum)


def _finite(name: str, out, inputs: str):
    """Refuse a result that overflowed its dtype instead of returning inf or NaN silently."""
    values = out if isinstance(out, torch.Tensor) else torch.as_tensor(out)
    if values.numel() and not bool(torch.isfinite(values).all()):
        raise ValueError(f"{inputs}: the {name} overflows the float range for these values")
    return out


# ---------------------------------------------------------------------------------------------
# Torch counterparts of the closed forms
# ---------------------------------------------------------------------------------------------


def open_probability(z, beta) -> torch.Tensor:
    """``P(g = 1 | z) = sigmoid(beta z)``. ``torch.sigmoid`` saturates cleanly, so the result is
    finite for any finite ``beta z`` and for ``beta z = +-inf``."""
    z, beta = check_pre_activations(z), check_beta(beta)
    return torch.sigmoid(beta * z)


def mean_activation(z, beta) -> torch.Tensor:
    """``<h> = z sigmoid(beta z)``: SiLU at ``beta = 1`` (Elfwing et al. 2018), the expected output
    of a stochastic 0/1 gate (Hendrycks & Gimpel 2016)."""
    z, beta = check_pre_activations(z), check_beta(beta)
    return z * torch.sigmoid(beta * z)


def activation_variance(z, beta) -> torch.Tensor:
    """``Var h = z^2 sigmoid(beta z) sigmoid(-beta z)``.

    ``sigmoid(-x)`` replaces ``1 - sigmoid(x)``, which cancels catastrophically for large ``x``;
    ``z`` is multiplied in twice rather than squared first, so float32 cannot overflow at
    ``|z| = 1e3`` even where the sigmoids are not yet tiny. A variance beyond the dtype's range is
    refused by name.
    """
    z, beta = check_pre_activations(z), check_beta(beta)
    bz = beta * z
    return _finite("activation variance", (z * torch.sigmoid(bz)) * (z * torch.sigmoid(-bz)), "z")


def gate_entropy(z, beta) -> torch.Tensor:
    """Entropy in nats of the gate, ``S = softplus(-|x|) + |x| sigmoid(-|x|)`` with ``x = beta z``
    (equal to ``-p ln p - (1-p) ln(1-p)``, written so that it is finite for any ``x``; the second
    term is 0 where ``|x|`` overflows to inf)."""
    z, beta = check_pre_activations(z), check_beta(beta)
    x = (beta * z).abs()
    tail = torch.where(torch.isinf(x), torch.zeros_like(x), x * torch.sigmoid(-x))
    return torch.nn.functional.softplus(-x) + tail


def max_relu_gap(beta) -> float | torch.Tensor:
    """The theoretical ``sup_z |<h>(z) - ReLU(z)| = W(1/e) / beta`` (:func:`derive_sup_gap`)."""
    return _finite("gap", LAMBERT_W_INV_E / check_beta(beta), "beta")


def argmax_relu_gap(beta) -> float | torch.Tensor:
    """Where the gap is largest: ``|z*| = (1 + W(1/e)) / beta``."""
    return _finite("argmax", (1.0 + LAMBERT_W_INV_E) / check_beta(beta), "beta")


def closed_probability_at_argmax() -> float:
    """``P(g = 0 | z*) = W(1/e) / (1 + W(1/e)) = 0.2178...``, the same for every ``beta``."""
    return LAMBERT_W_INV_E / (1.0 + LAMBERT_W_INV_E)


def symmetric_grid(z_max: float, n_z: int, *, dtype=torch.float64) -> torch.Tensor:
    """``n_z`` evenly spaced pre-activations on ``[-z_max, z_max]``, exactly odd (``z_{-i} =
    -z_i``), so an odd ``n_z`` puts its middle point exactly at ``z = 0``."""
    z_max = validation.check_real("z_max", z_max, positive=True)
    n_z = validation.check_int("n_z", n_z, minimum=2)
    validation.check_float_dtype(dtype)
    validation.check_memory("n_z", 8.0 * n_z)
    grid = torch.linspace(-z_max, z_max, n_z, dtype=dtype)
    return (grid - grid.flip(0)) / 2


def grid_sup_relu_gap(
    beta, *, n_grid: int = 200_001, dtype: torch.dtype = torch.float64
) -> tuple[float, float]:
    """Brute-force ``sup_z |<h>(z) - ReLU(z)|`` on a dense grid of ``|z| <= 20 / beta``.

    An independent numerical check of :func:`derive_sup_gap`; returns ``(sup, argmax |z|)``.
    """
    beta = check_beta(beta)
    n_grid = validation.check_int("n_grid", n_grid, minimum=3)
    validation.check_float_dtype(dtype)
    validation.check_memory("n_grid", 4.0 * validation.element_bytes(dtype) * n_grid)
    zs = torch.linspace(-20.0 / beta, 20.0 / beta, n_grid, dtype=dtype)
    _finite("grid", zs, "beta")
    gap = (torch.relu(zs) - mean_activation(zs, beta)).abs()
    i = int(torch.argmax(gap))
    return float(_finite("gap", gap[i], "beta")), float(zs[i].abs())


# ---------------------------------------------------------------------------------------------
# Sampling single gates
# ---------------------------------------------------------------------------------------------


def sample_gates(z, beta, n_samples: int, *, generator=None) -> torch.Tensor:
    """``n_samples`` independent gates ``g ~ Bernoulli(sigmoid(beta z))`` per entry of ``z``, as
    0/1 floats of shape ``(n_samples, *z.shape)``. Uniforms are drawn on the CPU from
    ``generator`` (one stream, so a seed gives the same gates on every device)."""
    z, beta = check_pre_activations(z), check_beta(beta)
    n_samples = check_n_samples(n_samples)
    validation.check_memory(
        "n_samples",
        SAMPLING_TEMPORARIES * validation.element_bytes(z.dtype) * n_samples * max(z.numel(), 1),
    )
    p = torch.sigmoid(beta * z).expand(n_samples, *z.shape)
    u = torch.rand(p.shape, generator=generator, dtype=p.dtype).to(p.device)
    return (u < p).to(z.dtype)


def sample_activation(z, beta, n_samples: int, *, generator=None) -> torch.Tensor:
    """``n_samples`` stochastic activations ``h = g z`` per entry of ``z``; shape
    ``(n_samples, *z.shape)`` (the gates of :func:`sample_gates`)."""
    z = check_pre_activations(z)
    return sample_gates(z, beta, n_samples, generator=generator) * z


@dataclass(frozen=True)
class GateMoments:
    """Monte-Carlo moments of ``h = g z`` on a grid (:func:`sample_gate_moments`).

    ``h / z`` is the gate, so both moments are functions of the open-gate count ``k`` at each
    ``z``: ``mean = z k / n`` and ``variance = z^2 k (n - k) / (n (n - 1))``; the count is the
    sufficient statistic that the exact binomial tests use.
    """

    z: torch.Tensor  # the grid
    n_samples: int  # gates drawn per grid point
    open_count: torch.Tensor  # k: open gates per grid point, integer-valued
    mean: stats.Estimate  # <h> with its standard error
    variance: stats.Estimate  # Var h with its standard error


def sample_gate_moments(z, beta, n_samples: int, *, generator=None) -> GateMoments:
    """Draw ``n_samples`` gates at each ``z`` and estimate ``<h>`` and ``Var h`` (with
    :func:`asbbook.stats.mean_with_stderr` and :func:`asbbook.stats.variance_with_stderr`)."""
    z = check_pre_activations(z, "z")
    n_samples = check_n_samples(n_samples, minimum=4)
    gates = sample_gates(z, beta, n_samples, generator=generator)
    h = gates * z
    count = gates.sum(0).round().to(torch.int64)
    return GateMoments(
        z, n_samples, count, stats.mean_with_stderr(h), stats.variance_with_stderr(h)
    )


def mc_gate_moments(z, beta, n_samples: int, *, generator=None) -> dict[str, torch.Tensor]:
    """Deprecated: use :func:`sample_gate_moments` (same draws, returns estimates)."""
    warnings.warn(
        "mc_gate_moments is deprecated; use sample_gate_moments", DeprecationWarning, stacklevel=2
    )
    m = sample_gate_moments(z, beta, n_samples, generator=generator)
    return {"mean": m.mean.value, "mean_se": m.mean.stderr, "var": m.variance.value,
            "var_se": m.variance.stderr}  # fmt: skip


def gate_moment_stderr(z, beta, n_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard errors of the sample mean and sample variance of ``h = g z`` under the theory.

    ``g ~ Bernoulli(p)``, ``p = sigmoid(beta z)``, has central moments ``mu2 = z^2 p q`` and
    ``mu4 = z^4 p q (1 - 3 p q)`` (``q = 1 - p``), so ``SE(mean) = sqrt(mu2 / n)`` and
    ``SE(var) = sqrt((mu4 - mu2^2 (n-3)/(n-1)) / n)``.
    """
    z, beta = check_pre_activations(z), check_beta(beta)
    n = check_n_samples(n_samples, minimum=4)
    pq = torch.sigmoid(beta * z) * torch.sigmoid(-beta * z)
    mu2 = _finite("the variance", z * z * pq, "z")
    mu4 = _finite("the fourth moment", mu2 * z * z * (1 - 3 * pq), "z")
    return (mu2 / n).sqrt(), ((mu4 - mu2 * mu2 * (n - 3) / (n - 1)).clamp_min(0) / n).sqrt()


@dataclass(frozen=True)
class GapSample:
    """Monte-Carlo gap ``ReLU(z*) - <h>(z*)`` at the predicted maximiser (:func:`sample_gap_at_argmax`)."""

    z_star: float  # (1 + W(1/e)) / beta
    n_samples: int
    closed_count: int  # gates closed among the n_samples draws
    gap: stats.Estimate  # z* closed_count / n, with its standard error


def sample_gap_at_argmax(beta, n_samples: int, *, generator=None) -> GapSample:
    """Draw ``n_samples`` gates at ``z* = (1 + W(1/e))/beta``; the gap is ``z*`` times the
    closed fraction, whose law is ``Binomial(n, W/(1+W))`` under the theory."""
    beta = validation.check_real("beta", beta, positive=True)
    n_samples = check_n_samples(n_samples, minimum=2)
    z_star = torch.tensor([argmax_relu_gap(beta)], dtype=torch.float64)
    h = sample_activation(z_star, beta, n_samples, generator=generator)[:, 0]
    mean = stats.mean_with_stderr(h)
    closed = int(n_samples - int((h > 0).sum()))
    gap = stats.Estimate(float(z_star[0] - mean.value), float(mean.stderr))
    return GapSample(float(z_star[0]), n_samples, closed, gap)


def mc_gap_at_argmax(beta, n_samples: int, *, generator=None) -> stats.Estimate:
    """Monte-Carlo ``ReLU(z*) - <h>(z*)`` at ``z* = (1 + W(1/e))/beta`` with its standard error
    (the ``gap`` of :func:`sample_gap_at_argmax`)."""
    return sample_gap_at_argmax(beta, n_samples, generator=generator).gap
