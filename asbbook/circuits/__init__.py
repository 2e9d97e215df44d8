"""Chapter 2: circuits, the Ising-like circuit energy and the open-circuit count.

A *circuit* of a bias-free ReLU MLP with widths ``(n_0, ..., n_L)`` is an input-to-output path
``pi = (i_0, i_1, ..., i_L)`` that visits one unit per layer. With ``J_pi = prod_l
W^l_{i_l i_{l-1}}`` (its *coupling*) and ``S_pi(x) = prod_{l<L} g^l_{i_l}(x)`` in ``{0, 1}`` (open
or closed), the layered computation ``f = W^L G^{L-1} W^{L-1} ... G^1 W^1 x`` is the path sum::

    f(x) = sum_pi x_{i_0} J_pi S_pi(x),            (n_0 n_1 ... n_L circuits)

the path expansion of ReLU networks (used, e.g., by Choromanska et al. 2015). The squared loss
over a dataset ``(x_mu, y_mu)`` then reads::

    1/2 sum_mu (y_mu - f(x_mu))^2
        = 1/2 sum_mu y_mu^2 - sum_pi J_pi h_pi + 1/2 sum_{pi, pi'} J_pi J_pi' C_{pi pi'},
    h_pi = sum_mu y_mu Phi_{mu pi},   C = Phi^T Phi,   Phi_{mu pi} = x_{mu, i_0} S_pi(x_mu),

a pairwise energy in the circuit couplings at a given gate configuration, whose coupling matrix
is a Gram matrix of rank at most ``P`` (the form of Hopfield 1982's couplings).

The package is split by concern: ``asbbook.circuits.derivations`` (sympy),
``asbbook.circuits.enumeration`` (circuits as tensors), ``asbbook.circuits.counting``
(open circuits without enumeration), ``asbbook.circuits.energy`` (energy, Gram structure,
magnetisation), ``asbbook.circuits.experiments`` (the chapter's runs) and
``asbbook.circuits.diagram`` (the drawn circuit). Every public name is importable from
``asbbook.circuits``.

Conventions: ``weights[l-1]`` is ``W^l`` with shape ``(n_l, n_{l-1})`` (see :mod:`asbbook.nets`);
inputs ``X`` are ``(P, n_0)`` and labels ``y`` in ``{-1, +1}`` are ``(P,)``.
"""

from __future__ import annotations

import contextlib
import warnings

from asbbook import validation
from asbbook.circuits._checks import (
    DEFAULT_MAX_CIRCUITS,
    DEFAULT_MAX_COUPLING_CIRCUITS,
    DEFAULT_MAX_ENTRIES,
)
from asbbook.circuits.counting import (
    expected_open_circuits,
    log_expected_open_circuits,
    log_open_circuits,
)
from asbbook.circuits.derivations import (
    CircuitEnergyDerivation,
    OpenCircuitDerivation,
    PathExpansion,
    SpinForm,
    derive_circuit_energy,
    derive_expected_open_circuits,
    derive_path_expansion,
    derive_spin_form,
)
from asbbook.circuits.diagram import draw_circuit, strongest_open_circuit
from asbbook.circuits.energy import (
    CircuitEnergy,
    ContributionMass,
    GramStructure,
    absolute_contribution_mass,
    circuit_energy_terms,
    circuit_energy_terms_enumerated,
    circuit_magnetisation,
    contribution_mass,
    coupling_gram_structure,
)
from asbbook.circuits.enumeration import (
    circuit_contributions,
    circuit_count,
    circuit_coupling_matrix,
    circuit_couplings,
    circuit_features,
    circuit_fields,
    circuit_indices,
    circuit_states,
    label_signed_contributions,
)
from asbbook.circuits.experiments import (
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_STEPS,
    ExactChecks,
    InitialEnsemble,
    TrainingRun,
    exact_checks,
    expected_open_circuits_of,
    initial_ensemble,
    open_circuit_sweep,
    principal_features,
    train_small_net,
)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Deprecated alias of ``asbbook.validation.torch_threads``."""
    warnings.warn(
        "asbbook.circuits.torch_threads is deprecated, use asbbook.validation.torch_threads",
        DeprecationWarning,
        stacklevel=3,
    )
    with validation.torch_threads(n):
        yield


__all__ = [
    "DEFAULT_MAX_CIRCUITS",
    "DEFAULT_MAX_COUPLING_CIRCUITS",
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_MAX_STEPS",
    "CircuitEnergy",
    "CircuitEnergyDerivation",
    "ContributionMass",
    "ExactChecks",
    "GramStructure",
    "InitialEnsemble",
    "OpenCircuitDerivation",
    "PathExpansion",
    "SpinForm",
    "TrainingRun",
    "absolute_contribution_mass",
    "circuit_contributions",
    "circuit_count",
    "circuit_coupling_matrix",
    "circuit_couplings",
    "circuit_energy_terms",
    "circuit_energy_terms_enumerated",
    "circuit_features",
    "circuit_fields",
    "circuit_indices",
    "circuit_magnetisation",
    "circuit_states",
    "contribution_mass",
    "coupling_gram_structure",
    "derive_circuit_energy",
    "derive_expected_open_circuits",
    "derive_path_expansion",
    "derive_spin_form",
    "draw_circuit",
    "exact_checks",
    "expected_open_circuits",
    "expected_open_circuits_of",
    "initial_ensemble",
    "label_signed_contributions",
    "log_expected_open_circuits",
    "log_open_circuits",
    "open_circuit_sweep",
    "principal_features",
    "strongest_open_circuit",
    "torch_threads",
    "train_small_net",
]
