"""Chapter 6's training runs: locating N*, the widths near it, and the recorded order parameters.

See :mod:`asbbook.dynamics` for the chapter's overview.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from asbbook import data, ensemble, nets, order, phase, validation
from asbbook.stats import Estimate, mean_with_stderr
from asbbook.sweep import SweepSpec

#: name of the chapter's sweep (its cache lives in ``<cache_dir>/SWEEP_NAME``)
SWEEP_NAME = "ch6-transition"
#: name of the cached training runs at the two chosen rungs (:func:`dynamics_spec`)
DYNAMICS_SWEEP_NAME = "ch6-dynamics"


def _count(name: str, value, minimum: int = 1) -> int:
    """An integer (Python or numpy) ``>= minimum``."""
    return validation.check_int(name, value, minimum=minimum)


def _positive(name: str, value) -> float:
    return validation.check_real(name, value, positive=True)


# --------------------------------------------------------------------------------------------
# The chapter's sweep: locating N* at one P
# --------------------------------------------------------------------------------------------


def sweep_points(
    *,
    P: int,
    n_inputs: int,
    depth: int,
    n_min: float,
    n_max: float,
    n_rungs: int,
    n_data: int,
    n_init: int,
    steps: int,
    lr: float,
    seed: int,
    optimizer: str = "adam",
) -> list[dict]:
    """The points of ``asbbook.phase.random_label_cell`` that locate ``N*`` at one ``P``.

    One point per dataset: Gaussian inputs ``(P, n_inputs)`` with random labels, data seeds
    from ``asbbook.phase.cell_data_seed``, each trained ``n_init`` times at every rung of
    ``asbbook.phase.width_ladder(n_inputs, depth, n_min, n_max, n_rungs)`` with the hinge
    loss for ``steps`` full-batch steps, initial weights from base seed ``seed``. Torch runs
    single-threaded inside a point (``torch_threads = 1``).
    """
    P, n_inputs = _count("P", P, 2), _count("n_inputs", n_inputs)
    n_data, n_init = _count("n_data", n_data), _count("n_init", n_init)
    steps, seed = _count("steps", steps), _count("seed", seed, 0)
    ladder = phase.width_ladder(n_inputs, depth, n_min, n_max, n_rungs)
    if len(ladder) < 2:
        raise ValueError(f"the width ladder has fewer than two rungs: {ladder}")
    return phase.cell_points(
        dataset="gaussian",
        P=P,
        n_inputs=n_inputs,
        ladder=ladder,
        n_data=n_data,
        n_init=n_init,
        steps=steps,
        lr=lr,
        seed=seed,
        optimizer=optimizer,
    )


def chapter_sweeps(parameters: Mapping) -> list[SweepSpec]:
    """The chapter's sweeps from its notebook parameters (``metadata.asbbook.sweeps``).

    Reads ``P``, ``n_inputs``, ``depth``, ``ladder_min`` and ``ladder_max`` (the ladder spans
    ``[ladder_min P, ladder_max P]`` parameters), ``n_rungs``, ``n_data``, ``n_init``, ``steps``,
    ``lr`` and ``seed``; returns one ``asbbook.sweep.SweepSpec`` named :data:`SWEEP_NAME`.
    """
    P = _count("P", parameters["P"], 2)
    points = sweep_points(
        P=P,
        n_inputs=parameters["n_inputs"],
        depth=parameters["depth"],
        n_min=_positive("ladder_min", parameters["ladder_min"]) * P,
        n_max=_positive("ladder_max", parameters["ladder_max"]) * P,
        n_rungs=parameters["n_rungs"],
        n_data=parameters["n_data"],
        n_init=parameters["n_init"],
        steps=parameters["steps"],
        lr=parameters["lr"],
        seed=parameters["seed"],
    )
    return [SweepSpec(name=SWEEP_NAME, fn=phase.random_label_cell, points=points)]


@dataclass(frozen=True)
class NearWidths:
    """Equal-width networks placed near the transition, from :func:`near_transition_widths`."""

    widths: tuple[tuple[int, ...], ...]  # (n_0, h, .., h, 1) per network, increasing in N
    n_params: tuple[int, ...]  # their parameter counts N
    ratios: tuple[float, ...]  # N / N*
    factors: tuple[float, ...]  # the requested N / N* each was rounded from


def near_transition_widths(n_inputs: int, depth: int, n_star: float, factors) -> NearWidths:
    """Hidden widths whose parameter counts lie closest to ``factor x N*`` for each factor
    (``asbbook.phase.hidden_width_for``, rounded to an integer width of at least 1).

    Factors that round to the same width are merged (the first is kept), so fewer networks
    than factors can come back at small ``P``; the caller decides whether that is enough."""
    n_star = validation.check_real("n_star", n_star, positive=True)
    factors = [validation.check_real("factors", f, positive=True) for f in factors]
    if not factors:
        raise ValueError("factors must list at least one multiple of N*")
    chosen: dict[tuple[int, ...], float] = {}
    for factor in sorted(factors):
        h = max(1, round(phase.hidden_width_for(n_inputs, depth, factor * n_star)))
        chosen.setdefault((n_inputs, *(h,) * (depth - 1), 1), factor)
    widths = tuple(chosen)
    n_params = tuple(nets.parameter_count(w) for w in widths)
    return NearWidths(
        widths=widths,
        n_params=n_params,
        ratios=tuple(n / n_star for n in n_params),
        factors=tuple(chosen.values()),
    )


def success_probability(transition, n_params) -> tuple[np.ndarray, np.ndarray]:
    """The fitted probability of reaching zero loss at ``N``, with its standard error.

    From the logistic fit of ``asbbook.transitions.transition_point``,
    ``p(N) = sigmoid((ln N - ln N*) / s)``. Its uncertainty is dominated by that of ``ln N*``
    near the transition: ``se(p) = p (1 - p) se(ln N*) / s`` (delta method; the uncertainty of
    the width ``s`` is neglected, which matters only far from ``N*``)."""
    n = np.asarray(n_params, dtype=np.float64)
    if n.ndim != 1 or not np.all(np.isfinite(n) & (n > 0)):
        raise ValueError(f"n_params must be a 1-D array of positive counts, got {n_params!r}")
    s = float(transition.width)
    if not (math.isfinite(s) and s > 0):
        raise ValueError("the transition needs a logistic width (method='logistic')")
    p = 1 / (1 + np.exp(-(np.log(n) - transition.log_x_star) / s))
    return p, p * (1 - p) * transition.log_x_star_se / s


def success_probability_law(transition, n_params, n_nodes: int = 40):
    """The fitted probability of zero loss at each ``N`` *with the fit's uncertainty*, as a
    discrete law: ``ln N* ~ Normal(ln N*_fit, se(ln N*))`` by Gauss-Hermite quadrature with
    ``n_nodes`` nodes. Returns ``(probabilities (W, n_nodes), weights (n_nodes,))``; a count of
    replicas at ``N`` then follows the binomial mixed over these probabilities, the right null
    for a handful of replicas (the plain binomial at the fitted ``p`` ignores the fit's error)."""
    p, _ = success_probability(transition, n_params)  # validates the arguments
    n_nodes = validation.check_int("n_nodes", n_nodes, minimum=2, maximum=400)
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    log_star = transition.log_x_star + transition.log_x_star_se * nodes
    log_n = np.log(np.asarray(n_params, dtype=np.float64))[:, None]
    probabilities = 1 / (1 + np.exp(-(log_n - log_star[None, :]) / float(transition.width)))
    return probabilities, weights / weights.sum()


def late_relative_decrease(loss: np.ndarray, steps: np.ndarray, start: float = 0.75):
    """The plateau statistic of each run: the relative fall of the loss over the last part of the
    budget, ``(L(t_start) - L(T)) / L(T)``, with ``t_start`` the first recorded step at or after
    ``start x T``. A run whose loss would need more than ``(1 - start) / delta`` budgets to reach
    0 at its late rate has ``delta`` below that; ``nan`` where the run reached ``L(T) = 0``.

    ``loss``: ``(..., T)`` recorded losses at ``steps`` ``(T,)``."""
    loss = np.asarray(loss, dtype=np.float64)
    steps = np.asarray(steps)
    if loss.shape[-1] != steps.shape[0] or steps.size < 2:
        raise ValueError("loss must have one value per recorded step (at least two steps)")
    if not 0 < start < 1:
        raise ValueError(f"start must lie in (0, 1), got {start}")
    i = int(np.searchsorted(steps, start * steps[-1]))
    end = loss[..., -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(end > 0, (loss[..., i] - end) / end, np.nan)


def choose_rungs(
    n_params, fraction, n_star: float, *, below_factor: float = 0.75, above_factor: float = 1.5
) -> tuple[int, int]:
    """Indices of the rung just below and the rung just above the transition ``N*``.

    Below: the largest rung with success fraction exactly 0 and ``N <= below_factor N*``.
    Above: the smallest rung with success fraction exactly 1 and ``N >= above_factor N*``.
    Raises ``ValueError`` (naming what to change) when the ladder has no such rung.
    """
    n = np.asarray(n_params, dtype=np.float64)
    f = np.asarray(fraction, dtype=np.float64)
    if n.ndim != 1 or n.shape != f.shape or n.size < 2:
        raise ValueError("n_params and fraction must be 1-D arrays of the same length >= 2")
    if np.any(np.diff(n) <= 0):
        raise ValueError("n_params must increase along the ladder")
    n_star = _positive("n_star", n_star)
    below_factor = _positive("below_factor", below_factor)
    above_factor = _positive("above_factor", above_factor)
    if below_factor >= 1 or above_factor <= 1:
        raise ValueError("need below_factor < 1 < above_factor")
    below = np.flatnonzero((f == 0) & (n <= below_factor * n_star))
    above = np.flatnonzero((f == 1) & (n >= above_factor * n_star))
    if below.size == 0:
        raise ValueError(
            f"no rung with success fraction 0 at or below {below_factor} N* = "
            f"{below_factor * n_star:.1f}: lower the bottom of the width ladder"
        )
    if above.size == 0:
        raise ValueError(
            f"no rung with success fraction 1 at or above {above_factor} N* = "
            f"{above_factor * n_star:.1f}: raise the top of the width ladder or the step budget"
        )
    return int(below[-1]), int(above[0])


# --------------------------------------------------------------------------------------------
# Training with the order parameters recorded
# --------------------------------------------------------------------------------------------


def order_parameter_recorder(q_theory) -> ensemble.RecordFn:
    """A ``record_fn`` for ``asbbook.ensemble.train_ensemble`` built from Chapters 3 and 4.

    For pre-activations ``zs = [z^1, .., z^L]`` (each ``(K, P, n_l)``), outputs ``f`` and labels
    ``y`` it returns, per member:

    * ``entropy`` ``(K, L-1)``: mean gate entropy of each hidden layer in bits
      (``asbbook.order.mean_gate_entropy_bits``);
    * ``information`` ``(K, L-1)``: mean gate-label mutual information of each hidden layer in
      bits (``asbbook.order.gate_label_information_bits``);
    * ``alignment`` ``(K,)``: label alignment ``m = E[y f] / sqrt(E f^2)``;
    * ``drift`` ``(K, L)``: relative drift ``(q_hat^l - q^l) / q^l`` of every layer's second
      moment from ``q_theory`` (``asbbook.order.variance_drift``);
    * ``activity_drift`` ``(K, L-1)``: relative drift of Chapter 4's layer average
      ``r_hat^l = mean_i relu(z^l_i)^2`` (averaged over the patterns) from its ensemble mean
      ``q^l / 2``.
    """
    q = np.asarray(q_theory, dtype=np.float64)
    if q.ndim != 1 or q.size < 2 or not np.all(np.isfinite(q)) or np.any(q <= 0):
        raise ValueError(
            f"q_theory must hold one positive value per layer (L >= 2), got {q_theory!r}"
        )

    def record(zs, f, y):
        if len(zs) != q.size:
            raise ValueError(f"the net has {len(zs)} layers but q_theory has {q.size} values")
        hidden = zs[:-1]
        half_q = torch.as_tensor(q[:-1] / 2, dtype=f.dtype, device=f.device)
        activity = torch.stack(
            [order.layer_average_relu_sq(z).mean(dim=-1) for z in hidden], dim=-1
        )
        return {
            "entropy": torch.stack([order.mean_gate_entropy_bits(z) for z in hidden], dim=-1),
            "information": torch.stack(
                [order.gate_label_information_bits(z, y) for z in hidden], dim=-1
            ),
            "alignment": order.label_alignment(f, y),
            "drift": order.variance_drift(zs, q),
            "activity_drift": (activity - half_q) / half_q,
        }

    return record


def _check_shapes(widths) -> tuple[tuple[int, ...], ...]:
    shapes = tuple(validation.check_widths(w) for w in widths)
    if not shapes:
        raise ValueError("widths must list at least one network shape")
    if len({s[0] for s in shapes}) != 1 or len({len(s) for s in shapes}) != 1:
        raise ValueError("all widths must share n_0 and the depth")
    if len(shapes[0]) < 3:
        raise ValueError("the nets need at least one hidden layer")
    if any(s[-1] != 1 for s in shapes) or len(set(shapes)) != len(shapes):
        raise ValueError("widths must be distinct and end in a single output unit")
    return shapes


def dynamics_cell(point: dict) -> dict:
    """One replica of the chapter's training runs, as a top-level function for ``asbbook.sweep``.

    ``point`` keys: ``P``, ``data_seed``, ``widths`` (a list of full width lists
    ``[n_0, .., n_{L-1}, 1]``), ``seed`` (base seed of the initial weights), ``optimizer``,
    ``lr``, ``steps``, ``record_every`` and optionally ``device`` (default ``"cpu"``) and
    ``torch_threads`` (applied only for the duration of the call).

    The replica is the dataset ``asbbook.data.gaussian_patterns(P, n_0, seed=data_seed)`` and,
    at every width, the initial network ``MemberSpec(width, replicate=data_seed)`` from base seed
    ``seed`` (the member ``asbbook.phase.random_label_cell`` trains with ``n_init = 1`` on the
    same dataset). The widths are trained side by side by ``asbbook.ensemble.train_ensemble``
    (hinge loss, full batch, stopping at zero hinge loss), recording
    :func:`order_parameter_recorder` every ``record_every`` steps against the fixed point
    ``q^l`` of this dataset (``asbbook.order.preactivation_variance`` at ``sigma^2 = 2``).

    Returns ``steps`` (the recorded steps), ``values`` (per key, nested lists ``(W, T, ...)``:
    the recorder's keys plus ``loss``, ``n_unsatisfied`` and ``train_error``) and, per width,
    ``converged``, ``final_loss``, ``final_unsatisfied`` (a count) and ``stop_step``.
    """
    shapes = _check_shapes(point["widths"])
    P, data_seed = _count("P", point["P"], 2), _count("data_seed", point["data_seed"], 0)
    depth = len(shapes[0]) - 1
    with validation.torch_threads(point.get("torch_threads")):
        device = validation.resolve_device(point.get("device", "cpu"))
        X, y = data.gaussian_patterns(P, shapes[0][0], seed=data_seed, device=device)
        q = order.preactivation_variance(float((X * X).mean()), 2.0, depth)
        result = ensemble.train_ensemble(
            [ensemble.MemberSpec(s, replicate=data_seed) for s in shapes],
            X,
            y,
            loss="hinge",
            optimizer=point.get("optimizer", "adam"),
            lr=float(point["lr"]),
            steps=_count("steps", point["steps"]),
            seed=_count("seed", point["seed"], 0),
            record_every=_count("record_every", point["record_every"]),
            record_fn=order_parameter_recorder(q),
            device=device,
        )
    history = result.history
    return {
        "steps": history.steps.tolist(),
        "values": {key: history[key].tolist() for key in history.keys()},
        "converged": result.converged.tolist(),
        "final_loss": result.loss.tolist(),
        "final_unsatisfied": result.n_unsatisfied.tolist(),
        "stop_step": result.steps.tolist(),
    }


def replica_data_seed(seed: int, replica: int) -> int:
    """The data seed of the trained replica ``replica``:
    ``derive_seed(seed, purpose="ch6-replica", replica=replica)``. Its datasets are new: none
    was used by the sweep that located ``N*`` (``asbbook.phase.cell_data_seed``)."""
    return data.derive_seed(seed, purpose="ch6-replica", replica=replica)


def dynamics_points(
    widths: Sequence[Sequence[int]],
    *,
    P: int,
    n_replicas: int,
    first_replica: int = 0,
    steps: int,
    lr: float,
    record_every: int,
    seed: int,
    optimizer: str = "adam",
    device: str = "cpu",
) -> list[dict]:
    """The points of :func:`dynamics_cell`: one per replica, data seeds
    :func:`replica_data_seed` of replicas ``first_replica .. first_replica + n_replicas - 1``
    (under base ``seed``), every replica trained at every
    width of ``widths`` on ``device`` (a string such as ``"cpu"`` or ``"cuda"``). Torch runs
    single-threaded inside a point (``torch_threads = 1``)."""
    if not isinstance(device, str) or device == "auto":
        raise ValueError(f"device must be a resolved device string such as 'cpu', got {device!r}")
    shapes = _check_shapes(widths)
    P, n_replicas = _count("P", P, 2), _count("n_replicas", n_replicas, 2)
    first = _count("first_replica", first_replica, 0)
    seed = validation.check_seed("seed", seed)
    steps, record_every = _count("steps", steps), _count("record_every", record_every)
    return [
        {
            "P": P,
            "data_seed": replica_data_seed(seed, first + r),
            "widths": [list(s) for s in shapes],
            "seed": _count("seed", seed, 0),
            "optimizer": optimizer,
            "lr": _positive("lr", lr),
            "steps": steps,
            "record_every": record_every,
            "device": device,
            "torch_threads": 1,
        }
        for r in range(n_replicas)
    ]


def dynamics_spec(widths: Sequence[Sequence[int]], **kwargs) -> SweepSpec:
    """:func:`dynamics_points` as a ``asbbook.sweep.SweepSpec`` named
    :data:`DYNAMICS_SWEEP_NAME`, so the training runs are cached and can run in parallel.
    (It depends on the rungs picked from the transition sweep, so it is not one of
    :func:`chapter_sweeps`.)"""
    return SweepSpec(
        name=DYNAMICS_SWEEP_NAME, fn=dynamics_cell, points=dynamics_points(widths, **kwargs)
    )


@dataclass(frozen=True)
class Dynamics:
    """Recorded training of ``R`` replicas at each of ``W`` widths (:func:`collect_dynamics`).

    ``steps`` ``(T,)`` are the recorded steps; ``values[key]`` is ``(W, R, T, ...)`` for the
    keys of :func:`order_parameter_recorder` plus ``loss``, ``n_unsatisfied`` and
    ``train_error``. ``converged``, ``final_loss``, ``final_unsatisfied`` (a count) and
    ``stop_step`` are ``(W, R)``: a converged replica (hinge loss exactly 0) stops at
    ``stop_step`` and repeats its last values at later recorded steps.
    """

    widths: tuple[tuple[int, ...], ...]
    P: int
    steps: np.ndarray
    values: dict[str, np.ndarray]
    converged: np.ndarray
    final_loss: np.ndarray
    final_unsatisfied: np.ndarray
    stop_step: np.ndarray
    data_seeds: np.ndarray

    def __getitem__(self, key: str) -> np.ndarray:
        return self.values[key]


def collect_dynamics(points: Sequence[dict], results: Sequence[dict]) -> Dynamics:
    """Stack the :func:`dynamics_cell` results of the replicas ``points`` into a
    :class:`Dynamics` (all points must share ``P``, ``widths`` and the recorded steps)."""
    if len(points) != len(results) or len(points) < 1:
        raise ValueError("need one result per point, and at least one")
    first = points[0]
    for p, r in zip(points, results, strict=True):
        if p["P"] != first["P"] or p["widths"] != first["widths"]:
            raise ValueError("the replicas differ in P or widths")
        if r["steps"] != results[0]["steps"]:
            raise ValueError("the replicas recorded different steps")
    values = {
        key: np.stack([np.asarray(r["values"][key]) for r in results], axis=1)
        for key in results[0]["values"]
    }

    def stacked(key, dtype):
        return np.stack([np.asarray(r[key], dtype=dtype) for r in results], axis=1)

    return Dynamics(
        widths=tuple(tuple(w) for w in first["widths"]),
        P=int(first["P"]),
        steps=np.asarray(results[0]["steps"], dtype=np.int64),
        values=values,
        converged=stacked("converged", bool),
        final_loss=stacked("final_loss", np.float64),
        final_unsatisfied=stacked("final_unsatisfied", np.int64),
        stop_step=stacked("stop_step", np.int64),
        data_seeds=np.array([p["data_seed"] for p in points], dtype=np.int64),
    )


def train_replicas(widths: Sequence[Sequence[int]], **kwargs) -> Dynamics:
    """:func:`dynamics_cell` of every :func:`dynamics_points` replica in this process, without
    a cache, collected by :func:`collect_dynamics` (the notebook runs the same points through
    ``asbbook.sweep.run_spec`` with :func:`dynamics_spec`)."""
    points = dynamics_points(widths, **kwargs)
    return collect_dynamics(points, [dynamics_cell(p) for p in points])


def unsatisfied_fraction(dynamics: Dynamics) -> np.ndarray:
    """The fraction of unsatisfied margins ``y f < 1`` over training, ``(W, R, T)``."""
    return dynamics["n_unsatisfied"] / dynamics.P


def initial_state(
    widths: Sequence[Sequence[int]],
    *,
    P: int,
    n_members: int | None = None,
    first_replica: int = 0,
    seed: int,
    device: torch.device | str = "cpu",
    n_networks: int | None = None,
) -> dict[str, np.ndarray]:
    """The step-0 values of :func:`dynamics_cell` for ``n_members`` replicas, without training.

    Replica ``r`` is the dataset of data seed ``d = replica_data_seed(seed, first_replica + r)``
    and, at every width,
    the initial network ``MemberSpec(width, replicate=d)`` from base seed ``seed``: exactly the
    step-0 state of the :func:`dynamics_points` replica with the same data seed, computed the same
    way (so the first replicas reproduce the recorded step-0 values bit for bit). Evaluating the
    initial networks costs one forward pass each, so many more replicas than are trained can test
    the predictions for the symmetric starting point. Returns, per key, arrays ``(W, n, ...)``:
    the keys of :func:`order_parameter_recorder`, ``unsatisfied`` (the fraction of margins
    ``y f < 1``), ``loss`` (the mean hinge loss) and ``margin_first`` (the margin ``y_1 f(x_1)``
    of the first example: one draw per network from the law of
    :func:`initial_output_samples`, independent across networks, where
    the examples of one network share its weights and are not).
    """
    shapes = _check_shapes(widths)
    if n_networks is not None:
        warnings.warn(
            "initial_state(n_networks=...) is deprecated; use n_members", DeprecationWarning, 2
        )
        n_members = n_networks if n_members is None else n_members
    if n_members is None:
        raise TypeError("initial_state() needs n_members")
    P, n_members = _count("P", P, 2), _count("n_members", n_members, 2)
    first, seed = _count("first_replica", first_replica, 0), validation.check_seed("seed", seed)
    device = validation.resolve_device(device)
    depth = len(shapes[0]) - 1
    rows: dict[str, list[list[np.ndarray]]] = {}
    validation.check_memory("n_members", 8.0 * n_members * len(shapes) * P * 4)
    for d in (replica_data_seed(seed, r) for r in range(first, first + n_members)):
        X, y = data.gaussian_patterns(P, shapes[0][0], seed=d, device=device)
        record = order_parameter_recorder(
            order.preactivation_variance(float((X * X).mean()), 2.0, depth)
        )
        for k, shape in enumerate(shapes):
            weights = ensemble.member_weights(
                ensemble.MemberSpec(shape, replicate=d), seed, device=device
            )
            zs = ensemble.batched_preactivations([w.unsqueeze(0) for w in weights], X)
            f = zs[-1][..., 0]
            loss, _ = ensemble.loss_and_output_grad(f, y, "hinge")
            values = dict(record(zs, f, y))
            values["loss"] = loss
            values["unsatisfied"] = (y * f < 1).sum(dim=-1).to(f.dtype) / P
            values["margin_first"] = y[0] * f[..., 0]
            for key, value in values.items():
                rows.setdefault(key, [[] for _ in shapes])[k].append(value[0].cpu().numpy())
    return {key: np.asarray(per_width) for key, per_width in rows.items()}


def replica_curves(dynamics: Dynamics) -> list[dict[str, Estimate]]:
    """Per width, the replica mean and standard error of every recorded series over training:
    ``[{key: Estimate(mean (T, ...), se (T, ...))}, ...]``, including ``unsatisfied`` (the
    fraction of margins ``y f < 1``)."""
    series = dict(dynamics.values)
    series["unsatisfied"] = unsatisfied_fraction(dynamics)
    out = []
    for k in range(len(dynamics.widths)):
        curves = {}
        for key, value in series.items():
            estimate = mean_with_stderr(torch.as_tensor(np.asarray(value[k], dtype=np.float64)))
            curves[key] = Estimate(estimate.value.numpy(), estimate.stderr.numpy())
        out.append(curves)
    return out


def half_time(curve, steps) -> int:
    """The first recorded step at which one curve has covered half of its total change
    (``asbbook.order.half_time`` for a single curve, as an ``int``)."""
    return int(order.half_time(curve, steps))
