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

from asbbook.dynamics.runs import (
    DYNAMICS_SWEEP_NAME,
    SWEEP_NAME,
    Dynamics,
    NearWidths,
    chapter_sweeps,
    choose_rungs,
    collect_dynamics,
    dynamics_cell,
    dynamics_points,
    dynamics_spec,
    half_time,
    initial_state,
    late_relative_decrease,
    near_transition_widths,
    order_parameter_recorder,
    replica_curves,
    replica_data_seed,
    success_probability,
    sweep_points,
    train_replicas,
    unsatisfied_fraction,
)
from asbbook.dynamics.theory import (
    derive_initial_hinge,
    derive_plugin_information_bias,
    expected_gate_entropy_bits,
    expected_plugin_information_bits,
    initial_output_samples,
    initial_scale_samples,
    predict_initial_margins,
)

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
    "replica_data_seed",
    "NearWidths",
    "near_transition_widths",
    "success_probability",
    "late_relative_decrease",
    "replica_curves",
    "half_time",
    "derive_initial_hinge",
    "initial_output_samples",
    "initial_scale_samples",
    "predict_initial_margins",
    "expected_gate_entropy_bits",
    "derive_plugin_information_bias",
    "expected_plugin_information_bits",
]
