"""Networks of Boltzmann gates: ancestral sampling and the mean output gap (book, Chapter 1).

Stacking the gates of :mod:`asbbook.boltzmann.gate` layer by layer gives a directed graphical
model ``P(g^1..g^{L-1} | x) = prod_l prod_i Bernoulli(g^l_i; sigmoid(beta z^l_i))`` with
``z^l = W^l h^{l-1}``, ``h^l = g^l z^l`` (Koller & Friedman 2009 for directed graphical models),
whose zero-temperature limit is the deterministic ReLU network (the book's reading of the
"stochastic definition of DNNs as a multilayer probabilistic graphical model", Li 2022).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch

from asbbook import nets, stats, validation
from asbbook.boltzmann.gate import (
    SAMPLING_TEMPORARIES,
    check_beta,
    check_n_samples,
    mean_activation,
)


def _check_network(weights, X):
    """Validate a single network ``W^1..W^L`` (matrices; numpy arrays are converted) and inputs
    ``X`` of shape ``(P, n_0)``; returns ``(widths, weights, X)``."""
    if isinstance(weights, Sequence) and not isinstance(weights, str | bytes):
        weights = [validation.as_float_tensor(f"weights[{k}]", w) for k, w in enumerate(weights)]
    widths = validation.check_weights(weights, ensemble=False)
    X = validation.check_inputs(X, widths[0])
    dtypes = {w.dtype for w in weights} | {X.dtype}
    devices = {w.device for w in weights} | {X.device}
    if len(dtypes) > 1 or len(devices) > 1:
        raise TypeError(f"weights and X must share one dtype and device, got {dtypes}, {devices}")
    return widths, weights, X


def _finite_output(out: torch.Tensor) -> torch.Tensor:
    if not bool(torch.isfinite(out).all()):
        raise ValueError("weights: the network output overflows the float range; rescale them")
    return out


def stochastic_gate(
    beta: float, generator: torch.Generator | None = None, record: list | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation ``z -> g z`` with ``g ~ Bernoulli(sigmoid(beta z))`` drawn afresh at every
    call (uniforms on the CPU from ``generator``); appends each layer's gates to ``record``."""

    def activation(z: torch.Tensor) -> torch.Tensor:
        u = torch.rand(z.shape, generator=generator, dtype=z.dtype).to(z.device)
        gate = (u < torch.sigmoid(beta * z)).to(z.dtype)
        if record is not None:
            record.append(gate)
        return gate * z

    return activation


def stochastic_forward(
    weights: Sequence[torch.Tensor],
    X,
    beta: float,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
    return_gates: bool = False,
):
    """Ancestral sampling of the layered graphical model at inverse temperature ``beta``.

    For each of ``n_samples`` independent draws and each input: ``z^l = W^l h^{l-1}``,
    ``g^l_i ~ Bernoulli(sigmoid(beta z^l_i))``, ``h^l = g^l z^l`` for ``l < L``; the output is
    ``z^L`` (the one forward pass :func:`asbbook.nets.preactivations`, with the stochastic gate as
    its activation). Returns outputs shaped ``(n_samples, P)`` (for ``n_L = 1``), and with
    ``return_gates`` also the sampled gates ``[(n_samples, P, n_l)]``.
    """
    widths, weights, X = _check_network(weights, X)
    beta = validation.check_real("beta", beta, positive=True)
    n_samples = check_n_samples(n_samples)
    kept = sum(widths[1:-1]) if return_gates else 0
    per_sample = X.shape[0] * (SAMPLING_TEMPORARIES * max(widths) + kept)
    validation.check_memory("n_samples", validation.element_bytes(X.dtype) * n_samples * per_sample)
    record: list[torch.Tensor] = []
    h0 = X.unsqueeze(0).expand(n_samples, *X.shape)
    gate = stochastic_gate(beta, generator, record if return_gates else None)
    out = nets.preactivations(weights, h0, activation=gate)[-1]
    out = _finite_output(out[..., 0] if out.shape[-1] == 1 else out)
    return (out, record) if return_gates else out


def one_hidden_layer_mean_output(weights: Sequence[torch.Tensor], X, beta: float) -> torch.Tensor:
    """Exact ``E f`` of a stochastic net with ONE hidden layer: ``W^2 (z^1 sigmoid(beta z^1))``.

    With a single gated layer the output is linear in the gates, so its mean follows from
    :func:`mean_activation` alone. Deeper nets have no such closed form (the gates of layer
    ``l+1`` see the noise of layer ``l``); :mod:`asbbook.boltzmann.meanfield` approximates them.
    """
    widths, weights, X = _check_network(weights, X)
    if len(widths) != 3:
        raise ValueError(
            f"weights: the closed form needs exactly one hidden layer, got {len(widths) - 2}"
        )
    w1, w2 = weights
    out = _finite_output(mean_activation(X @ w1.T, check_beta(beta)) @ w2.T)
    return out[:, 0] if out.shape[1] == 1 else out


def relative_gap(mean_output: torch.Tensor, f_det: torch.Tensor) -> float:
    """``D = mean_x (E f_beta(x) - f(x))^2 / mean_x f(x)^2`` from the two output vectors."""
    norm = f_det.pow(2).mean()
    if not float(norm) > 0:
        raise ValueError("weights give f(x) = 0 on every input of X: D is undefined")
    return float(_finite_output((mean_output - f_det).pow(2).mean() / norm))


def relative_mean_output_gap(
    weights: Sequence[torch.Tensor],
    X,
    beta: float,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
) -> stats.Estimate:
    """How far the stochastic net's mean output is from the deterministic ReLU net.

    ``D = mean_x (E f_beta(x) - f(x))^2 / mean_x f(x)^2``, estimated from ``n_samples`` ancestral
    samples per input. The Monte-Carlo noise ``se_x`` of each mean inflates the naive square by
    ``se_x^2``, which is subtracted; the returned standard error,
    ``sqrt(sum_x (4 d_x^2 se_x^2 + 2 se_x^4)) / (P mean f^2)``, is that of the Monte-Carlo noise.
    """
    _, weights, X = _check_network(weights, X)
    n_samples = check_n_samples(n_samples, minimum=2)
    f_det = nets.forward(weights, X)
    samples = stochastic_forward(weights, X, beta, n_samples, generator=generator)
    mean, se = stats.mean_with_stderr(samples)
    d = mean - f_det
    norm = f_det.pow(2).mean()
    if not float(norm) > 0:
        raise ValueError("weights give f(x) = 0 on every input of X: D is undefined")
    n = d.shape[0]
    estimate = (d.pow(2) - se.pow(2)).mean() / norm
    stderr = (4 * d.pow(2) * se.pow(2) + 2 * se.pow(4)).sum().sqrt() / (n * norm)
    return stats.Estimate(float(_finite_output(estimate)), float(_finite_output(stderr)))


def exact_relative_mean_output_gap(weights: Sequence[torch.Tensor], X, beta: float) -> float:
    """``D`` of :func:`relative_mean_output_gap` in closed form for one hidden layer."""
    _, weights, X = _check_network(weights, X)
    return relative_gap(one_hidden_layer_mean_output(weights, X, beta), nets.forward(weights, X))


def upper_half_exponent(betas, values) -> float:
    """The slope of ``ln |values|`` against ``ln beta`` over the largest ``max(2, K // 2)`` of the
    ``K`` temperatures (least squares): the large-``beta`` power law ``D ~ beta^p``."""
    betas = validation.as_float_tensor("betas", betas, ndim=1, dtype=torch.float64)
    values = validation.as_float_tensor("values", values, ndim=1, dtype=torch.float64)
    if betas.shape != values.shape or betas.numel() < 2:
        raise ValueError("betas and values must be two equal-length vectors of >= 2 entries")
    keep = max(2, betas.numel() // 2)
    x = betas[-keep:].log()
    y = values[-keep:].abs().log()
    if not bool(torch.isfinite(y).all()):
        raise ValueError("values must be non-zero to fit a power law")
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / xc.pow(2).sum())


# ---------------------------------------------------------------------------------------------
# Deprecated aliases (the estimators live in asbbook.stats)
# ---------------------------------------------------------------------------------------------


def mean_and_stderr(samples, dim: int = 0) -> stats.Estimate:
    """Deprecated: :func:`asbbook.stats.mean_with_stderr`."""
    warnings.warn(
        "boltzmann.mean_and_stderr is deprecated; use asbbook.stats.mean_with_stderr",
        DeprecationWarning,
        stacklevel=2,
    )
    return stats.mean_with_stderr(samples, dim)


def variance_and_stderr(samples, dim: int = 0) -> stats.Estimate:
    """Deprecated: :func:`asbbook.stats.variance_with_stderr`."""
    warnings.warn(
        "boltzmann.variance_and_stderr is deprecated; use asbbook.stats.variance_with_stderr",
        DeprecationWarning,
        stacklevel=2,
    )
    return stats.variance_with_stderr(samples, dim)
