"""Chapter 3: circuit symmetry, the sign-flip symmetry of the initial ensemble, the invariance
of variance (forward and backward), and the breaking of the symmetry by training.

Three layers of symmetry of a bias-free ReLU MLP (notation of :mod:`asbbook.nets`):

* **Exact symmetries of the function** (:mod:`~asbbook.symmetry.transforms`). Permuting the
  units of a hidden layer, and rescaling a hidden unit by ``c > 0``, leave ``f`` unchanged; the
  rescaling also leaves every gate and every circuit coupling ``J_pi`` unchanged.
* **Sign-flip symmetry of the initial ensemble** (the book's reading of "adaptive symmetry"):
  i.i.d. weights symmetric about 0 give ``E J_pi = 0``, ``E J_pi J_pi' = 0``,
  ``E J_pi^2 = prod_l sigma_l^2 / n_{l-1}``, gates open with probability 1/2 and
  ``E[g z^2] = E[z^2] / 2``.
* **Invariance of variance**, forward ``q^l = 2 m (sigma^2/2)^l`` (He et al. 2015) and backward
  ``E |df/dz^l|^2 = prod_{k>l} sigma_k^2/2`` (Hanin 2018): both preserved iff ``sigma^2 = 2``.

The sympy derivations are in :mod:`~asbbook.symmetry.derivations` (each ``derive_*`` asserts
its identities and returns a frozen dataclass), the debiased gate-label information in
:mod:`~asbbook.symmetry.information`, and the measurements (backward pass, initial-ensemble
samples, half-times and the order in which symmetries break) in
:mod:`~asbbook.symmetry.measure`. The layer order parameters live in :mod:`asbbook.order`.
"""

from __future__ import annotations

import functools
import warnings

from asbbook import order
from asbbook.order import (
    class_open_fractions,
    gate_label_information_bits,
    label_alignment,
    layer_second_moments,
    open_fraction,
    preactivation_variance,
    second_moment,
    variance_drift,
)
from asbbook.stats import Estimate as Estimate  # kept for readers; documented in stats
from asbbook.stats import binary_entropy_bits, mean_with_stderr
from asbbook.symbolic import symmetric_expectation
from asbbook.symmetry.derivations import (
    GradientMap,
    InformationBias,
    PermutationSymmetry,
    RescalingSymmetry,
    ScaleInvariance,
    SignFlipMoments,
    SymmetricSplit,
    VarianceMap,
    derive_gate_scale_invariance,
    derive_gradient_map,
    derive_information_bias,
    derive_permutation_symmetry,
    derive_rescaling_symmetry,
    derive_sign_flip_moments,
    derive_symmetric_split,
    derive_variance_map,
)
from asbbook.symmetry.information import (
    first_order_bias_bits,
    gate_label_information_debiased_bits,
    gate_statistics,
    information_from_counts_bits,
    information_null_bias_bits,
    shuffled_labels,
)
from asbbook.symmetry.measure import (
    OrderComparison,
    gradient_prediction,
    gradient_second_moments,
    half_time,
    initial_ensemble_samples,
    joint_row,
    log_coupling_prediction,
    preactivation_gradients,
)
from asbbook.symmetry.transforms import (
    exact_symmetry_residuals,
    path_couplings,
    permute_hidden,
    random_circuits,
    rescale_unit,
)


def _deprecated(old: str, new_name: str, new):
    @functools.wraps(new)
    def alias(*args, **kwargs):
        warnings.warn(
            f"asbbook.symmetry.{old} is deprecated; use {new_name}", DeprecationWarning, 2
        )
        return new(*args, **kwargs)

    alias.__name__ = old
    alias.__doc__ = f"Deprecated alias of :func:`{new_name}`."
    return alias


gate_entropy_bits = _deprecated(
    "gate_entropy_bits", "asbbook.order.mean_gate_entropy_bits", order.mean_gate_entropy_bits
)
gate_reservoir_bits = _deprecated(
    "gate_reservoir_bits", "asbbook.order.layer_reservoir_bits", order.layer_reservoir_bits
)

__all__ = [
    "GradientMap",
    "InformationBias",
    "OrderComparison",
    "PermutationSymmetry",
    "RescalingSymmetry",
    "ScaleInvariance",
    "SignFlipMoments",
    "SymmetricSplit",
    "VarianceMap",
    "derive_gate_scale_invariance",
    "derive_gradient_map",
    "derive_information_bias",
    "derive_permutation_symmetry",
    "derive_rescaling_symmetry",
    "derive_sign_flip_moments",
    "derive_symmetric_split",
    "derive_variance_map",
    "exact_symmetry_residuals",
    "first_order_bias_bits",
    "gate_label_information_debiased_bits",
    "gate_statistics",
    "gradient_prediction",
    "gradient_second_moments",
    "information_from_counts_bits",
    "information_null_bias_bits",
    "initial_ensemble_samples",
    "joint_row",
    "log_coupling_prediction",
    "path_couplings",
    "permute_hidden",
    "preactivation_gradients",
    "random_circuits",
    "rescale_unit",
    "shuffled_labels",
]
