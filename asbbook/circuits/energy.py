"""The circuit energy of the squared loss, the structure of its coupling matrix, and the circuit
magnetisation (the contribution-weighted label alignment of the open circuits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from asbbook.circuits import _checks, enumeration
from asbbook.circuits._checks import DEFAULT_MAX_COUPLING_CIRCUITS, DEFAULT_MAX_ENTRIES


class CircuitEnergy(NamedTuple):
    """The three parts of ``H = 1/2 sum (y - f)^2 = constant - field + interaction``.

    ``constant = 1/2 sum_mu y_mu^2``; ``field = sum_pi J_pi h_pi``;
    ``interaction = 1/2 sum_{pi,pi'} J_pi J_pi' C_{pi pi'}`` (0-dim tensors).
    """

    constant: torch.Tensor
    field: torch.Tensor
    interaction: torch.Tensor

    @property
    def loss(self) -> torch.Tensor:
        """``constant - field + interaction``, the summed squared loss ``1/2 sum (y - f)^2``."""
        return self.constant - self.field + self.interaction


def circuit_energy_terms(
    weights: Sequence[torch.Tensor], X: torch.Tensor, y: torch.Tensor
) -> CircuitEnergy:
    """The circuit-energy split of the squared loss, without building the coupling matrix.

    By the path expansion, ``sum_pi J_pi h_pi = sum_mu y_mu f(x_mu)`` and
    ``1/2 J^T C J = 1/2 sum_mu f(x_mu)^2`` (asserted in :func:`derive_circuit_energy`), so one
    forward pass suffices; :func:`circuit_energy_terms_enumerated` builds ``J``, ``h``, ``C``.
    """
    widths, weights, X = _checks.network_and_inputs(weights, X)
    _checks.scalar_output(widths)
    y = _checks.labels(y, X)
    f = _checks.gates_and_output(weights, X)[1][:, 0]
    return CircuitEnergy(0.5 * (y * y).sum(), (y * f).sum(), 0.5 * (f * f).sum())


def circuit_energy_terms_enumerated(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_COUPLING_CIRCUITS,
) -> CircuitEnergy:
    """:func:`circuit_energy_terms` from explicit ``J_pi``, ``h_pi`` and ``C_{pi pi'}``."""
    widths, weights, X = _checks.network_and_inputs(weights, X)
    _checks.scalar_output(widths)
    y = _checks.labels(y, X)
    J = enumeration.circuit_couplings(weights, max_circuits=max_circuits)
    h = enumeration.circuit_fields(weights, X, y, max_circuits=max_circuits)
    C = enumeration.circuit_coupling_matrix(weights, X, max_circuits=max_circuits)
    return CircuitEnergy(0.5 * (y * y).sum(), J @ h, 0.5 * (J @ (C @ J)))


@dataclass(frozen=True)
class GramStructure:
    """The coupling matrix ``C = Phi^T Phi`` of one network on one dataset
    (:func:`coupling_gram_structure`)."""

    n_examples: int  # P: the number of stored "patterns" Phi_mu
    n_circuits: int  # the dimension of C
    rank_coupling: int  # eigenvalues of C above n eps lambda_max
    rank_features: int  # squared singular values of Phi above the same threshold
    spectrum_error: float  # max_i |lambda_i(C) - sigma_i(Phi)^2| / lambda_max: 0 for a Gram matrix
    min_eigenvalue_ratio: float  # smallest eigenvalue of C over the largest (>= 0 up to round-off)
    n_patterns: int  # K: distinct gate patterns (linear regions) among the examples
    pattern_rank_bound: int  # sum over patterns r of rank{x_mu in r}, at most min(P, n_0 K)


def coupling_gram_structure(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    *,
    max_circuits: int = DEFAULT_MAX_COUPLING_CIRCUITS,
) -> GramStructure:
    """Rank and spectrum of the coupling matrix ``C`` of :func:`circuit_coupling_matrix`.

    ``C`` is the Gram matrix of the ``P`` circuit-feature rows ``Phi_mu``
    (:func:`circuit_features`), so ``rank C = rank Phi <= min(P, n_circuits)`` and ``C`` is
    positive semi-definite: the form of the Hebbian couplings of Hopfield (1982). Sharper:
    ``Phi_mu = x_mu (x) g^1(x_mu) (x) ... (x) g^{L-1}(x_mu)`` (Kronecker product), so examples
    with the same gate pattern ``r`` span at most ``rank{x_mu : mu in r}`` dimensions and
    ``rank C <= sum_r rank{x_mu : mu in r} <= min(P, n_0 K)`` over the ``K`` distinct patterns.
    The eigenvalues of ``C`` are the squared singular values of ``Phi`` padded with zeros
    (``spectrum_error`` measures the difference); ranks count the values above
    ``n_circuits eps lambda_max``.
    """
    widths, weights, X = _checks.network_and_inputs(weights, X)
    _checks.scalar_output(widths)
    features = enumeration.circuit_features(weights, X, max_circuits=max_circuits)
    C = enumeration.circuit_coupling_matrix(weights, X, max_circuits=max_circuits)
    gates, _ = _checks.gates_and_output(weights, X)
    pattern = torch.cat(gates, dim=-1) if gates else X.new_zeros(X.shape[0], 0)
    patterns, which = torch.unique(pattern, dim=0, return_inverse=True)
    bound = 0
    for r in range(patterns.shape[0]):
        members = which == r
        if all(bool(g[members][0].any()) for g in gates):  # an all-closed layer gives Phi_mu = 0
            bound += int(torch.linalg.matrix_rank(X[members]))
    eigenvalues = torch.linalg.eigvalsh(C)  # ascending
    n = C.shape[0]
    squared = torch.zeros_like(eigenvalues)
    singular = torch.linalg.svdvals(features)
    squared[n - singular.numel() :] = singular.flip(0) ** 2  # ascending, padded with zeros
    top = eigenvalues[-1].clamp(min=torch.finfo(C.dtype).tiny)
    threshold = n * torch.finfo(C.dtype).eps * top
    return GramStructure(
        n_examples=int(X.shape[0]),
        n_circuits=int(n),
        rank_coupling=int((eigenvalues > threshold).sum()),
        rank_features=int((squared > threshold).sum()),
        spectrum_error=float((eigenvalues - squared).abs().max() / top),
        min_eigenvalue_ratio=float(eigenvalues[0] / top),
        n_patterns=int(patterns.shape[0]),
        pattern_rank_bound=bound,
    )


def absolute_contribution_mass(weights: Sequence[torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """``A(x) = sum_pi |x_{i_0} J_pi S_pi(x)|`` per input, ``(..., P)``, without enumeration.

    ``A(x) = 1^T |W^L| G^{L-1} |W^{L-1}| ... G^1 |W^1| |x|``: the gated network of absolute
    weights, with the gates ``G^l`` of the original network. Ensemble dimensions are allowed.
    """
    _, weights, X = _checks.network_and_inputs(weights, X, ensemble=True)
    gates, _ = _checks.gates_and_output(weights, X)
    h = X.abs()
    for ell, w in enumerate(weights):
        h = h @ w.abs().mT
        if ell < len(weights) - 1:
            h = h * gates[ell]
    return h.sum(-1)


def circuit_magnetisation(
    weights: Sequence[torch.Tensor], X: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Circuit magnetisation, the contribution-weighted mean label alignment of circuits::

        m = sum_{mu, pi} y_mu c_{mu pi} / sum_{mu, pi} |y_mu c_{mu pi}|,
        c_{mu pi} = x_{mu, i_0} J_pi S_pi(x_mu).

    ``m`` lies in ``[-1, 1]`` and ``(1 + m)/2`` is the label-aligned share of the contribution
    mass. The numerator is ``sum_mu y_mu f(x_mu)`` (the field term) and the denominator the
    contribution mass ``M = sum_mu |y_mu| A(x_mu)`` (:func:`absolute_contribution_mass`), so
    ``m M = sum_mu y_mu f(x_mu)`` exactly and nothing is enumerated. Flipping the sign of ``W^L``
    flips ``m`` and leaves the initial ensemble invariant, so ``P(m > 0) = 1/2`` at
    initialisation. Defined as 0 when no circuit is open. Ensemble dimensions give ``(...)``.
    """
    widths, weights, X = _checks.network_and_inputs(weights, X, ensemble=True)
    _checks.scalar_output(widths)
    y = _checks.labels(y, X)
    num = (y * _checks.gates_and_output(weights, X)[1][..., 0]).sum(-1)
    den = (y.abs() * absolute_contribution_mass(weights, X)).sum(-1)
    safe = torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(den > 0, num / safe, torch.zeros_like(num))


@dataclass(frozen=True)
class ContributionMass:
    """The label-signed contribution mass of a network, by enumeration
    (:func:`contribution_mass`); all sums run over examples ``mu`` and open circuits ``pi``."""

    aligned: float  # M_+ = sum of the positive y_mu c_{mu pi}
    opposed: float  # M_- = sum of |y_mu c_{mu pi}| over the negative ones
    net: float  # M_+ - M_- = sum_mu y_mu f(x_mu)
    n_open: int  # number of open (mu, pi) pairs
    random_sign_scale: float  # sqrt(sum c^2) / sum |c|: the spread of m under random signs

    @property
    def total(self) -> float:
        """``M = M_+ + M_-``, the contribution mass."""
        return self.aligned + self.opposed

    @property
    def magnetisation(self) -> float:
        """``m = (M_+ - M_-) / (M_+ + M_-)``."""
        return self.net / self.total if self.total > 0 else 0.0


def contribution_mass(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> ContributionMass:
    """Split the contribution mass into its label-aligned and opposed parts, by enumeration.

    If the signs of the ``n_open`` contributions were independent fair coins (magnitudes kept),
    ``m`` would have mean 0 and standard deviation ``sqrt(sum c^2) / sum |c|``
    (``random_sign_scale``): the yardstick for how far a measured ``m`` is from cancellation.
    """
    signed = enumeration.label_signed_contributions(weights, X, y, max_entries=max_entries)
    signed = signed.to(torch.float64)
    aligned = float(signed.clamp(min=0).sum())
    opposed = float((-signed).clamp(min=0).sum())
    total = aligned + opposed
    spread = float(signed.square().sum().sqrt()) / total if total > 0 else 0.0
    return ContributionMass(aligned, opposed, aligned - opposed, int(signed.numel()), spread)
