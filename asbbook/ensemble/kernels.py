"""Batched kernels of the ensemble engine: forward, hand-written backward, optimiser steps.

Everything here works on a *group*: members of one shape whose weights are stacked per layer,
``(K, n_l, n_{l-1})``, and every matrix product is one ``torch.bmm``. Formulas and sources are
in the docstring of :mod:`asbbook.ensemble`; the public names are re-exported there.

Rounding rules that keep a member's arithmetic independent of its batch (module docstring of
:mod:`asbbook.ensemble`): a batch of one goes through ``bmm`` as a batch of two identical
copies, and elementwise work uses only single IEEE operations (no ``alpha=``, ``addcmul``,
``lerp``), whose vectorised and scalar-tail code paths round alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from asbbook import nets


def _bmm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.bmm`` (into ``out`` if given), with a batch of one computed as a batch of two
    identical copies: MKL rounds a lone matrix (routed to ``mm``) differently from a batched
    one, and a member's arithmetic must not depend on how many members share its group."""
    if a.shape[0] != 1:
        return torch.bmm(a, b) if out is None else torch.bmm(a, b, out=out)
    single = torch.bmm(a.expand(2, -1, -1), b.expand(2, -1, -1))[:1]
    return single if out is None else out.copy_(single)


def _sub_lr_outer_(w: torch.Tensor, delta: torch.Tensor, h: torch.Tensor, lr: float) -> None:
    """``W <- W - lr delta^T h`` as one ``baddbmm`` (the gradient-descent update fused into the
    weight-gradient matmul); a batch of one again goes through a batch of two."""
    if w.shape[0] != 1:
        w.baddbmm_(delta.transpose(1, 2), h, alpha=-lr)
        return
    pair = [t.expand(2, -1, -1) for t in (w, delta.transpose(1, 2), h)]
    w.copy_(torch.baddbmm(*pair, alpha=-lr)[:1])


def _backprop(delta: torch.Tensor, w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``delta^{l-1} = (delta^l W^l) * 1[h^{l-1} > 0]``. For ``n_l = 1`` (the output layer) the
    product is an outer product, computed elementwise: each entry is one rounded product, as in
    ``bmm``, without a matrix-multiply call."""
    product = delta * w if delta.shape[-1] == 1 else _bmm(delta, w)
    return _gate_(product, h)


def _gate_(delta: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``delta * 1[h > 0]`` in place, by ReLU's own backward kernel (``threshold_backward``)."""
    return torch.ops.aten.threshold_backward.grad_input(delta, h, 0, grad_input=delta)


def batched_forward(
    weights: Sequence[torch.Tensor], X: torch.Tensor, *, keep_preactivations: bool = True
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Pre-activations and layer inputs of a stacked group.

    ``weights[l-1]`` is ``(K, n_l, n_{l-1})``; ``X`` is ``(P, n_0)`` (shared by all members) or
    ``(K, P, n_0)`` (one dataset per member). Returns ``zs = [z^1, ..., z^L]`` each
    ``(K, P, n_l)`` and ``hs = [h^0, ..., h^{L-1}]`` (a shared ``X`` is expanded to
    ``(K, P, n_0)`` without a copy; ``h^l = relu(z^l)``). Without ``keep_preactivations`` the
    ReLU is applied in place and ``zs`` holds only ``z^L``.
    """
    h = X if X.ndim == 3 else X.expand(weights[0].shape[0], -1, -1)
    zs, hs = [], [h]
    for layer, w in enumerate(weights):
        z = _bmm(h, w.transpose(1, 2))
        if layer == len(weights) - 1 or keep_preactivations:
            zs.append(z)
        if layer < len(weights) - 1:
            h = torch.relu(z) if keep_preactivations else z.relu_()
            hs.append(h)
    return zs, hs


def batched_preactivations(weights: Sequence[torch.Tensor], X: torch.Tensor) -> list[torch.Tensor]:
    """``[z^1, ..., z^L]``, each ``(K, P, n_l)``, of stacked weights ``(K, n_l, n_{l-1})``."""
    return batched_forward(weights, X)[0]


def loss_and_output_grad(
    f: torch.Tensor, y: torch.Tensor, loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member loss ``(K,)`` and ``dloss/df`` ``(K, P)`` for outputs ``f`` ``(K, P)``
    (labels ``y``: ``(P,)`` or ``(K, P)``).

    hinge: ``mean max(0, 1 - y f)``, gradient ``-y 1[y f < 1] / P``;
    squared: ``mean (y - f)^2 / 2``, gradient ``(f - y) / P``.
    """
    n = f.shape[-1]
    if loss == "hinge":
        margins = y * f
        value = torch.relu(1 - margins).sum(dim=-1) / n
        return value, (margins < 1) * (-y / n)
    residual = f - y
    value = (residual * residual).sum(dim=-1) / (2 * n)
    return value, residual / n


def batched_backward(
    weights: Sequence[torch.Tensor],
    hs: Sequence[torch.Tensor],
    grad_f: torch.Tensor,
    out: Sequence[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Gradients ``dloss/dW^l`` ``(K, n_l, n_{l-1})`` by hand-written backpropagation:
    ``dW^l = delta^l^T h^{l-1}``, ``delta^{l-1} = (delta^l W^l) * 1[h^{l-1} > 0]``, starting from
    ``delta^L = dloss/df`` (``grad_f``, ``(K, P)``). ``1[h > 0] = 1[z > 0]`` for ``h = relu(z)``.
    With ``out`` the gradients are written into those tensors (e.g. views of one flat buffer)."""
    delta = grad_f.unsqueeze(-1)
    grads = [None] * len(weights)
    for layer in range(len(weights) - 1, -1, -1):
        target = None if out is None else out[layer]
        grads[layer] = _bmm(delta.transpose(1, 2), hs[layer], out=target)
        if layer > 0:
            delta = _backprop(delta, weights[layer], hs[layer])
    return grads


def _gd_step_(
    weights: Sequence[torch.Tensor], hs: Sequence[torch.Tensor], grad_f: torch.Tensor, lr: float
) -> None:
    """One gradient-descent step in place, ``W^l <- W^l - lr delta^l^T h^{l-1}``, fused with the
    backward pass of :func:`batched_backward` (``delta^{l-1}`` is taken before ``W^l`` moves)."""
    delta = grad_f.unsqueeze(-1)
    for layer in range(len(weights) - 1, -1, -1):
        below = _backprop(delta, weights[layer], hs[layer]) if layer > 0 else None
        _sub_lr_outer_(weights[layer], delta, hs[layer], lr)
        delta = below


class FlatAdam:
    """Adam (Kingma & Ba 2015, ``torch.optim.Adam``'s form) on ONE flat buffer holding every
    layer of a group, so a step costs 13 elementwise kernels whatever the depth:

        m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
        W <- W - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).

    The operations, their order and their rounding are those of the former per-layer step
    (single IEEE operations only), so results are bitwise unchanged; scratch buffers are
    reused instead of allocated."""

    def __init__(self, flat: torch.Tensor):
        self.m, self.v = torch.zeros_like(flat), torch.zeros_like(flat)
        self.grad = torch.empty_like(flat)
        self._a, self._b = torch.empty_like(flat), torch.empty_like(flat)

    def keep(self, index_fn) -> None:
        """Re-pack every buffer through ``index_fn`` (a member selection of the group)."""
        self.m, self.v = index_fn(self.m), index_fn(self.v)
        self.grad = torch.empty_like(self.m)
        self._a, self._b = torch.empty_like(self.m), torch.empty_like(self.m)

    def step_(self, flat: torch.Tensor, t: int, lr: float, betas, eps: float) -> None:
        """Update ``flat`` in place from ``self.grad`` (the gradient at step ``t``, 1-based)."""
        b1, b2 = betas
        g, m, v, a, b = self.grad, self.m, self.v, self._a, self._b
        m.mul_(b1).add_(torch.mul(g, 1 - b1, out=a))
        v.mul_(b2).add_(torch.mul(g, g, out=a).mul_(1 - b2))
        torch.sqrt(v, out=b).div_(math.sqrt(1 - b2**t)).add_(eps)
        flat.sub_(torch.div(m, b, out=a).mul_(lr / (1 - b1**t)))


def batched_gradients(
    weights: Sequence[torch.Tensor], X: torch.Tensor, y: torch.Tensor, loss: str = "hinge"
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Per-member losses ``(K,)`` and gradients ``[(K, n_l, n_{l-1})]`` of stacked weights."""
    if loss not in ("hinge", "squared"):
        raise ValueError(f"loss must be one of ('hinge', 'squared'), got {loss!r}")
    zs, hs = batched_forward(weights, X)
    value, grad_f = loss_and_output_grad(zs[-1][..., 0], y, loss)
    return value, batched_backward(weights, hs, grad_f)


def flops_per_step(widths: Sequence[int], n_examples: int) -> int:
    """Matmul FLOPs of one training step of one member (2 per multiply-add): forward
    ``2 P sum_l n_l n_{l-1}``, weight gradients the same, input gradients
    ``2 P sum_{l>=2} n_l n_{l-1}`` (none for the data). Elementwise work is not counted."""
    widths = nets.check_widths(widths)
    per_layer = [a * b for a, b in zip(widths[:-1], widths[1:], strict=True)]
    return 2 * n_examples * (2 * sum(per_layer) + sum(per_layer[1:]))


def batched_perceptron_hinge_step(
    w: torch.Tensor, YX: torch.Tensor, lr: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One full-batch subgradient step on the mean hinge loss of ``T`` perceptrons at once.

    ``w`` is ``(T, N)``, ``YX`` is ``(T, P, N)`` with rows ``y_mu x_mu`` of each trial's data.
    Returns the margins at ``w``, ``m_mu = y_mu w . x_mu`` ``(T, P)``, and the next weights

        w + (lr / P) sum_{mu: m_mu < 1} y_mu x_mu

    (the gradient step of ``(1/P) sum_mu max(0, 1 - m_mu)``, subgradient 0 at the kink), both as
    ``bmm`` (a matrix-vector product per trial). A trial with every margin ``>= 1`` gets its
    ``w`` back unchanged. A batch of one is computed as a batch of two, so each trial's numbers
    do not depend on the others."""
    margins = _bmm(YX, w.unsqueeze(-1))[..., 0]
    active = (margins < 1).to(YX.dtype).unsqueeze(1)  # (T, 1, P)
    step = _bmm(active, YX)[:, 0]
    return margins, w + step * (lr / YX.shape[1])
