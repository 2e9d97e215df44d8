"""Constituent 1: the Boltzmann-like distribution of a ReLU gate (book, Chapter 1).

A gate ``g in {0, 1}`` in front of a pre-activation ``z`` has energy ``E(g; z) = -g z`` and, at
inverse temperature ``beta``, the law ``P(g = 1 | z) = sigmoid(beta z)``. Stacking such gates gives
a layered directed graphical model whose zero-temperature limit is the deterministic ReLU network.

* :mod:`asbbook.boltzmann.gate`: one gate, its sympy derivations and torch counterparts;
* :mod:`asbbook.boltzmann.network`: ancestral sampling of networks and the mean output gap ``D``;
* :mod:`asbbook.boltzmann.meanfield`: the moment closure that predicts ``D`` at depth > 1;
* :mod:`asbbook.boltzmann.checks`: families of independent exact tests as one table row;
* :mod:`asbbook.boltzmann.diagram`: the graphical model drawn by code.

Every public name is re-exported here, so ``from asbbook import boltzmann`` is all a reader needs.
"""

from asbbook.boltzmann.checks import (
    SidakFamily,
    minority_gate_family,
    minority_gate_row,
    sidak,
)
from asbbook.boltzmann.diagram import draw_graphical_model
from asbbook.boltzmann.gate import (
    LAMBERT_W_INV_E,
    EntropyMaximum,
    GapSample,
    GateDerivation,
    GateMoments,
    SupGap,
    ZeroTemperatureLimits,
    activation_variance,
    argmax_relu_gap,
    check_beta,
    check_n_samples,
    check_pre_activations,
    closed_probability_at_argmax,
    derive_entropy_maximum,
    derive_gate,
    derive_sup_gap,
    derive_zero_temperature_limits,
    gate_entropy,
    gate_moment_stderr,
    grid_sup_relu_gap,
    max_relu_gap,
    mc_gap_at_argmax,
    mc_gate_moments,
    mean_activation,
    open_probability,
    sample_activation,
    sample_gap_at_argmax,
    sample_gate_moments,
    sample_gates,
    sigmoid_expr,
    symmetric_grid,
)
from asbbook.boltzmann.gate import beta as beta  # the sympy symbols, for readers
from asbbook.boltzmann.gate import g as g
from asbbook.boltzmann.gate import z as z
from asbbook.boltzmann.meanfield import (
    MeanFieldDerivation,
    MeanFieldState,
    derive_mean_field,
    gaussian_gate_moments,
    mean_field_propagate,
    mean_field_relative_gap,
)
from asbbook.boltzmann.network import (
    exact_relative_mean_output_gap,
    mean_and_stderr,
    one_hidden_layer_mean_output,
    relative_gap,
    relative_mean_output_gap,
    stochastic_forward,
    stochastic_gate,
    upper_half_exponent,
    variance_and_stderr,
)

__all__ = [
    # one gate: derivations (the sympy symbols z, beta, g are importable too)
    "sigmoid_expr",
    "GateDerivation",
    "derive_gate",
    "EntropyMaximum",
    "derive_entropy_maximum",
    "ZeroTemperatureLimits",
    "derive_zero_temperature_limits",
    "SupGap",
    "derive_sup_gap",
    "LAMBERT_W_INV_E",
    # one gate: torch
    "check_beta",
    "check_pre_activations",
    "check_n_samples",
    "open_probability",
    "mean_activation",
    "activation_variance",
    "gate_entropy",
    "max_relu_gap",
    "argmax_relu_gap",
    "closed_probability_at_argmax",
    "symmetric_grid",
    "grid_sup_relu_gap",
    "sample_gates",
    "sample_activation",
    "GateMoments",
    "sample_gate_moments",
    "gate_moment_stderr",
    "GapSample",
    "sample_gap_at_argmax",
    "mc_gap_at_argmax",
    "SidakFamily",
    "sidak",
    "minority_gate_row",
    "minority_gate_family",
    # networks
    "stochastic_gate",
    "stochastic_forward",
    "one_hidden_layer_mean_output",
    "relative_gap",
    "relative_mean_output_gap",
    "exact_relative_mean_output_gap",
    "upper_half_exponent",
    # the moment closure
    "MeanFieldDerivation",
    "derive_mean_field",
    "gaussian_gate_moments",
    "MeanFieldState",
    "mean_field_propagate",
    "mean_field_relative_gap",
    # the diagram
    "draw_graphical_model",
    # deprecated
    "mc_gate_moments",
    "mean_and_stderr",
    "variance_and_stderr",
]
