"""Contract of the public circuit functions under generated bad input (issue 12).

Every call either raises a ``TypeError`` or ``ValueError`` whose message starts with the name of
an argument, or returns a correct, finite result -- never a hang, never a silent NaN or inf,
never a bare torch error. Hypothesis generates networks, inputs and labels that are each either
valid or broken in one of the usual ways (integer, bool or complex dtypes, NaN, inf, numpy
arrays, lists, wrong shapes, mismatched dtypes), and counts that are bad or absurd.
"""

from __future__ import annotations

import math
import signal
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asbbook import circuits, nets

pytestmark = pytest.mark.timeout(600)

NAMES = (
    "X",
    "y",
    "weights",
    "widths",
    "n_members",
    "max_members",
    "steps",
    "max_steps",
    "lr",
    "sigma2",
    "seed",
    "device",
    "n_features",
    "max_circuits",
    "max_entries",
    "snapshot_steps",
    "nonzero_couplings_only",
    "n_examples",
    "path",
    "x",
    "max_hidden_layers",
    "check_widths",
)
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CALL_SECONDS = 30  # a call that takes longer on these tiny inputs is a hang


@contextmanager
def _no_hang(what: str):
    def alarm(signum, frame):
        raise AssertionError(f"{what} did not return within {CALL_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(CALL_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def call(func, *args, **kwargs):
    """``(ok, result)``: a result, or ``(False, None)`` after a named TypeError/ValueError."""
    with _no_hang(func.__name__):
        try:
            return True, func(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            message = str(exc)
            assert message.startswith(NAMES), f"{func.__name__}: unnamed error {message!r}"
            return False, None


def finite(value) -> bool:
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value).all())
    if isinstance(value, tuple):
        return all(finite(v) for v in value)
    return math.isfinite(float(value))


# --------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------

CORRUPTIONS = ("none", "int", "bool", "complex", "nan", "inf", "numpy", "list", "float32", "shape")


def corrupt(t: torch.Tensor, how: str):
    if how == "int":
        return (t * 3).round().to(torch.int64)
    if how == "bool":
        return t > 0
    if how == "complex":
        return t.to(torch.complex128)
    if how in ("nan", "inf"):
        t = t.clone()
        t.view(-1)[0] = float(how)
        return t
    if how == "numpy":
        return t.numpy()
    if how == "list":
        return t.tolist()
    if how == "float32":
        return t.float()
    if how == "shape":
        return t.unsqueeze(0)
    return t


@st.composite
def cases(draw):
    """``(weights, X, y, valid)``: a small network and dataset, each part maybe corrupted."""
    depth = draw(st.integers(1, 3))
    widths = [draw(st.integers(1, 4)) for _ in range(depth)] + [1]
    P = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    weights = nets.init_weights(widths, generator=gen)
    X = torch.randn(P, widths[0], generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (P,), generator=gen).to(torch.float64) * 2 - 1
    part = draw(st.sampled_from(("weights", "X", "y", "none")))
    how = draw(st.sampled_from(CORRUPTIONS))
    if part == "weights":
        k = draw(st.integers(0, len(weights) - 1))
        weights = [*weights[:k], corrupt(weights[k], how), *weights[k + 1 :]]
    elif part == "X":
        X = corrupt(X, how)
    elif part == "y":
        y = y * 0.5 if how == "shape" else corrupt(y, how)
    valid = part == "none" or how in ("none", "numpy", "list") and part != "weights"
    return weights, X, y, valid


counts = st.one_of(
    st.integers(-3, 12),
    st.integers(10**9, 10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
)


# --------------------------------------------------------------------------------------------
# contracts
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(cases())
def test_network_functions_refuse_by_name_or_answer_correctly(case):
    weights, X, y, valid = case
    ok, f_sum = call(circuits.circuit_contributions, weights, X)
    if ok:
        assert finite(f_sum)
        tensors = [torch.as_tensor(np.asarray(w)) for w in weights]
        f = nets.forward(tensors, torch.as_tensor(np.asarray(X)))
        assert torch.allclose(f_sum.sum(1), f, atol=1e-12)
    ok, log_n = call(circuits.log_open_circuits, weights, X)
    if ok:
        assert not bool(torch.isnan(log_n).any())
        states = circuits.circuit_states(weights, X).sum(1)
        assert torch.equal(torch.isneginf(log_n), states == 0)  # -inf only when none is open
        assert torch.allclose(torch.exp(log_n[states > 0]), states[states > 0], rtol=1e-12)
    for func in (circuits.absolute_contribution_mass, circuits.circuit_states):
        ok, out = call(func, weights, X)
        assert not ok or finite(out)
    for func in (
        circuits.circuit_magnetisation,
        circuits.circuit_energy_terms,
        circuits.circuit_fields,
        circuits.label_signed_contributions,
    ):
        ok, out = call(func, weights, X, y)
        assert not ok or finite(out)
        if func is circuits.circuit_magnetisation and ok:
            assert -1 <= float(out) <= 1
    if valid:  # numpy arrays and lists of valid numbers are accepted, not refused
        assert call(circuits.absolute_contribution_mass, weights, X)[0]


@SETTINGS
@given(cases(), counts, counts)
def test_experiments_refuse_bad_counts_by_name(case, n, steps):
    weights, X, y, _ = case
    try:
        widths = tuple(int(np.asarray(w).shape[-1]) for w in weights[:1]) + tuple(
            int(np.asarray(w).shape[-2]) for w in weights
        )
    except (IndexError, TypeError, ValueError):
        widths = (1, 1)
    ok, ensemble = call(circuits.initial_ensemble, X, y, widths, n_members=n)
    if ok:
        assert finite(ensemble.open_ratio) and finite(ensemble.magnetisation)
        assert 2 <= ensemble.n_members <= 12
    if isinstance(steps, int) and not isinstance(steps, bool) and 12 < steps < 10**9:
        steps = 10**9  # keep valid runs short: a legal 10^6-step run is work, not a hang
    ok, run = call(circuits.train_small_net, X, y, widths, steps=steps, lr=0.01)
    if ok:
        assert finite(run.loss) and len(run.snapshots) == len({0, steps})
    ok, Z = call(circuits.principal_features, X, n)
    if ok:
        assert finite(Z) and Z.shape[1] == n


@SETTINGS
@given(st.lists(counts, min_size=0, max_size=5))
def test_width_functions_refuse_bad_widths_by_name(widths):
    for func in (circuits.circuit_count, circuits.log_expected_open_circuits):
        ok, out = call(func, widths)
        assert not ok or finite(out)
    ok, out = call(circuits.circuit_indices, widths, max_circuits=10_000)
    assert not ok or out.shape == (math.prod(widths), len(widths))


@SETTINGS
@given(st.lists(st.integers(-1, 5), min_size=0, max_size=6), st.integers(-1, 10))
def test_derivations_refuse_large_or_bad_networks_quickly(widths, n_examples):
    ok, out = call(circuits.derive_path_expansion, widths)
    assert not ok or out.n_circuits == math.prod(widths)
    ok, out = call(circuits.derive_circuit_energy, widths, n_examples)
    assert not ok or out.generic_rank == min(n_examples, math.prod(widths))


def test_the_contract_helper_can_fail():
    """The helper itself rejects an unnamed error and a silent NaN."""

    def unnamed():
        raise ValueError("something went wrong")

    with pytest.raises(AssertionError, match="unnamed error"):
        call(unnamed)
    assert not finite(torch.tensor([1.0, float("nan")]))
