"""Measurements of chapter 4: layer averages of sampled networks and their statistics.

Every function accepts leading ensemble dimensions, refuses integer, bool and complex tensors and
checks sizes against a memory estimate (``asbbook.validation.check_memory``) before drawing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats as sps

from asbbook import data, ensemble, nets, validation
from asbbook.order import layer_average_relu_sq, layer_second_moments
from asbbook.stats import Estimate, cv_with_stderr, weighted_least_squares

WEIGHT_LAWS = ("gaussian", "uniform", "rademacher")
FACTOR_CHUNK = 500  # members per seeded chunk of sample_log_factors (fixed: results do not move)


def _tensor(name: str, value, min_ndim: int = 1) -> torch.Tensor:
    return validation.as_float_tensor(name, value, min_ndim=min_ndim)


def layer_average_sq(z) -> torch.Tensor:
    """``(1/n) sum_i z_i^2`` over the last dimension (a linear read-out): ``(..., n) -> (...)``."""
    return _tensor("z", z).square().mean(dim=-1)


def layer_cv(z, dim: int = 0) -> Estimate:
    """Coefficient of variation of ``r = layer_average_relu_sq(z)`` over the ensemble dimension
    ``dim`` of ``z`` (``(K, ..., n)``), with its delta-method standard error. For the first layer
    at a fixed input the prediction ``sqrt(5/n)`` is exact at every width."""
    z = _tensor("z", z, min_ndim=2)
    dim = validation.check_int("dim", dim, minimum=-z.ndim, maximum=z.ndim - 1) % z.ndim
    if dim == z.ndim - 1:
        raise ValueError("dim cannot be the unit (last) dimension")
    r = layer_average_relu_sq(z)
    if bool((r.std(dim=dim) == 0).any()):
        # a constant (or all-dead) ensemble has no coefficient of variation to estimate
        raise ValueError("z: the layer averages do not vary across the ensemble dimension")
    return cv_with_stderr(r, dim=dim)


def log_norm_profile(zs: Sequence, x, *, last_linear: bool = False) -> torch.Tensor:
    """``ln(r^l / r^0)`` for ``l = 1..L`` stacked last, ``(..., L)``, from pre-activations
    ``zs = [z^1, .., z^L]`` shaped ``(..., n_l)``: ``r^l = (1/n_l) sum_i relu(z^l_i)^2`` (with
    ``last_linear`` the last layer is ``(1/n_L) sum_i (z^L_i)^2``) and ``r^0 = mean_j x_j^2``,
    ``x`` shaped ``(..., n_0)``. A dead layer gives ``-inf``."""
    if isinstance(zs, torch.Tensor) or len(zs) == 0:
        raise ValueError("zs must be a non-empty list of pre-activation tensors [z^1, .., z^L]")
    x = _tensor("x", x)
    log_r0 = torch.log(x.square().mean(dim=-1))
    out = []
    for layer, z in enumerate(zs):
        z = _tensor(f"zs[{layer}]", z)
        linear = last_linear and layer == len(zs) - 1
        r = layer_average_sq(z) if linear else layer_average_relu_sq(z)
        out.append(torch.log(r) - log_r0.to(device=r.device, dtype=r.dtype))
    return torch.stack(torch.broadcast_tensors(*out), dim=-1)


def log_norm_ratio(zs: Sequence, x, *, last_linear: bool = False) -> torch.Tensor:
    """``ln(r^L / r^0)``: the last column of :func:`log_norm_profile`."""
    return log_norm_profile(zs, x, last_linear=last_linear)[..., -1]


def log_factors(profile) -> torch.Tensor:
    """The layer log-factors ``ln(r^l / r^{l-1})``, ``l = 1..L``, from a profile
    ``ln(r^l / r^0)`` shaped ``(..., L)``: its first differences (``ln(r^0/r^0) = 0``)."""
    profile = _tensor("profile", profile, min_ndim=1)
    return torch.diff(profile, dim=-1, prepend=torch.zeros_like(profile[..., :1]))


def alive(values) -> torch.Tensor:
    """The rows (networks) whose values are all finite: a dead layer makes ``ln r = -inf``."""
    values = validation.as_float_tensor("values", values, min_ndim=1, allow_nonfinite=True)
    finite = torch.isfinite(values)
    return finite if values.ndim == 1 else finite.all(dim=-1)


def _check_reduced(value, k: int, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.ndim < 1 or value.shape[0] != k:
        raise ValueError(f"reduce must return tensors with leading dimension {k} ({name})")
    return value


def sample_reduced(
    X,
    widths: Sequence[int],
    n_members: int,
    reduce: Callable,
    *,
    sigma2: float = 2.0,
    seed: int = 0,
    max_weights: int = 20_000_000,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
):
    """``reduce(zs)`` of an ``n_members`` Gaussian ensemble at initialisation, drawn in chunks.

    Members are replicates ``0 .. K-1`` of ``widths`` at variance ``sigma2``, each with its own
    seed (:func:`asbbook.ensemble.member_weights`); a chunk of at most ``max_weights`` weights
    goes through :func:`asbbook.ensemble.sample_ensemble` on ``X`` ``(P, n_0)`` and only
    ``reduce(zs)`` (a tensor or a dict of tensors with leading dimension ``k``) is kept. The
    result does not depend on ``max_weights``, and the first ``K'`` rows are the ``K'`` run."""
    widths = validation.check_widths(widths)
    n_members = validation.check_int("n_members", n_members, minimum=1)
    max_weights = validation.check_int("max_weights", max_weights, minimum=1)
    validation.check_float_dtype(dtype)
    device = validation.resolve_device(device)
    X = validation.check_inputs(X, widths[0])
    if not callable(reduce):
        raise TypeError("reduce must be callable")
    chunk = max(1, max_weights // nets.parameter_count(widths))
    nbytes = validation.element_bytes(dtype)
    n_weights = nets.parameter_count(widths)
    validation.check_memory("widths", nbytes * min(chunk, n_members) * n_weights)
    # the kept reductions are at most every pre-activation of every member
    validation.check_memory("n_members", nbytes * n_members * X.shape[0] * sum(widths[1:]))
    specs = ensemble.member_specs(widths, n_members, sigma2)
    parts = []
    for start in range(0, len(specs), chunk):
        members = specs[start : start + chunk]
        zs = ensemble.sample_ensemble(X, members=members, seed=seed, dtype=dtype, device=device)
        value = reduce(zs)
        if isinstance(value, dict):
            value = {key: _check_reduced(v, len(members), key) for key, v in value.items()}
        else:
            value = _check_reduced(value, len(members), "tensor")
        parts.append(value)
    if isinstance(parts[0], dict):
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    return torch.cat(parts)


def _draw_weights(law: str, shape, generator: torch.Generator) -> torch.Tensor:
    """Unit-variance i.i.d. weights: Gaussian, uniform on ``[-sqrt 3, sqrt 3]`` or +-1."""
    if law == "gaussian":
        return torch.randn(shape, generator=generator, dtype=torch.float64)
    if law == "uniform":
        return (2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1) * math.sqrt(3)
    signs = torch.randint(0, 2, shape, generator=generator, dtype=torch.int8)
    return signs.to(torch.float64) * 2 - 1


def sample_log_factors(
    x,
    widths: Sequence[int],
    n_members: int,
    *,
    weight_law: str = "gaussian",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Layer log-factors ``ln(r^l / r^{l-1})``, shape ``(n_members, L)``, of bias-free ReLU nets
    with i.i.d. weights of variance ``2 / n_{l-1}`` drawn from ``weight_law`` (``gaussian``,
    ``uniform`` or ``rademacher``), at the fixed input ``x`` ``(n_0,)``.

    Members are drawn in chunks of :data:`FACTOR_CHUNK`, chunk ``c`` from the generator
    ``data.torch_generator(seed, experiment="log_factors", weight_law=..., widths=..., chunk=c)``,
    so the first ``K'`` rows of a run are the ``K'`` run."""
    widths = validation.check_widths(widths)
    law = validation.check_choice("weight_law", weight_law, WEIGHT_LAWS)
    n_members = validation.check_int("n_members", n_members, minimum=1)
    validation.check_float_dtype(dtype)
    device = validation.resolve_device(device)
    x = validation.check_inputs(_tensor("x", x).reshape(1, -1), widths[0], name="x")
    chunk_bytes = 8.0 * FACTOR_CHUNK * (nets.parameter_count(widths) + sum(widths))
    validation.check_memory("widths", 3 * chunk_bytes)
    validation.check_memory("n_members", 8.0 * n_members * (len(widths) - 1))
    out = []
    for c, start in enumerate(range(0, n_members, FACTOR_CHUNK)):
        k = min(FACTOR_CHUNK, n_members - start)
        gen = data.torch_generator(
            seed, experiment="log_factors", weight_law=law, widths=list(widths), chunk=c
        )
        h = x.to(dtype=dtype, device=device).expand(k, -1)
        log_r = torch.log(h.square().mean(dim=-1))
        rows = []
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            w = _draw_weights(law, (FACTOR_CHUNK, n_out, n_in), gen)[:k]
            w = (w * math.sqrt(2.0 / n_in)).to(dtype=dtype, device=device)
            h = torch.relu((w @ h.unsqueeze(-1)).squeeze(-1))
            log_r_next = torch.log(h.square().mean(dim=-1))
            rows.append(log_r_next - log_r)
            log_r = log_r_next
        out.append(torch.stack(rows, dim=-1).cpu())
    return torch.cat(out)


# --------------------------------------------------------------------------------------------
# Statistics of the samples
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLawFit:
    """``y = prefactor * x^slope`` fitted by weighted least squares on ``(ln x, ln y)``."""

    slope: float
    slope_se: float
    slope_ci: tuple[float, float]
    prefactor: float
    log_prefactor_se: float
    prefactor_ci: tuple[float, float]
    confidence: float
    chi2: float
    dof: int

    def __call__(self, x):
        return self.prefactor * np.asarray(x, dtype=np.float64) ** self.slope


def loglog_fit(x, y, yerr, *, confidence: float = 0.95) -> PowerLawFit:
    """Fit ``ln y = ln a + b ln x`` with errors ``yerr / y`` (delta method) by
    :func:`asbbook.stats.weighted_least_squares` (the errors are taken as known: no Birge
    inflation), with normal-theory intervals at ``confidence``."""
    x, y, yerr = (np.asarray(v, dtype=np.float64).ravel() for v in (x, y, yerr))
    if not x.size == y.size == yerr.size:
        raise ValueError("x, y and yerr must have the same length")
    for name, v in (("x", x), ("y", y), ("yerr", yerr)):
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"{name} must be finite and positive")
    confidence = validation.check_real("confidence", confidence, positive=True)
    if not confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    design = np.column_stack([np.ones_like(x), np.log(x)])
    fit = weighted_least_squares(design, np.log(y), yerr / y, birge=False)
    (log_a, b), (se_a, se_b) = fit.coefficients, fit.stderr
    zq = float(sps.norm.ppf(0.5 + confidence / 2))
    return PowerLawFit(
        slope=float(b),
        slope_se=float(se_b),
        slope_ci=(float(b - zq * se_b), float(b + zq * se_b)),
        prefactor=float(np.exp(log_a)),
        log_prefactor_se=float(se_a),
        prefactor_ci=(float(np.exp(log_a - zq * se_a)), float(np.exp(log_a + zq * se_a))),
        confidence=confidence,
        chi2=fit.chi2,
        dof=fit.dof,
    )


def shape_with_covariance(samples) -> tuple[np.ndarray, np.ndarray]:
    """Sample skewness ``g1 = m3 / m2^(3/2)`` and excess kurtosis ``g2 = m4 / m2^2 - 3`` of
    1-d ``samples`` and their joint covariance by the delta method on the sample means of
    ``(d, d^2, d^3, d^4)``, ``d = x - mean`` (consistent for any law with a finite eighth
    moment; no Gaussian assumption). Returns ``(array([g1, g2]), covariance 2 x 2)``."""
    s = validation.as_float_tensor("samples", samples, ndim=1).to(torch.float64)
    k = s.numel()
    if k < 8:
        raise ValueError(f"samples need at least 8 entries, got {k}")
    d = s - s.mean()
    powers = torch.stack([d, d**2, d**3, d**4], dim=-1)
    moments = powers.mean(dim=0).clone().requires_grad_(True)

    def shape(m):
        m1, m2, m3, m4 = m
        c2 = m2 - m1**2
        c3 = m3 - 3 * m1 * m2 + 2 * m1**3
        c4 = m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4
        return torch.stack([c3 / c2**1.5, c4 / c2**2 - 3])

    jac = torch.autograd.functional.jacobian(shape, moments.detach())
    cov_m = torch.cov(powers.T) / k
    cov = (jac @ cov_m @ jac.T).numpy()
    return shape(moments.detach()).numpy(), (cov + cov.T) / 2


def factor_correlations(factors) -> tuple[np.ndarray, int]:
    """Sample correlations ``r_{lm}`` (``l < m``) between the columns of ``factors``
    ``(K, L)``, flattened, and ``K``. Under independence of the columns,
    ``sqrt(K - 1) r_{lm}`` are asymptotically independent standard normals, whatever the
    marginals (their covariance ``E[X_l^2 X_m^2] = 1`` for standardised independent columns)."""
    f = np.asarray(validation.as_float_tensor("factors", factors, ndim=2), dtype=np.float64)
    if f.shape[1] < 2 or f.shape[0] < 4:
        raise ValueError(f"factors must be (K >= 4, L >= 2), got {f.shape}")
    c = np.corrcoef(f.T)
    return c[np.triu_indices(f.shape[1], k=1)], f.shape[0]


# --------------------------------------------------------------------------------------------
# Two inputs: the correlation map
# --------------------------------------------------------------------------------------------


def input_pair(n_0: int, rho0: float, *, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """Two inputs ``(2, n_0)`` with mean square 1 and cosine exactly ``rho0``
    (Gram-Schmidt on two Gaussian vectors drawn from ``data.torch_generator(seed, ...)``)."""
    n_0 = validation.check_int("n_0", n_0, minimum=2)
    validation.check_memory("n_0", 8.0 * 4 * n_0)
    rho0 = validation.check_real("rho0", rho0)
    if not -1 <= rho0 <= 1:
        raise ValueError(f"rho0 must lie in [-1, 1], got {rho0}")
    gen = data.torch_generator(seed, experiment="input_pair", n_0=n_0)
    a, b = torch.randn(2, n_0, generator=gen, dtype=torch.float64)
    a = a / a.norm()
    b = b - (b @ a) * a
    b = b / b.norm()
    pair = torch.stack([a, rho0 * a + math.sqrt(1 - rho0**2) * b]) * math.sqrt(n_0)
    return pair.to(dtype)


def pair_grams(zs: Sequence, X) -> torch.Tensor:
    """Per network, the normalised Gram entries ``(q_aa, q_bb, q_ab)`` of ``h^l`` for
    ``l = 0..L``: ``q^l_ab = h^l_a . h^l_b / n_l`` with ``h^0 = X`` ``(2, n_0)`` and
    ``h^l = relu(z^l)``; ``zs`` shaped ``(K, 2, n_l)``. Returns ``(K, L + 1, 3)``."""
    X = validation.check_inputs(X)
    if X.shape[0] != 2:
        raise ValueError(f"X must hold two inputs (2, n_0), got {tuple(X.shape)}")
    k = _tensor("zs[0]", zs[0], min_ndim=3).shape[0]
    hs = [X.expand(k, -1, -1).to(zs[0].dtype)] + [torch.relu(_tensor("zs", z)) for z in zs]
    grams = []
    for h in hs:
        n = h.shape[-1]
        a, b = h[:, 0], h[:, 1]
        grams.append(torch.stack([(a * a).sum(-1), (b * b).sum(-1), (a * b).sum(-1)], -1) / n)
    return torch.stack(grams, dim=1)


def pair_cosines(grams) -> torch.Tensor:
    """Single-network cosines ``rho^l = q_ab / sqrt(q_aa q_bb)`` from :func:`pair_grams`."""
    g = _tensor("grams", grams, min_ndim=2)
    return g[..., 2] / torch.sqrt(g[..., 0] * g[..., 1])


def kernel_residuals(grams) -> torch.Tensor:
    """``q^l_ab - sqrt(q^{l-1}_aa q^{l-1}_bb) f(rho^{l-1})`` for ``l = 1..L``, ``(K, L)``.

    Given layer ``l - 1``, the pre-activations of a Gaussian network are jointly Gaussian with
    covariance ``2 q^{l-1}``, so by the arc-cosine kernel (Cho & Saul 2009) the residual has
    conditional mean exactly 0 at every width: a single-network, finite-width statement."""
    g = _tensor("grams", grams, min_ndim=3)
    scale = torch.sqrt(g[:, :-1, 0] * g[:, :-1, 1])
    # a dead layer (scale 0) passes zeros on, and its residual is exactly 0
    rho = torch.where(scale > 0, g[:, :-1, 2] / torch.where(scale > 0, scale, 1.0), 0.0)
    rho = torch.clamp(rho, -1.0, 1.0)
    f = (torch.sqrt(1 - rho**2) + (math.pi - torch.arccos(rho)) * rho) / math.pi
    return g[:, 1:, 2] - scale * f


def micro_macro(zs: Sequence) -> dict[str, torch.Tensor]:
    """Per network and layer: one unit's ``(z^l_1)^2`` (micro, first pattern) and the layer
    average ``q^l = mean over units of (z^l)^2`` (macro); each ``(K, L)``."""
    return {
        "micro": torch.stack([z[:, 0, 0].square() for z in zs], dim=-1),
        "macro": layer_second_moments(zs),
    }
