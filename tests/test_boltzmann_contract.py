"""The input contract of asbbook.boltzmann, driven by hypothesis with generated bad inputs.

Every call either raises a TypeError/ValueError whose message names the bad argument, or returns
a finite result that agrees with an independent numpy/scipy reference. Never a hang, never a
silent NaN or inf.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special

from asbbook import boltzmann

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
pytestmark = pytest.mark.timeout(300)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
huge = st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)
good_z = st.one_of(
    hnp.arrays(np.float64, st.integers(1, 6), elements=finite),
    hnp.arrays(np.float64, st.integers(1, 6), elements=huge),
    st.lists(finite, min_size=1, max_size=5),
    hnp.arrays(np.float64, st.integers(1, 6), elements=finite).map(torch.from_numpy),
    hnp.arrays(np.float32, st.integers(1, 4), elements=st.floats(-1e3, 1e3, width=32)),
)
bad_z = st.one_of(
    hnp.arrays(np.int64, st.integers(1, 4), elements=st.integers(-5, 5)),
    hnp.arrays(np.bool_, st.integers(1, 4)),
    st.lists(st.integers(-3, 3), min_size=1, max_size=4),
    st.just(torch.tensor([1, 2, 3])),
    st.just(torch.tensor([1.0 + 1j])),
    st.just(np.array([0.0, np.nan])),
    st.just(np.array([np.inf, 1.0])),
    st.sampled_from(["1.0", None, {"z": 1.0}, object()]),
)
good_beta = st.floats(1e-3, 1e6, allow_nan=False)
bad_beta = st.one_of(
    st.sampled_from([True, False, 0, 0.0, -1.0, math.nan, math.inf, -math.inf, "2", None, 1j]),
    st.floats(max_value=0.0, allow_nan=False),
    st.just(np.bool_(True)),
)
good_n = st.integers(1, 50)
bad_n = st.one_of(
    st.sampled_from([0, -1, -(10**6), True, False, 3.0, 2.5, "10", None, np.float64(4.0)]),
    st.integers(10**12, 10**18),
)


def _contract(call, name, reference=None):
    """Call; a refusal must be a TypeError/ValueError naming ``name``; a result must be
    finite and, with ``reference``, equal to it."""
    try:
        out = call()
    except (TypeError, ValueError) as exc:
        assert name in str(exc), f"the message {exc!r} does not name {name!r}"
        return
    values = out if isinstance(out, tuple | list) else (out,)
    for value in values:
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(value, dtype=torch.float64)
        assert bool(torch.isfinite(value).all()), out
    if reference is not None:
        np.testing.assert_allclose(
            np.asarray(values[0], dtype=np.float64), reference(), rtol=1e-5, atol=1e-300
        )


def _numpy(z):
    return np.asarray(torch.as_tensor(np.asarray(z) if isinstance(z, list) else z), np.float64)


def _references(z, beta):
    x = _numpy(z)
    p, q = special.expit(beta * x), special.expit(-beta * x)
    # Entropy from ln p = -ln(1 + e^{-t}) and ln q = -t - ln(1 + e^{-t}), t = beta |z|.
    t = beta * np.abs(x)
    big, small = special.expit(t), special.expit(-t)
    entropy = big * np.log1p(np.exp(-t)) + small * (t + np.log1p(np.exp(-t)))
    return {
        boltzmann.open_probability: lambda: p,
        boltzmann.mean_activation: lambda: x * p,
        boltzmann.activation_variance: lambda: (x * p) * (x * q),
        boltzmann.gate_entropy: lambda: entropy,
    }


GATE_FUNCTIONS = [
    boltzmann.open_probability,
    boltzmann.mean_activation,
    boltzmann.activation_variance,
    boltzmann.gate_entropy,
]


@SETTINGS
@given(z=good_z, beta=good_beta, fn=st.sampled_from(GATE_FUNCTIONS))
def test_gate_functions_are_correct_on_good_input(z, beta, fn):
    dtype_is_32 = getattr(z, "dtype", None) in (np.float32, torch.float32)
    reference = None if dtype_is_32 else _references(z, beta)[fn]
    if reference is not None:
        with np.errstate(all="ignore"):
            expected = reference()
        if not np.isfinite(expected).all():  # the true value overflows: a refusal is due
            reference = None
    _contract(lambda: fn(z, beta), "z", reference)


@SETTINGS
@given(z=bad_z, beta=good_beta, fn=st.sampled_from(GATE_FUNCTIONS))
def test_gate_functions_refuse_bad_z(z, beta, fn):
    with pytest.raises((TypeError, ValueError), match="z"):
        fn(z, beta)


@SETTINGS
@given(beta=bad_beta, fn=st.sampled_from([*GATE_FUNCTIONS, "max", "argmax", "grid", "gap"]))
def test_every_function_refuses_a_bad_beta(beta, fn):
    z = np.array([-1.0, 0.0, 2.0])
    calls = {
        "max": lambda: boltzmann.max_relu_gap(beta),
        "argmax": lambda: boltzmann.argmax_relu_gap(beta),
        "grid": lambda: boltzmann.grid_sup_relu_gap(beta, n_grid=101),
        "gap": lambda: boltzmann.sample_gap_at_argmax(beta, 10),
    }
    call = calls.get(fn) or (lambda: fn(z, beta))
    with pytest.raises((TypeError, ValueError), match="beta"):
        call()


@SETTINGS
@given(
    n=bad_n,
    fn=st.sampled_from(["gates", "activation", "moments", "stderr", "gap", "forward", "D"]),
)
def test_every_sampler_refuses_a_bad_n_samples_before_allocating(n, fn):
    z = torch.linspace(-1, 1, 5, dtype=torch.float64)
    weights = [torch.ones(3, 2, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64)]
    X = torch.ones(4, 2, dtype=torch.float64)
    calls = {
        "gates": lambda: boltzmann.sample_gates(z, 1.0, n),
        "activation": lambda: boltzmann.sample_activation(z, 1.0, n),
        "moments": lambda: boltzmann.sample_gate_moments(z, 1.0, n),
        "stderr": lambda: boltzmann.gate_moment_stderr(z, 1.0, n),
        "gap": lambda: boltzmann.sample_gap_at_argmax(1.0, n),
        "forward": lambda: boltzmann.stochastic_forward(weights, X, 1.0, n),
        "D": lambda: boltzmann.relative_mean_output_gap(weights, X, 1.0, n),
    }
    if fn == "stderr" and type(n) is int and n >= 4:  # a formula: any count is fine
        _contract(calls[fn], "n_samples")
        return
    with pytest.raises((TypeError, ValueError), match="n_samples"):
        calls[fn]()


def test_a_trillion_samples_are_refused_by_the_memory_estimate():
    with pytest.raises(ValueError, match="n_samples is too large.*GiB"):
        boltzmann.sample_activation(torch.zeros(3, dtype=torch.float64), 1.0, 10**12)


@SETTINGS
@given(z=good_z, beta=good_beta, n=good_n)
def test_samplers_give_gates_in_zero_one(z, beta, n):
    def call():
        return boltzmann.sample_gates(z, beta, n, generator=torch.Generator().manual_seed(0))

    _contract(call, "z")
    try:
        gates = call()
    except (TypeError, ValueError):
        return
    assert set(torch.unique(gates).tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex64, "f8"])
def test_grid_search_refuses_non_float_dtypes(dtype):
    with pytest.raises(TypeError, match="dtype"):
        boltzmann.grid_sup_relu_gap(2.0, dtype=dtype)


weights_element = st.floats(-2, 2, allow_nan=False)
bad_weights = st.one_of(
    st.just([np.ones((3, 2), dtype=np.int64), np.ones((1, 3))]),
    st.just([torch.ones(3, 2, dtype=torch.float64), torch.ones(1, 4, dtype=torch.float64)]),
    st.just([torch.ones(3, 2, dtype=torch.float32), torch.ones(1, 3, dtype=torch.float64)]),
    st.just([torch.full((3, 2), math.nan, dtype=torch.float64), torch.ones(1, 3)]),
    st.just(torch.ones(3, 2)),
    st.just([]),
    st.just("weights"),
)


@SETTINGS
@given(
    weights=st.one_of(
        bad_weights,
        st.tuples(
            hnp.arrays(np.float64, (3, 2), elements=weights_element),
            hnp.arrays(np.float64, (1, 3), elements=weights_element),
        ).map(list),
    ),
    fn=st.sampled_from(["forward", "D", "exact", "closure", "closure D"]),
)
def test_network_functions_refuse_bad_weights_or_give_finite_results(weights, fn):
    X = np.array([[1.0, -0.5], [0.3, 2.0]])
    calls = {
        "forward": lambda: boltzmann.stochastic_forward(weights, X, 2.0, 8),
        "D": lambda: boltzmann.relative_mean_output_gap(weights, X, 2.0, 8),
        "exact": lambda: boltzmann.one_hidden_layer_mean_output(weights, X, 2.0),
        "closure": lambda: boltzmann.mean_field_propagate(weights, X, 2.0).output_mean,
        "closure D": lambda: boltzmann.mean_field_relative_gap(weights, X, 2.0),
    }
    _contract(calls[fn], "weights")


@SETTINGS
@given(X=st.one_of(bad_z, st.just(np.ones((2, 5))), st.just(np.ones(2))))
def test_network_functions_refuse_bad_inputs(X):
    weights = [torch.ones(3, 2, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64)]
    with pytest.raises((TypeError, ValueError), match="X"):
        boltzmann.stochastic_forward(weights, X, 2.0, 8)
