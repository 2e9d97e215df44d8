"""Cells of the capacity phase diagram: deep ReLU nets trained to zero hinge loss.

One *cell* trains every rung of a width ladder ``n_init`` times on one dataset of ``P``
examples and records which runs reach zero hinge loss (the SAT phase of jamming; Spigler,
Geiger et al. 2019). Chapters 5 and 6 both build their sweeps from :func:`cell_points` and
:func:`random_label_cell`, so a cell means the same thing, with the same seeds, everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from asbbook import ensemble, nets, validation
from asbbook.data import derive_seed, gaussian_patterns, load_digits_binary
from asbbook.stats import binary_entropy_bits

DATASETS = ("gaussian", "digits", "digits_shuffled")
DIGITS_INPUTS = 64  # load_digits: 8 x 8 pixels
MAX_DEPTH = 64  # weight layers; far beyond what trains at these widths


def hidden_width_for(n_inputs: int, depth: int, n_params: float) -> float:
    """The real hidden width ``h`` of an equal-width net with ``depth`` weight layers, ``n_inputs``
    inputs and one output whose parameter count ``N(h) = n_0 h + (depth - 2) h^2 + h`` equals
    ``n_params`` (the positive root of the quadratic)."""
    n_inputs = validation.check_int("n_inputs", n_inputs, minimum=1)
    depth = validation.check_int("depth", depth, minimum=2, maximum=MAX_DEPTH)
    n_params = validation.check_real("n_params", n_params, positive=True)
    a, b = depth - 2, n_inputs + 1
    return n_params / b if a == 0 else (-b + math.sqrt(b * b + 4 * a * n_params)) / (2 * a)


def width_ladder(
    n_inputs: int, depth: int, n_min: float, n_max: float, n_points: int
) -> list[tuple[int, ...]]:
    """Hidden widths ``(h,) * (depth - 1)`` (equal widths, scalar output) whose parameter counts
    ``N(h) = n_0 h + (depth - 2) h^2 + h`` are spread geometrically over ``[n_min, n_max]``.

    Widths are rounded to integers and duplicates dropped, so fewer than ``n_points`` rungs may
    come back at small sizes. ``depth`` counts weight layers (``depth = 2``: one hidden layer).
    """
    n_inputs = validation.check_int("n_inputs", n_inputs, minimum=1)
    n_points = validation.check_int("n_points", n_points, minimum=1)
    depth = validation.check_int("depth", depth, minimum=2, maximum=MAX_DEPTH)
    n_min = validation.check_real("n_min", n_min, positive=True)
    n_max = validation.check_real("n_max", n_max, positive=True)
    if not n_min < n_max:
        raise ValueError(f"n_min must be below n_max, got {n_min}, {n_max}")
    out: list[tuple[int, ...]] = []
    for n in np.geomspace(n_min, n_max, n_points):
        h = max(1, int(round(hidden_width_for(n_inputs, depth, float(n)))))
        hidden = (h,) * (depth - 1)
        if not out or out[-1] != hidden:
            out.append(hidden)
    return out


def cell_data_seed(seed: int, P: int, dataset_index: int) -> int:
    """The data seed of dataset ``dataset_index`` of size ``P``:
    ``derive_seed(seed, purpose="cell-data", P=P, dataset_index=dataset_index)``. It does not
    depend on the dataset's kind, so true and shuffled digits of one index share their images."""
    return derive_seed(seed, purpose="cell-data", P=P, dataset_index=dataset_index)


def cell_data(point: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The training set of a cell: ``"gaussian"`` (``gaussian_patterns(P, n_inputs,
    seed=data_seed)``, random labels), ``"digits"`` (``load_digits_binary``, true labels) or
    ``"digits_shuffled"`` (the same images, labels permuted)."""
    name = validation.check_choice("dataset", point["dataset"], DATASETS)
    P = validation.check_int("P", point["P"], minimum=1)
    seed = validation.check_seed("data_seed", point["data_seed"])
    if name == "gaussian":
        n_inputs = validation.check_int("n_inputs", point["n_inputs"], minimum=1)
        return gaussian_patterns(P, n_inputs, seed=seed)
    return load_digits_binary(P, seed=seed, shuffle_labels=name == "digits_shuffled")


def cell_points(
    *,
    dataset: str,
    P: int,
    n_inputs: int,
    ladder,
    n_data: int,
    n_init: int,
    steps: int,
    lr: float,
    seed: int,
    optimizer: str = "adam",
    first_dataset: int = 0,
) -> list[dict]:
    """One :func:`random_label_cell` point per dataset ``d = first_dataset ..`` (``n_data`` of
    them), each training every rung of ``ladder`` (hidden-width tuples) ``n_init`` times.

    Data seeds come from :func:`cell_data_seed`; torch runs single-threaded inside a point
    (``torch_threads = 1``), so every executor computes identical numbers."""
    validation.check_choice("dataset", dataset, DATASETS)
    P = validation.check_int("P", P, minimum=2)
    seed = validation.check_seed("seed", seed)
    n_data = validation.check_int("n_data", n_data, minimum=1)
    ladder = [list(map(int, h)) for h in ladder]
    if not ladder:
        raise ValueError("ladder must hold at least one hidden-width tuple")
    return [
        {
            "dataset": dataset,
            "P": P,
            "n_inputs": validation.check_int("n_inputs", n_inputs, minimum=1),
            "data_seed": cell_data_seed(seed, P, d),
            "hidden": ladder,
            "n_init": validation.check_int("n_init", n_init, minimum=1),
            "seed": seed,
            "optimizer": optimizer,
            "lr": validation.check_real("lr", lr, positive=True),
            "steps": validation.check_int("steps", steps, minimum=1),
            "torch_threads": 1,
        }
        for d in range(first_dataset, first_dataset + n_data)
    ]


def reservoir_entropy_bits(weights, X) -> torch.Tensor:
    """The book's reservoir measure: ``S = sum over hidden units i of H_2(rho_i)`` in bits, where
    ``rho_i = (1/P) sum_mu g_i(x_mu)`` is the fraction of the ``P`` inputs that open gate ``i``.

    A unit that splits the data in half holds one bit of "pathway entropy"; a unit always open
    or always closed holds none. ``weights``: one network (``(n_l, n_{l-1})`` matrices; returns a
    0-d tensor) or a stacked ensemble (``(K, n_l, n_{l-1})``; returns ``(K,)``). ``X``: ``(P, n_0)``.
    """
    widths = validation.check_weights(weights)
    X = validation.check_inputs(X, widths[0], dtype=weights[0].dtype, device=weights[0].device)
    zs = nets.preactivations(weights, X)[:-1]
    total = torch.zeros(weights[0].shape[:-2], dtype=X.dtype, device=X.device)
    for z in zs:
        rho = (z > 0).to(X.dtype).mean(dim=-2)
        total = total + binary_entropy_bits(rho).sum(dim=-1)
    return total


def random_label_cell(point: dict) -> dict:
    """One cell of the phase diagram, as a top-level function for ``asbbook.sweep``.

    ``point`` keys (see :func:`cell_points`): ``dataset``, ``P``, ``n_inputs`` (Gaussian data),
    ``data_seed``, ``hidden`` (hidden-width lists, e.g. from :func:`width_ladder`), ``n_init``
    (initialisations per width), ``seed`` (base seed of the initial weights), ``optimizer``,
    ``lr``, ``steps`` (budget), and optionally ``torch_threads``.

    Every width is trained ``n_init`` times on the same data with the hinge loss by
    ``asbbook.ensemble.train_ensemble`` (full batch, stopping at zero hinge loss); member ``i``
    has replicate index ``data_seed * n_init + i``, so different datasets also get different
    initial networks. Returns per width ``n_params`` and per run ``converged`` (zero hinge loss
    within the budget), ``steps`` and ``gate_entropy`` (:func:`reservoir_entropy_bits` of the
    initial network on the training inputs).
    """
    X, y = cell_data(point)
    n_init = validation.check_int("n_init", point["n_init"], minimum=1)
    data_seed = validation.check_seed("data_seed", point["data_seed"])
    seed = validation.check_seed("seed", point["seed"])
    shapes = [(X.shape[1], *map(int, hidden), 1) for hidden in point["hidden"]]
    if not shapes:
        raise ValueError("hidden must list at least one hidden-width tuple")
    members = [
        ensemble.MemberSpec(w, data_seed * n_init + i) for w in shapes for i in range(n_init)
    ]
    with validation.torch_threads(point.get("torch_threads")):
        res = ensemble.train_ensemble(
            members,
            X,
            y,
            loss="hinge",
            optimizer=point.get("optimizer", "adam"),
            lr=float(point.get("lr", 0.01)),
            steps=validation.check_int("steps", point["steps"], minimum=1),
            seed=seed,
        )
        entropy = [
            reservoir_entropy_bits(
                ensemble.stacked_weights(members[j * n_init : (j + 1) * n_init], seed), X
            ).tolist()
            for j in range(len(shapes))
        ]
    conv = res.converged.reshape(len(shapes), n_init)
    steps = res.steps.reshape(len(shapes), n_init)
    return {
        "n_params": [int(m.n_params) for m in members[::n_init]],
        "converged": conv.tolist(),
        "steps": steps.tolist(),
        "gate_entropy": entropy,
    }


@dataclass(frozen=True)
class PhaseColumn:
    """Cells of one ``(P, depth)`` pooled over datasets, by :func:`aggregate_cells`."""

    n_params: np.ndarray  # (W,) parameter counts of the width ladder
    fraction: np.ndarray  # (W,) fraction of runs reaching zero hinge loss
    n_runs: int  # runs per width (datasets x initialisations)
    gate_entropy: np.ndarray  # (W,) mean gate entropy at init (bits)
    gate_entropy_se: np.ndarray  # (W,) its standard error over runs
    median_steps: np.ndarray  # (W,) median steps of the converged runs (nan if none)


def aggregate_cells(results: list[dict]) -> PhaseColumn:
    """Pool the :func:`random_label_cell` results of one ``(P, depth)`` (one per dataset)."""
    if not results:
        raise ValueError("no cell results to aggregate")
    n_params = np.asarray(results[0]["n_params"])
    if any(list(r["n_params"]) != n_params.tolist() for r in results):
        raise ValueError("the cells use different width ladders")
    conv = np.concatenate([np.asarray(r["converged"], dtype=bool) for r in results], axis=1)
    steps = np.concatenate([np.asarray(r["steps"], dtype=np.float64) for r in results], axis=1)
    ent = np.concatenate([np.asarray(r["gate_entropy"], dtype=np.float64) for r in results], axis=1)
    n_runs = conv.shape[1]
    med = np.array(
        [np.median(s[c]) if c.any() else math.nan for s, c in zip(steps, conv, strict=True)]
    )
    se = ent.std(axis=1, ddof=1) / math.sqrt(n_runs) if n_runs > 1 else np.full(len(ent), math.inf)
    return PhaseColumn(
        n_params=n_params,
        fraction=conv.mean(axis=1),
        n_runs=n_runs,
        gate_entropy=ent.mean(axis=1),
        gate_entropy_se=se,
        median_steps=med,
    )


def group_cells(points, results) -> dict:
    """Pool :func:`random_label_cell` results over their datasets: a dict mapping
    ``(dataset, depth, P)`` to the :func:`aggregate_cells` column (``depth = len(hidden[0]) + 1``
    weight layers), in the order the keys first appear."""
    points, results = list(points), list(results)
    if len(points) != len(results):
        raise ValueError(f"{len(points)} points but {len(results)} results")
    groups: dict = {}
    for point, result in zip(points, results, strict=True):
        key = (point["dataset"], len(point["hidden"][0]) + 1, int(point["P"]))
        groups.setdefault(key, []).append(result)
    return {key: aggregate_cells(rs) for key, rs in groups.items()}
