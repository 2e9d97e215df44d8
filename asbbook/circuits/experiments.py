"""The chapter's experiments: digit features, one small trained network, and ensembles of
initial networks measured without enumeration."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from asbbook import data, nets, stats, validation
from asbbook.circuits import _checks, counting, energy, enumeration

#: Default cap on gradient-descent steps of :func:`train_small_net` (override with max_steps).
DEFAULT_MAX_STEPS = 1_000_000
#: Default cap on the networks of :func:`initial_ensemble` (override with max_members).
DEFAULT_MAX_MEMBERS = 1_000_000


def principal_features(X: torch.Tensor, n_features: int) -> torch.Tensor:
    """Project ``X`` (``(P, d)``) on its top ``n_features`` principal axes, each scaled to unit
    variance (principal component analysis, e.g. Jolliffe 2002).

    Columns are centred, the axes come from an SVD and each axis's sign is fixed so that its
    largest-magnitude loading is positive (deterministic). Only axes that carry variance can be
    scaled: ``n_features`` above the numerical rank of the centred ``X`` (singular values above
    ``max(P, d) eps sigma_max``) is refused by name, never answered with a NaN column.
    """
    X = validation.check_inputs(X)
    if X.shape[0] < 2:
        raise ValueError(f"X must have at least 2 rows to define a variance, got {X.shape[0]}")
    n_features = validation.check_int("n_features", n_features, minimum=1, maximum=min(X.shape))
    Xc = X - X.mean(0, keepdim=True)
    _, s, Vh = torch.linalg.svd(Xc, full_matrices=False)
    rank = int((s > max(X.shape) * torch.finfo(X.dtype).eps * s[0]).sum()) if s[0] > 0 else 0
    if n_features > rank:
        raise ValueError(
            f"n_features={n_features} exceeds the rank {rank} of the centred X (shape "
            f"{tuple(X.shape)}): only {rank} principal axes carry variance"
        )
    V = Vh[:n_features].T
    sign = torch.sign(V.gather(0, V.abs().argmax(0, keepdim=True)))
    Z = Xc @ (V * sign)
    return Z / Z.std(0, keepdim=True)


@dataclass(frozen=True)
class TrainingRun:
    """Result of :func:`train_small_net`: weight snapshots and the loss curve.

    ``snapshot_steps[k]`` is the step of ``snapshots[k]`` (a list of ``W^l``); ``loss[t]`` is the
    mean squared loss ``1/(2P) sum (y - f)^2`` before update ``t`` (``loss[steps]`` at the end).
    """

    snapshot_steps: list[int]
    snapshots: list[list[torch.Tensor]]
    loss: torch.Tensor


def train_small_net(
    X: torch.Tensor,
    y: torch.Tensor,
    widths: Sequence[int],
    *,
    steps: int,
    lr: float = 0.05,
    snapshot_steps: Sequence[int] | None = None,
    sigma2: float = 2.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    threads: int | None = 1,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> TrainingRun:
    """Full-batch gradient descent on ``1/(2P) sum_mu (y_mu - f(x_mu))^2`` for one small net.

    He initialisation (:func:`asbbook.nets.init_weights`, generator
    ``asbbook.data.torch_generator(seed)``); plain ``W <- W - lr grad`` steps (autograd) in the
    dtype of ``X``; detached snapshots at ``snapshot_steps`` (default: 0 and ``steps``).
    Deterministic on the CPU. ``steps`` above ``max_steps`` is refused with the estimated cost
    before any work (raise ``max_steps`` to allow it); so are runs beyond the memory limit.
    ``threads``: ``asbbook.validation.torch_threads``.
    """
    widths = validation.check_widths(widths)
    _checks.scalar_output(widths, "widths")
    X = validation.check_inputs(X, widths[0])
    y = _checks.labels(y, X)
    max_steps = validation.check_int("max_steps", max_steps, minimum=0)
    steps = validation.check_int("steps", steps, minimum=0)
    flops = 6.0 * X.shape[0] * nets.parameter_count(widths) * steps
    if steps > max_steps:
        raise ValueError(
            f"steps={steps:,} is above max_steps={max_steps:,} (about {flops:.2g} floating-point "
            "operations); pass a larger max_steps to allow it"
        )
    lr = validation.check_real("lr", lr, positive=True)
    sigma2 = validation.check_real("sigma2", sigma2, positive=True)
    seed = validation.check_seed("seed", seed)
    device = validation.resolve_device(device)
    wanted = sorted(
        {
            validation.check_int("snapshot_steps", s, minimum=0, maximum=steps)
            for s in (snapshot_steps if snapshot_steps is not None else (0, steps))
        }
    )
    size = validation.element_bytes(X.dtype)
    validation.check_memory("widths", 3.0 * size * nets.parameter_count(widths))
    validation.check_memory(
        "snapshot_steps", size * len(wanted) * nets.parameter_count(widths) + 8.0 * steps
    )
    validation.check_memory("X", 4.0 * size * X.shape[0] * sum(widths))
    X = X.to(device)
    y = y.to(device)
    generator = data.torch_generator(seed)
    weights = [
        w.requires_grad_(True)
        for w in nets.init_weights(
            widths, sigma2, generator=generator, dtype=X.dtype, device=device
        )
    ]
    losses = torch.empty(steps + 1, dtype=torch.float64)
    snaps: list[list[torch.Tensor]] = []
    with validation.torch_threads(threads):
        for t in range(steps + 1):
            loss = 0.5 * ((y - nets.forward(weights, X)) ** 2).mean()
            losses[t] = loss.detach().to(torch.float64).cpu()
            if t in wanted:
                snaps.append([w.detach().clone() for w in weights])
            if t == steps:
                break
            grads = torch.autograd.grad(loss, weights)
            with torch.no_grad():
                for w, g in zip(weights, grads, strict=True):
                    w -= lr * g
    return TrainingRun(snapshot_steps=wanted, snapshots=snaps, loss=losses)


@dataclass(frozen=True)
class InitialEnsemble:
    """Per-network statistics of an ensemble at initialisation (:func:`initial_ensemble`).

    ``open_ratio[r]``: mean over the inputs of ``N(x_mu) / (n_0 n_L prod (n_l/2))`` for network
    ``r`` (expected value 1); ``magnetisation[r]``: :func:`circuit_magnetisation` of network
    ``r`` (symmetric about 0). The networks are independent.
    """

    open_ratio: torch.Tensor
    magnetisation: torch.Tensor

    @property
    def n_members(self) -> int:
        return int(self.open_ratio.numel())

    def open_ratio_estimate(self) -> stats.Estimate:
        """Mean open ratio with its standard error (``asbbook.stats.mean_with_stderr``)."""
        return stats.mean_with_stderr(self.open_ratio).item()

    def magnetisation_estimate(self) -> stats.Estimate:
        """Mean magnetisation with its standard error."""
        return stats.mean_with_stderr(self.magnetisation).item()

    def positive_magnetisations(self) -> int:
        """Number of networks with ``m > 0`` (a fair coin per network at initialisation)."""
        return int((self.magnetisation > 0).sum())

    @staticmethod
    def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
        """Deprecated: use ``asbbook.stats.mean_with_stderr``."""
        warnings.warn(
            "InitialEnsemble.mean_and_se is deprecated, use asbbook.stats.mean_with_stderr",
            DeprecationWarning,
            stacklevel=2,
        )
        return tuple(stats.mean_with_stderr(values).item())


@_checks.renamed_keyword("n_nets", "n_members")
def initial_ensemble(
    X: torch.Tensor,
    y: torch.Tensor,
    widths: Sequence[int],
    *,
    n_members: int,
    sigma2: float = 2.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    threads: int | None = 1,
    max_entries: int = 4_000_000,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> InitialEnsemble:
    """Draw ``n_members`` independent He-initialised networks and measure their open-circuit
    count and circuit magnetisation on ``(X, y)`` (in log space, nothing enumerated).

    Member ``r`` is the ``r``-th draw of :func:`asbbook.nets.init_weights` from the generator
    ``asbbook.data.torch_generator(seed, stream="initial_ensemble", widths=widths,
    sigma2=sigma2)``. Members are processed in chunks whose activations hold at most
    ``max_entries`` numbers. Integer ``X`` is refused (integer arithmetic would truncate the
    pre-activations), as are sizes beyond the memory limit and ``n_members`` above
    ``max_members`` (each member costs a Python-level draw; raise ``max_members`` to allow more).
    """
    widths = validation.check_widths(widths)
    _checks.scalar_output(widths, "widths")
    X = validation.check_inputs(X, widths[0])
    y = _checks.labels(y, X)
    n_members = validation.check_int("n_members", n_members, minimum=2)
    max_members = validation.check_int("max_members", max_members, minimum=2)
    if n_members > max_members:
        raise ValueError(
            f"n_members={n_members:,} is above max_members={max_members:,}; pass a larger "
            "max_members to allow it"
        )
    sigma2 = validation.check_real("sigma2", sigma2, positive=True)
    seed = validation.check_seed("seed", seed)
    device = validation.resolve_device(device)
    max_entries = validation.check_int("max_entries", max_entries, minimum=1)
    size = validation.element_bytes(X.dtype)
    per_member = X.shape[0] * max(widths)
    validation.check_memory("n_members", 16.0 * n_members + size * nets.parameter_count(widths))
    validation.check_memory("X", 4.0 * size * per_member)
    X, y = X.to(device), y.to(device)
    generator = data.torch_generator(
        seed, stream="initial_ensemble", widths=list(widths), sigma2=sigma2
    )
    chunk = max(1, max_entries // per_member)
    log_theory = counting.log_expected_open_circuits(widths)
    ratios, mags = [], []
    with validation.torch_threads(threads):
        for start in range(0, n_members, chunk):
            draws = [
                nets.init_weights(widths, sigma2, generator=generator, dtype=X.dtype, device=device)
                for _ in range(min(chunk, n_members - start))
            ]
            stacked = [torch.stack(layer) for layer in zip(*draws, strict=True)]
            log_n = counting.log_open_circuits(stacked, X)
            ratios.append(torch.exp(log_n - log_theory).mean(-1).cpu())
            mags.append(energy.circuit_magnetisation(stacked, X, y).to(torch.float64).cpu())
    return InitialEnsemble(open_ratio=torch.cat(ratios), magnetisation=torch.cat(mags))


@dataclass(frozen=True)
class ExactChecks:
    """Round-off-level checks of one network on ``X`` (:func:`exact_checks`)."""

    reconstruction_error: float  # max_mu |sum_pi c_{mu pi} - f(x_mu)|
    count_log_error: float  # max_mu |log N_logspace - log N_enumerated| (0 if both are 0)
    output_scale: float  # max_mu A(x_mu): the scale the reconstruction error is relative to


def exact_checks(weights: Sequence[torch.Tensor], X: torch.Tensor) -> ExactChecks:
    """Rebuild the output from the enumerated circuits, and the open-circuit count in log space
    from the enumerated states."""
    contributions = enumeration.circuit_contributions(weights, X)
    f = nets.forward(weights, X)
    enumerated = enumeration.circuit_states(weights, X).sum(1).to(torch.float64)
    log_count = counting.log_open_circuits(weights, X)
    both_closed = torch.isneginf(log_count) & (enumerated == 0)
    diff = (log_count - torch.log(enumerated)).abs()
    return ExactChecks(
        reconstruction_error=float((contributions.sum(1) - f).abs().max()),
        count_log_error=float(torch.where(both_closed, torch.zeros_like(diff), diff).max()),
        output_scale=float(energy.absolute_contribution_mass(weights, X).max()),
    )


def open_circuit_sweep(
    X: torch.Tensor,
    y: torch.Tensor,
    hidden_widths: Sequence[int],
    depth: int,
    *,
    n_members: int,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[int, InitialEnsemble]:
    """:func:`initial_ensemble` for networks ``(n_0, n, ..., n, 1)`` with ``depth`` hidden layers
    of width ``n``, for every ``n`` in ``hidden_widths`` (each with its own derived stream)."""
    depth = validation.check_int("depth", depth, minimum=1)
    n_0 = validation.check_inputs(X).shape[1]
    out = {}
    for k, n in enumerate(hidden_widths):
        n = validation.check_int(f"hidden_widths[{k}]", n, minimum=1)
        out[n] = initial_ensemble(
            X, y, (n_0, *[n] * depth, 1), n_members=n_members, seed=seed, device=device
        )
    return out


def expected_open_circuits_of(hidden_width: int, depth: int, n_0: int) -> float:
    """:func:`expected_open_circuits` of ``(n_0, n, ..., n, 1)``: ``n_0 (n/2)^depth``."""
    return counting.expected_open_circuits((n_0, *[hidden_width] * depth, 1))
