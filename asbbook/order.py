"""Order parameters of a layer: the measured quantities chapters 3, 5 and 6 follow in training.

All accept leading ensemble dimensions: pre-activations ``z`` shaped ``(..., P, n)`` (``P``
patterns, ``n`` units) and outputs ``f`` shaped ``(..., P)``, e.g. the ``(K, P, n_l)`` tensors
of a batched ensemble. Their values under the sign-flip symmetry of the initial ensemble (open
fraction 1/2, zero label alignment, zero variance drift) are derived in ``asbbook.symmetry``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch

from asbbook.stats import binary_entropy_bits


def preactivation_variance(x_sq_mean: float, sigma2, depth: int) -> np.ndarray:
    """Ensemble second moments ``q^l = E[(z^l_i)^2]`` of the pre-activations, ``l = 1..depth``.

    ``q^1 = sigma_1^2 mean(x^2)`` and ``q^l = sigma_l^2 q^{l-1} / 2`` (He et al. 2015), so with
    a constant ``sigma2``: ``q^l = 2 mean(x^2) (sigma2/2)^l``. For i.i.d. weights symmetric about
    0 the recursion is exact at every width (it uses only ``E[g z^2] = E[z^2]/2``). ``sigma2`` is
    a number or a sequence of ``depth`` per-layer values ``sigma_l^2``; ``x_sq_mean`` is
    ``mean_j x_j^2`` (a number, or an array giving one row per input).
    """
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    s2 = np.broadcast_to(np.asarray(sigma2, dtype=np.float64), (depth,)).copy()
    if not np.all(np.isfinite(s2)) or np.any(s2 <= 0):
        raise ValueError(f"sigma2 must be finite and positive, got {sigma2!r}")
    m = np.asarray(x_sq_mean, dtype=np.float64)
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError(f"x_sq_mean must be finite and non-negative, got {x_sq_mean!r}")
    factors = s2 * np.concatenate([[1.0], np.full(depth - 1, 0.5)])
    return m[..., None] * np.cumprod(factors)


def _check_layer_tensor(z: torch.Tensor, name: str = "z") -> torch.Tensor:
    if not isinstance(z, torch.Tensor) or z.ndim < 2:
        raise ValueError(f"{name} must be a tensor shaped (..., P, n), got {type(z).__name__}")
    return z


def second_moment(z: torch.Tensor) -> torch.Tensor:
    """Measured ``q_hat = mean over patterns and units of z^2``: ``(..., P, n) -> (...)``."""
    z = _check_layer_tensor(z)
    return (z * z).mean(dim=(-2, -1))


def layer_second_moments(zs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``q_hat^l`` for every layer of ``zs = [z^1, .., z^L]`` stacked last: ``(..., L)``."""
    if len(zs) == 0:
        raise ValueError("zs must hold at least one layer")
    return torch.stack([second_moment(z) for z in zs], dim=-1)


def variance_drift(zs: Sequence[torch.Tensor], q_theory) -> torch.Tensor:
    """Relative drift ``(q_hat^l - q^l) / q^l`` of each layer's measured second moment from the
    theory ``q^l`` (e.g. :func:`preactivation_variance`, the fixed point ``2 mean(x^2)`` under He
    initialisation). ``zs`` lists ``(..., P, n_l)`` tensors, ``q_theory`` one positive number per
    layer; the result is ``(..., L)``. At initialisation its ensemble mean is 0 at every width."""
    q_hat = layer_second_moments(zs)
    if not isinstance(q_theory, torch.Tensor):
        q_theory = torch.as_tensor(np.asarray(q_theory, dtype=np.float64))
    q = q_theory.to(dtype=q_hat.dtype, device=q_hat.device)
    if q.ndim != 1 or q.numel() != len(zs):
        raise ValueError(f"q_theory must hold one value per layer ({len(zs)}), got {q_theory!r}")
    if not bool(torch.all(q > 0)):
        raise ValueError(f"q_theory must be positive, got {q_theory!r}")
    return (q_hat - q) / q


def open_fraction(z: torch.Tensor) -> torch.Tensor:
    """Each unit's open fraction over the patterns, ``p_i = mean_mu 1[z_{mu i} > 0]``:
    ``(..., P, n) -> (..., n)``. Over the initial ensemble ``E p_i = 1/2`` (sign-flip symmetry)."""
    z = _check_layer_tensor(z)
    dtype = z.dtype if z.is_floating_point() else torch.float64
    return (z > 0).to(dtype).mean(dim=-2)


def mean_gate_entropy_bits(z: torch.Tensor) -> torch.Tensor:
    """Gate polarisation order parameter: the mean over units of ``H_2(p_i)``, in bits,
    ``(..., P, n) -> (...)``. 1 bit when every unit is open on half the patterns; 0 when every
    unit is polarised. (Within one net at initialisation, units of deep layers are already
    partly polarised, because the non-negative ``h^{l-1}`` gives each unit a pattern-independent
    offset; the 1/2 of the sign-flip symmetry is an ensemble statement.)"""
    return binary_entropy_bits(open_fraction(z)).mean(dim=-1)


def layer_reservoir_bits(z: torch.Tensor) -> torch.Tensor:
    """The summed variant ``sum_i H_2(p_i)`` in bits, ``(..., P, n) -> (...)``: the number of
    gate bits a layer still leaves undecided over the data (chapter 5's "reservoir")."""
    return binary_entropy_bits(open_fraction(z)).sum(dim=-1)


def _check_binary_labels(y, z: torch.Tensor) -> torch.Tensor:
    y = torch.as_tensor(y, device=z.device)
    if y.ndim != 1 or y.shape[0] != z.shape[-2]:
        raise ValueError(
            f"y must be a vector of P = {z.shape[-2]} labels, got shape {tuple(y.shape)}"
        )
    if not bool(torch.all((y == 1) | (y == -1))):
        raise ValueError("y must hold labels in {-1, +1}")
    if bool(torch.all(y == 1)) or bool(torch.all(y == -1)):
        raise ValueError("y must contain both labels, +1 and -1")
    return y


def class_open_fractions(z: torch.Tensor, y) -> tuple[torch.Tensor, torch.Tensor]:
    """Each unit's open fraction on the patterns of each class,
    ``p^+_i = mean_{mu: y_mu = +1} 1[z_{mu i} > 0]`` and ``p^-_i`` likewise for ``y_mu = -1``:
    ``(..., P, n)`` with labels ``y`` ``(P,)`` in ``{-1, +1}`` (both present) -> two ``(..., n)``.
    The unconditional open fraction is ``p_i = pi_+ p^+_i + pi_- p^-_i`` with the class
    frequencies ``pi_+-``. Flipping row ``i`` of ``W^l`` swaps open and closed, so over the initial
    ensemble ``p^+_i - p^-_i`` is symmetric about 0: a unit has no preferred class."""
    z = _check_layer_tensor(z)
    y = _check_binary_labels(y, z)
    return open_fraction(z[..., y == 1, :]), open_fraction(z[..., y == -1, :])


def gate_label_information_bits(z: torch.Tensor, y) -> torch.Tensor:
    """Mean over units of the mutual information between a unit's gate and the label, in bits,
    under the empirical distribution of the ``P`` patterns: ``(..., P, n) -> (...)``.

    ``I(g_i; y) = H_2(p_i) - pi_+ H_2(p^+_i) - pi_- H_2(p^-_i)`` (Cover & Thomas 2006, eq. 2.39
    with ``I = H(g) - H(g | y)``), with ``p^+-_i`` from :func:`class_open_fractions` and ``pi_+-``
    the class frequencies. ``0 <= I <= min(H_2(p_i), H_2(pi_+))`` (concavity of ``H_2``; tiny
    negative round-off is clipped to 0); ``I = 0`` when a unit opens equally often on both
    classes, ``I = H_2(pi_+)`` when its gate is the label. Unchanged by swapping open and closed
    or the two labels. How much the gates of a layer "know" the labels: the order parameter of
    the book's reading of symmetry breaking under training (chapter 3)."""
    z = _check_layer_tensor(z)
    y = _check_binary_labels(y, z)
    p_pos, p_neg = class_open_fractions(z, y)
    pi_pos = float((y == 1).to(torch.float64).mean())
    p = open_fraction(z)
    h = binary_entropy_bits
    info = h(p) - pi_pos * h(p_pos) - (1.0 - pi_pos) * h(p_neg)
    return info.clamp_min(0.0).mean(dim=-1)


def label_alignment(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Label-aligned output ``m = E_mu[y_mu f(x_mu)] / sqrt(E_mu f(x_mu)^2)``: ``(..., P) -> (...)``.

    With ``y = +-1``, Cauchy-Schwarz gives ``-1 <= m <= 1``, with ``m = 1`` iff ``f = c y``,
    ``c > 0``. Flipping the sign of the last layer maps ``m -> -m``, so the initial ensemble has
    ``E m = 0``. ``nan`` where ``f`` vanishes on every pattern.
    """
    if not isinstance(f, torch.Tensor) or f.ndim < 1:
        raise ValueError("f must be a tensor shaped (..., P)")
    y = torch.as_tensor(y, dtype=f.dtype, device=f.device)
    if y.ndim < 1 or y.shape[-1] != f.shape[-1]:
        raise ValueError(f"y must have P = {f.shape[-1]} entries in its last dimension")
    return (y * f).mean(dim=-1) / torch.sqrt((f * f).mean(dim=-1))


def layer_average_relu_sq(z: torch.Tensor) -> torch.Tensor:
    """``r_hat = (1/n) sum_i relu(z_i)^2`` over the last (unit) dimension: ``(..., n) -> (...)``."""
    if not isinstance(z, torch.Tensor) or z.ndim < 1:
        raise ValueError("z must be a tensor with at least 1 dimension")
    return torch.relu(z).square().mean(dim=-1)
