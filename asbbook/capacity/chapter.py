"""The chapter's summaries of its jamming sweeps (the bookkeeping behind the headline figures),
so that the notebook keeps prose, orchestration and plots."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asbbook.capacity.analysis import (
    CellColumn,
    Cusp,
    Extrapolation,
    Isostaticity,
    MeasureSpread,
    SlowingDown,
    cell_column,
    cusp,
    extrapolate,
    isostaticity,
    ladder_ratio_near,
    locate,
    measure_spreads,
    slowing_down,
)
from asbbook.stats import Estimate
from asbbook.transitions import Transition

MEASURES = ("parameters", "parameters_minus_gauge", "jacobian_rank", "gate_entropy")


@dataclass(frozen=True)
class JammingSummary:
    """Everything the chapter reads from the ``ch05-jamming`` sweep.

    Keys are ``(loss, hidden_layers, P)`` for cells and ``(loss, hidden_layers)`` for lines."""

    columns: dict  # -> CellColumn (fine pass)
    coarse: dict  # -> the coarse pass's result dict
    transitions: dict  # -> Transition or None (logistic 1/2 crossing along N)
    extrapolations: dict  # (loss, depth) -> Extrapolation or None
    ladder_ratio: float  # largest adjacent-rung ratio within x1.25 of any N*
    runs_per_cell: int
    isostatic: dict  # (depth, P) -> Isostaticity (quadratic hinge)
    isostatic_below: Estimate  # mean over cells of N_Delta/N on the rung just below N*
    isostatic_above: Estimate  # ... just above N*
    slowing: dict  # loss -> SlowingDown or None
    spreads: list  # MeasureSpread of each reservoir measure (linear hinge)


def _mean_estimate(estimates) -> Estimate:
    ok = [e for e in estimates if math.isfinite(e.value) and math.isfinite(e.stderr)]
    if not ok:
        return Estimate(math.nan, math.nan)
    value = float(np.mean([e.value for e in ok]))
    return Estimate(value, float(math.sqrt(sum(e.stderr**2 for e in ok)) / len(ok)))


def summarise_jamming(points, results, P_fit, P_predict) -> JammingSummary:
    """Pool the adaptive cells, locate every transition along ``N``, extrapolate ``N*(P)`` per
    loss and depth from ``P_fit`` to ``P_predict`` (proportional or affine, by AIC), and measure
    isostaticity, critical slowing down and the reservoir measures' collapse of the depths."""
    columns: dict[tuple, CellColumn] = {}
    coarse = {}
    for q, r in zip(points, results, strict=True):
        key = (q["loss"], int(q["hidden_layers"]), int(q["P"]))
        columns[key] = cell_column(r)
        coarse[key] = r
    trans: dict[tuple, Transition | None] = {
        k: locate(c.n_params, c.fraction, c.n_runs) for k, c in columns.items()
    }
    losses = sorted({k[0] for k in columns})
    depths = sorted({k[1] for k in columns})
    extrap = {}
    for loss in losses:
        for d in depths:
            fit = [trans.get((loss, d, P)) for P in P_fit]
            pred = [trans.get((loss, d, P)) for P in P_predict]
            if any(t is None for t in fit + pred):
                extrap[loss, d] = None
                continue
            extrap[loss, d] = extrapolate(
                P_fit,
                [t.x_star for t in fit],
                [t.x_star_se for t in fit],
                P_predict,
                [t.x_star for t in pred],
                [t.x_star_se for t in pred],
            )
    ratios = [
        ladder_ratio_near(columns[k].n_params, t.x_star) for k, t in trans.items() if t is not None
    ]
    iso = {
        (d, P): isostaticity(c, trans[loss, d, P].x_star)
        for (loss, d, P), c in columns.items()
        if loss == "quadratic_hinge" and trans[loss, d, P] is not None
    }
    slowing = {}
    for loss in losses:
        pairs = [
            (c, trans[k].x_star)
            for k, c in columns.items()
            if k[0] == loss and trans[k] is not None
        ]
        try:
            slowing[loss] = slowing_down(pairs)
        except ValueError:
            slowing[loss] = None
    sizes = sorted({k[2] for k in columns})
    linear = {(d, P): c for (loss, d, P), c in columns.items() if loss == "hinge"}
    usable = linear and len(depths) >= 2
    spreads = measure_spreads(linear, MEASURES, depths, sizes) if usable else []
    finite = [r for r in ratios if math.isfinite(r)]
    return JammingSummary(
        columns=columns,
        coarse=coarse,
        transitions=trans,
        extrapolations=extrap,
        ladder_ratio=float(max(finite)) if finite else math.nan,
        runs_per_cell=int(min(c.n_runs for c in columns.values())),
        isostatic=iso,
        isostatic_below=_mean_estimate([i.below for i in iso.values()]),
        isostatic_above=_mean_estimate([i.above for i in iso.values()]),
        slowing=slowing,
        spreads=spreads,
    )


def best_measure(spreads) -> tuple[MeasureSpread | None, Estimate]:
    """The measure with the smallest spread over depths, and its margin over the parameter
    count (``spread(N) - spread(best)``, SE in quadrature: the measures share their runs, so
    this SE ignores a positive correlation and is conservative)."""
    spreads = [s for s in spreads if math.isfinite(s.spread.value)]
    if not spreads:
        return None, Estimate(math.nan, math.nan)
    best = min(spreads, key=lambda s: s.spread.value)
    base = next((s for s in spreads if s.name == "parameters"), best)
    gap = base.spread.value - best.spread.value
    return best, Estimate(gap, math.hypot(base.spread.stderr, best.spread.stderr))


def digits_cusp(points, results) -> tuple[CellColumn, Transition | None, Cusp | None]:
    """The digits cell's fine column, its transition along ``N`` and the test-error cusp."""
    column = cell_column(results[0])
    t = locate(column.n_params, column.fraction, column.n_runs)
    if t is None:
        t_star = float(results[0]["coarse_centre"])
        return column, None, cusp(column, t_star)
    return column, t, cusp(column, t.x_star)


__all__ = [
    "MEASURES",
    "JammingSummary",
    "summarise_jamming",
    "best_measure",
    "digits_cusp",
    "Extrapolation",
    "Isostaticity",
    "SlowingDown",
]
