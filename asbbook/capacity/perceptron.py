"""Full-batch hinge-loss gradient descent on a homogeneous linear unit (the perceptron), batched
over datasets with ``bmm``, and the book's reservoir measure at initialisation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from asbbook import ensemble, validation
from asbbook.capacity.counting import _as_count
from asbbook.capacity.separability import is_linearly_separable, trial_patterns
from asbbook.phase import reservoir_entropy_bits as gate_entropy_bits
from asbbook.stats import Estimate


@dataclass(frozen=True)
class HingeTraining:
    """Outcome of :func:`perceptron_hinge_training` (one entry per trial)."""

    P: int
    N: int
    max_steps: int
    lr: float
    steps: np.ndarray  # GD steps until the hinge loss first hit 0; -1 if not within max_steps
    final_loss: np.ndarray  # mean hinge loss when training stopped
    separable: np.ndarray | None  # LP verdict on the same data (when requested)

    @property
    def reached(self) -> np.ndarray:
        """Boolean mask of the trials that reached zero hinge loss within the budget."""
        return self.steps >= 0

    @property
    def fraction(self) -> float:
        """Fraction of trials reaching zero hinge loss within ``max_steps``."""
        return float(self.reached.mean())

    @property
    def stderr(self) -> float:
        """Binomial standard error ``sqrt(f (1 - f) / n)`` of :attr:`fraction`."""
        f = self.fraction
        return math.sqrt(f * (1 - f) / len(self.steps))

    @property
    def median_steps(self) -> float:
        """Median of the steps needed over the trials that reached zero (``nan`` if none)."""
        ok = self.steps[self.reached]
        return float(np.median(ok)) if ok.size else math.nan


def perceptron_hinge_training(
    P: int,
    N: int,
    n_trials: int,
    *,
    max_steps: int = 1000,
    lr: float = 1.0,
    seed: int = 0,
    check_separable: bool = False,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> HingeTraining:
    """Full-batch (sub)gradient descent on the mean hinge loss of ``f(x) = w . x`` (no bias).

    For every trial (the datasets of :func:`trial_patterns`), start at ``w = 0`` and iterate

        w <- w + (lr / P) sum_{mu: y_mu w.x_mu < 1} y_mu x_mu,

    the gradient step of ``L(w) = (1/P) sum_mu max(0, 1 - y_mu w . x_mu)`` (subgradient 0 at the
    kink). A trial stops as soon as every margin is ``>= 1`` (zero hinge loss, then ``w`` is a
    fixed point). The trials run as one batch on ``device``; finished trials are dropped from the
    batch. Reaching zero implies separability (the run's ``w`` separates), and for separable data
    the number of steps is at most ``P (2/lr + R^2) / gamma^2`` (:func:`derive_hinge_versus_zero_one`).
    With ``check_separable`` the LP verdict on the same data is returned too.
    """
    P, N = _as_count("P", P), _as_count("N", N)
    n_trials = _as_count("n_trials", n_trials)
    max_steps = validation.check_int("max_steps", max_steps, minimum=0)
    lr = validation.check_real("lr", lr, positive=True, maximum=1e6)  # beyond: overflow
    dtype = validation.check_float_dtype(dtype)
    dev = validation.resolve_device(device)
    validation.check_memory("n_trials", 3.0 * n_trials * P * N * validation.element_bytes(dtype))
    data = [trial_patterns(P, N, t, seed=seed) for t in range(n_trials)]
    separable = None
    if check_separable:
        separable = np.array([is_linearly_separable(X.numpy(), y.numpy()) for X, y in data])
    X = torch.stack([d[0] for d in data]).to(dtype=dtype, device=dev)  # (T, P, N)
    Y = torch.stack([d[1] for d in data]).to(dtype=dtype, device=dev)  # (T, P)
    YX = Y[:, :, None] * X  # rows y_mu x_mu
    del X, Y, data
    w = torch.zeros(n_trials, N, 1, dtype=dtype, device=dev)
    alive = torch.arange(n_trials, device=dev)
    steps = np.full(n_trials, -1, dtype=np.int64)
    final_loss = np.full(n_trials, math.nan)
    for step in range(max_steps + 1):
        margins = torch.bmm(YX, w)[..., 0]  # (T, P): one batched matrix-vector product
        active = margins < 1
        # NaN margins compare false: finiteness is required before "every margin >= 1" counts
        done = ~active.any(dim=1) & torch.isfinite(margins).all(dim=1)
        if step == max_steps or bool(done.any()):
            loss = torch.clamp(1 - margins, min=0).mean(dim=1)
            idx = alive.cpu().numpy()
            finished = done.cpu().numpy()
            steps[idx[finished]] = step
            final_loss[idx] = loss.cpu().numpy()
            if step == max_steps or bool(done.all()):
                break
            keep = ~done
            # compact the batch (cheap relative to the remaining steps)
            YX, w, alive, active = YX[keep], w[keep], alive[keep], active[keep]
        # sum over the unsatisfied rows: (T, 1, P) @ (T, P, N), transposed to (T, N, 1)
        push = torch.bmm(active.to(dtype)[:, None, :], YX).transpose(1, 2)
        w = w + (lr / P) * push
    return HingeTraining(
        P=P,
        N=N,
        max_steps=max_steps,
        lr=float(lr),
        steps=steps,
        final_loss=final_loss,
        separable=separable,
    )


def gate_entropy_at_init(
    widths,
    X,
    n_members: int,
    *,
    sigma2: float = 2.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[float, float]:
    """Mean and standard error (an ``Estimate``) over ``n_members`` He-initialised networks of
    :func:`asbbook.phase.reservoir_entropy_bits` on ``X`` (members as in ``asbbook.ensemble``)."""
    n_members = _as_count("n_members", n_members)
    members = ensemble.member_specs(tuple(widths), n_members, sigma2)
    dev = validation.resolve_device(device)
    weights = ensemble.stacked_weights(members, seed, torch.float64, dev)
    s = gate_entropy_bits(weights, X).cpu().numpy()
    se = float(s.std(ddof=1) / math.sqrt(n_members)) if n_members > 1 else math.inf
    return Estimate(float(s.mean()), se)
