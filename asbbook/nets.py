"""Bias-free ReLU multilayer perceptrons as plain lists of weight matrices.

Notation of the book (BOOK_PLAN, "Notation"): widths ``n_0`` (input), ``n_1 .. n_{L-1}``
(hidden), ``n_L`` (output). ``weights[l-1]`` is ``W^l`` with shape ``(n_l, n_{l-1})``.
Pre-activations ``z^l = W^l h^{l-1}`` with ``h^0 = x``; gates ``g^l = 1[z^l > 0]``;
activations ``h^l = g^l z^l`` for ``l < L``; the output is ``f(x) = z^L``.
Initialisation: ``W^l_ij`` i.i.d. Gaussian with variance ``sigma2 / n_{l-1}`` (He et al. 2015
for ``sigma2 = 2``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def default_device() -> torch.device:
    """CUDA when the reader has it, else the CPU (the tests always pass ``cpu``)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    """Validate a width list ``(n_0, ..., n_L)``: at least two entries, all positive integers."""
    widths = tuple(widths)
    if len(widths) < 2:
        raise ValueError(f"widths must list at least an input and an output width, got {widths!r}")
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ValueError(f"every width must be a positive integer, got {widths!r}")
    return widths


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
    if not sigma2 > 0:
        raise ValueError(f"sigma2 must be positive, got {sigma2}")
    weights = []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        w = torch.randn(n_out, n_in, generator=generator, dtype=torch.float64)
        weights.append((w * (sigma2 / n_in) ** 0.5).to(dtype=dtype, device=device))
    return weights


def preactivations(weights: Sequence[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """All pre-activations ``[z^1, ..., z^L]``, each shaped ``(batch, n_l)``."""
    zs = []
    h = x
    for layer, w in enumerate(weights):
        z = h @ w.T
        zs.append(z)
        if layer < len(weights) - 1:
            h = torch.relu(z)
    return zs


def forward(weights: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Network output ``f(x) = z^L``, shaped ``(batch,)`` when ``n_L = 1`` else ``(batch, n_L)``."""
    out = preactivations(weights, x)[-1]
    return out[:, 0] if out.shape[1] == 1 else out


def gates(weights: Sequence[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Hidden gates ``g^l = 1[z^l > 0]`` for ``l = 1..L-1``, as float tensors ``(batch, n_l)``."""
    return [(z > 0).to(z.dtype) for z in preactivations(weights, x)[:-1]]


def parameter_count(widths: Sequence[int]) -> int:
    """Number of weights of a bias-free MLP: ``sum_l n_l n_{l-1}``."""
    widths = check_widths(widths)
    return sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
