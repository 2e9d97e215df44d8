"""The input contract of the core, driven by generated bad input (hypothesis).

Every public function either refuses a bad argument *before* any expensive work, with a
``TypeError`` or ``ValueError`` whose message names the argument, or returns a correct finite
result. Never a hang, never a silent NaN or inf, never an attempt to allocate tens of GB.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asbbook import data, nets, phase, stats, transitions, validation

SETTINGS = settings(
    max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

# Values that are wrong for almost every argument: wrong types, non-finite, absurdly large.
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just(-1),
    st.just(0),
    st.just(10**12),
    st.just(10**30),
    st.just(2.5),
    st.just(torch.tensor([1, 2, 3])),
    st.just(torch.tensor([1.0 + 1j])),
    st.just(np.array([1, 2], dtype=np.int64)),
    st.just([1.0, float("nan")]),
)


def _finite(result) -> bool:
    if isinstance(result, torch.Tensor):
        return result.is_floating_point() and bool(torch.isfinite(result).all())
    if isinstance(result, np.ndarray):
        return bool(np.isfinite(result).all())
    if isinstance(result, float):
        return math.isfinite(result)
    if isinstance(result, tuple | list):
        return all(_finite(r) for r in result)
    return True


def check_contract(call, name: str, value) -> None:
    """``call(value)`` must raise a named TypeError/ValueError or return something finite."""
    try:
        result = call(value)
    except (TypeError, ValueError) as exc:
        assert name in str(exc), f"the error for {name}={value!r} does not name it: {exc}"
        return
    assert _finite(result), f"{name}={value!r} gave a non-finite result {result!r}"


@SETTINGS
@given(junk)
def test_init_weights(value):
    check_contract(lambda v: nets.init_weights((v, 3, 1)), "widths", value)
    check_contract(lambda v: nets.init_weights((4, 3, 1), sigma2=v), "sigma2", value)
    check_contract(lambda v: nets.init_weights((4, 3, 1), dtype=v), "dtype", value)
    check_contract(lambda v: nets.init_weights((4, 3, 1), device=v), "device", value)


@SETTINGS
@given(junk)
def test_data_loaders(value):
    check_contract(lambda v: data.gaussian_patterns(v, 3), "n_examples", value)
    check_contract(lambda v: data.gaussian_patterns(4, v), "dim", value)
    check_contract(lambda v: data.gaussian_patterns(4, 3, seed=v), "seed", value)
    check_contract(lambda v: data.load_digits_binary(v), "n_examples", value)
    check_contract(
        lambda v: data.load_digits_binary(8, positive_digits=(v,)), "positive_digits", value
    )
    check_contract(lambda v: data.derive_seed(v, purpose="x"), "seed", value)


@SETTINGS
@given(junk)
def test_estimators(value):
    for estimator in (stats.mean_with_stderr, stats.variance_with_stderr, stats.cv_with_stderr):
        check_contract(lambda v, f=estimator: f(v), "samples", value)
    check_contract(stats.binary_entropy_bits, "p", value)
    check_contract(lambda v: stats.proportion_with_stderr(v, 10), "successes", value)
    check_contract(lambda v: stats.proportion_with_stderr(1, v), "trials", value)


@SETTINGS
@given(junk)
def test_phase_and_transitions(value):
    check_contract(lambda v: phase.width_ladder(v, 2, 10, 100, 4), "n_inputs", value)
    check_contract(lambda v: phase.width_ladder(5, v, 10, 100, 4), "depth", value)
    check_contract(lambda v: phase.width_ladder(5, 2, v, 100, 4), "n_min", value)
    check_contract(
        lambda v: transitions.transition_point([1.0, 2.0, v], [0.0, 0.5, 1.0], 10), "x", value
    )


@settings(max_examples=40, deadline=2000, derandomize=True)
@given(st.integers(min_value=0, max_value=2**63 - 1), st.text(max_size=5))
def test_derive_seed_is_a_valid_torch_seed_and_separates_streams(seed, label):
    a = data.derive_seed(seed, purpose=label)
    b = data.derive_seed(seed, purpose=label + "x")
    assert 0 <= a < 2**63 and a != b
    torch.Generator().manual_seed(a)


def test_derive_seed_reproduces_the_ensemble_member_seed():
    """One derivation function: an ensemble member's seed is derive_seed with its spec."""
    from asbbook import ensemble

    spec = ensemble.MemberSpec((5, 4, 1), 3, 2.0)
    expected = data.derive_seed(7, widths=[5, 4, 1], replicate=3, sigma2=2.0)
    assert ensemble.member_seed(7, spec) == expected


def test_memory_limit_is_checked_before_allocation(monkeypatch):
    with pytest.raises(ValueError, match="widths.*GiB"):
        nets.init_weights((100_000, 100_000, 1))
    monkeypatch.setenv(validation.MAX_BYTES_ENV, str(10**3))
    with pytest.raises(ValueError, match="n_examples"):
        data.gaussian_patterns(1000, 10)
    monkeypatch.setenv(validation.MAX_BYTES_ENV, "lots")
    with pytest.raises(ValueError, match=validation.MAX_BYTES_ENV):
        validation.max_bytes()


def test_devices_are_refused_by_name():
    with pytest.raises(ValueError, match="device"):
        validation.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device.*CUDA"):
            validation.resolve_device("cuda")
    assert validation.resolve_device("auto").type in ("cpu", "cuda")


def test_float_tensors_refuse_integers_and_accept_numpy():
    with pytest.raises(TypeError, match="X.*floating"):
        validation.as_float_tensor("X", torch.arange(4))
    with pytest.raises(ValueError, match="X contains NaN"):
        validation.as_float_tensor("X", np.array([1.0, np.nan]))
    out = validation.as_float_tensor("X", np.ones((2, 3)), dtype=torch.float32)
    assert out.dtype == torch.float32 and out.shape == (2, 3)


def test_digits_refuse_a_label_rule_that_labels_everything_alike():
    with pytest.raises(ValueError, match="positive_digits"):
        data.load_digits_binary(10, positive_digits=(11,))
    with pytest.raises(ValueError, match="positive_digits"):
        data.load_digits_binary(10, positive_digits=tuple(range(10)))
    _, y = data.load_digits_binary(200, positive_digits=(3,))
    assert 0 < int((y == 1).sum()) < 200
