"""Sweep functions for tests/test_sweep.py, importable by worker processes, and a script.

As a script it runs one sweep and writes the results as JSON::

    python tests/sweep_worker.py CACHE_DIR OUT_JSON N_POINTS [EXECUTOR [N_WORKERS]]

The directory named by the environment variable ``SWEEP_MARKER_DIR`` (if set) receives a marker
file ``<pid>-<n>.start`` holding the point at every call of a sweep function, so a test can tell
which points were computed and in which process; ``SWEEP_DELAY`` (seconds, default 0) makes every
call of ``slow_point`` sleep that long. None of these enter the points, so they do not change the
cache keys.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

_calls = itertools.count()


def _marker_dir() -> Path | None:
    marker_dir = os.environ.get("SWEEP_MARKER_DIR")
    return Path(marker_dir) if marker_dir else None


def _mark(point: dict, suffix: str = "start") -> None:
    """Record a call (``.start``) or its end (``.done``) as ``<pid>-<n>.<suffix>`` holding the point."""
    marker_dir = _marker_dir()
    if marker_dir is not None:
        name = f"{os.getpid()}-{next(_calls)}.{suffix}"
        Path(marker_dir, name).write_text(json.dumps(point))


def slow_point(point: dict) -> dict:
    """A deterministic, non-trivial result with numpy scalars/arrays and nested values."""
    _mark(point)
    delay = float(os.environ.get("SWEEP_DELAY", "0"))
    if delay:
        time.sleep(delay)
    i = point["i"]
    rng = np.random.default_rng(1000 + i)
    return {
        "i": i,
        "square": np.int64(i * i),
        "root": math.sqrt(i) / 3.0,
        "draws": rng.standard_normal(3),
        "nested": {"label": f"p{i}", "pair": (i, -i), "flag": np.bool_(i % 2 == 0)},
    }


def ordered_point(point: dict) -> dict:
    """If ``point["last"]`` and ``SWEEP_WAIT_FOR_OTHERS=k`` is set, wait (at most 20 s) until k
    other calls have finished, so that with several workers this point completes out of point
    order. The result does not depend on the waiting."""
    _mark(point)
    wait_for = int(os.environ.get("SWEEP_WAIT_FOR_OTHERS", "0"))
    marker_dir = _marker_dir()
    if point["last"] and wait_for and marker_dir is not None:
        deadline = time.monotonic() + 20
        while len(list(marker_dir.glob("*.done"))) < wait_for and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
    x = point["x"]
    result = {"x": x, "cube": x**3, "sin": math.sin(x), "moments": np.array([x, x**2]) / 7.0}
    _mark(point, "done")
    return result


def failing_point(point: dict) -> dict:
    """Raises for ``point["x"] == 3`` (used to test that errors propagate and progress is kept)."""
    _mark(point)
    if point["x"] == 3:
        raise ArithmeticError("deliberate failure at x=3")
    return {"x": point["x"]}


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from asbbook.sweep import run_sweep

    cache_dir, out, n_points = argv[0], argv[1], int(argv[2])
    executor = argv[3] if len(argv) > 3 else "inprocess"
    n_workers = int(argv[4]) if len(argv) > 4 else 2
    points = [{"i": i} for i in range(n_points)]
    results = run_sweep(
        slow_point,
        points,
        cache_dir=cache_dir,
        data_fingerprint="resume-test",
        progress=False,
        executor=executor,
        n_workers=n_workers,
    )
    Path(out).write_text(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])


def report_torch_threads(point):
    """How many intra-op threads torch uses where this point is computed."""
    import torch

    return {"threads": torch.get_num_threads(), "x": point["x"]}
