"""Batched ensembles of bias-free ReLU MLPs: sampling at initialisation and full-batch training.

``K`` networks, possibly of different widths and depths, are handled in ONE batched computation:
members are grouped by shape, each group's weights are stacked into tensors ``(K_g, n_l, n_{l-1})``
and every layer is one ``torch.bmm``. Training uses a hand-written backward pass (also ``bmm``),
checked against autograd in ``tests/test_ensemble.py``.

Notation (BOOK_PLAN, "Notation"): ``z^l = W^l h^{l-1}``, ``h^0 = x``, ``h^l = relu(z^l)``,
``f(x) = z^L``. With ``delta^l = dloss/dz^l`` (shape ``(K, P, n_l)``) backpropagation reads
(Rumelhart, Hinton & Williams 1986)::

    dloss/dW^l   = delta^l^T h^{l-1}                       (summed over the P examples)
    delta^{l-1}  = (delta^l W^l) * 1[z^{l-1} > 0]           (ReLU gate, derivative 0 at z = 0)

Losses (mean over the ``P`` examples, per member):

* ``"hinge"``: ``mean_mu max(0, 1 - y_mu f_mu)``, the book's surrogate risk (BOOK_PLAN, Ch. 5),
  ``dloss/df_mu = -y_mu 1[y_mu f_mu < 1] / P``;
* ``"squared"``: ``mean_mu (y_mu - f_mu)^2 / 2``, ``dloss/df_mu = (f_mu - y_mu) / P``.

Optimisers: full-batch gradient descent ``W <- W - lr g`` (fused into the weight-gradient
matmul, ``W.baddbmm_(delta^T, h, alpha=-lr)``, so it costs no extra pass over memory) and Adam
(Kingma & Ba 2015, in the form of ``torch.optim.Adam``: ``m <- b1 m + (1-b1) g``,
``v <- b2 v + (1-b2) g^2``, ``W <- W - lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps)``),
elementwise, so per member.

Reproducibility contract: a member's initial weights come from its own ``torch.Generator``
seeded by :func:`member_seed` (a hash of the base seed and the member's own configuration), and
its trajectory does not depend on which other members share the batch. Three implementation
choices make that hold bitwise on the CPU (tested): (i) a batch of one is computed as a batch of
two identical copies (MKL's ``bmm`` routes a single matrix to ``mm``, which rounds differently;
batches of two or more give every matrix the same result); (ii) elementwise, only single IEEE
operations are used (no ``alpha=``, ``addcmul``, ``lerp``, whose vectorised and scalar-tail
paths may round differently under FMA, and a member's elements may sit in either);
(iii) members that stop are removed from their group, never masked. (Measured with torch 2.13's
MKL on the CPU, also across 1 and 2 threads; CUDA's batched GEMMs make no such promise.)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from asbbook import nets

LOSSES = ("hinge", "squared")
OPTIMIZERS = ("gd", "adam")
RESERVED_KEYS = ("loss", "n_unsatisfied", "train_error")
SAMPLE_CHUNK = 256  # members whose weights sample_ensemble holds at once

RecordFn = Callable[[list[torch.Tensor], torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


# ---------------------------------------------------------------------------------------------
# Members and their seeds
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberSpec:
    """One member of an ensemble: widths ``(n_0, ..., n_L)``, a replicate index and the
    initialisation variance ``sigma2`` (``W^l_ij ~ N(0, sigma2 / n_{l-1})``, He et al. 2015
    for ``sigma2 = 2``). Two specs that compare equal describe the same initial network."""

    widths: tuple[int, ...]
    replicate: int = 0
    sigma2: float = 2.0

    def __post_init__(self):
        widths = tuple(_plain_int(w) for w in self.widths)
        object.__setattr__(self, "widths", nets.check_widths(widths))
        r = _plain_int(self.replicate)
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ValueError(f"replicate must be a non-negative integer, got {r!r}")
        object.__setattr__(self, "replicate", r)
        s = self.sigma2
        if (
            isinstance(s, bool)
            or not isinstance(s, int | float)
            or not (math.isfinite(s) and s > 0)
        ):
            raise ValueError(f"sigma2 must be a positive finite number, got {s!r}")
        object.__setattr__(self, "sigma2", float(s))

    @property
    def depth(self) -> int:
        """Number of weight layers ``L``."""
        return len(self.widths) - 1

    @property
    def n_params(self) -> int:
        """``sum_l n_l n_{l-1}`` (:func:`asbbook.nets.parameter_count`)."""
        return nets.parameter_count(self.widths)


def _plain_int(value):
    """numpy integers become Python ints (so specs hash and serialise alike); else unchanged."""
    return int(value) if isinstance(value, np.integer) else value


def member_specs(
    widths: Sequence[int] | Sequence[Sequence[int]], n_replicates: int, sigma2: float = 2.0
) -> list[MemberSpec]:
    """The grid ``{widths} x {replicate 0 .. n_replicates-1}`` as a list of :class:`MemberSpec`.

    ``widths`` is one width tuple ``(n_0, ..., n_L)`` or a sequence of them.
    """
    _check_int("n_replicates", n_replicates, minimum=1)
    single = all(isinstance(w, int | np.integer) for w in widths)
    shapes = [widths] if single else list(widths)
    return [MemberSpec(tuple(w), r, sigma2) for w in shapes for r in range(n_replicates)]


def member_seed(base_seed: int, spec: MemberSpec) -> int:
    """A stable 63-bit seed: the first 8 bytes of ``sha256`` of the canonical JSON of
    ``{base_seed, widths, replicate, sigma2}`` (``repr`` of the float, sorted keys). It depends
    on nothing but the member's own configuration, so a member's weights do not change when the
    ensemble around it does."""
    _check_int("base_seed", base_seed, minimum=0)
    payload = {
        "base_seed": base_seed,
        "widths": list(spec.widths),
        "replicate": spec.replicate,
        "sigma2": repr(float(spec.sigma2)),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def member_weights(
    spec: MemberSpec,
    base_seed: int,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """The member's initial weights exactly as the ensemble uses them: drawn on the CPU by
    :func:`asbbook.nets.init_weights` from ``torch.Generator().manual_seed(member_seed(...))``,
    then cast to ``dtype`` and moved to ``device``."""
    generator = torch.Generator().manual_seed(member_seed(base_seed, spec))
    device = resolve_device(device)
    return nets.init_weights(
        spec.widths, spec.sigma2, generator=generator, dtype=dtype, device=device
    )


def stacked_weights(
    members: Sequence[MemberSpec],
    base_seed: int,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Initial weights of members that share one shape, stacked per layer: ``(K, n_l, n_{l-1})``."""
    members = _check_members(members)
    if len({m.widths for m in members}) != 1:
        raise ValueError("stacked_weights needs members that all share the same widths")
    widths = members[0].widths
    device = resolve_device(device)
    stacked = [
        torch.empty(len(members), n_out, n_in, dtype=dtype, device=device)
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
    ]
    for k, member in enumerate(members):
        for layer, w in enumerate(member_weights(member, base_seed, dtype, device)):
            stacked[layer][k] = w
    return stacked


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def resolve_device(device: torch.device | str) -> torch.device:
    """``"auto"`` means :func:`asbbook.nets.default_device`; anything else goes to ``torch.device``."""
    return nets.default_device() if device == "auto" else torch.device(device)


def _check_int(name: str, value, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _check_choice(name: str, value, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def _check_dtype(dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype, got {dtype!r}")
    return dtype


def _check_members(members) -> tuple[MemberSpec, ...]:
    members = tuple(members)
    if not members:
        raise ValueError("the ensemble is empty: pass at least one MemberSpec")
    for m in members:
        if not isinstance(m, MemberSpec):
            raise ValueError(f"members must be MemberSpec instances, got {m!r}")
    return members


def _check_inputs(X, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    X = torch.as_tensor(X)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be a non-empty 2-D array (P, n_0), got shape {tuple(X.shape)}")
    if not X.dtype.is_floating_point:
        X = X.to(torch.float64)
    if not torch.isfinite(X).all():
        raise ValueError("X contains NaN or inf")
    return X.to(dtype=dtype, device=device)


def _check_labels(y, n_examples: int, loss: str, dtype, device) -> torch.Tensor:
    y = torch.as_tensor(y)
    if y.ndim != 1 or y.shape[0] != n_examples:
        raise ValueError(f"y must have shape ({n_examples},), got {tuple(y.shape)}")
    y = y.to(torch.float64)
    if not torch.isfinite(y).all():
        raise ValueError("y contains NaN or inf")
    if loss == "hinge" and not ((y == 1) | (y == -1)).all():
        raise ValueError("labels must be in {-1, +1} for the hinge loss")
    return y.to(dtype=dtype, device=device)


def _check_shapes(members: Sequence[MemberSpec], n_inputs: int, *, scalar_output: bool) -> None:
    for m in members:
        if m.widths[0] != n_inputs:
            raise ValueError(f"member {m} has n_0 = {m.widths[0]} but X has {n_inputs} columns")
        if scalar_output and m.widths[-1] != 1:
            raise ValueError(f"member {m} has output width {m.widths[-1]}; training needs n_L = 1")


# ---------------------------------------------------------------------------------------------
# Batched forward and backward passes
# ---------------------------------------------------------------------------------------------


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch.bmm``, with a batch of one computed as a batch of two identical copies: MKL
    rounds a lone matrix (routed to ``mm``) differently from a batched one, and a member's
    arithmetic must not depend on how many members share its group."""
    if a.shape[0] != 1:
        return torch.bmm(a, b)
    return torch.bmm(a.expand(2, -1, -1), b.expand(2, -1, -1))[:1]


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

    ``weights[l-1]`` is ``(K, n_l, n_{l-1})``, ``X`` is ``(P, n_0)`` (shared). Returns
    ``zs = [z^1, ..., z^L]`` each ``(K, P, n_l)`` and ``hs = [h^0, ..., h^{L-1}]`` (``h^0`` is
    ``X`` expanded to ``(K, P, n_0)`` without a copy; ``h^l = relu(z^l)``). Without
    ``keep_preactivations`` the ReLU is applied in place and ``zs`` holds only ``z^L``.
    """
    h = X.expand(weights[0].shape[0], -1, -1)
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
    """Per-member loss ``(K,)`` and ``dloss/df`` ``(K, P)`` for outputs ``f`` ``(K, P)``.

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
    weights: Sequence[torch.Tensor], hs: Sequence[torch.Tensor], grad_f: torch.Tensor
) -> list[torch.Tensor]:
    """Gradients ``dloss/dW^l`` ``(K, n_l, n_{l-1})`` by hand-written backpropagation:
    ``dW^l = delta^l^T h^{l-1}``, ``delta^{l-1} = (delta^l W^l) * 1[h^{l-1} > 0]``, starting from
    ``delta^L = dloss/df`` (``grad_f``, ``(K, P)``). ``1[h > 0] = 1[z > 0]`` for ``h = relu(z)``."""
    delta = grad_f.unsqueeze(-1)
    grads = [None] * len(weights)
    for layer in range(len(weights) - 1, -1, -1):
        grads[layer] = _bmm(delta.transpose(1, 2), hs[layer])
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


def batched_gradients(
    weights: Sequence[torch.Tensor], X: torch.Tensor, y: torch.Tensor, loss: str = "hinge"
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Per-member losses ``(K,)`` and gradients ``[(K, n_l, n_{l-1})]`` of stacked weights."""
    _check_choice("loss", loss, LOSSES)
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


# ---------------------------------------------------------------------------------------------
# Sampling at initialisation
# ---------------------------------------------------------------------------------------------


def sample_ensemble(
    X,
    members: Sequence[MemberSpec] | None = None,
    *,
    widths: Sequence[int] | None = None,
    n_members: int | None = None,
    sigma2: float = 2.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Pre-activations ``[z^1, ..., z^L]``, each ``(K, P, n_l)``, of ``K`` networks at
    initialisation on the inputs ``X`` ``(P, n_0)``.

    Either pass ``members`` (all of one shape; ``sigma2`` may differ) or ``widths`` and
    ``n_members`` (replicates ``0 .. n_members-1`` at variance ``sigma2``). Member ``k``'s
    weights are :func:`member_weights` ``(members[k], seed)``; they are drawn and used
    ``SAMPLE_CHUNK`` members at a time, so memory holds the pre-activations, not all weights.
    """
    if (members is None) == (widths is None):
        raise ValueError("pass either members or (widths, n_members), not both")
    if members is None:
        _check_int("n_members", n_members, minimum=1)
        members = member_specs(tuple(widths), n_members, sigma2)
    members = _check_members(members)
    if len({m.widths for m in members}) != 1:
        raise ValueError("sample_ensemble needs members that all share the same widths")
    device, dtype = resolve_device(device), _check_dtype(dtype)
    X = _check_inputs(X, dtype, device)
    _check_shapes(members, X.shape[1], scalar_output=False)
    chunks = [members[i : i + SAMPLE_CHUNK] for i in range(0, len(members), SAMPLE_CHUNK)]
    parts = [batched_preactivations(stacked_weights(c, seed, dtype, device), X) for c in chunks]
    return [torch.cat(layer) for layer in zip(*parts, strict=True)]


# ---------------------------------------------------------------------------------------------
# Training: results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """Recorded values: ``steps`` ``(T,)`` and ``values[key]`` shaped ``(K, T, ...)``.
    A member frozen at step ``s`` repeats its step-``s`` values at every later recorded step."""

    steps: np.ndarray
    values: dict[str, np.ndarray]

    def __getitem__(self, key: str) -> np.ndarray:
        return self.values[key]

    def keys(self):
        return self.values.keys()


@dataclass(frozen=True)
class EnsembleResult:
    """Per-member results of :func:`train_ensemble`, as numpy arrays of length ``K`` in the
    order of ``members``.

    ``loss`` is the training loss at the final weights; ``train_error`` the 0-1 error
    ``mean 1[sign f != sign y]`` (``f = 0`` counts as an error); ``n_unsatisfied`` the number of
    margins ``y f < 1``; ``steps`` the number of updates applied (for a converged member: the
    step at which every margin reached 1); ``converged``: hinge loss exactly 0 at the final
    weights; ``diverged``: the loss or an output became NaN/inf (the member stopped there).
    ``weights[k]`` is member ``k``'s final ``[W^1, ..., W^L]`` as CPU tensors.
    """

    members: tuple[MemberSpec, ...]
    loss: np.ndarray
    train_error: np.ndarray
    n_unsatisfied: np.ndarray
    steps: np.ndarray
    converged: np.ndarray
    diverged: np.ndarray
    n_params: np.ndarray
    weights: list[list[torch.Tensor]] = field(repr=False)
    history: History | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.members)


# ---------------------------------------------------------------------------------------------
# Training: one shape group
# ---------------------------------------------------------------------------------------------


@dataclass
class _Evaluation:
    """Forward-pass quantities of a group at one step."""

    zs: list[torch.Tensor]
    hs: list[torch.Tensor]
    loss: torch.Tensor
    grad_f: torch.Tensor
    n_unsatisfied: torch.Tensor
    train_error: torch.Tensor
    bad: torch.Tensor  # loss or some output not finite


def _evaluate(weights, X, y, loss: str, keep_preactivations: bool) -> _Evaluation:
    zs, hs = batched_forward(weights, X, keep_preactivations=keep_preactivations)
    f = zs[-1][..., 0]
    value, grad_f = loss_and_output_grad(f, y, loss)
    n_unsat = (y * f < 1).sum(dim=-1)
    error = (torch.sign(f) != torch.sign(y)).sum(dim=-1).to(f.dtype) / f.shape[-1]
    bad = ~(torch.isfinite(value) & torch.isfinite(f).all(dim=-1))
    return _Evaluation(zs, hs, value, grad_f, n_unsat, error, bad)


class _Group:
    """The active members of one shape: stacked weights (and Adam moments) plus their ids."""

    def __init__(self, ids: list[int], weights: list[torch.Tensor], optimizer: str):
        self.ids = ids
        self.weights = weights
        self.moments = (
            ([torch.zeros_like(w) for w in weights], [torch.zeros_like(w) for w in weights])
            if optimizer == "adam"
            else None
        )
        self.t = 0  # updates applied so far (the same for every active member)

    def keep(self, index: torch.Tensor) -> None:
        """Drop every member not in ``index`` (positions in the group)."""
        self.ids = [self.ids[i] for i in index.tolist()]
        self.weights = [w.index_select(0, index) for w in self.weights]
        if self.moments is not None:
            self.moments = tuple([s.index_select(0, index) for s in ss] for ss in self.moments)

    def update(self, hs, grad_f, lr: float, betas, eps: float) -> None:
        """Gradient descent (fused with backpropagation) or Adam on the stacked weights."""
        self.t += 1
        if self.moments is None:
            _gd_step_(self.weights, hs, grad_f, lr)
            return
        grads = batched_backward(self.weights, hs, grad_f)
        for layer, g in enumerate(grads):
            m, v = self.moments[0][layer], self.moments[1][layer]
            self.weights[layer].sub_(_adam_step(g, m, v, self.t, lr, betas, eps))


def _adam_step(g, m, v, t: int, lr: float, betas, eps: float) -> torch.Tensor:
    """Adam's step in ``torch.optim.Adam``'s form, updating ``m`` and ``v`` in place and using
    only single IEEE operations (see the module docstring)."""
    b1, b2 = betas
    m.mul_(b1).add_(g * (1 - b1))
    v.mul_(b2).add_(g * g * (1 - b2))
    denom = v.sqrt().div_(math.sqrt(1 - b2**t)).add_(eps)
    return (m / denom).mul_(lr / (1 - b1**t))


# ---------------------------------------------------------------------------------------------
# Training: bookkeeping of results and history
# ---------------------------------------------------------------------------------------------


class _Outcome:
    """Final per-member values, filled in as members finish."""

    def __init__(self, members: tuple[MemberSpec, ...]):
        k = len(members)
        self.members = members
        self.loss = np.full(k, np.nan)
        self.train_error = np.full(k, np.nan)
        self.n_unsatisfied = np.zeros(k, dtype=np.int64)
        self.steps = np.zeros(k, dtype=np.int64)
        self.converged = np.zeros(k, dtype=bool)
        self.diverged = np.zeros(k, dtype=bool)
        self.weights: list[list[torch.Tensor] | None] = [None] * k

    def finish(self, group: _Group, ev: _Evaluation, positions: torch.Tensor) -> None:
        loss = ev.loss[positions].cpu().numpy()
        n_unsat = ev.n_unsatisfied[positions].cpu().numpy()
        error = ev.train_error[positions].cpu().numpy()
        bad = ev.bad[positions].cpu().numpy()
        for j, pos in enumerate(positions.tolist()):
            k = group.ids[pos]
            self.loss[k], self.n_unsatisfied[k], self.train_error[k] = loss[j], n_unsat[j], error[j]
            self.steps[k], self.diverged[k] = group.t, bad[j]
            self.converged[k] = (not bad[j]) and n_unsat[j] == 0
            self.weights[k] = [w[pos].detach().cpu().clone() for w in group.weights]

    def result(self, history: History | None) -> EnsembleResult:
        n_params = np.array([m.n_params for m in self.members], dtype=np.int64)
        return EnsembleResult(
            self.members,
            self.loss,
            self.train_error,
            self.n_unsatisfied,
            self.steps,
            self.converged,
            self.diverged,
            n_params,
            self.weights,
            history,
        )


def record_steps(steps: int, record_every: int) -> np.ndarray:
    """Recorded steps ``0, r, 2r, ...`` and always the last step ``steps``."""
    return np.array(sorted(set(range(0, steps + 1, record_every)) | {steps}), dtype=np.int64)


class _Recorder:
    """Collects recorded values per member and step; frozen members repeat their last values."""

    def __init__(self, n_members: int, steps: np.ndarray, record_fn: RecordFn | None):
        self.n_members = n_members
        self.steps = steps
        self.columns = {int(s): c for c, s in enumerate(steps)}
        self.record_fn = record_fn
        self.rows: dict[str, np.ndarray] = {}

    def wants(self, t: int) -> bool:
        return t in self.columns

    def values(self, ev: _Evaluation, zs, y, positions=None) -> dict[str, torch.Tensor]:
        """The recorded quantities of a group (or of ``positions`` in it) at this step;
        ``zs`` are the pre-activations of the same members."""
        pick = (lambda a: a) if positions is None else (lambda a: a.index_select(0, positions))
        out = {
            "loss": pick(ev.loss),
            "n_unsatisfied": pick(ev.n_unsatisfied),
            "train_error": pick(ev.train_error),
        }
        if self.record_fn is not None:
            extra = self.record_fn(zs, zs[-1][..., 0], y)
            out.update(_check_record(extra, len(out["loss"])))
        return out

    def record(self, group: _Group, ev: _Evaluation, X, y, t: int, finished) -> None:
        """Store the group's values if ``t`` is a recorded step; members ``finished`` at ``t``
        also fill every later recorded step with their step-``t`` values (their
        pre-activations are recomputed when this step kept none: the same numbers, since a
        member's arithmetic does not depend on its batch)."""
        now = self.values(ev, ev.zs, y) if self.wants(t) else None
        if now is not None:
            self._store(group.ids, now, [self.columns[t]])
        later = np.flatnonzero(self.steps > t)
        if len(finished) and len(later):
            if now is None:
                weights = [w.index_select(0, finished) for w in group.weights]
                frozen = self.values(ev, batched_preactivations(weights, X), y, finished)
            else:
                frozen = {key: v.index_select(0, finished) for key, v in now.items()}
            self._store([group.ids[i] for i in finished.tolist()], frozen, later)

    def _store(self, ids: list[int], values: dict[str, torch.Tensor], columns) -> None:
        for key, tensor in values.items():
            array = tensor.detach().cpu().numpy()
            if key not in self.rows:
                self.rows[key] = self._allocate(array)
            if self.rows[key].shape[2:] != array.shape[1:]:
                raise ValueError(
                    f"record_fn value {key!r} has trailing shape {array.shape[1:]} here but "
                    f"{self.rows[key].shape[2:]} elsewhere (e.g. per-layer values of groups of "
                    "different depth); return the same trailing shape for every group"
                )
            self.rows[key][np.ix_(ids, columns)] = array[:, None]

    def _allocate(self, array: np.ndarray) -> np.ndarray:
        shape = (self.n_members, len(self.steps), *array.shape[1:])
        if array.dtype.kind == "b":
            return np.zeros(shape, dtype=bool)
        if array.dtype.kind in "iu":
            return np.zeros(shape, dtype=np.int64)
        return np.full(shape, np.nan, dtype=np.float64)

    def history(self) -> History:
        return History(self.steps.copy(), self.rows)


def _check_record(values, n: int) -> dict[str, torch.Tensor]:
    if not isinstance(values, dict):
        raise ValueError(f"record_fn must return a dict of tensors, got {type(values).__name__}")
    for key, value in values.items():
        if key in RESERVED_KEYS:
            raise ValueError(f"record_fn may not return the reserved key {key!r}")
        if not isinstance(value, torch.Tensor) or value.ndim < 1 or value.shape[0] != n:
            raise ValueError(f"record_fn value {key!r} must be a tensor with leading dimension {n}")
    return values


# ---------------------------------------------------------------------------------------------
# Training: the driver
# ---------------------------------------------------------------------------------------------


def _make_groups(members, seed, dtype, device, optimizer) -> list[_Group]:
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for k, m in enumerate(members):
        by_shape.setdefault(m.widths, []).append(k)
    return [
        _Group(ids, stacked_weights([members[k] for k in ids], seed, dtype, device), optimizer)
        for ids in by_shape.values()
    ]


def _advance(group: _Group, X, y, t: int, *, config, outcome, recorder) -> None:
    """One step of one group: evaluate at ``W_t``, record, retire finished members, update."""
    record_now = recorder is not None and recorder.wants(t)
    ev = _evaluate(group.weights, X, y, config["loss"], keep_preactivations=record_now)
    last = t == config["steps"]
    if last:
        finished = torch.arange(len(group.ids), device=ev.loss.device)
    else:
        done = ev.bad | (ev.n_unsatisfied == 0) if config["stop"] else ev.bad
        finished = done.nonzero()[:, 0]
    if recorder is not None:
        recorder.record(group, ev, X, y, t, finished)
    if len(finished):
        outcome.finish(group, ev, finished)
        if last or len(finished) == len(group.ids):
            group.ids = []
            return
        keep = (~done).nonzero()[:, 0]
        group.keep(keep)
        ev.hs = [X.expand(len(keep), -1, -1)] + [h.index_select(0, keep) for h in ev.hs[1:]]
        ev.grad_f = ev.grad_f.index_select(0, keep)
    group.update(ev.hs, ev.grad_f, config["lr"], config["betas"], config["eps"])


def train_ensemble(
    members: Sequence[MemberSpec],
    X,
    y,
    *,
    loss: str = "hinge",
    optimizer: str = "gd",
    lr: float = 0.1,
    steps: int = 1000,
    seed: int = 0,
    stop_at_zero_hinge: bool = True,
    adam_betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-8,
    record_every: int | None = None,
    record_fn: RecordFn | None = None,
    progress: bool = False,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> EnsembleResult:
    """Train ``K = len(members)`` bias-free ReLU MLPs on ``(X, y)`` at once, full batch.

    Members are grouped by widths; each group is one stack of weights, trained with ``bmm``
    and a hand-written backward pass (module docstring for the formulas). Step ``t`` evaluates
    the weights after ``t`` updates: a member whose loss or output is not finite stops
    (``diverged``), and with ``stop_at_zero_hinge`` a member whose margins ``y f`` are all
    ``>= 1`` (hinge loss exactly 0, whatever the training ``loss``) is frozen (``converged``,
    ``steps = t``). The others take update ``t + 1``; at most ``steps`` updates are applied.

    ``record_every = r`` records at steps ``0, r, 2r, ...`` and at ``steps``: always ``loss``,
    ``n_unsatisfied`` and ``train_error``, plus whatever ``record_fn(zs, f, y)`` returns for a
    shape group (``zs``: list of ``(K_g, P, n_l)``, ``f``: ``(K_g, P)``, ``y``: ``(P,)``;
    values ``(K_g,)`` or ``(K_g, m)``). Initial weights: :func:`member_weights` ``(member, seed)``.
    """
    config, members, X, y = _validate_training(
        members, X, y, loss, optimizer, lr, steps, seed, adam_betas, adam_eps, dtype, device
    )
    config["stop"] = bool(stop_at_zero_hinge)
    recorder = _make_recorder(len(members), steps, record_every, record_fn)
    outcome = _Outcome(members)
    groups = _make_groups(members, seed, config["dtype"], X.device, optimizer)
    with tqdm(total=steps, disable=not progress, desc="train_ensemble") as bar:
        for t in range(steps + 1):
            for group in groups:
                _advance(group, X, y, t, config=config, outcome=outcome, recorder=recorder)
            groups = [g for g in groups if g.ids]
            if not groups:
                break
            bar.update(1 if t < steps else 0)
            if progress and t % 50 == 0:
                bar.set_postfix(active=sum(len(g.ids) for g in groups))
    return outcome.result(recorder.history() if recorder is not None else None)


def _make_recorder(n_members, steps, record_every, record_fn) -> _Recorder | None:
    if record_every is None:
        if record_fn is not None:
            raise ValueError("record_fn needs record_every")
        return None
    record_every = _check_int("record_every", record_every, minimum=1)
    if record_fn is not None and not callable(record_fn):
        raise ValueError("record_fn must be callable")
    return _Recorder(n_members, record_steps(steps, record_every), record_fn)


def _validate_training(
    members, X, y, loss, optimizer, lr, steps, seed, betas, eps, dtype, device
) -> tuple[dict, tuple[MemberSpec, ...], torch.Tensor, torch.Tensor]:
    members = _check_members(members)
    loss = _check_choice("loss", loss, LOSSES)
    optimizer = _check_choice("optimizer", optimizer, OPTIMIZERS)
    config = {
        "loss": loss,
        "lr": _check_positive_float("lr", lr),
        "steps": _check_int("steps", steps, minimum=1),
        "eps": _check_positive_float("adam_eps", eps),
        "betas": _check_betas(betas),
        "dtype": _check_dtype(dtype),
    }
    _check_int("seed", seed, minimum=0)
    device = resolve_device(device)
    X = _check_inputs(X, dtype, device)
    y = _check_labels(y, X.shape[0], loss, dtype, device)
    _check_shapes(members, X.shape[1], scalar_output=True)
    return config, members, X, y


def _check_betas(betas) -> tuple[float, float]:
    betas = tuple(betas)
    if len(betas) != 2 or not all(isinstance(b, int | float) and 0 <= b < 1 for b in betas):
        raise ValueError(f"adam_betas must be two numbers in [0, 1), got {betas!r}")
    return float(betas[0]), float(betas[1])
