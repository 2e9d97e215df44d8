"""Property-based contract of the public API of asbbook.assembly (issue 12).

Every call with generated (mostly bad) input either returns a finite result or raises a
``TypeError``/``ValueError`` whose message names the offending argument -- never a hang, a
silent NaN/inf, or an obscure error from deep inside torch or numpy. The memory limit is lowered
so that any size a bug would let through is refused at once instead of allocated."""

from __future__ import annotations

import math
import os
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asbbook import assembly
from asbbook.validation import MAX_BYTES_ENV

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

bad_ints = st.one_of(
    st.integers(min_value=-5, max_value=0),
    st.integers(min_value=10**9, max_value=10**15),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.none(),
)
small_ints = st.integers(min_value=1, max_value=6)
widths_strategy = st.one_of(
    st.lists(st.one_of(small_ints, bad_ints), min_size=0, max_size=4),
    st.just("16, 8"),
    st.none(),
    st.integers(),
)
reals = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=2),
    st.none(),
)
tensors = st.one_of(
    st.just(torch.ones(4, 3)),
    st.just(torch.ones(4, 3, dtype=torch.int64)),
    st.just(torch.ones(4, 3, dtype=torch.bool)),
    st.just(torch.ones(4, 3, dtype=torch.complex128)),
    st.just(torch.full((4, 3), float("nan"))),
    st.just(np.ones((4, 3))),
    st.just(np.ones((4, 3), dtype=np.int32)),
    st.just([[1.0, 2.0, 3.0]] * 4),
    st.just("tensor"),
    st.none(),
)


@contextmanager
def low_memory_limit(n_bytes: int = 8_000_000):
    old = os.environ.get(MAX_BYTES_ENV)
    os.environ[MAX_BYTES_ENV] = str(n_bytes)
    try:
        yield
    finally:
        if old is None:
            del os.environ[MAX_BYTES_ENV]
        else:
            os.environ[MAX_BYTES_ENV] = old


def _finite(value) -> bool:
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, tuple | list):
        return all(_finite(v) for v in value)
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value).all())
    return bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))


def check_contract(call, names: tuple[str, ...]):
    """Run ``call``: a finite result, or a named TypeError/ValueError."""
    with low_memory_limit():
        try:
            result = call()
        except (TypeError, ValueError) as exc:
            message = str(exc)
            assert any(name in message for name in names), f"unnamed error: {message!r}"
            return
    assert _finite(result), f"non-finite result {result!r}"


@SETTINGS
@given(widths=widths_strategy)
def test_exact_laws_contract(widths):
    for fn in (
        assembly.log_norm_mean_exact,
        assembly.log_norm_variance_exact,
        assembly.log_norm_variance_theory,
        assembly.log_norm_cumulants_exact,
    ):
        check_contract(lambda fn=fn: fn(widths), ("widths",))


@SETTINGS
@given(widths=widths_strategy, kappa=st.one_of(reals, st.floats(-5, 5)), ratio=reals)
def test_variance_expansion_contract(widths, kappa, ratio):
    check_contract(
        lambda: assembly.log_norm_variance_expansion(widths, kappa),
        ("widths", "weight_excess_kurtosis"),
    )
    check_contract(
        lambda: assembly.log_norm_variance_expansion((4, 4), 0.0, input_ratio=ratio),
        ("input_ratio",),
    )


@SETTINGS
@given(rho=st.one_of(reals, st.floats(-3, 3)), depth=st.one_of(bad_ints, small_ints))
def test_correlation_map_contract(rho, depth):
    check_contract(lambda: assembly.correlation_map_iterates(rho, depth), ("rho0", "depth"))
    check_contract(lambda: assembly.input_pair(8, rho), ("rho0",))
    check_contract(lambda: assembly.input_pair(depth, 0.5), ("n_0",))


@SETTINGS
@given(
    widths=widths_strategy,
    n_members=st.one_of(bad_ints, small_ints),
    law=st.one_of(st.sampled_from(["gaussian", "uniform", "rademacher", "cauchy"]), reals),
    dtype=st.sampled_from([torch.float64, torch.float32, torch.int64, torch.bool, "float64"]),
)
def test_sample_log_factors_contract(widths, n_members, law, dtype):
    x = (
        torch.ones(widths[0])
        if isinstance(widths, list) and widths and type(widths[0]) is int and 0 < widths[0] < 7
        else torch.ones(3)
    )
    check_contract(
        lambda: assembly.sample_log_factors(x, widths, n_members, weight_law=law, dtype=dtype),
        ("widths", "n_members", "weight_law", "dtype", "x"),
    )


@SETTINGS
@given(
    X=tensors,
    n_members=st.one_of(bad_ints, small_ints),
    max_weights=st.one_of(bad_ints, st.integers(1, 100)),
    dtype=st.sampled_from([torch.float64, torch.int32, None]),
)
def test_sample_reduced_contract(X, n_members, max_weights, dtype):
    def call():
        return assembly.sample_reduced(
            X, (3, 2), n_members, lambda zs: zs[0], max_weights=max_weights, dtype=dtype
        )

    check_contract(call, ("X", "n_members", "max_weights", "dtype"))


@SETTINGS
@given(z=tensors, dim=st.one_of(bad_ints, st.integers(-3, 3)))
def test_measurement_contract(z, dim):
    check_contract(lambda: assembly.layer_cv(z, dim=dim), ("z", "dim"))
    check_contract(lambda: assembly.log_norm_profile([z], torch.ones(3)), ("zs", "x"))
    check_contract(lambda: assembly.log_factors(z), ("profile",))
    check_contract(lambda: assembly.fourth_moment_ratio(z), ("x",))


def test_contract_helper_rejects_unnamed_errors_and_nan():
    """The contract's own check can fail."""
    with pytest.raises(AssertionError, match="unnamed"):
        check_contract(lambda: math.sqrt(-1), ("widths",))
    with pytest.raises(AssertionError, match="non-finite"):
        check_contract(lambda: float("nan"), ("widths",))
