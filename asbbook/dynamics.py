"""Chapter 6: the dynamics of adaptive-symmetry breaking, above and below the transition N*.

The chapter trains deep ReLU nets on random labels (the setting of Chapter 5: Gaussian inputs,
hinge loss, Adam) just below and just above the transition ``N*`` of the fraction of runs that
reach zero hinge loss, and follows the order parameters of Chapters 3 and 4 over training time.
This module holds

* the chapter's sweep (:func:`chapter_sweeps`): Chapter 5's cell
  (``asbbook.phase.random_label_cell``) over a width ladder at one ``P``, from which the
  notebook locates ``N*`` and picks one rung below and one above (:func:`choose_rungs`);
* the recorder of the order parameters (:func:`order_parameter_recorder`) and the training
  runs at the two rungs, one cached sweep point per replica (:func:`dynamics_cell`,
  :func:`dynamics_spec`, :func:`collect_dynamics`), built on
  ``asbbook.ensemble.train_ensemble``, and the step-0 state of many more replicas without
  training (:func:`initial_state`);
* the predictions for the symmetric initial state, each with its sympy derivation:

  - **margins at initialisation** (:func:`derive_initial_hinge`,
    :func:`predict_initial_margins`). The sign flip of the last layer makes ``f`` symmetric about
    0 and independent of the random labels, so ``P(y f < 1) = P(f < 1)``. Given the scale
    ``s = Var(f | h^{L-1})``, ``f`` is Gaussian, so the unsatisfied fraction is ``Phi(1/sqrt s)``
    and the mean hinge loss is ``Phi(1/sqrt s) + sqrt(s) phi(1/sqrt s)``. With Gaussian weights of
    variance ``sigma^2/n_{l-1}`` the scale is a product of independent factors (Chapter 4; Hanin
    and Nica 2019): ``s = sigma^{2L} r_0 prod_{l<L} A_l`` with ``r_0 = |x|^2/n_0`` and
    ``n_l A_l ~ chi^2_K``, ``K ~ Bin(n_l, 1/2)`` (the open gates of layer ``l``);
  - **gate entropy** of a first-layer unit on ``P`` symmetric inputs: the open count is
    ``Bin(P, 1/2)``, so ``E H_2 = sum_k Bin(k; P, 1/2) H_2(k/P) = 1 - 1/(2 P ln 2) + O(P^-2)``
    bits (:func:`expected_gate_entropy_bits`; the expansion is
    ``asbbook.capacity.derive_gate_entropy_first_layer``);
  - **gate-label information** of a gate that is independent of the labels: the plug-in mutual
    information over ``P`` examples is not 0 but ``phi^2 / 2`` nats to leading order (``phi`` the
    phi coefficient of the 2 x 2 table), and ``E phi^2 = 1/(P-1)`` when the labels are a random
    permutation, so ``E I = 1/(2 (P-1) ln 2)`` bits (:func:`derive_plugin_information_bias`;
    the finite-sample bias of Miller 1955 and Panzeri & Treves 1996).
    :func:`expected_plugin_information_bits` sums the exact expectation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch
from scipy import special, stats

from asbbook import data, ensemble, nets, order, phase, validation
from asbbook.stats import binary_entropy_bits
from asbbook.sweep import SweepSpec

__all__ = [
    "SWEEP_NAME",
    "sweep_points",
    "chapter_sweeps",
    "choose_rungs",
    "order_parameter_recorder",
    "DYNAMICS_SWEEP_NAME",
    "dynamics_cell",
    "dynamics_points",
    "dynamics_spec",
    "Dynamics",
    "collect_dynamics",
    "train_replicas",
    "unsatisfied_fraction",
    "initial_state",
    "derive_initial_hinge",
    "initial_scale_samples",
    "predict_initial_margins",
    "expected_gate_entropy_bits",
    "derive_plugin_information_bias",
    "expected_plugin_information_bits",
]

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
    shapes = tuple(nets.check_widths(tuple(int(n) for n in w)) for w in widths)
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
        device = ensemble.resolve_device(point.get("device", "cpu"))
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


def dynamics_points(
    widths: Sequence[Sequence[int]],
    *,
    P: int,
    n_replicas: int,
    first_data_seed: int,
    steps: int,
    lr: float,
    record_every: int,
    seed: int,
    optimizer: str = "adam",
    device: str = "cpu",
) -> list[dict]:
    """The points of :func:`dynamics_cell`: one per replica, data seeds
    ``first_data_seed, .., first_data_seed + n_replicas - 1``, every replica trained at every
    width of ``widths`` on ``device`` (a string such as ``"cpu"`` or ``"cuda"``). Torch runs
    single-threaded inside a point (``torch_threads = 1``)."""
    if not isinstance(device, str) or device == "auto":
        raise ValueError(f"device must be a resolved device string such as 'cpu', got {device!r}")
    shapes = _check_shapes(widths)
    P, n_replicas = _count("P", P, 2), _count("n_replicas", n_replicas, 2)
    first = _count("first_data_seed", first_data_seed, 0)
    steps, record_every = _count("steps", steps), _count("record_every", record_every)
    return [
        {
            "P": P,
            "data_seed": first + r,
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
    n_networks: int,
    first_data_seed: int,
    seed: int,
    device: torch.device | str = "cpu",
) -> dict[str, np.ndarray]:
    """The step-0 values of :func:`dynamics_cell` for ``n_networks`` replicas, without training.

    Replica ``r`` is the dataset of data seed ``d = first_data_seed + r`` and, at every width,
    the initial network ``MemberSpec(width, replicate=d)`` from base seed ``seed``: exactly the
    step-0 state of the :func:`dynamics_points` replica with the same data seed, computed the same
    way (so the first replicas reproduce the recorded step-0 values bit for bit). Evaluating the
    initial networks costs one forward pass each, so many more replicas than are trained can test
    the predictions for the symmetric starting point. Returns, per key, arrays ``(W, n, ...)``:
    the keys of :func:`order_parameter_recorder`, ``unsatisfied`` (the fraction of margins
    ``y f < 1``) and ``loss`` (the mean hinge loss).
    """
    shapes = _check_shapes(widths)
    P, n_networks = _count("P", P, 2), _count("n_networks", n_networks, 2)
    first, seed = _count("first_data_seed", first_data_seed, 0), _count("seed", seed, 0)
    device = ensemble.resolve_device(device)
    depth = len(shapes[0]) - 1
    rows: dict[str, list[list[np.ndarray]]] = {}
    for d in range(first, first + n_networks):
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
            for key, value in values.items():
                rows.setdefault(key, [[] for _ in shapes])[k].append(value[0].cpu().numpy())
    return {key: np.asarray(per_width) for key, per_width in rows.items()}


# --------------------------------------------------------------------------------------------
# The symmetric initial state: margins
# --------------------------------------------------------------------------------------------


def derive_initial_hinge() -> dict[str, sp.Basic]:
    """Unsatisfied fraction and hinge loss of a label-blind symmetric output, derived.

    1. *Symmetric split.* If ``f`` is symmetric about 0 and independent of the label
       ``y = +-1`` (any label frequencies), ``P(y f < 1) = P(y=1) P(f < 1) + P(y=-1) P(-f < 1)
       = P(f < 1)`` and ``E max(0, 1 - y f) = E max(0, 1 - f)``.
    2. *Gaussian output.* For ``f ~ N(0, s)``: ``P(f < 1) = Phi(1/sqrt s)`` and
       ``E max(0, 1 - f) = int_{-oo}^{1} (1 - f) N(f; 0, s) df = Phi(1/sqrt s) +
       sqrt(s) phi(1/sqrt s)``, checked by sympy integration and at ``s = 1`` numerically.
    3. *Limits.* As ``s -> 0`` both tend to 1 (the output is 0, every margin is 0); as
       ``s -> oo`` the unsatisfied fraction tends to 1/2 and the loss grows like
       ``sqrt(s / (2 pi))``.

    Returns ``split``, ``unsatisfied`` and ``hinge`` (equations in ``s``) and ``limits``
    (the ``s -> oo`` unsatisfied fraction and the ``s -> 0`` loss).
    """
    f = sp.Symbol("f", real=True)
    s = sp.Symbol("s", positive=True)
    density = sp.exp(-(f**2) / (2 * s)) / sp.sqrt(2 * sp.pi * s)
    Phi = lambda t: (1 + sp.erf(t / sp.sqrt(2))) / 2  # noqa: E731
    phi = lambda t: sp.exp(-(t**2) / 2) / sp.sqrt(2 * sp.pi)  # noqa: E731

    # 1. symmetric split: P(-f < 1) = P(f > -1) = P(f < 1) for a symmetric density
    p_neg = sp.integrate(density, (f, -1, sp.oo))
    p_pos = sp.integrate(density, (f, -sp.oo, 1))
    assert sp.simplify(p_neg - p_pos) == 0
    hinge_neg = sp.integrate((1 + f) * density, (f, -1, sp.oo))  # E max(0, 1 + f)
    hinge_pos = sp.integrate((1 - f) * density, (f, -sp.oo, 1))  # E max(0, 1 - f)
    assert sp.simplify(hinge_neg - hinge_pos) == 0

    # 2. closed forms
    unsat = Phi(1 / sp.sqrt(s))
    hinge = Phi(1 / sp.sqrt(s)) + sp.sqrt(s) * phi(1 / sp.sqrt(s))
    assert sp.simplify(p_pos - unsat) == 0
    assert sp.simplify(hinge_pos - hinge) == 0
    numeric = {s: 1}
    assert abs(float(hinge.subs(numeric)) - (stats.norm.cdf(1) + stats.norm.pdf(1))) < 1e-12
    assert abs(float(unsat.subs(numeric)) - stats.norm.cdf(1)) < 1e-12

    # 3. limits
    assert sp.limit(unsat, s, 0, "+") == 1 and sp.limit(hinge, s, 0, "+") == 1
    assert sp.limit(unsat, s, sp.oo) == sp.Rational(1, 2)
    assert sp.limit(hinge / sp.sqrt(s / (2 * sp.pi)), s, sp.oo) == 1

    prob_yf = sp.Symbol(r"P(y f < 1)")
    prob_f = sp.Symbol(r"P(f < 1)")
    loss = sp.Symbol(r"\mathbb{E} \max(0, 1 - y f)")
    return {
        "split": sp.Eq(prob_yf, prob_f, evaluate=False),
        "unsatisfied": sp.Eq(prob_f, unsat, evaluate=False),
        "hinge": sp.Eq(loss, hinge, evaluate=False),
        "limits": sp.Tuple(sp.limit(unsat, s, sp.oo), sp.limit(hinge, s, 0, "+")),
    }


def initial_scale_samples(
    widths: Sequence[int],
    n_samples: int,
    *,
    sigma2: float = 2.0,
    seed: int = 0,
) -> np.ndarray:
    """Samples of ``s = Var(f | h^{L-1}) = sigma^{2L} r_0 prod_{l=1}^{L-1} A_l`` over Gaussian
    inputs ``x ~ N(0, I_{n_0})`` and Gaussian weights of variance ``sigma2 / n_{l-1}``.

    ``r_0 = |x|^2 / n_0 ~ chi^2_{n_0} / n_0``; given the layer below, the pre-activations of
    layer ``l`` are i.i.d. ``N(0, sigma2 r_{l-1})``, so ``r_l = sigma2 r_{l-1} A_l`` with
    ``n_l A_l = sum of K_l squared standard normals``, ``K_l ~ Bin(n_l, 1/2)`` the open gates
    (Chapter 4). ``widths = (n_0, .., n_{L-1}, 1)``. A dead layer (``K_l = 0``) gives ``s = 0``.
    Seeded numpy draws (``numpy.random.default_rng(seed)``).
    """
    widths = nets.check_widths(widths)
    n_samples = _count("n_samples", n_samples)
    sigma2 = _positive("sigma2", sigma2)
    rng = np.random.default_rng(_count("seed", seed, 0))
    depth = len(widths) - 1
    s = rng.chisquare(widths[0], n_samples) / widths[0] * sigma2**depth
    for n in widths[1:-1]:
        k = rng.binomial(n, 0.5, n_samples)
        chi2 = np.zeros(n_samples)
        alive = k > 0
        chi2[alive] = rng.chisquare(k[alive])
        s *= chi2 / n
    return s


def predict_initial_margins(
    widths: Sequence[int], n_samples: int = 1_000_000, *, sigma2: float = 2.0, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Ensemble means at initialisation of the unsatisfied fraction ``P(y f < 1)`` and of the
    mean hinge loss, for Gaussian inputs and random labels: ``E Phi(1/sqrt s)`` and
    ``E[Phi(1/sqrt s) + sqrt(s) phi(1/sqrt s)]`` (:func:`derive_initial_hinge`) over
    :func:`initial_scale_samples`. Returns ``{"unsatisfied": (mean, mc_se), "hinge": (...)}``,
    the second entry being the Monte-Carlo standard error of the average over ``s``."""
    s = initial_scale_samples(widths, n_samples, sigma2=sigma2, seed=seed)
    with np.errstate(divide="ignore"):
        t = np.where(s > 0, 1.0 / np.sqrt(np.where(s > 0, s, 1.0)), np.inf)
    unsat = special.ndtr(t)
    hinge = unsat + np.where(s > 0, np.sqrt(s) * np.exp(-0.5 * np.minimum(t, 1e3) ** 2), 0.0) / (
        math.sqrt(2 * math.pi)
    )
    k = math.sqrt(s.size)
    return {
        "unsatisfied": (float(unsat.mean()), float(unsat.std(ddof=1) / k)),
        "hinge": (float(hinge.mean()), float(hinge.std(ddof=1) / k)),
    }


# --------------------------------------------------------------------------------------------
# The symmetric initial state: gates
# --------------------------------------------------------------------------------------------


def expected_gate_entropy_bits(P: int) -> float:
    """``E H_2(K/P)`` for ``K ~ Bin(P, 1/2)``, exactly (a sum over ``K``): the expected gate
    entropy in bits of a first-layer unit on ``P`` i.i.d. inputs symmetric about 0 (each input
    opens the gate with probability 1/2, independently, whatever the unit's weights).
    ``= 1 - 1/(2 P ln 2) + O(P^-2)`` (``asbbook.capacity.derive_gate_entropy_first_layer``)."""
    P = _count("P", P)
    k = np.arange(P + 1)
    pmf = stats.binom.pmf(k, P, 0.5)
    return float(pmf @ binary_entropy_bits(torch.as_tensor(k / P)).numpy())


def _h2_array(p: np.ndarray) -> np.ndarray:
    """:func:`asbbook.stats.binary_entropy_bits` on a numpy array."""
    return binary_entropy_bits(torch.as_tensor(p)).numpy()


def expected_plugin_information_bits(P: int) -> float:
    """Exact expectation of the plug-in mutual information (bits) between a binary gate and a
    binary label that are independent, each Bernoulli(1/2) on each of ``P`` examples.

    With ``a`` open gates, ``b`` positive labels and ``c`` open gates among the positives
    (``a, b ~ Bin(P, 1/2)`` independent, ``c`` hypergeometric given ``a, b``),
    ``I = H_2(a/P) - (b/P) H_2(c/b) - (1 - b/P) H_2((a-c)/(P-b))``, and the expectation is a
    triple sum. Tables where one label is missing (``b = 0`` or ``P``) carry no information and
    count as 0. To leading order ``1/(2 (P-1) ln 2)`` (:func:`derive_plugin_information_bias`).
    """
    P = _count("P", P, 2)
    a = np.arange(P + 1)[:, None, None]
    b = np.arange(P + 1)[None, :, None]
    c = np.arange(P + 1)[None, None, :]
    weight = (
        stats.binom.pmf(a, P, 0.5)
        * stats.binom.pmf(b, P, 0.5)
        * stats.hypergeom.pmf(c, P, a, b)  # c open gates among the b positives
    )
    valid = (c <= np.minimum(a, b)) & (a - c <= P - b) & (b > 0) & (b < P)
    bb = np.where(valid, b, 1)
    rest = np.where(valid, P - b, 1)
    info = (
        _h2_array(a / P)
        - (b / P) * _h2_array(np.where(valid, c / bb, 0.0))
        - (1 - b / P) * _h2_array(np.where(valid, (a - c) / rest, 0.0))
    )
    return float(np.sum(np.where(valid, weight * info, 0.0)))


def derive_plugin_information_bias() -> dict[str, sp.Basic]:
    """The plug-in gate-label information of an independent gate, to leading order in ``1/P``.

    1. *Expansion about independence.* A 2 x 2 table with margins ``alpha = P(g = 1)`` and
       ``beta = P(y = 1)`` and joint ``P(g = 1, y = 1) = alpha beta + e`` has mutual information
       ``I = e^2 / (2 alpha (1-alpha) beta (1-beta)) + O(e^3) = phi^2 / 2 + O(e^3)`` nats, with
       ``phi = e / sqrt(alpha (1-alpha) beta (1-beta))`` the phi coefficient (sympy series).
    2. *Random labels.* Given the ``a`` open gates and ``b`` positive labels of the ``P``
       examples, labels independent of the gates are a uniformly random permutation, and the
       count ``c`` of open gates among the positives is hypergeometric. Writing ``c`` as a sum of
       ``b`` exchangeable indicators, ``Var c = b q(1-q) + b(b-1) Cov``, ``q = a/P``,
       ``Cov = q (a-1)/(P-1) - q^2``, which simplifies to ``b (a/P) (1 - a/P) (P-b)/(P-1)``.
    3. With ``phi = (P c - a b) / sqrt(a (P-a) b (P-b))``, ``E phi^2 = P^2 Var c / (a (P-a) b (P-b))
       = 1 / (P-1)``, whatever ``a`` and ``b``. Hence ``E I = 1 / (2 (P-1) ln 2)`` bits to
       leading order: the finite-sample bias of the plug-in estimate (Miller 1955; Panzeri and
       Treves 1996), ``(2 P ln 2)^{-1}`` bits for ``P >> 1``.

    Returns ``series`` (``I`` to second order in ``e``), ``variance`` (``Var c``), ``phi2``
    (``E phi^2``) and ``bias`` (``E I`` in bits).
    """
    al, be = sp.symbols("alpha beta", positive=True)
    e = sp.Symbol("e", real=True)
    cells = {
        (1, 1): al * be + e,
        (1, 0): al * (1 - be) - e,
        (0, 1): (1 - al) * be - e,
        (0, 0): (1 - al) * (1 - be) + e,
    }
    margins = {(1, 1): al * be, (1, 0): al * (1 - be), (0, 1): (1 - al) * be}
    margins[(0, 0)] = (1 - al) * (1 - be)
    info = sum(p * sp.log(p / margins[k]) for k, p in cells.items())
    taylor = [sp.diff(info, e, k).subs(e, 0) / sp.factorial(k) for k in range(4)]
    leading = e**2 / (2 * al * (1 - al) * be * (1 - be))
    assert sp.simplify(taylor[0]) == 0 and sp.simplify(taylor[1]) == 0
    assert sp.simplify(taylor[2] * e**2 - leading) == 0, taylor[2]
    # the cubic term is really there (the expansion is not exact); it vanishes when either
    # margin is 1/2 (then I is even in e), as for the balanced gates and labels at init
    assert taylor[3].subs({al: sp.Rational(1, 3), be: sp.Rational(1, 4)}) != 0
    assert taylor[3].subs({al: sp.Rational(1, 3), be: sp.Rational(1, 2)}) == 0

    P, a, b = sp.symbols("P a b", positive=True)
    q = a / P
    cov = q * (a - 1) / (P - 1) - q**2
    var_c = b * q * (1 - q) + b * (b - 1) * cov
    hyper = b * (a / P) * (1 - a / P) * (P - b) / (P - 1)
    assert sp.simplify(var_c - hyper) == 0
    phi2 = sp.simplify(P**2 * var_c / (a * (P - a) * b * (P - b)))
    assert sp.simplify(phi2 - 1 / (P - 1)) == 0
    # cross-check Var c against sympy.stats for a concrete table
    import sympy.stats as st

    for P_, a_, b_ in ((10, 4, 3), (12, 6, 5)):
        H = st.Hypergeometric("H", P_, a_, b_)
        assert st.variance(H) == hyper.subs({P: P_, a: a_, b: b_})
    bias = sp.simplify(phi2 / (2 * sp.log(2)))
    E_ = sp.Function(r"\mathbb{E}")
    return {
        "series": sp.Eq(sp.Symbol("I"), leading, evaluate=False),
        "variance": sp.Eq(sp.Symbol(r"\mathrm{Var}\,c"), sp.factor(hyper), evaluate=False),
        "phi2": sp.Eq(E_(sp.Symbol(r"\phi") ** 2), phi2, evaluate=False),
        "bias": sp.Eq(sp.Symbol(r"\mathbb{E}\,\hat I_{\mathrm{bits}}"), bias, evaluate=False),
        "P": P,
    }
