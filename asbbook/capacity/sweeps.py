"""The chapter's sweeps, shared by the notebook and ``asbbook sweep 05``.

1. ``ch05-perceptron-lp``: :func:`separability_cell`, the exact LP verdict on Gaussian datasets.
2. ``ch05-perceptron-hinge``: :func:`hinge_training_cell`, hinge-loss gradient descent on the
   same datasets. The LP verdicts are *not* recomputed: ``hinge_dim`` is one of the LP sweep's
   dimensions and its first ``hinge_trials`` datasets are the hinge sweep's datasets, so the
   chapter reads them from sweep 1.
3. ``ch05-jamming``: :func:`adaptive_cell` for every loss, number of hidden layers and ``P``
   (random labels on Gaussian inputs): a coarse pass locates ``N*``, then a fine ladder around
   it (adjacent rungs at most ``ladder_ratio`` apart where the widths allow) is trained on
   ``runs_per_cell`` fresh datasets. The step budget is ``steps_per_example * P``: the number of
   gradient steps needed grows in proportion to ``P`` (the batch Novikoff bound
   ``T <= P (2/eta + R^2) / gamma^2`` of ``counting.derive_hinge_versus_zero_one``), and a fixed
   budget would make the transition at large ``P`` a property of the budget.
4. ``ch05-digits``: the same on scikit-learn's digits with their true labels and held-out test
   images (the generalisation cusp).
"""

from __future__ import annotations

import math

import numpy as np

from asbbook import validation
from asbbook.capacity.counting import _as_count
from asbbook.capacity.jamming import (
    architecture_ladder,
    fine_rungs,
    geometric_rungs,
    jamming_cell,
    run_data,
)
from asbbook.capacity.perceptron import perceptron_hinge_training
from asbbook.capacity.separability import is_linearly_separable, trial_patterns
from asbbook.capacity.training import LOSSES
from asbbook.transitions import transition_point


def separability_cell(point: dict) -> dict:
    """One ``(P, N)`` point of the perceptron experiment, a top-level function for
    ``asbbook.sweep``: the exact LP verdict (:func:`is_linearly_separable`) on each of the
    ``n_trials`` datasets ``trial_patterns(P, N, t, seed=seed)``, ``t = 0 .. n_trials - 1``.

    ``point`` keys: ``P``, ``N``, ``n_trials``, ``seed``. Returns ``{"separable": [bool, ...]}``;
    the mean is the Monte-Carlo estimate of Cover's fraction ``C(P, N) / 2^P``.
    """
    P, N = _as_count("P", point["P"]), _as_count("N", point["N"])
    n_trials = _as_count("n_trials", point["n_trials"])
    seed = validation.check_seed("seed", point["seed"])
    verdicts = []
    for t in range(n_trials):
        X, y = trial_patterns(P, N, t, seed=seed)
        verdicts.append(is_linearly_separable(X.numpy(), y.numpy()))
    return {"separable": verdicts}


def hinge_training_cell(point: dict) -> dict:
    """One ``(P, N)`` point of the hinge-training experiment, for ``asbbook.sweep``:
    :func:`perceptron_hinge_training` on the CPU (without the LP, which sweep 1 already ran on
    the same datasets).

    ``point`` keys: ``P``, ``N``, ``n_trials``, ``max_steps``, ``lr``, ``seed`` and optionally
    ``torch_threads``. Returns per trial ``steps`` (``-1``: not within the budget) and
    ``final_loss``.
    """
    with validation.torch_threads(point.get("torch_threads")):
        run = perceptron_hinge_training(
            point["P"],
            point["N"],
            point["n_trials"],
            max_steps=point["max_steps"],
            lr=float(point["lr"]),
            seed=validation.check_seed("seed", point["seed"]),
            device="cpu",
        )
    return {"steps": run.steps.tolist(), "final_loss": run.final_loss.tolist()}


def load_grid(alpha_step: float, alpha_max: float) -> list[float]:
    """The loads ``alpha_k = k alpha_step``, ``k = 1 .. floor(alpha_max / alpha_step)``
    (a relative slack of ``1e-9`` lets ``alpha_max = 4.0, alpha_step = 0.25`` include 4)."""
    if not (alpha_step > 0 and alpha_max >= alpha_step and math.isfinite(alpha_max)):
        raise ValueError(f"need 0 < alpha_step <= alpha_max, got {alpha_step}, {alpha_max}")
    k_max = int(math.floor(alpha_max / alpha_step * (1 + 1e-9)))
    return [round(k * alpha_step, 12) for k in range(1, k_max + 1)]


def patterns_for_load(alpha: float, N: int) -> int:
    """``P = max(1, floor(alpha N + 1/2))``: the number of patterns at load ``alpha`` in ``R^N``
    (rounded half up; the plotted load is then the exact ``P / N``)."""
    return max(1, int(math.floor(alpha * _as_count("N", N) + 0.5)))


def coarse_centre(n_params, fraction, n_runs) -> float:
    """Where the coarse pass puts ``N*``: the logistic 1/2 crossing
    (``transitions.transition_point``), clipped to the ladder's range; the top rung when no run fits, the bottom rung when
    every run fits, else the geometric mean of the rungs around the first fraction >= 1/2."""
    n, f = np.asarray(n_params, dtype=np.float64), np.asarray(fraction, dtype=np.float64)
    if (f == 0).all():
        return float(n[-1])
    if (f == 1).all():
        return float(n[0])
    try:
        # a crossing fitted from a few noisy rungs can land far outside the ladder (seen at
        # smoke size: N* = 1032 from rungs below 300); the fine pass must stay where data are
        return float(np.clip(transition_point(n, f, n_runs).x_star, n.min(), n.max()))
    except (ValueError, RuntimeError, np.linalg.LinAlgError):
        i = max(1, int(np.flatnonzero(f >= 0.5)[0])) if (f >= 0.5).any() else len(n) - 1
        return float(math.sqrt(n[i - 1] * n[i]))


def adaptive_cell(point: dict) -> dict:
    """One transition, resolved in two passes, as a top-level function for ``asbbook.sweep``.

    ``point`` keys: those of ``jamming.jamming_cell`` except ``hidden``/``n_runs``, plus
    ``hidden_layers``, ``coarse_min``/``coarse_max`` (ladder range in units of ``P``),
    ``coarse_rungs``, ``coarse_runs``, ``fine_span`` (the fine ladder covers
    ``[N*/span, N* span]``), ``ladder_ratio`` (largest ratio of adjacent fine rungs, where the
    integer widths allow; 0 for a geometric ladder of ``fine_rungs`` rungs instead) and
    ``runs_per_cell``. The fine pass uses datasets and initialisations independent of the
    coarse pass's (runs numbered after them).
    """
    P = validation.check_int("P", point["P"], minimum=2)
    depth = validation.check_int("hidden_layers", point["hidden_layers"], minimum=1, maximum=8)
    n_in = 64 if point["dataset"] == "digits" else int(point["n_inputs"])
    lo, hi = float(point["coarse_min"]) * P, float(point["coarse_max"]) * P
    span = float(point["fine_span"])
    candidates = architecture_ladder(n_in, depth, min(lo, lo / span), hi * span)
    targets = np.geomspace(lo, hi, int(point["coarse_rungs"]))
    coarse_hidden = geometric_rungs(candidates, targets)
    base = {k: v for k, v in point.items() if k not in ("hidden_layers",)}
    coarse_runs = int(point["coarse_runs"])
    coarse = jamming_cell(
        {**base, "hidden": coarse_hidden, "n_runs": coarse_runs, "measures": False}
    )
    centre = coarse_centre(coarse["n_params"], np.mean(coarse["converged"], axis=1), coarse_runs)
    ratio = float(point["ladder_ratio"])
    if ratio > 0:
        fine_hidden = fine_rungs(candidates, centre, span, ratio)
    else:
        targets = np.geomspace(centre / span, centre * span, int(point["fine_rungs"]))
        fine_hidden = geometric_rungs(candidates, targets)
    fine = jamming_cell(
        {
            **base,
            "hidden": fine_hidden,
            "n_runs": int(point["runs_per_cell"]),
            "first_run": coarse_runs,
        }
    )
    return {"coarse": coarse, "coarse_centre": centre, "fine": fine}


def cell_data_fingerprint(points) -> list:
    """The first training set of every point (for the sweep's data fingerprint)."""
    out = []
    for q in points:
        X, y, *_ = run_data(q, 0)
        out += [X, y]
    return out


SWEEP_PARAMETERS = (
    "perceptron_dims",
    "alpha_step",
    "alpha_max",
    "n_trials",
    "hinge_dim",
    "hinge_trials",
    "hinge_steps",
    "hinge_lr",
    "n_inputs",
    "hidden_layers",
    "losses",
    "P_fit",
    "P_predict",
    "coarse_min",
    "coarse_max",
    "coarse_rungs",
    "coarse_runs",
    "fine_span",
    "ladder_ratio",
    "runs_per_cell",
    "steps_per_example",
    "lr",
    "digits_P",
    "digits_test",
    "digits_runs",
    "digits_span",
    "digits_rungs",
    "seed",
)


def _check(condition: bool, name: str, message: str, value) -> None:
    from asbbook import params

    if not condition:
        raise params.ParameterError(f"parameter {name!r} must {message}, got {value!r}")


def sweep_parameters(parameters) -> dict:
    """Validate and normalise the Chapter-5 parameters that define its sweeps.

    ``parameters`` is the chapter's parameter dict (extra keys are ignored). Returns the
    ``SWEEP_PARAMETERS`` as plain Python values, so that equal settings give equal sweep points
    and cache keys however they were spelled (``1`` or ``1.0``). A missing or bad value raises
    ``asbbook.params.ParameterError`` naming the parameter, before any work.
    """
    from asbbook import params

    missing = [name for name in SWEEP_PARAMETERS if name not in parameters]
    if missing:
        raise params.ParameterError(f"missing chapter parameter(s): {', '.join(missing)}")
    v = dict(parameters)
    pi, pf = params.positive_int, params.positive_float
    out = {
        "perceptron_dims": params.int_list("perceptron_dims", v["perceptron_dims"], minimum=2),
        "alpha_step": pf("alpha_step", v["alpha_step"], maximum=4.0),
        "alpha_max": pf("alpha_max", v["alpha_max"], maximum=20.0),
        "n_trials": pi("n_trials", v["n_trials"], minimum=10, maximum=10**5),
        "hinge_dim": pi("hinge_dim", v["hinge_dim"], minimum=2, maximum=1000),
        "hinge_trials": pi("hinge_trials", v["hinge_trials"], minimum=2),
        "hinge_steps": pi("hinge_steps", v["hinge_steps"], minimum=1, maximum=10**6),
        "hinge_lr": pf("hinge_lr", v["hinge_lr"], maximum=100.0),
        "n_inputs": pi("n_inputs", v["n_inputs"], minimum=1, maximum=1000),
        "hidden_layers": params.int_list("hidden_layers", v["hidden_layers"], min_length=2),
        "losses": list(v["losses"]) if isinstance(v["losses"], list | tuple) else v["losses"],
        "P_fit": params.int_list("P_fit", v["P_fit"], minimum=8, min_length=2),
        "P_predict": params.int_list("P_predict", v["P_predict"], minimum=8),
        "coarse_min": pf("coarse_min", v["coarse_min"], maximum=100.0),
        "coarse_max": pf("coarse_max", v["coarse_max"], maximum=100.0),
        "coarse_rungs": pi("coarse_rungs", v["coarse_rungs"], minimum=3, maximum=100),
        "coarse_runs": pi("coarse_runs", v["coarse_runs"], minimum=1, maximum=1000),
        "fine_span": pf("fine_span", v["fine_span"], maximum=100.0),
        "ladder_ratio": pf("ladder_ratio", v["ladder_ratio"], maximum=4.0),
        "runs_per_cell": pi("runs_per_cell", v["runs_per_cell"], minimum=2, maximum=1000),
        "steps_per_example": pi("steps_per_example", v["steps_per_example"], maximum=10**4),
        "lr": pf("lr", v["lr"], maximum=10.0),
        "digits_P": pi("digits_P", v["digits_P"], minimum=8, maximum=1700),
        "digits_test": pi("digits_test", v["digits_test"], minimum=10, maximum=1700),
        "digits_runs": pi("digits_runs", v["digits_runs"], minimum=2, maximum=1000),
        "digits_span": pf("digits_span", v["digits_span"], maximum=100.0),
        "digits_rungs": pi("digits_rungs", v["digits_rungs"], minimum=3, maximum=100),
        "seed": params.seed("seed", v["seed"]),
    }
    o = out
    _check(
        max(o["perceptron_dims"]) <= 1000,
        "perceptron_dims",
        "hold dimensions <= 1000",
        o["perceptron_dims"],
    )
    _check(o["alpha_max"] >= o["alpha_step"], "alpha_max", "be at least alpha_step", o["alpha_max"])
    _check(
        len(load_grid(o["alpha_step"], o["alpha_max"])) <= 400,
        "alpha_step",
        "give at most 400 loads up to alpha_max",
        o["alpha_step"],
    )
    _check(
        o["hinge_dim"] in o["perceptron_dims"],
        "hinge_dim",
        f"be one of perceptron_dims {o['perceptron_dims']} (its LP verdicts are reused)",
        o["hinge_dim"],
    )
    _check(
        o["hinge_trials"] <= o["n_trials"],
        "hinge_trials",
        f"be at most n_trials = {o['n_trials']} (its LP verdicts are reused)",
        o["hinge_trials"],
    )
    _check(
        max(o["hidden_layers"]) <= 4 and len(set(o["hidden_layers"])) == len(o["hidden_layers"]),
        "hidden_layers",
        "list distinct numbers of hidden layers between 1 and 4",
        o["hidden_layers"],
    )
    _check(
        isinstance(o["losses"], list)
        and bool(o["losses"])
        and set(o["losses"]) <= set(LOSSES)
        and len(set(o["losses"])) == len(o["losses"]),
        "losses",
        f"be a list of distinct losses from {LOSSES}",
        o["losses"],
    )
    sizes = o["P_fit"] + o["P_predict"]
    _check(
        len(set(sizes)) == len(sizes) and max(sizes) <= 2000,
        "P_predict",
        "hold sizes <= 2000 that differ from each other and from P_fit",
        o["P_predict"],
    )
    _check(
        min(o["P_predict"]) > max(o["P_fit"]),
        "P_predict",
        f"lie above every fitted size (an extrapolation), P_fit = {o['P_fit']}",
        o["P_predict"],
    )
    _check(o["coarse_max"] > o["coarse_min"], "coarse_max", "exceed coarse_min", o["coarse_max"])
    _check(
        o["fine_span"] > 1 and o["digits_span"] > 1,
        "fine_span",
        "exceed 1 (as must digits_span)",
        o["fine_span"],
    )
    _check(o["ladder_ratio"] > 1, "ladder_ratio", "exceed 1", o["ladder_ratio"])
    _check(
        o["digits_P"] + o["digits_test"] <= 1797,
        "digits_test",
        f"leave digits_P + digits_test <= 1797 images, with digits_P = {o['digits_P']}",
        o["digits_test"],
    )
    budget = (
        sum(P * P for P in sizes)
        * o["coarse_max"]
        * o["fine_span"]
        * o["runs_per_cell"]
        * o["steps_per_example"]
    )
    _check(
        budget <= 5e9,
        "steps_per_example",
        "keep sum(P^2) coarse_max fine_span runs_per_cell steps_per_example below 5e9 "
        "(about ten times the chapter's default work)"
        "(lower steps_per_example, runs_per_cell or the sizes)",
        o["steps_per_example"],
    )
    return out


def _adaptive_points(p: dict) -> list[dict]:
    common = {
        "n_inputs": p["n_inputs"],
        "coarse_min": p["coarse_min"],
        "coarse_max": p["coarse_max"],
        "coarse_rungs": p["coarse_rungs"],
        "coarse_runs": p["coarse_runs"],
        "lr": p["lr"],
        "seed": p["seed"],
        "torch_threads": 1,
    }
    gaussian = [
        {
            **common,
            "dataset": "gaussian",
            "P": P,
            "steps": p["steps_per_example"] * P,
            "loss": loss,
            "hidden_layers": depth,
            "fine_span": p["fine_span"],
            "ladder_ratio": p["ladder_ratio"],
            "runs_per_cell": p["runs_per_cell"],
            "measures": loss == "hinge",
        }
        for P in sorted(p["P_fit"] + p["P_predict"], reverse=True)
        for depth in sorted(p["hidden_layers"], reverse=True)
        for loss in p["losses"]
    ]
    digits = {
        **common,
        "dataset": "digits",
        "P": p["digits_P"],
        "steps": p["steps_per_example"] * p["digits_P"],
        "n_test": p["digits_test"],
        "loss": "quadratic_hinge" if "quadratic_hinge" in p["losses"] else p["losses"][0],
        "hidden_layers": 1,
        "fine_span": p["digits_span"],
        "ladder_ratio": 0.0,
        "fine_rungs": p["digits_rungs"],
        "runs_per_cell": p["digits_runs"],
        "measures": False,
    }
    return gaussian, [digits]


def chapter_sweeps(parameters) -> list:
    """The four sweeps of Chapter 5 (module docstring), built from the chapter's parameters
    (:func:`sweep_parameters`); the notebook and ``asbbook sweep 05`` both call this, so a sweep
    run from the command line fills exactly the cache the notebook reads. Points are listed
    largest first so that the workers finish together; every point pins ``torch_threads = 1``,
    so all executors compute identical numbers. The data fingerprints hash the first dataset
    of every point, so a change of torch's random streams or of scikit-learn's digits
    invalidates the cache."""
    from asbbook import data
    from asbbook.sweep import SweepSpec

    p = sweep_parameters(parameters)
    alphas = load_grid(p["alpha_step"], p["alpha_max"])
    seed = p["seed"]

    def perceptron_points(dims, extra):
        pts = [
            {"P": patterns_for_load(a, N), "N": N, "seed": seed, **extra}
            for N in dims
            for a in alphas
        ]
        unique = {(q["P"], q["N"]): q for q in pts}  # small N: two loads may round to one P
        return sorted(unique.values(), key=lambda q: (-q["P"] * q["N"], q["N"]))

    def perceptron_fingerprint(points):
        return data.fingerprint(
            *[t for q in points for t in trial_patterns(q["P"], q["N"], 0, seed=seed)]
        )

    lp = perceptron_points(p["perceptron_dims"], {"n_trials": p["n_trials"]})
    hinge = perceptron_points(
        [p["hinge_dim"]],
        {
            "n_trials": p["hinge_trials"],
            "max_steps": p["hinge_steps"],
            "lr": p["hinge_lr"],
            "torch_threads": 1,
        },
    )
    gaussian, digits = _adaptive_points(p)
    return [
        SweepSpec("ch05-perceptron-lp", separability_cell, lp, perceptron_fingerprint(lp)),
        SweepSpec(
            "ch05-perceptron-hinge", hinge_training_cell, hinge, perceptron_fingerprint(hinge)
        ),
        SweepSpec(
            "ch05-jamming",
            adaptive_cell,
            gaussian,
            data.fingerprint(*cell_data_fingerprint(gaussian)),
        ),
        SweepSpec(
            "ch05-digits", adaptive_cell, digits, data.fingerprint(*cell_data_fingerprint(digits))
        ),
    ]
