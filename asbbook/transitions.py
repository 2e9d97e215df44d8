"""Phase transitions of success fractions: where they cross 1/2, and the line they follow.

Used by the capacity chapters (5 and 6): a fraction of runs reaching zero loss rises with the
number of parameters ``N`` at fixed ``P``; :func:`transition_point` locates its crossing ``N*``
with a standard error, :func:`fit_transition_line` fits ``N*(P)`` and :func:`depth_spread`
measures how well a control variable collapses the transitions of different depths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from asbbook.stats import weighted_least_squares


def _as_numpy(value, name: str = "value") -> np.ndarray:
    """``value`` (a tensor, array or sequence of real numbers) as a float64 array."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers, got {value!r}") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _as_1d(name: str, value, *, positive: bool = False) -> np.ndarray:
    arr = _as_numpy(value, name)
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite entries")
    if positive and not (arr > 0).all():
        raise ValueError(f"{name} must be positive, got {arr}")
    return arr


@dataclass(frozen=True)
class Transition:
    """A 1/2-crossing of a success fraction along a positive control variable ``x``
    (a parameter count, a gate entropy, ...), from :func:`transition_point`."""

    x_star: float  # the crossing
    x_star_se: float  # its standard error (delta method on log x*, times x*)
    log_x_star: float  # ln x*
    log_x_star_se: float  # standard error of ln x*
    width: float  # logistic width s in ln x (fraction = sigmoid((ln x - ln x*) / s)); nan if interpolated
    method: str


def _firth_logistic(u, k, n, max_iter: int = 200):
    """Firth-penalised binomial logistic regression ``logit p = a + b u`` (Firth 1993).

    Maximises ``l(beta) + (1/2) ln det I(beta)`` (the Jeffreys prior), which keeps the estimate
    finite when the data are perfectly separated (a sharp transition between two grid points).
    Newton steps on the modified score ``sum_i (k_i - n_i p_i + h_i (1/2 - p_i)) x_i``, ``h_i``
    the hat values of the weighted design. Returns ``(beta, inverse Fisher information)``.
    """
    Xd = np.column_stack([np.ones_like(u), u])
    beta = np.zeros(2)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(Xd @ beta)))
        w = n * p * (1 - p)
        info = Xd.T @ (w[:, None] * Xd)
        cov = np.linalg.inv(info)
        h = w * np.einsum("ij,jk,ik->i", Xd, cov, Xd)
        score = Xd.T @ (k - n * p + h * (0.5 - p))
        step = cov @ score
        norm = np.max(np.abs(step))
        if norm > 5.0:  # damp the first steps of a very sharp transition
            step *= 5.0 / norm
        beta = beta + step
        if norm < 1e-10:
            break
    else:
        raise RuntimeError("the logistic fit of the transition did not converge")
    p = 1.0 / (1.0 + np.exp(-(Xd @ beta)))
    w = n * p * (1 - p)
    return beta, np.linalg.inv(Xd.T @ (w[:, None] * Xd))


def _pava(f, weights):
    """Non-decreasing least-squares fit (pool adjacent violators) of ``f`` with ``weights``."""
    blocks = []  # [value, weight, count]
    for v, wt in zip(f, weights, strict=True):
        blocks.append([v, wt, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([[v] * c for v, _, c in blocks])


def _interpolated_crossing(logx, f, n) -> float:
    """ln x where the monotone (PAVA) fit of ``f`` crosses 1/2, linear in ln x; nan if none."""
    g = _pava(f, n) - 0.5
    if g[0] >= 0 or g[-1] < 0:
        return math.nan
    i = int(np.flatnonzero(g >= 0)[0])
    if g[i] == 0:
        return float(logx[i])
    t = -g[i - 1] / (g[i] - g[i - 1])
    return float(logx[i - 1] + t * (logx[i] - logx[i - 1]))


def transition_point(
    x,
    fractions,
    n_trials,
    *,
    method: str = "logistic",
    n_bootstrap: int = 400,
    seed: int = 0,
) -> Transition:
    """Locate where a success fraction crosses 1/2 along a positive control variable ``x``.

    ``x``: grid values (e.g. parameter counts ``N``), ``fractions``: the measured fraction of
    runs succeeding (e.g. reaching zero hinge loss) at each, ``n_trials``: runs per point (a
    number or an array). The fraction must increase with ``x`` overall (as with ``N`` at fixed
    ``P``; for a fraction that falls with ``x``, such as separability against ``P``, pass
    ``1 - fraction``, which crosses 1/2 at the same place) and straddle 1/2.

    * ``method="logistic"`` (default): binomial maximum likelihood of
      ``f(x) = sigmoid((ln x - ln x*) / s)``, Firth-penalised so that a perfectly sharp step
      still gives a finite estimate; the standard error of ``ln x*`` is the delta method on the
      inverse Fisher information, and ``x*`` gets ``x* se(ln x*)``.
    * ``method="interpolate"``: linear interpolation in ``ln x`` of the 1/2 crossing of the
      monotone (pool-adjacent-violators) fit; standard error from a seeded parametric bootstrap
      of the counts, drawn with the Jeffreys-smoothed probabilities ``(k + 1/2) / (n + 1)``.
    """
    xv = _as_1d("x", x, positive=True)
    f = _as_1d("fractions", fractions)
    if f.shape != xv.shape:
        raise ValueError(f"fractions has shape {f.shape}, x has {xv.shape}")
    n = np.broadcast_to(_as_numpy(n_trials, "n_trials"), xv.shape).astype(np.float64)
    if not (np.isfinite(n).all() and (n >= 1).all() and (n == np.round(n)).all()):
        raise ValueError(f"n_trials must be positive integers, got {n_trials!r}")
    if ((f < 0) | (f > 1)).any():
        raise ValueError(f"fractions must lie in [0, 1], got {f}")
    if method not in ("logistic", "interpolate"):
        raise ValueError(f"method must be 'logistic' or 'interpolate', got {method!r}")
    if len(xv) < 2 or len(np.unique(xv)) < 2:
        raise ValueError("need at least two distinct x values")
    if not (f.min() < 0.5 < f.max() or (f.min() <= 0.5 <= f.max() and f.min() < f.max())):
        raise ValueError(f"the fractions do not straddle 1/2 (min {f.min()}, max {f.max()})")
    order = np.argsort(xv)
    logx, f, n = np.log(xv[order]), f[order], n[order]
    k = np.round(f * n)

    if method == "logistic":
        centre = float(logx.mean())
        (a, b), cov = _firth_logistic(logx - centre, k, n)
        if b <= 0:
            raise ValueError("the fitted fraction does not increase with x")
        grad = np.array([-1.0 / b, a / b**2])
        log_star = centre - a / b
        log_se = float(np.sqrt(grad @ cov @ grad))
        width = 1.0 / b
    else:
        log_star = _interpolated_crossing(logx, f, n)
        if math.isnan(log_star):
            raise ValueError("the monotone fit of the fractions does not cross 1/2")
        rng = np.random.default_rng(seed)
        p_smooth = (k + 0.5) / (n + 1)
        boots = []
        for _ in range(n_bootstrap):
            fb = rng.binomial(n.astype(np.int64), p_smooth) / n
            boots.append(_interpolated_crossing(logx, fb, n))
        boots = np.asarray(boots)
        boots = boots[np.isfinite(boots)]
        log_se = float(boots.std(ddof=1)) if boots.size > 1 else math.inf
        width = math.nan
    x_star = float(math.exp(log_star))
    return Transition(
        x_star=x_star,
        x_star_se=x_star * log_se,
        log_x_star=float(log_star),
        log_x_star_se=log_se,
        width=float(width),
        method=method,
    )


@dataclass(frozen=True)
class TransitionLine:
    """Weighted least-squares line ``x* = slope P + intercept``, from :func:`fit_transition_line`."""

    slope: float
    slope_se: float
    intercept: float  # 0 when fitted through the origin
    intercept_se: float
    covariance: np.ndarray  # of (slope, intercept), scaled by the Birge ratio when > 1
    chi2: float
    dof: int

    @property
    def patterns_per_unit(self) -> float:
        """``1 / slope``: examples per unit of ``x`` at the transition (for ``x = N``, the
        capacity per parameter, which is 2 for the perceptron)."""
        return 1.0 / self.slope

    @property
    def patterns_per_unit_se(self) -> float:
        """Standard error of :attr:`patterns_per_unit` (delta method, ``se / slope^2``)."""
        return self.slope_se / self.slope**2

    def predict(self, P):
        """``slope P + intercept``."""
        return self.slope * np.asarray(P, dtype=np.float64) + self.intercept

    def predict_se(self, P):
        """Standard error of :meth:`predict`: ``sqrt(v^T C v)`` with ``v = (P, 1)`` and ``C`` the
        covariance of ``(slope, intercept)`` (for a held-out ``P``; add the measurement's own
        error in quadrature when comparing with a measured transition)."""
        P = np.asarray(P, dtype=np.float64)
        c = self.covariance
        return np.sqrt(P * P * c[0, 0] + 2 * P * c[0, 1] + c[1, 1])


def fit_transition_line(P, x_star, x_star_se, *, through_origin: bool = False) -> TransitionLine:
    """Fit the transition line ``x*(P) = slope P + intercept`` by weighted least squares
    (weights ``1 / se^2``; the jamming line of Spigler, Geiger et al. 2019 when ``x* = N*``).

    The covariance is the usual ``(A^T W A)^{-1}``, multiplied by the Birge ratio
    ``chi2 / dof`` when that exceeds 1 (:func:`asbbook.stats.weighted_least_squares`).
    ``through_origin`` fixes the intercept at 0 (the perceptron's ``N* = P/2``).
    """
    Pv = _as_1d("P", P, positive=True)
    y = _as_1d("x_star", x_star)
    se = _as_1d("x_star_se", x_star_se, positive=True)
    if not (Pv.shape == y.shape == se.shape):
        raise ValueError(
            f"P, x_star and x_star_se differ in shape: {Pv.shape}, {y.shape}, {se.shape}"
        )
    n_par = 1 if through_origin else 2
    if len(np.unique(Pv)) < n_par:
        raise ValueError(f"need at least {n_par} distinct values of P")
    A = Pv[:, None] if through_origin else np.column_stack([Pv, np.ones_like(Pv)])
    fit = weighted_least_squares(A, y, se)
    if through_origin:
        full_cov = np.array([[fit.covariance[0, 0], 0.0], [0.0, 0.0]])
        slope, intercept = float(fit.coefficients[0]), 0.0
    else:
        full_cov = fit.covariance
        slope, intercept = float(fit.coefficients[0]), float(fit.coefficients[1])
    return TransitionLine(
        slope=slope,
        slope_se=float(np.sqrt(full_cov[0, 0])),
        intercept=intercept,
        intercept_se=float(np.sqrt(full_cov[1, 1])),
        covariance=full_cov,
        chi2=fit.chi2,
        dof=fit.dof,
    )


def depth_spread(x_star: dict, x_star_se: dict | None = None) -> tuple[float, float]:
    """How far apart the transitions of different depths lie, for one control variable.

    ``x_star`` maps each depth to its transitions ``x*`` at the same list of ``P`` (equal-length
    sequences). The spread is the mean over ``P`` and over pairs of depths of
    ``|ln x*_a - ln x*_b|`` (0 when the depths' transition lines coincide: a perfect collapse;
    ``exp(spread) - 1`` is the typical relative gap). With ``x_star_se`` (same layout) the
    standard error follows by the delta method, ``se(ln x*) = se / x*``, treating the transitions
    as independent. Returns ``(spread, se)`` (``se`` is ``nan`` without ``x_star_se``).
    """
    depths = list(x_star)
    if len(depths) < 2:
        raise ValueError(f"need the transitions of at least two depths, got {depths}")
    logs = {d: np.log(_as_1d(f"x_star[{d}]", x_star[d], positive=True)) for d in depths}
    n_p = len(logs[depths[0]])
    if any(len(v) != n_p for v in logs.values()):
        raise ValueError("every depth needs its transitions at the same P values")
    if x_star_se is not None:
        rel = {
            d: _as_1d(f"x_star_se[{d}]", x_star_se[d], positive=True) / np.exp(logs[d])
            for d in depths
        }
        if any(len(v) != n_p for v in rel.values()):
            raise ValueError("x_star_se must have the layout of x_star")
    gaps, variances = [], []
    for i, a in enumerate(depths):
        for b in depths[i + 1 :]:
            diff = logs[a] - logs[b]
            gaps.append(np.abs(diff))
            if x_star_se is not None:
                variances.append(rel[a] ** 2 + rel[b] ** 2)
    gaps = np.concatenate(gaps)
    spread = float(gaps.mean())
    if x_star_se is None:
        return spread, math.nan
    # d|u|/du = sign(u): each gap contributes its variance; the depths' x* at one P enter every
    # pair they belong to, so for more than two depths this ignores the pairs' correlation.
    return spread, float(math.sqrt(np.concatenate(variances).sum()) / len(gaps))
