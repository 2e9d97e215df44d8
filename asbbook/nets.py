"""Bias-free ReLU multilayer perceptrons as plain lists of weight matrices: the one forward pass.

Notation of the book: widths ``(n_0, ..., n_L)`` with ``n_0`` the input and ``n_L`` the output.
``weights[l-1]`` is ``W^l`` with shape ``(..., n_l, n_{l-1})``; leading dimensions, if any, index
an ensemble of networks (``(K, n_l, n_{l-1})`` for ``K`` stacked members). Inputs ``X`` are
``(P, n_0)``, shared by every member, or ``(..., P, n_0)`` per member.

Pre-activations ``z^l = W^l h^{l-1}`` with ``h^0 = x``; gates ``g^l = 1[z^l > 0]``; activations
``h^l = g^l z^l`` for ``l < L``; the output is ``f(x) = z^L``. Initialisation: ``W^l_ij`` i.i.d.
Gaussian with variance ``sigma2 / n_{l-1}`` (He et al. 2015 for ``sigma2 = 2``).

Every module that needs a forward pass calls :func:`preactivations` (with ``activation`` for the
stochastic gates of chapter 1), so there is one definition of the network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from asbbook import validation

check_widths = validation.check_widths  # the one width rule, re-exported for readers


def default_device() -> torch.device:
    """CUDA when the reader has it, else the CPU (the tests always pass ``cpu``)."""
    return validation.resolve_device("auto")


def init_weights(
    widths: Sequence[int],
    sigma2: float = 2.0,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Draw ``W^l_ij ~ N(0, sigma2 / n_{l-1})`` for ``l = 1..L``.

    The weights are drawn on the CPU from ``generator`` and then moved to ``device``, so the
    same seed gives the same network on every device.
    """
    widths = check_widths(widths)
    sigma2 = validation.check_real("sigma2", sigma2, positive=True)
    validation.check_float_dtype(dtype)
    device = validation.resolve_device(device)
    validation.check_memory("widths", 8.0 * parameter_count(widths))
    weights = []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        w = torch.randn(n_out, n_in, generator=generator, dtype=torch.float64)
        weights.append((w * (sigma2 / n_in) ** 0.5).to(dtype=dtype, device=device))
    return weights


def preactivations(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    *,
    activation: Callable[[torch.Tensor], torch.Tensor] = torch.relu,
) -> list[torch.Tensor]:
    """All pre-activations ``[z^1, ..., z^L]``, each ``(..., P, n_l)``.

    ``z^l = h^{l-1} W^l^T`` with ``h^0 = X`` and ``h^l = activation(z^l)`` (ReLU by default;
    chapter 1 passes its stochastic gate). Weights with leading ensemble dimensions broadcast
    against a shared ``X``.
    """
    zs = []
    h = X
    for layer, w in enumerate(weights):
        z = h @ w.mT
        zs.append(z)
        if layer < len(weights) - 1:
            h = activation(z)
    return zs


def forward(weights: Sequence[torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """Network output ``f(x) = z^L``: ``(..., P)`` when ``n_L = 1`` else ``(..., P, n_L)``."""
    out = preactivations(weights, X)[-1]
    return out[..., 0] if out.shape[-1] == 1 else out


def gates(weights: Sequence[torch.Tensor], X: torch.Tensor) -> list[torch.Tensor]:
    """Hidden gates ``g^l = 1[z^l > 0]`` for ``l = 1..L-1``, as float tensors ``(..., P, n_l)``."""
    return [(z > 0).to(z.dtype) for z in preactivations(weights, X)[:-1]]


def parameter_count(widths: Sequence[int]) -> int:
    """Number of weights of a bias-free MLP: ``N = sum_l n_l n_{l-1}``."""
    widths = check_widths(widths)
    return sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


def hidden_unit_count(widths: Sequence[int]) -> int:
    """Number of hidden units ``sum_{l=1}^{L-1} n_l``: the dimension of the rescaling gauge
    (each hidden unit's ``(W_in c, W_out / c)`` leaves ``f`` unchanged)."""
    widths = check_widths(widths)
    return sum(widths[1:-1])
