"""The chapter's deep-network cells: the jamming transition of bias-free ReLU nets.

A *cell* is one ``(dataset, loss, hidden layers, P)`` with a ladder of architectures, each
trained on ``n_runs`` independent datasets (one fresh initialisation per dataset). It records
what the jamming analysis of deep networks measures (Spigler et al. 2019; Geiger et al. 2019,
PRE; Franz & Parisi 2016; Franz, Hwang & Urbani 2019): whether a run reaches zero loss, in how
many steps, the number ``N_Delta`` of unsatisfied margins at the end of training, the test error
on held-out images, and -- at initialisation -- the candidate measures of the reservoir
(the gate entropy and the rank of the Jacobian of the margins).

Depth is counted in **hidden layers** ``L_h`` here (``L_h = 1``: one hidden layer, two weight
matrices); ``asbbook.phase`` counts weight layers ``L = L_h + 1``.

Architectures are *near-equal* hidden-width tuples, each width ``h`` or ``h + 1``: allowing
some layers one more unit refines the ladder beyond equal widths, so rungs near the transition
can be as close as the chapter asks (``x 1.12``) even for narrow deep nets. (With one hidden
layer the ladder's step is ``(h + 1)/h``, finer than 1.12 only from ``h = 9`` on.)
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from asbbook import ensemble, nets, validation
from asbbook.capacity.training import LOSSES, padded_initial_weights, train_padded
from asbbook.data import derive_seed, gaussian_patterns, load_digits_binary
from asbbook.stats import binary_entropy_bits

JAMMING_DATASETS = ("gaussian", "digits")
JACOBIAN_CHUNK = 16  # members whose P x N Jacobians are held at once


def near_equal_widths(hidden_layers: int, max_width: int) -> list[tuple[int, ...]]:
    """Every hidden-width tuple whose entries are ``h`` or ``h + 1`` (in any order), for
    ``1 <= h < max_width``, plus ``(max_width,) * L_h``."""
    hidden_layers = validation.check_int("hidden_layers", hidden_layers, minimum=1, maximum=8)
    max_width = validation.check_int("max_width", max_width, minimum=1, maximum=10**5)
    out = {(max_width,) * hidden_layers}
    for h in range(1, max_width):
        out.update(itertools.product((h, h + 1), repeat=hidden_layers))
    return sorted(out)


def architecture_ladder(n_inputs: int, hidden_layers: int, n_min: float, n_max: float):
    """All near-equal architectures (:func:`near_equal_widths`) whose parameter count
    ``N = sum_l n_l n_{l-1}`` (``widths = (n_inputs, *hidden, 1)``) lies in ``[n_min, n_max]``,
    as ``(N, hidden)`` pairs sorted by ``N``."""
    n_inputs = validation.check_int("n_inputs", n_inputs, minimum=1)
    n_min = validation.check_real("n_min", n_min, positive=True)
    n_max = validation.check_real("n_max", n_max, positive=True)
    if not n_min <= n_max:
        raise ValueError(f"n_min must not exceed n_max, got {n_min}, {n_max}")
    # N >= n_inputs h + h for one layer of width h, so h <= n_max / (n_inputs + 1) suffices
    top = max(1, int(n_max / (n_inputs + 1)) + 1)
    out = []
    for hidden in near_equal_widths(hidden_layers, top):
        n = nets.parameter_count((n_inputs, *hidden, 1))
        if n_min <= n <= n_max:
            out.append((n, hidden))
    return sorted(out)


def geometric_rungs(candidates, targets) -> list[tuple[int, ...]]:
    """For each target parameter count, the candidate ``(N, hidden)`` nearest in ``ln N``;
    duplicates dropped, sorted by ``N``."""
    if not candidates:
        raise ValueError("no architecture lies in the requested range of N")
    logn = np.log([n for n, _ in candidates])
    picked = {int(np.argmin(np.abs(logn - math.log(t)))) for t in targets}
    return [candidates[i][1] for i in sorted(picked)]


def fine_rungs(candidates, centre: float, span: float, ratio: float) -> list[tuple[int, ...]]:
    """Rungs around ``centre`` covering ``[centre / span, centre * span]``: walking up from the
    smallest candidate in range, the next rung is the largest candidate at most ``ratio`` times
    the current one (or the next candidate when none is that close)."""
    centre = validation.check_real("centre", centre, positive=True)
    span = validation.check_real("span", span, positive=True)
    ratio = validation.check_real("ratio", ratio, positive=True)
    if span < 1 or ratio <= 1:
        raise ValueError(f"span must be >= 1 and ratio > 1, got {span}, {ratio}")
    inside = [(n, h) for n, h in candidates if centre / span <= n <= centre * span]
    if not inside:
        raise ValueError(f"no architecture lies within a factor {span} of N = {centre:.4g}")
    chosen = [inside[0]]
    i = 0
    while i < len(inside) - 1:
        reach = [j for j in range(i + 1, len(inside)) if inside[j][0] <= ratio * inside[i][0]]
        i = reach[-1] if reach else i + 1
        chosen.append(inside[i])
    return [h for _, h in chosen]


def run_data(point: dict, run: int):
    """Training (and, for digits, held-out test) data of one run of a cell.

    ``"gaussian"``: ``P`` standard Gaussian patterns in ``R^{n_inputs}`` with uniform random
    labels; ``"digits"``: a seeded permutation of scikit-learn's digits (0-4 against 5-9), the
    first ``P`` images for training and the next ``n_test`` held out. The data seed is
    ``derive_seed(seed, purpose="jamming-data", dataset=..., P=P, run=run)``: the same for
    every loss, depth and rung, so those comparisons are paired.
    """
    name = validation.check_choice("dataset", point["dataset"], JAMMING_DATASETS)
    P = validation.check_int("P", point["P"], minimum=2)
    seed = derive_seed(point["seed"], purpose="jamming-data", dataset=name, P=P, run=run)
    if name == "gaussian":
        X, y = gaussian_patterns(P, validation.check_int("n_inputs", point["n_inputs"]), seed=seed)
        return X, y, None, None
    n_test = validation.check_int("n_test", point["n_test"], minimum=1)
    X, y = load_digits_binary(None, seed=seed)
    if P + n_test > len(y):
        raise ValueError(f"P + n_test must be at most {len(y)} images, got {P + n_test}")
    return X[:P], y[:P], X[P : P + n_test], y[P : P + n_test]


def init_seed(point: dict) -> int:
    """Base seed of a cell's initial networks (shared by the two losses, so they are paired)."""
    return derive_seed(
        point["seed"], purpose="jamming-init", dataset=point["dataset"], P=point["P"]
    )


def gate_entropy_per_member(weights, X) -> torch.Tensor:
    """``S = sum_i H_2(rho_i)`` bits per member (``asbbook.phase.reservoir_entropy_bits``) for
    stacked weights ``(K, ..)`` with per-member inputs ``X`` ``(K, P, n_0)``; a zero-padded unit
    has ``rho = 0`` and adds nothing."""
    zs, _ = ensemble.batched_forward(weights, X)
    total = torch.zeros(X.shape[0], dtype=X.dtype)
    for z in zs[:-1]:
        total = total + binary_entropy_bits((z > 0).to(X.dtype).mean(dim=-2)).sum(dim=-1)
    return total


def jacobian_rank(weights, X) -> np.ndarray:
    """Rank of the ``P x N`` Jacobian ``d m_mu / d theta`` of the margins at the given weights,
    per member (stacked ``(K, ..)`` weights, per-member ``X`` ``(K, P, n_0)``), by
    ``torch.func.vmap(torch.func.jacrev(...))`` and ``torch.linalg.matrix_rank`` (SVD, default
    tolerance). Labels ``+-1`` only flip rows, so the margins' Jacobian has the rank of the
    outputs'. Padded weights give zero columns and do not change the rank. The rescaling
    gauge of each hidden unit is a null direction, so the rank is at most
    ``min(P, N - n_hidden)``."""

    def outputs(ws, x):
        return nets.forward(list(ws), x)

    jac = torch.func.vmap(torch.func.jacrev(outputs), in_dims=(0, 0))
    ranks = []
    for start in range(0, X.shape[0], JACOBIAN_CHUNK):
        part = slice(start, start + JACOBIAN_CHUNK)
        blocks = jac(tuple(w[part] for w in weights), X[part])
        J = torch.cat([b.flatten(start_dim=2) for b in blocks], dim=2)
        ranks.append(torch.linalg.matrix_rank(J).cpu().numpy())
    return np.concatenate(ranks)


def jamming_cell(point: dict) -> dict:
    """One cell of the chapter's jamming experiment, a top-level function for ``asbbook.sweep``.

    ``point`` keys: ``dataset``, ``P``, ``n_inputs`` (Gaussian), ``n_test`` (digits), ``loss``
    (``"hinge"`` or ``"quadratic_hinge"``), ``hidden`` (hidden-width lists), ``n_runs``,
    ``steps``, ``lr``, ``seed``, ``measures`` (also compute the reservoir measures at
    initialisation) and optionally ``torch_threads``. Every architecture is trained on the
    datasets of runs ``first_run .. first_run + n_runs - 1`` (:func:`run_data`; ``first_run``
    defaults to 0), run ``r`` from its own
    initialisation (``MemberSpec(widths, replicate=r)``, base seed ``init_seed``), all in
    one padded group (:func:`train_padded`).

    Returns per rung ``n_params`` and ``n_hidden`` and per rung and run ``converged``,
    ``steps``, ``n_unsatisfied`` (``N_Delta`` at the end), ``test_error`` (digits; else empty)
    and, with ``measures``, ``gate_entropy`` and ``jacobian_rank`` at initialisation.
    """
    loss = validation.check_choice("loss", point["loss"], LOSSES)
    n_runs = validation.check_int("n_runs", point["n_runs"], minimum=1, maximum=10**4)
    hidden = [tuple(int(h) for h in hs) for hs in point["hidden"]]
    if not hidden or len({len(h) for h in hidden}) != 1:
        raise ValueError("hidden must list hidden-width tuples of one depth")
    n_inputs = 64 if point["dataset"] == "digits" else int(point["n_inputs"])
    shapes = [(n_inputs, *h, 1) for h in hidden]
    first = validation.check_int("first_run", point.get("first_run", 0), minimum=0)
    runs = range(first, first + n_runs)
    data = {r: run_data(point, r) for r in runs}
    members = [(w, r) for w in shapes for r in runs]
    X = torch.stack([data[r][0] for _, r in members])
    y = torch.stack([data[r][1] for _, r in members])
    with validation.torch_threads(point.get("torch_threads")):
        w0 = padded_initial_weights(
            [w for w, _ in members], [r for _, r in members], init_seed(point)
        )
        res = train_padded(w0, X, y, loss=loss, lr=float(point["lr"]), steps=int(point["steps"]))
        out = {
            "n_params": [nets.parameter_count(w) for w in shapes],
            "n_hidden": [nets.hidden_unit_count(w) for w in shapes],
        }
        shape2 = (len(shapes), n_runs)
        out["converged"] = res.converged.reshape(shape2).tolist()
        out["steps"] = res.steps.reshape(shape2).tolist()
        out["n_unsatisfied"] = res.n_unsatisfied.reshape(shape2).tolist()
        out["test_error"] = []
        if point["dataset"] == "digits":
            Xt = torch.stack([data[r][2] for _, r in members])
            yt = torch.stack([data[r][3] for _, r in members])
            f = ensemble.batched_forward(res.weights, Xt, keep_preactivations=False)[0][-1][..., 0]
            err = (torch.sign(f) != yt).to(torch.float64).mean(dim=-1).numpy()
            out["test_error"] = err.reshape(shape2).tolist()
        if point.get("measures"):
            out["gate_entropy"] = gate_entropy_per_member(w0, X).numpy().reshape(shape2).tolist()
            out["jacobian_rank"] = jacobian_rank(w0, X).reshape(shape2).tolist()
    return out
