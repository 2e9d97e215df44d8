"""Chapter 4: the statistical assembly method (coarse-graining over the symmetry group).

A microscopic quantity averaged over a symmetry orbit becomes a layer-level order parameter:
the permutation orbit of ``relu(z_i)^2`` is the layer average ``r^l = |h^l|^2 / n_l``, and the
sign-flip orbit fixes its mean, ``E r^l = q^l / 2``.

Conventions: ``widths = (n_0, ..., n_L)``; all ``L`` layers are ReLU; weights i.i.d. with mean 0
and variance ``2 / n_{l-1}``; ``r^l = |h^l|^2 / n_l`` with ``h^0 = x`` fixed.

* :mod:`~asbbook.assembly.theory`: the exact finite-width laws of ``ln(r^L / r^0)`` (a sum of
  independent layer log-factors ``ln F_l``, ``F_l = (2/n_l) chi^2_K``; Hanin & Nica 2019), its
  ``1/n^2`` expansion with the weights' kurtosis, and the arc-cosine correlation map
  (Cho & Saul 2009; Poole et al. 2016).
* :mod:`~asbbook.assembly.derive` and :mod:`~asbbook.assembly.derive_beyond`: the sympy
  derivations, each a frozen dataclass of asserted equations.
* :mod:`~asbbook.assembly.measure`: sampling networks and measuring layer averages.
* :mod:`~asbbook.assembly.experiments`: the chapter's experiments and figures.
"""

from __future__ import annotations

import warnings

from asbbook.assembly import experiments, measure, theory  # noqa: F401  (submodules)
from asbbook.assembly.derive import (
    ExactLayerLaw,
    FiniteWidthCorrection,
    LayerFactors,
    OrbitAverage,
    ReluMoments,
    derive_exact_layer_log_variance,
    derive_finite_width_correction,
    derive_layer_factors,
    derive_orbit_average,
    derive_relu_moments,
)
from asbbook.assembly.derive_beyond import (
    CorrelationMap,
    KurtosisCorrection,
    SelfSimilarity,
    derive_correlation_map,
    derive_kurtosis_correction,
    derive_self_similarity,
)
from asbbook.assembly.measure import (
    PowerLawFit,
    alive,
    factor_correlations,
    input_pair,
    kernel_residuals,
    layer_average_sq,
    layer_cv,
    log_factors,
    log_norm_profile,
    log_norm_ratio,
    loglog_fit,
    micro_macro,
    pair_cosines,
    pair_grams,
    sample_log_factors,
    sample_reduced,
    shape_with_covariance,
)
from asbbook.assembly.theory import (
    FINITE_WIDTH_COEFFICIENT,
    WEIGHT_EXCESS_KURTOSIS,
    correlation_map,
    correlation_map_iterates,
    fourth_moment_ratio,
    layer_cv_null_stderr,
    layer_cv_theory,
    layer_log_cumulants_exact,
    layer_log_mean_exact,
    layer_log_variance_exact,
    log_norm_cumulants_exact,
    log_norm_exact_samples,
    log_norm_mean_exact,
    log_norm_shape_exact,
    log_norm_variance_exact,
    log_norm_variance_expansion,
    log_norm_variance_theory,
)
from asbbook.order import layer_average_relu_sq
from asbbook.stats import Estimate, cv_with_stderr, mean_with_stderr, variance_with_stderr


def derive_log_norm_variance(depth: int = 4) -> LayerFactors:
    """Deprecated name of :func:`derive_layer_factors`."""
    warnings.warn(
        "derive_log_norm_variance is deprecated: use derive_layer_factors",
        DeprecationWarning,
        stacklevel=2,
    )
    return derive_layer_factors(depth)


__all__ = [
    "FINITE_WIDTH_COEFFICIENT",
    "WEIGHT_EXCESS_KURTOSIS",
    "CorrelationMap",
    "ExactLayerLaw",
    "FiniteWidthCorrection",
    "KurtosisCorrection",
    "LayerFactors",
    "OrbitAverage",
    "PowerLawFit",
    "ReluMoments",
    "SelfSimilarity",
    "alive",
    "correlation_map",
    "correlation_map_iterates",
    "derive_correlation_map",
    "derive_exact_layer_log_variance",
    "derive_finite_width_correction",
    "derive_kurtosis_correction",
    "derive_layer_factors",
    "derive_log_norm_variance",
    "derive_orbit_average",
    "derive_relu_moments",
    "derive_self_similarity",
    "factor_correlations",
    "fourth_moment_ratio",
    "input_pair",
    "kernel_residuals",
    "layer_average_sq",
    "layer_cv",
    "layer_cv_null_stderr",
    "layer_cv_theory",
    "layer_log_cumulants_exact",
    "layer_log_mean_exact",
    "layer_log_variance_exact",
    "log_factors",
    "log_norm_cumulants_exact",
    "log_norm_exact_samples",
    "log_norm_mean_exact",
    "log_norm_profile",
    "log_norm_ratio",
    "log_norm_shape_exact",
    "log_norm_variance_exact",
    "log_norm_variance_expansion",
    "log_norm_variance_theory",
    "loglog_fit",
    "micro_macro",
    "pair_cosines",
    "pair_grams",
    "sample_log_factors",
    "sample_reduced",
    "shape_with_covariance",
]
