"""Bookkeeping of :func:`asbbook.ensemble.train_ensemble`: per-member results and recorded
history, filled in group by group as members finish. Re-exported by :mod:`asbbook.ensemble`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from asbbook.ensemble.kernels import batched_preactivations

RESERVED_KEYS = ("loss", "n_unsatisfied", "train_error")

RecordFn = Callable[[list[torch.Tensor], torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


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

    members: tuple  # of asbbook.ensemble.MemberSpec
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


class _Outcome:
    """Final per-member values, filled in as members finish."""

    def __init__(self, members: tuple):
        k = len(members)
        self.members = members
        self.loss = np.full(k, np.nan)
        self.train_error = np.full(k, np.nan)
        self.n_unsatisfied = np.zeros(k, dtype=np.int64)
        self.steps = np.zeros(k, dtype=np.int64)
        self.converged = np.zeros(k, dtype=bool)
        self.diverged = np.zeros(k, dtype=bool)
        self.weights: list[list[torch.Tensor] | None] = [None] * k

    def finish(self, group, ev, positions: torch.Tensor) -> None:
        """Store the final values of the members at ``positions`` of ``group`` (evaluated in
        ``ev`` at step ``group.t``); padded weights are cut back to the member's own widths."""
        loss = ev.loss[positions].cpu().numpy()
        n_unsat = ev.n_unsatisfied[positions].cpu().numpy()
        error = ev.train_error[positions].cpu().numpy()
        bad = ev.bad[positions].cpu().numpy()
        for j, pos in enumerate(positions.tolist()):
            k = group.ids[pos]
            self.loss[k], self.n_unsatisfied[k], self.train_error[k] = loss[j], n_unsat[j], error[j]
            self.steps[k], self.diverged[k] = group.t, bad[j]
            self.converged[k] = (not bad[j]) and n_unsat[j] == 0
            widths = self.members[k].widths
            self.weights[k] = [
                w[pos, :n_out, :n_in].detach().cpu().clone()
                for w, n_in, n_out in zip(group.weights, widths[:-1], widths[1:], strict=True)
            ]

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

    def values(self, ev, zs, y, positions=None) -> dict[str, torch.Tensor]:
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

    def record(self, group, ev, t: int, finished) -> None:
        """Store the group's values if ``t`` is a recorded step; members ``finished`` at ``t``
        also fill every later recorded step with their step-``t`` values (their
        pre-activations are recomputed when this step kept none: the same numbers, since a
        member's arithmetic does not depend on its batch)."""
        now = self.values(ev, ev.zs, group.y) if self.wants(t) else None
        if now is not None:
            self._store(group.ids, now, [self.columns[t]])
        later = np.flatnonzero(self.steps > t)
        if len(finished) and len(later):
            if now is None:
                weights = [w.index_select(0, finished) for w in group.weights]
                X, y = group.data(finished)
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
