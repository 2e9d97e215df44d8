"""Contract of asbbook.symmetry's public functions under generated bad input (issue 12).

Every call must either return a finite result or raise a ``TypeError``/``ValueError`` whose
message names the offending argument -- never hang, never return NaN or inf silently.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asbbook import symmetry

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _weights(widths=(3, 4, 2, 1)):
    gen = torch.Generator().manual_seed(0)
    return [
        torch.randn(n_out, n_in, generator=gen, dtype=torch.float64)
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
    ]


BAD_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.complex_numbers(max_magnitude=5),
)

BAD_ARRAYS = st.one_of(
    st.just(torch.zeros(5, 3, dtype=torch.int64)),
    st.just(torch.ones(5, 3, dtype=torch.bool)),
    st.just(torch.zeros(5, 3, dtype=torch.complex128)),
    st.just(torch.full((5, 3), float("nan"), dtype=torch.float64)),
    st.just(torch.full((5, 3), float("inf"), dtype=torch.float64)),
    st.just(np.zeros((5, 3), dtype=np.int32)),
    st.just(torch.zeros(5, dtype=torch.float64)),
    st.just(torch.zeros(5, 4, dtype=torch.float64)),
    st.just("X"),
    st.just(None),
)


def _finite(value) -> bool:
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.double()).all())
    if isinstance(value, np.ndarray):
        return bool(np.isfinite(value).all())
    if isinstance(value, int | float):
        return math.isfinite(value)
    return True


def _call(names, fn, *args, **kwargs):
    """Run ``fn``: a finite result, or a named TypeError/ValueError."""
    try:
        out = fn(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        assert any(name in message for name in names), f"unnamed error: {message!r}"
        return None
    assert _finite(out), f"non-finite result {out!r}"
    return out


@SETTINGS
@given(layer=BAD_SCALARS, unit=BAD_SCALARS, c=BAD_SCALARS)
def test_rescale_unit_contract(layer, unit, c):
    _call(("layer", "unit", "c ", "c must"), symmetry.rescale_unit, _weights(), layer, unit, c)


@SETTINGS
@given(perm=st.one_of(BAD_SCALARS, BAD_ARRAYS, st.lists(BAD_SCALARS, max_size=5)))
def test_permute_hidden_contract(perm):
    _call(("perm",), symmetry.permute_hidden, _weights(), 1, perm)


@SETTINGS
@given(paths=st.one_of(BAD_ARRAYS, st.lists(st.lists(BAD_SCALARS, max_size=5), max_size=3)))
def test_path_couplings_contract(paths):
    _call(("paths",), symmetry.path_couplings, _weights(), paths)


@SETTINGS
@given(weights=st.one_of(BAD_ARRAYS, st.lists(BAD_ARRAYS, min_size=1, max_size=3)))
def test_weight_lists_contract(weights):
    for fn in (symmetry.preactivation_gradients, symmetry.gradient_second_moments):
        _call(("weights",), fn, weights, torch.zeros(5, 3, dtype=torch.float64))


@SETTINGS
@given(X=BAD_ARRAYS)
def test_inputs_contract(X):
    for fn in (symmetry.preactivation_gradients, symmetry.gradient_second_moments):
        _call(("X",), fn, _weights(), X)


@SETTINGS
@given(z=BAD_ARRAYS, y=st.one_of(BAD_ARRAYS, st.just(torch.ones(5, dtype=torch.float64))))
def test_gate_statistics_contract(z, y):
    _call(("z", "y"), symmetry.gate_statistics, z, y)


@SETTINGS
@given(series=BAD_ARRAYS, steps=st.one_of(BAD_ARRAYS, st.just([0, 1, 2])))
def test_half_time_contract(series, steps):
    _call(("series", "steps"), symmetry.half_time, series, steps)


@SETTINGS
@given(n_patterns=BAD_SCALARS, n_positive=BAD_SCALARS)
def test_information_null_bias_contract(n_patterns, n_positive):
    _call(("n_patterns", "n_positive"), symmetry.information_null_bias_bits, n_patterns, n_positive)


@SETTINGS
@given(n_circuits=BAD_SCALARS, seed=BAD_SCALARS)
def test_random_circuits_contract(n_circuits, seed):
    _call(("n_circuits", "seed"), symmetry.random_circuits, (3, 4, 1), n_circuits, seed)


@SETTINGS
@given(sigma2=st.one_of(BAD_SCALARS, st.lists(BAD_SCALARS, max_size=4)), m=BAD_SCALARS)
def test_gradient_prediction_contract(sigma2, m):
    _call(("sigma2", "x_sq_mean"), symmetry.gradient_prediction, (3, 4, 2, 1), sigma2, m)


def test_sizes_are_capped_before_allocation(monkeypatch):
    monkeypatch.setenv("ASBBOOK_MAX_BYTES", "1000")
    with pytest.raises(ValueError, match="X is too large"):
        symmetry.preactivation_gradients(_weights(), torch.zeros(100, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="paths is too large"):
        symmetry.path_couplings(_weights(), torch.zeros(200, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_members is too large"):
        symmetry.shuffled_labels(torch.ones(50, dtype=torch.float64), 100, seed=0)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_and_bool_dtypes_are_refused_by_name(dtype):
    weights = [w.to(dtype) for w in _weights()]
    X = torch.ones(4, 3, dtype=torch.float64)
    for fn, args, name in (
        (symmetry.preactivation_gradients, (weights, X), "weights[0]"),
        (symmetry.rescale_unit, (weights, 1, 0, 2.0), "weights[0]"),
        (symmetry.permute_hidden, (weights, 1, [1, 0, 2, 3]), "weights[0]"),
        (symmetry.preactivation_gradients, (_weights(), X.to(dtype)), "X"),
        (symmetry.gate_statistics, (X.to(dtype), [1, -1, 1, -1]), "z"),
    ):
        with pytest.raises(TypeError, match=name.replace("[", r"\[")):
            fn(*args)
