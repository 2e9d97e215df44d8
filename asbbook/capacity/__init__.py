"""Global minima: reservoir capacity versus dataset complexity (book, Chapter 5).

**Surrogate risk.** With labels ``y = +-1`` the hinge loss of an output ``f`` is
``max(0, 1 - y f)``; "zero training error measured by a surrogate risk" (Li 2022, abstract) is
read as a zero mean hinge loss, every margin ``y_mu f(x_mu) >= 1``. **Dataset complexity**:
``P`` examples with uniform random labels carry ``P`` bits. **Established anchors**: Cover's
function counting (Cover 1965), Gardner's capacity of 2 patterns per weight (Gardner 1988),
and the jamming transition of deep networks (Spigler et al. 2019; Geiger et al. 2019, PRE;
Franz & Parisi 2016; Franz, Hwang & Urbani 2019).

The package is split by concern:

* :mod:`asbbook.capacity.counting`: Cover's derivations (sympy, asserted) and exact counts;
* :mod:`asbbook.capacity.separability`: the exact LP test (HiGHS) and the perceptron datasets;
* :mod:`asbbook.capacity.perceptron`: batched hinge gradient descent on a linear unit;
* :mod:`asbbook.capacity.training`: padded batched Adam with the linear or quadratic hinge;
* :mod:`asbbook.capacity.jamming`: the deep-network cells and their architecture ladders;
* :mod:`asbbook.capacity.analysis`: transitions, extrapolation, isostaticity, slowing down,
  the generalisation cusp and the reservoir measures;
* :mod:`asbbook.capacity.sweeps`: the chapter's sweeps.

Every public name stays importable from ``asbbook.capacity``.
"""

from asbbook.capacity.analysis import (  # noqa: F401
    CellColumn,
    Cusp,
    Extrapolation,
    Isostaticity,
    MeasureSpread,
    SlowingDown,
    cell_column,
    cusp,
    extrapolate,
    isostaticity,
    ladder_ratio_near,
    locate,
    measure_spreads,
    measure_transition,
    rung_mean,
    slowing_down,
)
from asbbook.capacity.counting import (  # noqa: F401
    CoverDerivation,
    CoverSpecialValues,
    CoverStep,
    GateEntropyFirstLayer,
    HingeDerivation,
    N_sym,
    P_sym,
    cover_count,
    cover_expr,
    cover_fraction,
    cover_fraction_normal,
    derive_cover_recursion,
    derive_cover_special,
    derive_cover_step,
    derive_gate_entropy_first_layer,
    derive_hinge_versus_zero_one,
    j_sym,
    k_sym,
)
from asbbook.capacity.jamming import (  # noqa: F401
    JAMMING_DATASETS,
    architecture_ladder,
    fine_rungs,
    gate_entropy_per_member,
    geometric_rungs,
    jacobian_rank,
    jamming_cell,
    near_equal_widths,
    run_data,
)
from asbbook.capacity.perceptron import (  # noqa: F401
    HingeTraining,
    gate_entropy_at_init,
    gate_entropy_bits,
    perceptron_hinge_training,
)
from asbbook.capacity.separability import (  # noqa: F401
    SeparationCertificate,
    check_patterns,
    is_linearly_separable,
    separable_fraction,
    separation_margin,
    trial_patterns,
)
from asbbook.capacity.sweeps import (  # noqa: F401
    SWEEP_PARAMETERS,
    adaptive_cell,
    chapter_sweeps,
    coarse_centre,
    hinge_training_cell,
    load_grid,
    patterns_for_load,
    separability_cell,
    sweep_parameters,
)
from asbbook.capacity.training import (  # noqa: F401
    LOSSES,
    PaddedTraining,
    margin_loss_and_grad,
    padded_initial_weights,
    train_padded,
)
from asbbook.phase import (  # noqa: F401  (re-exported: names the chapter used before)
    DATASETS,
    DIGITS_INPUTS,
    PhaseColumn,
    aggregate_cells,
    cell_data,
    cell_data_seed,
    cell_points,
    group_cells,
    random_label_cell,
    width_ladder,
)
from asbbook.stats import binary_entropy_bits  # noqa: F401
from asbbook.transitions import (  # noqa: F401
    Transition,
    TransitionLine,
    depth_spread,
    fit_transition_line,
    transition_point,
)

__all__ = [  # the names defined in this package (the core's are documented there)
    "CellColumn",
    "CoverDerivation",
    "CoverSpecialValues",
    "CoverStep",
    "Cusp",
    "Extrapolation",
    "GateEntropyFirstLayer",
    "HingeDerivation",
    "HingeTraining",
    "Isostaticity",
    "JAMMING_DATASETS",
    "LOSSES",
    "MeasureSpread",
    "PaddedTraining",
    "SeparationCertificate",
    "SlowingDown",
    "SWEEP_PARAMETERS",
    "adaptive_cell",
    "architecture_ladder",
    "cell_column",
    "chapter_sweeps",
    "check_patterns",
    "coarse_centre",
    "cover_count",
    "cover_expr",
    "cover_fraction",
    "cover_fraction_normal",
    "cusp",
    "derive_cover_recursion",
    "derive_cover_special",
    "derive_cover_step",
    "derive_gate_entropy_first_layer",
    "derive_hinge_versus_zero_one",
    "extrapolate",
    "fine_rungs",
    "gate_entropy_at_init",
    "gate_entropy_per_member",
    "geometric_rungs",
    "hinge_training_cell",
    "is_linearly_separable",
    "isostaticity",
    "jacobian_rank",
    "jamming_cell",
    "ladder_ratio_near",
    "load_grid",
    "locate",
    "margin_loss_and_grad",
    "measure_spreads",
    "measure_transition",
    "near_equal_widths",
    "padded_initial_weights",
    "patterns_for_load",
    "perceptron_hinge_training",
    "run_data",
    "rung_mean",
    "separability_cell",
    "separable_fraction",
    "separation_margin",
    "slowing_down",
    "sweep_parameters",
    "train_padded",
    "trial_patterns",
]
