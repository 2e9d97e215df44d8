"""Batched ensembles of bias-free ReLU MLPs: sampling at initialisation and full-batch training.

``K`` networks, possibly of different widths and depths, are handled in ONE batched computation:
members are grouped by shape, each group's weights are stacked into tensors ``(K_g, n_l, n_{l-1})``
and every layer is one ``torch.bmm``. Training uses a hand-written backward pass (also ``bmm``),
checked against autograd in ``tests/test_ensemble.py``.

Notation of the book (:mod:`asbbook.nets`): ``z^l = W^l h^{l-1}``, ``h^0 = x``, ``h^l = relu(z^l)``,
``f(x) = z^L``. With ``delta^l = dloss/dz^l`` (shape ``(K, P, n_l)``) backpropagation reads
(Rumelhart, Hinton & Williams 1986)::

    dloss/dW^l   = delta^l^T h^{l-1}                       (summed over the P examples)
    delta^{l-1}  = (delta^l W^l) * 1[z^{l-1} > 0]           (ReLU gate, derivative 0 at z = 0)

Losses (mean over the ``P`` examples, per member):

* ``"hinge"``: ``mean_mu max(0, 1 - y_mu f_mu)``, the book's surrogate risk (Chapter 5),
  ``dloss/df_mu = -y_mu 1[y_mu f_mu < 1] / P``;
* ``"squared"``: ``mean_mu (y_mu - f_mu)^2 / 2``, ``dloss/df_mu = (f_mu - y_mu) / P``.

Optimisers: full-batch gradient descent ``W <- W - lr g`` (fused into the weight-gradient
matmul, ``W.baddbmm_(delta^T, h, alpha=-lr)``, so it costs no extra pass over memory) and Adam
(Kingma & Ba 2015, in the form of ``torch.optim.Adam``: ``m <- b1 m + (1-b1) g``,
``v <- b2 v + (1-b2) g^2``, ``W <- W - lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps)``),
elementwise, so per member.

Reproducibility contract: a member's initial weights come from its own ``torch.Generator``
seeded by :func:`member_seed` (a hash of the base seed and the member's own configuration), and
its trajectory does not depend on which other members share the batch: its result is a function
of (member, its dataset, ``pad_to``, the other arguments) only. Four implementation choices make
that hold bitwise on the CPU (tested): (i) a batch of one is computed as a batch of two
identical copies (MKL's ``bmm`` routes a single matrix to ``mm``, which rounds differently;
batches of two or more give every matrix the same result); (ii) elementwise, only single IEEE
operations are used (no ``alpha=``, ``addcmul``, ``lerp``, whose vectorised and scalar-tail
paths may round differently under FMA, and a member's elements may sit in either), so Adam is
13 single operations on one flat buffer per group rather than a fused ``lerp_``/``addcmul_``
step; (iii) members that stop are removed from their group, never masked; (iv) padding
(``pad_to``) is a function of the member's own widths, never of the batch. Padding changes
rounding (a matmul over ``n`` or over ``pad_to`` summands), so it is opt-in; without it the
numbers are bitwise those of the engine before padding, flat buffers and the one-sync step
check were introduced. (Measured with torch 2.13's MKL on the CPU, also across 1 and 2
threads; CUDA's batched GEMMs make no such promise.)

Per step the engine synchronises once per group: a probe (sum of the loss and of the outputs,
non-finite if any of them is; masked by the unsatisfied-margin counts) says whether any member
may stop. Only then are the loss, 0-1 error and divergence flags computed, by the formulas
above, so the result is that of checking every member at every step.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from asbbook import nets, validation
from asbbook.ensemble.groups import (
    _Evaluation,
    _Group,
    _layer_offsets,
    _layer_views,
    padded_widths,
)
from asbbook.ensemble.kernels import (
    batched_backward,
    batched_forward,
    batched_gradients,
    batched_perceptron_hinge_step,
    batched_preactivations,
    flops_per_step,
    loss_and_output_grad,
)
from asbbook.ensemble.records import (
    RESERVED_KEYS,
    EnsembleResult,
    History,
    RecordFn,
    _Outcome,
    _Recorder,
    record_steps,
)

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "RESERVED_KEYS",
    "SAMPLE_CHUNK",
    "EnsembleResult",
    "History",
    "MemberSpec",
    "RecordFn",
    "batched_backward",
    "batched_forward",
    "batched_gradients",
    "batched_perceptron_hinge_step",
    "batched_preactivations",
    "flops_per_step",
    "loss_and_output_grad",
    "member_seed",
    "member_specs",
    "member_weights",
    "padded_widths",
    "record_steps",
    "resolve_device",
    "sample_ensemble",
    "stacked_weights",
    "train_ensemble",
]

LOSSES = ("hinge", "squared")
OPTIMIZERS = ("gd", "adam")
SAMPLE_CHUNK = 256  # members whose weights sample_ensemble holds at once


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


resolve_device = validation.resolve_device  # the one device rule, kept under its old name


def _check_int(name: str, value, *, minimum: int) -> int:
    return validation.check_int(name, value, minimum=minimum)


def _check_positive_float(name: str, value) -> float:
    return validation.check_real(name, value, positive=True)


_check_choice = validation.check_choice
_check_dtype = validation.check_float_dtype


def _activation_bytes(members: Sequence[MemberSpec], n_examples: int, dtype) -> float:
    """Memory of the members' activations ``(K, P, n_l)`` (pre-activations and layer inputs,
    twice over for the backward pass) plus weights, gradients and Adam's two moments."""
    size = validation.element_bytes(dtype)
    units = sum(sum(m.widths) for m in members)
    params = sum(m.n_params for m in members)
    return size * (3.0 * n_examples * units + 4.0 * params)


def _check_members(members) -> tuple[MemberSpec, ...]:
    members = tuple(members)
    if not members:
        raise ValueError("the ensemble is empty: pass at least one MemberSpec")
    for m in members:
        if not isinstance(m, MemberSpec):
            raise ValueError(f"members must be MemberSpec instances, got {m!r}")
    return members


def _check_inputs(X, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``X`` ``(P, n_0)``: real floats without NaN (integer inputs are refused, not truncated)."""
    return validation.check_inputs(X, dtype=dtype, device=device)


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
        n_members = _check_int("n_members", n_members, minimum=1)
        widths = validation.check_widths(widths)
        n_rows = torch.as_tensor(X).shape[0] if hasattr(X, "shape") else len(X)
        size = validation.element_bytes(_check_dtype(dtype))
        validation.check_memory("n_members", size * n_members * n_rows * sum(widths))
        members = member_specs(widths, n_members, sigma2)
    members = _check_members(members)
    if len({m.widths for m in members}) != 1:
        raise ValueError("sample_ensemble needs members that all share the same widths")
    device, dtype = resolve_device(device), _check_dtype(dtype)
    X = _check_inputs(X, dtype, device)
    size = validation.element_bytes(dtype)
    validation.check_memory("n_members", size * len(members) * X.shape[0] * sum(members[0].widths))
    _check_shapes(members, X.shape[1], scalar_output=False)
    chunks = [members[i : i + SAMPLE_CHUNK] for i in range(0, len(members), SAMPLE_CHUNK)]
    parts = [batched_preactivations(stacked_weights(c, seed, dtype, device), X) for c in chunks]
    return [torch.cat(layer) for layer in zip(*parts, strict=True)]


# ---------------------------------------------------------------------------------------------
# Training: one group of members in one (padded) shape
# ---------------------------------------------------------------------------------------------


def _make_groups(members, seed, config, X, y, datasets) -> list[_Group]:
    """One group per (padded) shape; members of a group may have different datasets."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for k, m in enumerate(members):
        by_shape.setdefault(padded_widths(m.widths, config["pad_to"]), []).append(k)
    groups = []
    for widths, ids in by_shape.items():
        flat = torch.zeros(
            _layer_offsets(len(ids), widths, X.element_size())[-1], dtype=X.dtype, device=X.device
        )
        views = _layer_views(flat, len(ids), widths)
        for j, k in enumerate(ids):
            for view, w in zip(
                views, member_weights(members[k], seed, X.dtype, X.device), strict=True
            ):
                view[j, : w.shape[0], : w.shape[1]] = w
        X_g, y_g = X, y
        if datasets is not None:
            index = torch.tensor([datasets[k] for k in ids], device=X.device)
            shared = bool((index == index[0]).all())
            X_g = X[index[0]] if shared else X.index_select(0, index)
            y_g = y[index[0]] if shared else y.index_select(0, index)
        groups.append(_Group(ids, widths, flat, config["optimizer"], X_g, y_g))
    return groups


def _advance(group: _Group, t: int, *, config, outcome, recorder) -> None:
    """One step of one group: evaluate at ``W_t``, record, retire finished members, update."""
    record_now = recorder is not None and recorder.wants(t)
    ev = _Evaluation(group, config["loss"], keep_preactivations=record_now)
    last = t == config["steps"]
    if not (last or record_now) and ev.quiet(config["stop"]):
        group.update(ev, config["lr"], config["betas"], config["eps"])
        return
    if last:
        finished = torch.arange(len(group.ids), device=ev.f.device)
    else:
        done = ev.bad | (ev.n_unsatisfied == 0) if config["stop"] else ev.bad
        finished = done.nonzero()[:, 0]
    if recorder is not None:
        recorder.record(group, ev, t, finished)
    if len(finished):
        outcome.finish(group, ev, finished)
        if last or len(finished) == len(group.ids):
            group.ids = []
            return
        keep = (~done).nonzero()[:, 0]
        group.keep(keep)
        ev.hs = [group.inputs()] + [h.index_select(0, keep) for h in ev.hs[1:]]
        ev.grad_f = ev.grad_f.index_select(0, keep)
    group.update(ev, config["lr"], config["betas"], config["eps"])


# ---------------------------------------------------------------------------------------------
# Training: the driver
# ---------------------------------------------------------------------------------------------


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
    datasets: Sequence[int] | None = None,
    pad_to: int | None = None,
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
    shape group (``zs``: list of ``(K_g, P, n_l)``, ``f``: ``(K_g, P)``, ``y``: ``(P,)``, or
    ``(K_g, P)`` with ``datasets``; values ``(K_g,)`` or ``(K_g, m)``). Initial weights:
    :func:`member_weights` ``(member, seed)``.

    Several datasets in one call: ``X`` ``(D, P, n_0)``, ``y`` ``(D, P)`` and ``datasets[k]``,
    the index of member ``k``'s dataset; members of one shape share a group whatever their
    data. ``pad_to`` merges narrow shapes into one group (:func:`padded_widths`; the extra units
    start at zero and stay there). Padding changes the rounding of a member's arithmetic but
    not its dependence on the batch: results depend on ``(member, its data, pad_to)`` and the
    other arguments, never on the other members. It cannot be combined with ``record_fn``.
    """
    config, members, X, y = _validate_training(
        members, X, y, loss, optimizer, lr, steps, seed, adam_betas, adam_eps, dtype, device
    )
    datasets = _check_datasets(datasets, X, len(members))
    config.update(stop=bool(stop_at_zero_hinge), optimizer=optimizer)
    config["pad_to"] = None if pad_to is None else _check_int("pad_to", pad_to, minimum=1)
    if pad_to is not None and record_fn is not None:
        raise ValueError("pad_to cannot be combined with record_fn (padded units would be seen)")
    recorder = _make_recorder(len(members), steps, record_every, record_fn)
    outcome = _Outcome(members)
    groups = _make_groups(members, seed, config, X, y, datasets)
    with tqdm(total=steps, disable=not progress, desc="train_ensemble") as bar:
        for t in range(steps + 1):
            for group in groups:
                _advance(group, t, config=config, outcome=outcome, recorder=recorder)
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
    if torch.as_tensor(X).ndim == 3:  # several datasets: each is checked like a single one
        X = torch.stack([_check_inputs(x, dtype, device) for x in torch.as_tensor(X)])
        y = torch.as_tensor(y)
        if y.ndim != 2 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y must have shape ({X.shape[0]}, {X.shape[1]}), got {tuple(y.shape)}"
            )
        y = torch.stack([_check_labels(row, X.shape[1], loss, dtype, device) for row in y])
    else:
        X = _check_inputs(X, dtype, device)
        y = _check_labels(y, X.shape[0], loss, dtype, device)
    _check_shapes(members, X.shape[-1], scalar_output=True)
    validation.check_memory("members", _activation_bytes(members, X.shape[-2], dtype))
    return config, members, X, y


def _check_datasets(datasets, X: torch.Tensor, n_members: int) -> list[int] | None:
    """``datasets`` is required with a 3-D ``X`` and refused with a 2-D one."""
    if X.ndim == 2:
        if datasets is not None:
            raise ValueError("datasets needs X of shape (D, P, n_0) and y of shape (D, P)")
        return None
    if datasets is None or len(datasets) != n_members:
        raise ValueError(f"datasets must give one dataset index per member ({n_members})")
    return [_check_index("datasets", d, X.shape[0]) for d in datasets]


def _check_index(name: str, value, size: int) -> int:
    value = _check_int(name, value, minimum=0)
    if value >= size:
        raise ValueError(f"{name} entries must be < {size} (the number of datasets), got {value}")
    return value


def _check_betas(betas) -> tuple[float, float]:
    betas = tuple(betas)
    if len(betas) != 2 or not all(isinstance(b, int | float) and 0 <= b < 1 for b in betas):
        raise ValueError(f"adam_betas must be two numbers in [0, 1), got {betas!r}")
    return float(betas[0]), float(betas[1])
