"""Tests of asbbook.sweep: keys, storage, corruption, resume after SIGKILL, executors.

Cache keys contain a hash of asbbook's source files, so a test that compares keys computed at
different moments cannot pass if those files are edited while it runs (as happens when several
people work in the tree at once). Such tests are wrapped in ``sources_must_not_change``: when they
fail *and* the sources changed meanwhile, they are skipped with that reason instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import sweep_worker  # tests/ is on sys.path (pytest's default rootdir-less import mode)
from sweep_worker import failing_point, ordered_point, slow_point

import asbbook
from asbbook import sweep
from asbbook.sweep import CacheCorruptionWarning, cache_key, code_version, grid, run_sweep

REPO = Path(__file__).resolve().parents[1]
WORKER_SCRIPT = Path(sweep_worker.__file__).resolve()

_counter: list[dict] = []


def sources_must_not_change(test):
    """Turn a failure into a skip if asbbook's source files were edited during the test."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        before = code_version()
        try:
            return test(*args, **kwargs)
        except Exception:
            if code_version() != before:
                pytest.skip("asbbook's source files were edited while the test ran")
            raise

    return wrapper


def counted(point: dict) -> dict:
    """Records every call, so tests can see which points were (re)computed in this process."""
    _counter.append(dict(point))
    return {"a": point["a"], "twice": 2 * point["a"], "vec": np.arange(3) * point["a"]}


def other_fn(point: dict) -> dict:
    return {"a": point["a"]}


def expected_counted(a):
    return {"a": a, "twice": 2 * a, "vec": [0, a, 2 * a]}


@pytest.fixture(autouse=True)
def _reset_counter():
    _counter.clear()
    yield
    _counter.clear()


def entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*.json"))


def markers(marker_dir: Path) -> list[tuple[dict, int]]:
    """(point, pid) of every call recorded by sweep_worker."""
    return [
        (json.loads(p.read_text()), int(p.name.split("-")[0]))
        for p in sorted(marker_dir.glob("*.start"))
    ]


# ------------------------------------------------------------------------------------ grid


def test_grid_is_the_cartesian_product_in_order_with_python_numbers():
    points = grid(N=np.array([8, 16]), alpha=[0.5, 1.0, 2.0], tag=("x",))
    assert len(points) == 6
    assert points[0] == {"N": 8, "alpha": 0.5, "tag": "x"}
    assert points[1] == {"N": 8, "alpha": 1.0, "tag": "x"}
    assert points[3] == {"N": 16, "alpha": 0.5, "tag": "x"}
    assert [list(p) for p in points] == [["N", "alpha", "tag"]] * 6
    assert all(type(p["N"]) is int for p in points)  # np.int64 converted
    assert grid(N=[8, 16], alpha=[0.5]) == grid(N=[8, 16], alpha=[0.5])


@pytest.mark.parametrize(
    "axes, match",
    [
        ({"N": []}, "empty"),
        ({"N": "abc"}, "list of values"),
        ({"N": 3}, "list of values"),
        ({"N": [1, 2, 1]}, "repeated"),
        ({"N": [object()]}, "not JSON-serialisable"),
        ({"x": [float("nan")]}, "non-finite"),
    ],
)
def test_grid_rejects_bad_axes(axes, match):
    with pytest.raises(ValueError, match=match):
        grid(**axes)


# ------------------------------------------------------------------------------------ keys


@sources_must_not_change
def test_cache_key_depends_on_exactly_the_four_components():
    v = "1.0+src.abc"
    base = cache_key(counted, {"a": 1, "b": [1, 2]}, "fp", version=v)
    assert len(base) == 64 and int(base, 16) >= 0
    # Same content: key order and tuple-vs-list do not matter.
    assert cache_key(counted, {"b": (1, 2), "a": 1}, "fp", version=v) == base
    assert cache_key(counted, {"a": np.int64(1), "b": np.array([1, 2])}, "fp", version=v) == base
    # Every component changes the key.
    changed = [
        cache_key(other_fn, {"a": 1, "b": [1, 2]}, "fp", version=v),
        cache_key(counted, {"a": 2, "b": [1, 2]}, "fp", version=v),
        cache_key(counted, {"a": 1, "b": [2, 1]}, "fp", version=v),
        cache_key(counted, {"a": 1, "b": [1, 2], "c": None}, "fp", version=v),
        cache_key(counted, {"a": 1, "b": [1, 2]}, "fp2", version=v),
        cache_key(counted, {"a": 1, "b": [1, 2]}, "fp", version="1.0+src.abd"),
    ]
    assert len(set(changed + [base])) == len(changed) + 1
    # The default version is the package's code version.
    assert cache_key(counted, {"a": 1}, "") == cache_key(
        counted, {"a": 1}, "", version=code_version()
    )


def test_code_version_changes_when_a_source_file_changes(tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(
        Path(asbbook.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__")
    )
    v0 = code_version(pkg)
    assert v0.startswith(asbbook.__version__ + "+src.")
    assert code_version(pkg) == v0
    # Compiled files are not sources.
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "params.cpython-311.pyc").write_bytes(b"\x00junk")
    assert code_version(pkg) == v0
    # An edit, a new module and a rename all change the version.
    sweep_src = pkg / "params.py"
    original = sweep_src.read_text()
    sweep_src.write_text(original + "\n# an edit\n")
    v1 = code_version(pkg)
    sweep_src.write_text(original)
    assert code_version(pkg) == v0
    (pkg / "extra.py").write_text("x = 1\n")
    v2 = code_version(pkg)
    (pkg / "extra.py").rename(pkg / "extra2.py")
    v3 = code_version(pkg)
    assert len({v0, v1, v2, v3}) == 4


# ----------------------------------------------------------------------------- in-process


@sources_must_not_change
def test_inprocess_sweep_computes_caches_and_reuses(tmp_path):
    points = grid(a=[1, 2, 3, 4])
    out = run_sweep(counted, points, cache_dir=tmp_path, progress=False)
    assert out == [expected_counted(a) for a in (1, 2, 3, 4)]
    assert all(type(r["vec"]) is list for r in out)  # numpy converted
    assert len(_counter) == 4
    files = entries(tmp_path)
    assert len(files) == 4
    version = code_version()
    for f in files:
        entry = json.loads(f.read_text())  # plain JSON, no pickle
        assert f.stem == entry["key"] == cache_key(counted, entry["point"], "", version=version)
        assert entry["code_version"] == version
        assert entry["function"] == f"{__name__}.counted"
        assert entry["result"] == expected_counted(entry["point"]["a"])
        assert len(entry["checksum"]) == 64
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind
    assert run_sweep(counted, [], cache_dir=tmp_path, progress=False) == []

    # A second sweep, with more points, computes only the new ones.
    out2 = run_sweep(counted, grid(a=[4, 3, 2, 1, 5]), cache_dir=tmp_path, progress=False)
    assert out2 == [expected_counted(a) for a in (4, 3, 2, 1, 5)]
    assert [c["a"] for c in _counter] == [1, 2, 3, 4, 5]
    # Another data fingerprint is another cache entry.
    run_sweep(counted, [{"a": 1}], cache_dir=tmp_path, data_fingerprint="d2", progress=False)
    assert [c["a"] for c in _counter] == [1, 2, 3, 4, 5, 1]
    assert len(entries(tmp_path)) == 6


@sources_must_not_change
def test_fresh_and_cached_results_are_identical_json_round_trips(tmp_path):
    points = [{"i": i} for i in range(5)]
    fresh = run_sweep(slow_point, points, cache_dir=tmp_path, progress=False)
    cached = run_sweep(slow_point, points, cache_dir=tmp_path, progress=False)
    assert fresh == cached
    direct = slow_point({"i": 4})
    assert fresh[4]["draws"] == direct["draws"].tolist()
    assert fresh[4]["nested"] == {"label": "p4", "pair": [4, -4], "flag": True}
    assert type(fresh[4]["square"]) is int and fresh[4]["square"] == 16
    assert fresh[4]["root"] == math.sqrt(4) / 3.0


@sources_must_not_change
def test_progress_bar_counts_cached_points_as_done_at_once(tmp_path, monkeypatch):
    run_sweep(counted, grid(a=[1, 2, 3]), cache_dir=tmp_path, progress=False)
    bars = []

    class RecordingBar:
        def __init__(self, *, total, desc, unit, disable):
            self.total, self.desc, self.disable, self.updates = total, desc, disable, []
            bars.append(self)

        def update(self, n):
            self.updates.append((n, len(_counter)))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(sweep, "tqdm", RecordingBar)
    _counter.clear()
    run_sweep(counted, grid(a=[1, 2, 3, 4, 5]), cache_dir=tmp_path, desc="phase")
    (bar,) = bars
    assert (bar.total, bar.desc, bar.disable) == (5, "phase", False)
    # First update: the 3 cached points, before anything is computed; then one per computed point.
    assert bar.updates == [(3, 0), (1, 1), (1, 2)]


def test_real_tqdm_bar_is_shown(tmp_path, capsys):
    run_sweep(counted, grid(a=[1, 2]), cache_dir=tmp_path, desc="demo-bar")
    err = capsys.readouterr().err
    assert "demo-bar" in err and "2/2" in err
    run_sweep(counted, grid(a=[1, 2]), cache_dir=tmp_path, progress=False)
    assert capsys.readouterr().err == ""


@sources_must_not_change
def test_error_in_fn_propagates_and_keeps_finished_points(tmp_path):
    with pytest.raises(ArithmeticError, match="deliberate") as info:
        run_sweep(failing_point, grid(x=[1, 2, 3, 4]), cache_dir=tmp_path, progress=False)
    assert any('"x":3' in note for note in info.value.__notes__)
    assert len(entries(tmp_path)) == 2  # x = 1 and 2 were stored before the failure
    out = run_sweep(failing_point, grid(x=[1, 2]), cache_dir=tmp_path, progress=False)
    assert out == [{"x": 1}, {"x": 2}]


# ----------------------------------------------------------------------------- corruption


def _corrupt_truncate(path, other):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _corrupt_empty(path, other):
    path.write_bytes(b"")


def _corrupt_garbage(path, other):
    path.write_bytes(b"\xff\xfe not json at all")


def _corrupt_result(path, other):  # valid JSON, result edited: checksum mismatch
    entry = json.loads(path.read_text())
    entry["result"]["twice"] += 1
    path.write_text(json.dumps(entry))


def _corrupt_wrong_key(path, other):  # another point's (valid) entry under this name
    path.write_text(other.read_text())


def _corrupt_point(path, other):  # point edited, key and checksum untouched
    entry = json.loads(path.read_text())
    entry["point"]["a"] = 99
    path.write_text(json.dumps(entry))


def _corrupt_not_a_dict(path, other):
    path.write_text("[1, 2, 3]")


@pytest.mark.parametrize(
    "corrupt, reason",
    [
        (_corrupt_truncate, "invalid JSON"),
        (_corrupt_empty, "invalid JSON"),
        (_corrupt_garbage, "not UTF-8"),
        (_corrupt_result, "checksum mismatch"),
        (_corrupt_wrong_key, "wrong key"),
        (_corrupt_point, "do not hash to the key"),
        (_corrupt_not_a_dict, "missing fields"),
    ],
)
@sources_must_not_change
def test_corrupted_entry_is_reported_and_recomputed(tmp_path, corrupt, reason):
    points = grid(a=[1, 2, 3])
    run_sweep(counted, points, cache_dir=tmp_path, progress=False)
    key2 = cache_key(counted, {"a": 2}, "")
    key3 = cache_key(counted, {"a": 3}, "")
    corrupt(tmp_path / f"{key2}.json", tmp_path / f"{key3}.json")
    _counter.clear()
    with pytest.warns(CacheCorruptionWarning, match=reason) as record:
        out = run_sweep(counted, points, cache_dir=tmp_path, progress=False)
    assert len(record) == 1 and key2 in str(record[0].message)
    assert out == [expected_counted(a) for a in (1, 2, 3)]
    assert _counter == [{"a": 2}]  # only the corrupted point was recomputed
    # The entry was repaired: a third run is silent and computes nothing.
    _counter.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        assert run_sweep(counted, points, cache_dir=tmp_path, progress=False) == out
    assert _counter == []


# ----------------------------------------------------------------------------- validation


def _closure_factory():
    def inner(point):
        return {"a": point["a"]}

    return inner


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"executor": "threads"}, "unknown executor"),
        ({"executor": "inprocess", "scheduler": "tcp://127.0.0.1:1"}, "only used with"),
        ({"n_workers": 0}, "n_workers"),
        ({"n_workers": 1.5}, "n_workers"),
        ({"data_fingerprint": 3}, "data_fingerprint"),
        ({"points": [{"a": 1}, 3]}, r"points\[1\] must be a dict"),
        ({"points": {"a": 1}}, "list of dicts"),
        ({"points": [{"a": object()}]}, "not JSON-serialisable"),
        ({"points": [{"a": {1, 2}}]}, "not JSON-serialisable"),
        ({"points": [{1: 2}]}, "keys must be strings"),
        ({"points": [{"a": float("inf")}]}, "non-finite"),
        ({"points": [{"a": 1, "b": 2}, {"a": 2}, {"b": 2, "a": 1}]}, "duplicate point"),
        ({"points": [{"a": (1, 2)}, {"a": [1, 2]}]}, "duplicate point"),
        ({"fn": lambda p: {}}, "not a lambda"),
        ({"fn": lambda p: {}, "executor": "processes"}, "not a lambda"),
        ({"fn": lambda p: {}, "executor": "dask"}, "not a lambda"),
        ({"fn": _closure_factory(), "executor": "processes"}, "closure"),
        ({"fn": _closure_factory(), "executor": "dask"}, "closure"),
        ({"fn": functools.partial(counted)}, "partial"),
        ({"fn": print}, "plain top-level function"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path, kwargs, match):
    args = {"fn": counted, "points": [{"a": 1}], "cache_dir": tmp_path, "progress": False}
    args.update(kwargs)
    fn, points = args.pop("fn"), args.pop("points")
    with pytest.raises(ValueError, match=match):
        run_sweep(fn, points, **args)
    assert _counter == [] and entries(tmp_path) == []


def test_processes_executor_rejects_a_function_it_cannot_import(tmp_path):
    def shadow(point):
        return {}

    shadow.__qualname__ = "no_such_function"  # looks top-level, but is not in this module
    with pytest.raises(ValueError, match="must be importable"):
        run_sweep(shadow, [{"a": 1}], cache_dir=tmp_path, executor="processes", progress=False)


@pytest.mark.parametrize(
    "bad_result, match",
    [([1, 2], "must return a dict"), ({"x": object()}, "not JSON-serialisable"), ({1: 2}, "keys")],
)
def test_bad_results_raise_value_error_and_are_not_cached(tmp_path, monkeypatch, bad_result, match):
    monkeypatch.setitem(globals(), "_BAD_RESULT", bad_result)
    with pytest.raises(ValueError, match=match):
        run_sweep(returns_bad_result, [{"a": 1}], cache_dir=tmp_path, progress=False)
    assert entries(tmp_path) == []


_BAD_RESULT = None


def returns_bad_result(point):
    return _BAD_RESULT


# --------------------------------------------------------------------------------- resume


def _run_worker(cache_dir, out, n_points, marker_dir, delay):
    env = dict(os.environ, SWEEP_MARKER_DIR=str(marker_dir), SWEEP_DELAY=str(delay))
    return subprocess.Popen(
        [sys.executable, str(WORKER_SCRIPT), str(cache_dir), str(out), str(n_points)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.timeout(60)
@sources_must_not_change
def test_sweep_killed_with_sigkill_resumes_with_identical_results(tmp_path):
    n = 20
    ref_cache, cache = tmp_path / "ref_cache", tmp_path / "cache"
    marks = [tmp_path / f"marks{k}" for k in range(3)]
    for m in marks:
        m.mkdir()

    # Uninterrupted reference run (no delay: it does not change the results).
    ref = _run_worker(ref_cache, tmp_path / "ref.json", n, marks[0], 0)
    assert ref.wait(timeout=30) == 0, ref.stderr.read().decode()
    reference = json.loads((tmp_path / "ref.json").read_text())
    assert len(reference) == n and [r["i"] for r in reference] == list(range(n))

    # Slow run (0.2 s per point), killed once at least 5 entries exist.
    proc = _run_worker(cache, tmp_path / "killed.json", n, marks[1], 0.2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if cache.is_dir() and len(entries(cache)) >= 5:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    done_at_kill = {json.loads(f.read_text())["point"]["i"] for f in entries(cache)}
    assert 5 <= len(done_at_kill) < n
    assert not (tmp_path / "killed.json").exists()

    # Resume: only the missing points are computed, and the results equal the reference.
    resumed = _run_worker(cache, tmp_path / "resumed.json", n, marks[2], 0.01)
    assert resumed.wait(timeout=30) == 0, resumed.stderr.read().decode()
    recomputed = [point["i"] for point, _ in markers(marks[2])]
    assert sorted(recomputed) == sorted(set(range(n)) - done_at_kill)
    assert json.loads((tmp_path / "resumed.json").read_text()) == reference
    # Every entry is valid and holds the same result as the reference cache.
    assert [f.name for f in entries(cache)] == [f.name for f in entries(ref_cache)]
    for f in entries(cache):
        assert (
            json.loads(f.read_text())["result"]
            == json.loads((ref_cache / f.name).read_text())["result"]
        )


# ------------------------------------------------------------------------------ executors


@pytest.mark.timeout(60)
@sources_must_not_change
def test_three_executors_give_identical_results(tmp_path, monkeypatch):
    # Point 0 waits until 3 other points have finished when there are several workers, so the
    # parallel executors complete (and write) out of point order.
    points = [{"x": 0.5 * k - 1.0, "last": k == 0} for k in range(8)]
    expected = [
        {"x": x, "cube": x**3, "sin": math.sin(x), "moments": [x / 7.0, x**2 / 7.0]}
        for x in (p["x"] for p in points)
    ]
    written = []
    real_write = sweep._write_entry

    def recording_write(path, entry):
        written.append(entry["point"]["x"])
        real_write(path, entry)

    monkeypatch.setattr(sweep, "_write_entry", recording_write)
    outputs, timings = {}, {}
    for executor in ("inprocess", "processes", "dask"):
        cache, marks = tmp_path / executor, tmp_path / f"marks-{executor}"
        marks.mkdir()
        monkeypatch.setenv("SWEEP_MARKER_DIR", str(marks))
        monkeypatch.setenv("SWEEP_WAIT_FOR_OTHERS", "0" if executor == "inprocess" else "3")
        written.clear()
        start = time.perf_counter()
        outputs[executor] = run_sweep(
            ordered_point,
            points,
            cache_dir=cache,
            executor=executor,
            n_workers=2,
            progress=False,
            data_fingerprint="ex",
        )
        timings[executor] = time.perf_counter() - start
        calls = markers(marks)
        assert sorted(p["x"] for p, _ in calls) == [p["x"] for p in points]  # each point once
        pids = {pid for _, pid in calls}
        if executor == "inprocess":
            assert pids == {os.getpid()}
            assert written == [p["x"] for p in points]
        else:
            assert os.getpid() not in pids and len(pids) == 2  # both workers took part
            assert sorted(written) == [p["x"] for p in points]
            assert written.index(points[0]["x"]) >= 3  # written in completion order
        # Same entries in every cache: the executor is not part of the key.
        assert [f.name for f in entries(cache)] == [f.name for f in entries(tmp_path / "inprocess")]
    print("executor timings (s):", {k: round(v, 2) for k, v in timings.items()})
    assert outputs["inprocess"] == expected  # point order, whatever the completion order
    assert outputs["processes"] == outputs["inprocess"]
    assert outputs["dask"] == outputs["inprocess"]


@pytest.mark.timeout(60)
@sources_must_not_change
def test_dask_executor_connects_to_a_running_scheduler(tmp_path):
    from distributed import Client, LocalCluster

    points = grid(i=[0, 1, 2, 3])
    reference = run_sweep(slow_point, points, cache_dir=tmp_path / "ref", progress=False)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        by_address = run_sweep(
            slow_point,
            points,
            cache_dir=tmp_path / "address",
            executor="dask",
            scheduler=cluster.scheduler_address,
            progress=False,
        )
        with Client(cluster) as client:
            by_client = run_sweep(
                slow_point,
                points,
                cache_dir=tmp_path / "client",
                executor="dask",
                scheduler=client,
                progress=False,
            )
            assert client.status == "running"  # a Client passed in is left open
    assert by_address == reference and by_client == reference


def test_worker_processes_run_torch_single_threaded(tmp_path):
    import sweep_worker

    results = sweep.run_sweep(
        sweep_worker.report_torch_threads,
        sweep.grid(x=[1, 2]),
        cache_dir=tmp_path,
        executor="processes",
        n_workers=2,
        progress=False,
    )
    assert [r["threads"] for r in results] == [1, 1]


def test_run_spec_caches_each_named_sweep_under_the_default_dir(tmp_path, monkeypatch):
    import sweep_worker

    monkeypatch.setenv("ASBBOOK_CACHE_DIR", str(tmp_path))
    assert sweep.default_cache_dir() == tmp_path.resolve()
    spec = sweep.SweepSpec("demo", sweep_worker.report_torch_threads, sweep.grid(x=[3]), "fp")
    first = sweep.run_spec(spec, progress=False)
    assert first[0]["x"] == 3
    assert len(list((tmp_path / "demo").glob("*.json"))) == 1
    assert sweep.run_spec(spec, progress=False) == first


# ----------------------------------------------------------- reliability (issue 12, items 2-5, 9)


def _corrupt_moved_result(path, other):
    """Another key's result *and its checksum* under this entry's (otherwise intact) fields: a
    checksum over the result alone would accept it."""
    entry, moved = json.loads(path.read_text()), json.loads(other.read_text())
    entry["result"], entry["checksum"] = moved["result"], moved["checksum"]
    path.write_text(json.dumps(entry))


@sources_must_not_change
def test_checksum_covers_the_key_as_well_as_the_result(tmp_path):
    points = grid(a=[1, 2, 3])
    run_sweep(counted, points, cache_dir=tmp_path, progress=False)
    key2, key3 = (cache_key(counted, {"a": a}, "") for a in (2, 3))
    _corrupt_moved_result(tmp_path / f"{key2}.json", tmp_path / f"{key3}.json")
    _counter.clear()
    with pytest.warns(CacheCorruptionWarning, match="checksum mismatch"):
        out = run_sweep(counted, points, cache_dir=tmp_path, progress=False)
    assert out == [expected_counted(a) for a in (1, 2, 3)]
    assert _counter == [{"a": 2}]


def _make_directory(path):
    path.mkdir()
    (path / "inside.txt").write_text("not an entry")


def _make_fifo(path):
    os.mkfifo(path)  # opening it for reading would block forever


def _make_symlink(path):
    target = path.with_name("elsewhere.txt")
    target.write_text("{}")
    path.symlink_to(target)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "make, kind",
    [(_make_directory, "a directory"), (_make_fifo, "a FIFO"), (_make_symlink, "symbolic link")],
)
@sources_must_not_change
def test_anything_but_a_regular_file_at_an_entry_path_is_corruption(tmp_path, make, kind):
    points = grid(a=[1, 2, 3])
    run_sweep(counted, points, cache_dir=tmp_path, progress=False)
    path = tmp_path / f"{cache_key(counted, {'a': 2}, '')}.json"
    path.unlink()
    make(path)
    _counter.clear()
    with pytest.warns(CacheCorruptionWarning, match=f"{kind}.*not a regular file") as record:
        out = run_sweep(counted, points, cache_dir=tmp_path, progress=False)
    assert len(record) == 1 and path.name in str(record[0].message)
    assert out == [expected_counted(a) for a in (1, 2, 3)]
    assert _counter == [{"a": 2}]
    assert path.is_file() and not path.is_symlink()
    assert len(list(tmp_path.glob(f"{path.name}.corrupt-*"))) == 1  # set aside, not deleted
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        assert run_sweep(counted, points, cache_dir=tmp_path, progress=False) == out


def _unwritable_dir(tmp_path) -> Path:
    if os.geteuid() == 0:  # root writes through any permission bits, but not into sysfs
        return Path("/sys")
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    return ro


def test_unwritable_cache_dir_is_refused_before_anything_is_computed(tmp_path):
    ro = _unwritable_dir(tmp_path)
    with pytest.raises(sweep.CacheDirError, match=f"{ro} is not writable"):
        run_sweep(counted, grid(a=[1, 2]), cache_dir=ro, progress=False)
    assert _counter == []
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(sweep.CacheDirError, match=f"cannot create .*{blocker / 'cache'}"):
        run_sweep(counted, grid(a=[1, 2]), cache_dir=blocker / "cache", progress=False)
    assert _counter == []


_TRIAL_SOURCE = """
OFFSET = {offset}


def helper(a):
    return a + OFFSET


def trial(point):
    return {{"value": {body}}}
"""


@sources_must_not_change
def test_editing_an_outside_sweep_function_invalidates_its_cache(tmp_path, monkeypatch):
    import importlib

    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no stale .pyc within one second
    modules = tmp_path / "mods"
    modules.mkdir()
    source = modules / "edited_trial_module.py"
    monkeypatch.syspath_prepend(str(modules))
    monkeypatch.delitem(sys.modules, "edited_trial_module", raising=False)

    def write_and_load(offset, body):
        source.write_text(_TRIAL_SOURCE.format(offset=offset, body=body))
        importlib.invalidate_caches()
        if "edited_trial_module" in sys.modules:
            return importlib.reload(sys.modules["edited_trial_module"]).trial
        return importlib.import_module("edited_trial_module").trial

    cache, points = tmp_path / "cache", grid(a=[1, 2])
    trial = write_and_load(0, "10 * point['a']")
    assert run_sweep(trial, points, cache_dir=cache, progress=False) == [
        {"value": 10},
        {"value": 20},
    ]
    assert run_sweep(trial, points, cache_dir=cache, progress=False) == [
        {"value": 10},
        {"value": 20},
    ]
    key_before = cache_key(trial, points[0])
    # The body changes: the old entries must not be returned.
    trial = write_and_load(0, "100 * point['a']")
    assert cache_key(trial, points[0]) != key_before
    assert run_sweep(trial, points, cache_dir=cache, progress=False) == [
        {"value": 100},
        {"value": 200},
    ]
    # Only a helper of the same file changes: still invalidated.
    trial = write_and_load(0, "helper(point['a'])")
    assert run_sweep(trial, points, cache_dir=cache, progress=False) == [{"value": 1}, {"value": 2}]
    trial = write_and_load(5, "helper(point['a'])")
    assert run_sweep(trial, points, cache_dir=cache, progress=False) == [{"value": 6}, {"value": 7}]
    # asbbook's own functions are covered by the code version alone.
    assert sweep.function_source_hash(sweep.grid) == ""


@pytest.mark.timeout(90)
@sources_must_not_change
def test_sigkill_of_a_process_sweep_leaves_no_process_behind(tmp_path):
    import psutil

    marks = tmp_path / "marks"
    marks.mkdir()
    env = dict(os.environ, SWEEP_MARKER_DIR=str(marks), SWEEP_DELAY="60")
    proc = subprocess.Popen(
        [sys.executable, str(WORKER_SCRIPT), str(tmp_path / "c"), str(tmp_path / "o"), "6"]
        + ["processes", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(marks.glob("*.start"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.1)
    assert len(list(marks.glob("*.start"))) == 2, "the two workers did not start"
    children = psutil.Process(proc.pid).children(recursive=True)
    worker_pids = {pid for _, pid in markers(marks)}
    assert worker_pids <= {c.pid for c in children}
    assert len(children) >= 3  # two workers and the resource tracker
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    gone, alive = psutil.wait_procs(children, timeout=5)
    leftovers = [(p.pid, " ".join(p.cmdline())[:80]) for p in alive if p.is_running()]
    for p in alive:  # do not leave them behind even when the test fails
        with contextlib.suppress(psutil.Error):
            p.kill()
    assert leftovers == [], f"processes outlived the killed sweep by 5 s: {leftovers}"


# ------------------------------------------------------------------ Dask failures (item 4)

_SCHEDULER_SCRIPT = """
import asyncio
from distributed import Scheduler

async def main():
    async with Scheduler(host="127.0.0.1", port=0, dashboard_address="127.0.0.1:0") as s:
        print(s.address, s.services["dashboard"].port, flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def bare_scheduler(tmp_path_factory):
    """A Dask scheduler with no workers, on loopback, in a process that can import asbbook but
    not this test directory (so not ``sweep_worker``). Yields (scheduler address, dashboard port)."""
    cwd = tmp_path_factory.mktemp("scheduler")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCHEDULER_SCRIPT],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        address, dashboard = proc.stdout.readline().split()
        yield address, int(dashboard)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask_sweep(tmp_path, fn=slow_point, **kwargs):
    return run_sweep(
        fn, grid(i=[0, 1]), cache_dir=tmp_path, executor="dask", progress=False, **kwargs
    )


@pytest.mark.timeout(20)
def test_a_refused_scheduler_port_fails_at_once_with_the_address(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(sweep.SchedulerError, match=f"no Dask scheduler at {address}.*refused"):
        _dask_sweep(tmp_path, scheduler=address)
    assert time.monotonic() - start < 3
    with pytest.raises(sweep.SchedulerError, match="not a scheduler address"):
        _dask_sweep(tmp_path, scheduler=f"http://127.0.0.1:{_free_port()}")
    assert entries(tmp_path) == []


@pytest.mark.timeout(20)
def test_the_dashboard_port_is_refused_quickly_and_clearly(tmp_path, bare_scheduler):
    _, dashboard = bare_scheduler
    start = time.monotonic()
    with pytest.raises(sweep.SchedulerError, match="answers HTTP.*dashboard.*8786"):
        _dask_sweep(tmp_path, scheduler=f"tcp://127.0.0.1:{dashboard}")
    assert time.monotonic() - start < 5


@pytest.mark.timeout(20)
def test_a_scheduler_without_workers_fails_after_the_no_workers_timeout(
    tmp_path, bare_scheduler, monkeypatch
):
    address, _ = bare_scheduler
    # Any asbbook function will do: it is never called, and the scheduler can import it.
    fn = sweep.progress_disabled
    start = time.monotonic()
    with pytest.raises(sweep.SchedulerError, match=f"{address} has no workers after 1 s.*worker"):
        _dask_sweep(tmp_path, fn=fn, scheduler=address, no_workers_timeout=1)
    assert 1 <= time.monotonic() - start < 8
    monkeypatch.setenv(sweep.NO_WORKERS_TIMEOUT_ENV, "2")
    start = time.monotonic()
    with pytest.raises(sweep.SchedulerError, match="no workers after 2 s"):
        _dask_sweep(tmp_path, fn=fn, scheduler=address)
    assert 2 <= time.monotonic() - start < 9


@pytest.mark.timeout(20)
def test_a_scheduler_that_cannot_import_the_function_says_so(tmp_path, bare_scheduler):
    address, _ = bare_scheduler
    with pytest.raises(sweep.SchedulerError) as info:
        _dask_sweep(tmp_path, scheduler=address, no_workers_timeout=1)
    message = str(info.value)
    assert f"{address} cannot import sweep_worker:slow_point" in message
    assert "No module named 'sweep_worker'" in message and "install" in message
    assert "different environments" not in message


def test_dask_timeouts_default_to_10_s_and_are_configurable(monkeypatch):
    from asbbook.sweep.executors import dask_timeout

    env = sweep.CONNECT_TIMEOUT_ENV
    monkeypatch.delenv(env, raising=False)
    assert dask_timeout(None, env, "connect_timeout") == 10.0
    monkeypatch.setenv(env, "2.5")
    assert dask_timeout(None, env, "connect_timeout") == 2.5
    assert dask_timeout(4, env, "connect_timeout") == 4.0  # the argument wins
    monkeypatch.setenv(env, "soon")
    with pytest.raises(ValueError, match=f"\\${env} must be a number"):
        dask_timeout(None, env, "connect_timeout")
    for bad in (0, -1, float("inf"), True, "3"):
        with pytest.raises(ValueError, match="connect_timeout"):
            dask_timeout(bad, env, "connect_timeout")
