"""Exact separability of a dichotomy by a homogeneous linear threshold unit: a linear program
(HiGHS, through scipy), certified in float64, and the Gaussian datasets of the perceptron
experiments (Cover 1965; Gardner 1988)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from asbbook.capacity.counting import _as_count
from asbbook.data import derive_seed, gaussian_patterns
from asbbook.stats import Estimate
from asbbook.transitions import _as_numpy


def check_patterns(X, y) -> tuple[np.ndarray, np.ndarray]:
    """Validate a dataset: ``X`` shaped ``(P, N)`` with ``P, N >= 1``, ``y`` shaped ``(P,)`` in
    ``{-1, +1}``, all finite. Accepts numpy arrays or torch tensors; returns float64 numpy arrays.
    Raises ``ValueError`` with the reason."""
    try:
        X, y = _as_numpy(X), _as_numpy(y)
    except (TypeError, ValueError) as err:
        raise ValueError(f"X and y must be numeric arrays: {err}") from None
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must have shape (P, N) with P, N >= 1, got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X {X.shape}, got {y.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite entries")
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinite entries")
    if not np.isin(y, (-1.0, 1.0)).all():
        raise ValueError(f"labels must be -1 or +1, got values {np.unique(y)[:6]}")
    return X, y


@dataclass(frozen=True)
class SeparationCertificate:
    """The result of the max-margin LP of :func:`separation_margin`."""

    margin: float  # t* = max over |w_i| <= 1 of min_mu y_mu w.x_mu / ||x_mu|| (>= 0)
    weights: np.ndarray  # the maximiser w* (a separator when margin > 0)
    min_margin_check: float  # min_mu y_mu w*.x_mu / ||x_mu||, recomputed in float64


def separation_margin(X, y) -> SeparationCertificate:
    """Largest box-normalised margin of a homogeneous separator, by a linear program (HiGHS).

    Solves ``max t`` subject to ``y_mu w . x_mu / ||x_mu|| >= t`` for all ``mu``,
    ``-1 <= w_i <= 1`` and ``t >= 0``. Rescaling each pattern by a positive factor does not
    change which homogeneous separators separate it, and normalising the rows keeps the LP well
    scaled. ``t* > 0`` iff the strict system ``y_mu w . x_mu > 0`` (equivalently the feasibility
    problem ``y_mu w . x_mu >= 1``, take ``w* / t*``) has a solution. A zero pattern forces
    ``t* = 0``. ``t*`` lies between the Euclidean max margin ``gamma`` of the unit-norm patterns
    and ``sqrt(N) gamma``.
    """
    from scipy.optimize import linprog

    X, y = check_patterns(X, y)
    P, N = X.shape
    norms = np.linalg.norm(X, axis=1)
    A = (y / np.where(norms > 0, norms, 1.0))[:, None] * X
    c = np.zeros(N + 1)
    c[-1] = -1.0
    res = linprog(
        c,
        A_ub=np.hstack([-A, np.ones((P, 1))]),
        b_ub=np.zeros(P),
        bounds=[(-1.0, 1.0)] * N + [(0.0, None)],
        method="highs",
    )
    if res.status != 0:  # the LP is always feasible (w = 0, t = 0) and bounded
        raise RuntimeError(f"the separability LP failed: {res.message}")
    w = np.asarray(res.x[:N])
    return SeparationCertificate(
        margin=float(res.x[-1]), weights=w, min_margin_check=float((A @ w).min())
    )


def is_linearly_separable(X, y, *, tol: float = 1e-9) -> bool:
    """Exact test: is there a **homogeneous** separator (through the origin, no bias) with
    ``sign(w . x_mu) = y_mu`` for every ``mu``?

    Equivalent to the feasibility of ``y_mu w . x_mu >= 1`` (rescale any strict separator). It is
    decided by the max-margin LP of :func:`separation_margin` (scipy's HiGHS), and the answer
    ``True`` is certified: the LP's ``w*`` is re-checked in float64 and must give every unit-norm
    pattern a margin above ``tol``. ``False`` means no ``w`` with ``|w_i| <= 1`` has a margin
    above ``tol`` (up to HiGHS's feasibility tolerance, ~1e-7 on the unit-scaled constraints), so
    datasets separable only with a normalised margin below ~1e-7 may be reported as
    non-separable; random Gaussian data near ``alpha = 2`` have margins of order 1e-3 or more.
    """
    cert = separation_margin(X, y)
    return bool(cert.margin > tol and cert.min_margin_check > tol)


def _trial_seed(seed: int, P: int, N: int, trial: int) -> int:
    """The data seed of one perceptron dataset: ``derive_seed(seed, purpose="perceptron-trial",
    P=P, N=N, trial=trial)`` (the package's one seed-derivation function)."""
    return derive_seed(seed, purpose="perceptron-trial", P=P, N=N, trial=trial)


def trial_patterns(
    P: int,
    N: int,
    trial: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gaussian patterns with random labels of one trial (``asbbook.data.gaussian_patterns``
    with a seed derived from ``(seed, P, N, trial)``); shared by :func:`separable_fraction` and
    :func:`perceptron_hinge_training`, so both see the same datasets."""
    return gaussian_patterns(P, N, seed=_trial_seed(seed, P, N, trial), dtype=dtype, device=device)


def separable_fraction(P: int, N: int, n_trials: int, seed: int = 0) -> Estimate:
    """Monte-Carlo fraction of random dichotomies of Gaussian patterns that are separable.

    ``n_trials`` datasets of ``P`` standard Gaussian patterns in ``R^N`` with uniform labels
    (:func:`trial_patterns`), each decided exactly by :func:`is_linearly_separable`. Returns
    ``(fraction, standard error)`` with the empirical ``sqrt(f (1 - f) / n_trials)`` (zero when
    every trial agrees; for a test of a prediction ``p`` prefer ``sqrt(p (1 - p) / n_trials)``).
    Its expectation is :func:`cover_fraction` ``(P, N)``.
    """
    P, N, n_trials = _as_count("P", P), _as_count("N", N), _as_count("n_trials", n_trials)
    hits = 0
    for t in range(n_trials):
        X, y = trial_patterns(P, N, t, seed=seed)
        hits += is_linearly_separable(X.numpy(), y.numpy())
    f = hits / n_trials
    return Estimate(f, math.sqrt(f * (1 - f) / n_trials))
