"""Groups of the ensemble engine: members of one (padded) shape trained as one stack.

A group keeps all its weights in ONE flat buffer with a view ``(K, n_l, n_{l-1})`` per layer
(each starting on a cache line, as a fresh tensor does), so the optimiser's elementwise work is
one kernel per operation whatever the depth. Used by :func:`asbbook.ensemble.train_ensemble`;
``padded_widths`` is re-exported there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from asbbook.ensemble.kernels import FlatAdam, _gd_step_, batched_backward, batched_forward

_ALIGN_BYTES = 64  # every layer of a flat buffer starts on a cache line, as a fresh tensor does


def padded_widths(widths: Sequence[int], pad_to: int | None) -> tuple[int, ...]:
    """The shape a member trains in: with ``pad_to``, a member whose hidden widths are all
    ``<= pad_to`` has every hidden width raised to ``pad_to`` (zero weights in the extra units);
    otherwise, and for ``pad_to = None``, its own widths. It depends on the member alone."""
    widths = tuple(widths)
    if pad_to is None or len(widths) <= 2 or max(widths[1:-1]) > pad_to:
        return widths
    return (widths[0], *([pad_to] * (len(widths) - 2)), widths[-1])


def _layer_offsets(n_members: int, widths: tuple[int, ...], itemsize: int) -> list[int]:
    """Start of each layer ``(K, n_l, n_{l-1})`` in a flat buffer, and its total length last."""
    quantum = max(1, _ALIGN_BYTES // itemsize)
    offsets, offset = [], 0
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        offsets.append(offset)
        offset += -(-n_members * n_out * n_in // quantum) * quantum
    return [*offsets, offset]


def _layer_views(flat: torch.Tensor, n_members: int, widths) -> list[torch.Tensor]:
    """Per-layer views ``(K, n_l, n_{l-1})`` into a flat buffer laid out by ``_layer_offsets``."""
    offsets = _layer_offsets(n_members, widths, flat.element_size())
    shapes = zip(widths[:-1], widths[1:], strict=True)
    return [
        flat[start : start + n_members * n_out * n_in].view(n_members, n_out, n_in)
        for start, (n_in, n_out) in zip(offsets, shapes, strict=False)
    ]


class _Group:
    """The active members of one (padded) shape: all weights in ONE flat buffer (a view per
    layer), so elementwise optimiser work is one kernel per operation whatever the depth; the
    Adam state lives in buffers of the same layout. ``X``, ``y`` are shared ``(P, n_0)``,
    ``(P,)`` or per member ``(K, P, n_0)``, ``(K, P)``."""

    def __init__(self, ids, widths, flat, optimizer: str, X, y):
        self.ids, self.widths, self.t = ids, widths, 0  # t: updates applied so far
        self.X, self.y = X, y
        self.neg_y_over_n = -y / y.shape[-1]  # the constant factor of the hinge gradient
        self.adam = FlatAdam(flat) if optimizer == "adam" else None
        self._set(flat)

    def _set(self, flat: torch.Tensor) -> None:
        self.flat = flat
        self.weights = _layer_views(flat, len(self.ids), self.widths)
        if self.adam is not None:
            self.adam.grad.zero_()  # alignment gaps stay zero, so Adam leaves them at zero
            self.grads = _layer_views(self.adam.grad, len(self.ids), self.widths)

    def inputs(self) -> torch.Tensor:
        """``h^0`` of every member, ``(K, P, n_0)`` (a view when the data are shared)."""
        return self.X if self.X.ndim == 3 else self.X.expand(len(self.ids), -1, -1)

    def data(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``X``, ``y`` of the members at ``positions``."""
        if self.X.ndim == 2:
            return self.X, self.y
        return self.X.index_select(0, positions), self.y.index_select(0, positions)

    def keep(self, index: torch.Tensor) -> None:
        """Drop every member not in ``index`` (positions in the group)."""
        n_before = len(self.ids)

        def select(buffer: torch.Tensor) -> torch.Tensor:
            views = _layer_views(buffer, n_before, self.widths)
            out = torch.zeros(
                _layer_offsets(len(index), self.widths, buffer.element_size())[-1],
                dtype=buffer.dtype,
                device=buffer.device,
            )
            for source, target in zip(
                views, _layer_views(out, len(index), self.widths), strict=True
            ):
                torch.index_select(source, 0, index, out=target)
            return out

        self.ids = [self.ids[i] for i in index.tolist()]
        if self.adam is not None:
            self.adam.keep(select)
        self._set(select(self.flat))
        if self.X.ndim == 3:
            self.X, self.y = self.X.index_select(0, index), self.y.index_select(0, index)
            self.neg_y_over_n = self.neg_y_over_n.index_select(0, index)

    def update(self, ev: _Evaluation, lr: float, betas, eps: float) -> None:
        """Gradient descent (fused with backpropagation) or Adam on the flat buffer."""
        self.t += 1
        if self.adam is None:
            _gd_step_(self.weights, ev.hs, ev.grad_f, lr)
            return
        batched_backward(self.weights, ev.hs, ev.grad_f, out=self.grads)
        self.adam.step_(self.flat, self.t, lr, betas, eps)


class _Evaluation:
    """A group's forward pass at one step and what every step needs (``dloss/df`` and the
    number of unsatisfied margins); the loss, the 0-1 error and the divergence flags are
    derived on demand, by the same formulas, only at steps where a member may finish or a
    value is recorded."""

    def __init__(self, group: _Group, loss: str, keep_preactivations: bool):
        self.zs, self.hs = batched_forward(
            group.weights, group.X, keep_preactivations=keep_preactivations
        )
        f = self.f = self.zs[-1][..., 0]
        self.y, n = group.y, f.shape[-1]
        margins = group.y * f
        active = margins < 1
        if loss == "hinge":
            self.grad_f = active * group.neg_y_over_n
            self.total, self.divisor = (1 - margins).relu_().sum(dim=-1), n
        else:
            residual = f - group.y
            self.grad_f = residual / n
            self.total, self.divisor = (residual * residual).sum(dim=-1), 2 * n
        self.n_unsatisfied = active.sum(dim=-1)

    def quiet(self, stop: bool) -> bool:
        """True when no member can finish at this step: every loss and output finite and (with
        ``stop``) some margin unsatisfied in every member. One synchronisation: a non-finite
        output or loss makes ``probe`` non-finite (an overflowing sum only sends the step to
        the exact check, which gives the same verdict as ever)."""
        probe = self.total + self.f.sum(dim=-1)
        if stop:
            return bool((probe * 0 + self.n_unsatisfied).min() > 0)
        return bool(torch.isfinite(probe.sum()))

    @property
    def loss(self) -> torch.Tensor:
        return self.total / self.divisor

    @property
    def train_error(self) -> torch.Tensor:
        f = self.f
        return (torch.sign(f) != torch.sign(self.y)).sum(dim=-1).to(f.dtype) / f.shape[-1]

    @property
    def bad(self) -> torch.Tensor:
        """Loss or some output not finite."""
        return ~(torch.isfinite(self.loss) & torch.isfinite(self.f).all(dim=-1))
