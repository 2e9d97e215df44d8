"""Analysis of the chapter's jamming cells: transitions, extrapolation, isostaticity, critical
slowing down, the generalisation cusp and the candidate measures of the reservoir.

Each function is small and pure; each returns a frozen dataclass or an ``Estimate``.
References: the jamming transition of deep networks (Spigler et al. 2019; Geiger et al. 2019,
PRE), of the perceptron (Franz & Parisi 2016; Franz, Hwang & Urbani 2019), model selection by
Akaike's information criterion (Akaike 1974).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from asbbook.stats import Estimate, weighted_least_squares
from asbbook.transitions import Transition, TransitionLine, fit_transition_line, transition_point


@dataclass(frozen=True)
class CellColumn:
    """One jamming cell's fine ladder pooled over its runs (from :func:`cell_column`)."""

    n_params: np.ndarray  # (W,) parameter counts N
    n_hidden: np.ndarray  # (W,) hidden units (the rescaling gauge's dimension)
    converged: np.ndarray  # (W, R) bool
    steps: np.ndarray  # (W, R) steps to zero loss (the budget when not converged)
    n_unsatisfied: np.ndarray  # (W, R) N_Delta at the end of training
    test_error: np.ndarray  # (W, R) held-out 0-1 error, or an empty array
    measures: dict  # name -> (W, R) value of each candidate reservoir measure at init

    @property
    def fraction(self) -> np.ndarray:
        return self.converged.mean(axis=1)

    @property
    def n_runs(self) -> int:
        return self.converged.shape[1]


def cell_column(result: dict) -> CellColumn:
    """The fine pass of an adaptive cell result (``asbbook.capacity.sweeps.adaptive_cell``).
    The candidate measures are ``N``, ``N - n_hidden``, the Jacobian rank and the gate entropy
    (the last two only when the cell computed them)."""
    fine = result["fine"]
    n = np.asarray(fine["n_params"], dtype=np.float64)
    hid = np.asarray(fine["n_hidden"], dtype=np.float64)
    conv = np.asarray(fine["converged"], dtype=bool)
    runs = conv.shape[1]
    measures = {
        "parameters": np.repeat(n[:, None], runs, axis=1),
        "parameters_minus_gauge": np.repeat((n - hid)[:, None], runs, axis=1),
    }
    if "jacobian_rank" in fine:
        measures["jacobian_rank"] = np.asarray(fine["jacobian_rank"], dtype=np.float64)
        measures["gate_entropy"] = np.asarray(fine["gate_entropy"], dtype=np.float64)
    return CellColumn(
        n_params=n,
        n_hidden=hid,
        converged=conv,
        steps=np.asarray(fine["steps"], dtype=np.float64),
        n_unsatisfied=np.asarray(fine["n_unsatisfied"], dtype=np.float64),
        test_error=np.asarray(fine.get("test_error", []), dtype=np.float64),
        measures=measures,
    )


def locate(x, fraction, n_runs) -> Transition | None:
    """``transitions.transition_point`` (Firth-logistic 1/2 crossing in ``ln x``), or ``None``
    when the fractions do not straddle 1/2, do not rise with ``x``, or give a crossing outside
    the rungs or without a finite error (a nearly flat fit can put it at 1e103: a fresh seed at
    smoke size did)."""
    try:
        found = transition_point(x, fraction, n_runs)
    except (ValueError, RuntimeError, np.linalg.LinAlgError):
        return None
    x = np.asarray(x, dtype=np.float64)
    inside = x.min() <= found.x_star <= x.max()
    return found if inside and math.isfinite(found.x_star_se) else None


def ladder_ratio_near(n_params, centre: float, window: float = 1.25) -> float:
    """The largest ratio of adjacent rungs with at least one rung within a factor ``window``
    of ``centre`` (the resolution of the ladder near the transition)."""
    n = np.sort(np.asarray(n_params, dtype=np.float64))
    ratios = n[1:] / n[:-1]
    near = (np.abs(np.log(n[1:] / centre)) <= math.log(window)) | (
        np.abs(np.log(n[:-1] / centre)) <= math.log(window)
    )
    return float(ratios[near].max()) if near.any() else math.nan


@dataclass(frozen=True)
class Extrapolation:
    """Proportional and affine fits of ``N*(P)`` at small ``P``, and the prediction at large P."""

    proportional: TransitionLine  # N* = a P
    affine: TransitionLine  # N* = a P + b
    delta_chi2: float  # chi2(proportional) - chi2(affine): evidence for the intercept (1 dof)
    delta_chi2_p: float  # its p-value under the proportional law
    delta_aic: float  # AIC(proportional) - AIC(affine); > 0 favours the affine law
    chosen: str  # "proportional" or "affine": the smaller AIC, decided on the fitted P only
    P_predicted: np.ndarray
    predicted: np.ndarray  # the affine law at P_predicted (unbiased under either law)
    predicted_se: np.ndarray  # its standard error
    measured: np.ndarray  # the measured N* there
    measured_se: np.ndarray

    @property
    def z(self) -> np.ndarray:
        """``(measured - predicted) / sqrt(se_pred^2 + se_meas^2)``."""
        return (self.measured - self.predicted) / np.hypot(self.predicted_se, self.measured_se)


def extrapolate(P_fit, star_fit, se_fit, P_pred, star_pred, se_pred) -> Extrapolation:
    """Fit ``N*(P)`` at ``P_fit`` through the origin and with an intercept (weighted least
    squares, ``transitions.fit_transition_line``), say which law AIC ``= chi2 + 2 k`` prefers,
    and predict at ``P_pred`` with the affine law. ``Delta chi2 = chi2_prop - chi2_aff`` is
    ``chi2(1)`` under the proportional law (nested models).

    The prediction is always the affine law's: it is unbiased whether or not the intercept
    vanishes, while predicting with the law AIC selects is biased after selection (a small
    intercept that AIC drops shifts the extrapolation), which would miscalibrate the test."""
    prop = fit_transition_line(P_fit, star_fit, se_fit, through_origin=True)
    aff = fit_transition_line(P_fit, star_fit, se_fit)
    d_chi2 = prop.chi2 - aff.chi2
    d_aic = d_chi2 - 2.0
    chosen = "affine" if d_aic > 0 else "proportional"
    line = aff
    P_pred = np.asarray(P_pred, dtype=np.float64)
    return Extrapolation(
        proportional=prop,
        affine=aff,
        delta_chi2=float(d_chi2),
        delta_chi2_p=float(sps.chi2.sf(max(d_chi2, 0.0), 1)),
        delta_aic=float(d_aic),
        chosen=chosen,
        P_predicted=P_pred,
        predicted=np.asarray(line.predict(P_pred), dtype=np.float64),
        predicted_se=np.asarray(line.predict_se(P_pred), dtype=np.float64),
        measured=np.asarray(star_pred, dtype=np.float64),
        measured_se=np.asarray(se_pred, dtype=np.float64),
    )


def rung_mean(values: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-rung mean and standard error over runs (optionally only where ``mask``); ``nan``
    where fewer than two runs count."""
    values = np.asarray(values, dtype=np.float64)
    mask = np.ones_like(values, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    mean, se = np.full(len(values), math.nan), np.full(len(values), math.nan)
    for i, (v, m) in enumerate(zip(values, mask, strict=True)):
        if m.sum() >= 2:
            mean[i] = v[m].mean()
            se[i] = v[m].std(ddof=1) / math.sqrt(m.sum())
    return mean, se


@dataclass(frozen=True)
class Isostaticity:
    """``N_Delta / N`` at the end of training on the rungs of one cell (quadratic hinge)."""

    load: np.ndarray  # N / N*
    ratio: np.ndarray  # mean over runs of N_Delta / N
    ratio_se: np.ndarray
    below: Estimate  # the rung just below N*
    above: Estimate  # the rung just above N*


def isostaticity(column: CellColumn, n_star: float) -> Isostaticity:
    """``N_Delta / N`` per rung against ``N / N*``; ``below``/``above`` are the rungs nearest
    to ``N*`` on either side (the jump of Geiger et al. 2019 at the jamming point)."""
    ratio, se = rung_mean(column.n_unsatisfied / column.n_params[:, None])
    load = column.n_params / n_star
    lo = np.flatnonzero(load < 1)
    hi = np.flatnonzero(load >= 1)
    nan = Estimate(math.nan, math.nan)
    below = Estimate(float(ratio[lo[-1]]), float(se[lo[-1]])) if lo.size else nan
    above = Estimate(float(ratio[hi[0]]), float(se[hi[0]])) if hi.size else nan
    return Isostaticity(load, ratio, se, below, above)


@dataclass(frozen=True)
class SlowingDown:
    """``ln t = c - z ln((N - N*) / N*)``: the steps to zero loss above the transition."""

    distance: np.ndarray  # (N - N*) / N* of the rungs used
    log_steps: np.ndarray  # mean ln(steps) of their converged runs
    log_steps_se: np.ndarray
    exponent: Estimate  # z
    chi2: float
    dof: int


def slowing_down(columns_and_stars, min_fraction: float = 0.75) -> SlowingDown:
    """Pool rungs above ``N*`` where at least ``min_fraction`` of the runs converged (so the
    mean over converged runs is little biased by the step budget) and fit ``ln t`` against
    ``ln((N - N*)/N*)`` by weighted least squares (``stats.weighted_least_squares``; its SE is
    scaled by the Birge ratio when the scatter exceeds the error bars)."""
    xs, ys, ses = [], [], []
    for column, n_star in columns_and_stars:
        mean, se = rung_mean(np.log(np.maximum(column.steps, 1.0)), column.converged)
        for n, f, m, s in zip(column.n_params, column.fraction, mean, se, strict=True):
            if n > n_star and f >= min_fraction and np.isfinite(m) and s > 0:
                xs.append((n - n_star) / n_star)
                ys.append(m)
                ses.append(s)
    if len(xs) < 3:
        raise ValueError(f"need at least 3 rungs above the transition, got {len(xs)}")
    x, y, se = np.array(xs), np.array(ys), np.array(ses)
    design = np.column_stack([np.ones_like(x), -np.log(x)])
    fit = weighted_least_squares(design, y, se)
    exponent = Estimate(float(fit.coefficients[1]), float(math.sqrt(fit.covariance[1, 1])))
    return SlowingDown(x, y, se, exponent, float(fit.chi2), int(fit.dof))


@dataclass(frozen=True)
class Cusp:
    """Held-out test error against ``N / N*`` (double descent, Spigler et al. 2019)."""

    load: np.ndarray
    error: np.ndarray
    error_se: np.ndarray
    at_star: Estimate  # interpolated in ln N at N*
    at_twice: Estimate  # at 2 N*
    ratio: Estimate  # at_star / at_twice (delta method, rungs treated as independent)
    peak_load: float  # N / N* of the rung with the largest mean test error


def _interp_log(load, values, ses, target) -> Estimate:
    logl = np.log(load)
    i = int(np.searchsorted(logl, math.log(target)))
    if i == 0 or i == len(load):
        return Estimate(math.nan, math.nan)
    t = (math.log(target) - logl[i - 1]) / (logl[i] - logl[i - 1])
    value = (1 - t) * values[i - 1] + t * values[i]
    return Estimate(float(value), float(math.hypot((1 - t) * ses[i - 1], t * ses[i])))


def cusp(column: CellColumn, n_star: float) -> Cusp:
    """Mean test error per rung, interpolated at ``N*`` and ``2 N*``, and its peak."""
    err, se = rung_mean(column.test_error)
    load = column.n_params / n_star
    a, b = _interp_log(load, err, se, 1.0), _interp_log(load, err, se, 2.0)
    r = a.value / b.value
    r_se = abs(r) * math.hypot(a.stderr / a.value, b.stderr / b.value)
    return Cusp(load, err, se, a, b, Estimate(r, r_se), float(load[int(np.nanargmax(err))]))


@dataclass(frozen=True)
class MeasureSpread:
    """How well one reservoir measure collapses the transitions of different depths."""

    name: str
    spread: Estimate  # mean |ln x*_a - ln x*_b| over P and pairs of depths
    patterns_per_unit: Estimate  # mean over cells of P / x* (2 for the perceptron in N)


def measure_transition(column: CellColumn, name: str) -> Transition | None:
    """The 1/2 crossing along the per-rung mean of measure ``name`` (runs pooled), or ``None``
    when the measure does not resolve the ladder: it must rise strictly with ``N`` from rung to
    rung (the Jacobian rank, for one, saturates at ``P`` once ``N - n_hidden >= P``, and a
    flat measure cannot locate a transition)."""
    x = column.measures[name].mean(axis=1)
    order = np.argsort(column.n_params, kind="stable")
    x, fraction = x[order], column.fraction[order]
    if not (x > 0).all() or not (np.diff(x) > 1e-9 * x[1:]).all():
        return None
    return locate(x, fraction, column.n_runs)


def measure_spreads(columns: dict, names, depths, sizes) -> list[MeasureSpread]:
    """For each measure, the transitions ``x*`` of every ``(depth, P)`` in ``columns`` and their
    spread over depths (``transitions.depth_spread``, delta-method SE), at the ``sizes`` where
    every depth has a transition; a measure that resolves no size gets ``nan`` estimates."""
    from asbbook.transitions import depth_spread

    out = []
    for name in names:
        stars = {
            (d, P): measure_transition(columns[d, P], name)
            for d in depths
            for P in sizes
            if name in columns[d, P].measures
        }
        usable = [P for P in sizes if all(stars.get((d, P)) is not None for d in depths)]
        if not usable:
            nan = Estimate(math.nan, math.nan)
            out.append(MeasureSpread(name, nan, nan))
            continue
        value, se = depth_spread(
            {d: [stars[d, P].x_star for P in usable] for d in depths},
            {d: [stars[d, P].x_star_se for P in usable] for d in depths},
        )
        load = [P / stars[d, P].x_star for d in depths for P in usable]
        load_se = [
            P * stars[d, P].x_star_se / stars[d, P].x_star ** 2 for d in depths for P in usable
        ]
        per = Estimate(
            float(np.mean(load)), float(math.sqrt(np.sum(np.square(load_se)))) / len(load)
        )
        out.append(MeasureSpread(name, Estimate(value, se), per))
    return out
