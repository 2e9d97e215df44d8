"""The asbbook command line: chapter lookup, parameter checking and coercion."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

from asbbook import cli, notebooks, params


def test_unknown_parameter_is_refused_with_a_nonzero_exit(root, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "asbbook.cli",
            "run",
            "01",
            "-p",
            "betta",
            "8",
            "--out",
            str(tmp_path / "x.ipynb"),
        ],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert result.returncode == 2
    assert "unknown parameter 'betta'" in result.stderr
    assert "beta" in result.stderr  # lists the real ones
    assert not (tmp_path / "x.ipynb").exists()


def test_bad_value_for_a_typed_parameter_is_refused(root):
    declared = notebooks.declared_parameters(root / "book" / "01-boltzmann.ipynb")
    with pytest.raises(cli.CliError, match="parameter 'n_samples' expects a value of type int"):
        cli.parse_parameters([["n_samples", "2.5"]], declared)
    with pytest.raises(cli.CliError, match="parameter 'beta' expects a value of type float"):
        cli.parse_parameters([["beta", "hot"]], declared)


def test_values_are_coerced_to_the_declared_types(root):
    declared = notebooks.declared_parameters(root / "book" / "01-boltzmann.ipynb")
    values = cli.parse_parameters(
        [["beta", "8"], ["n_samples", "300"], ["device", "cpu"]], declared
    )
    assert values == {"beta": 8.0, "n_samples": 300, "device": "cpu"}
    assert isinstance(values["beta"], float) and isinstance(values["n_samples"], int)


def test_chapters_are_found_by_number_name_or_stem(root):
    target = root / "book" / "01-boltzmann.ipynb"
    for name in ("01", "boltzmann", "01-boltzmann"):
        assert cli.find_chapter(root, name) == target
    with pytest.raises(cli.CliError, match="unknown chapter"):
        cli.find_chapter(root, "99")


def test_list_shows_every_chapter_and_parameter(root, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for chapter in notebooks.toc_notebooks(root):
        assert chapter.name in out
        for name in notebooks.declared_parameters(chapter):
            assert name in out


# ------------------------------------------------------ one-line user errors (issue 12, item 7)


def _cli(root, *args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run(
        [sys.executable, "-m", "asbbook.cli", *args],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=timeout,
    )


def _assert_one_line_user_error(result, *fragments, alone=True):
    """Exit 2, no traceback, the error on one line; ``alone``: nothing else on stderr (a chapter
    that ran for a while may have shown papermill's progress bar before)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in lines if "error" in line.lower()]
    assert errors == lines[-1:] and lines[-1].startswith("asbbook: error: "), result.stderr
    if alone:
        assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[-1]


@pytest.mark.timeout(120)
def test_a_chapter_parameter_error_is_one_line_with_exit_2(root, tmp_path):
    # A 23-digit seed passes the type check (int) and is refused by the chapter's params.seed.
    out = tmp_path / "x.ipynb"
    result = _cli(root, "run", "01", "--smoke", "-p", "seed", "1" * 23, "--out", str(out))
    _assert_one_line_user_error(result, "parameter 'seed'", "2**63 - 1", "1" * 23, alone=False)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["run", "99"], ["unknown chapter '99'", "01-boltzmann"]),
        (["run", "01", "-p", "betta", "8"], ["unknown parameter 'betta'", "beta"]),
        (["run", "01", "-p", "beta", "hot"], ["parameter 'beta' expects a value of type float"]),
        (["run"], ["required: chapter"]),
        (["sweep", "05", "--n-workers", "0"], ["--n-workers", "> 0"]),
        (["sweep", "05", "--connect-timeout", "soon"], ["--connect-timeout"]),
        (["sweep", "01"], ["chapter '01-boltzmann' has no sweeps"]),
    ],
)
def test_user_errors_are_one_line_with_exit_2(root, args, fragments):
    _assert_one_line_user_error(_cli(root, *args), *fragments)


def test_out_under_an_existing_file_is_one_line_with_exit_2(root, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = _cli(root, "run", "01", "--out", str(blocker / "x.ipynb"))
    _assert_one_line_user_error(result, f"{blocker} is a file, not a directory")
    result = _cli(root, "run", "01", "--out", str(tmp_path))
    _assert_one_line_user_error(result, "is a directory")


@pytest.mark.timeout(60)
def test_an_unreachable_scheduler_is_one_line_with_exit_2(root, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    result = _cli(
        root, "sweep", "05", "--smoke", "--scheduler", address, "--cache-dir", str(tmp_path)
    )
    _assert_one_line_user_error(result, f"no Dask scheduler at {address}", "refused")


def test_chapter_failure_turns_only_a_parameter_error_into_a_user_error(tmp_path):
    import papermill

    def failure(ename):
        return papermill.PapermillExecutionError(3, 4, "src", ename, "parameter 'x' bad", [])

    error = cli.chapter_failure(failure("ParameterError"), tmp_path)
    assert isinstance(error, cli.CliError) and str(error) == "parameter 'x' bad"
    assert cli.chapter_failure(failure("ZeroDivisionError"), tmp_path) is None


# ------------------------------------------------------------ parameter checks (items 6, 7)


def test_seeds_are_capped_to_what_torch_accepts():
    import torch

    assert params.seed("seed", params.MAX_SEED) == 2**63 - 1
    torch.Generator().manual_seed(params.MAX_SEED)  # the cap is accepted downstream
    for bad in (2**63, 10**22, -1, 1.0, True):
        with pytest.raises(params.ParameterError, match="parameter 'seed'"):
            params.seed("seed", bad)


def test_memory_budget_names_the_parameter_and_the_estimate(monkeypatch):
    monkeypatch.delenv("ASBBOOK_MAX_BYTES", raising=False)
    assert params.memory_budget("width", 2**30) == 2**30
    with pytest.raises(params.ParameterError, match=r"parameter 'width'.*93.1 GiB.*ASBBOOK_MAX"):
        params.memory_budget("width", 10**11)
    monkeypatch.setenv("ASBBOOK_MAX_BYTES", str(2 * 10**11))
    assert params.memory_budget("width", 10**11) == 10**11  # the limit can be raised
    monkeypatch.setenv("ASBBOOK_MAX_BYTES", str(10**6))
    with pytest.raises(params.ParameterError, match="parameter 'n_samples'"):
        params.memory_budget("n_samples", 2 * 10**6)
    with pytest.raises(TypeError, match="n_bytes"):
        params.memory_budget("n_samples", "big")


@pytest.mark.timeout(180)
def test_sigkill_of_asbbook_sweep_leaves_no_process_behind(root, tmp_path):
    import signal
    import time

    import psutil

    env = dict(os.environ, PYTHONPATH=str(root))
    command = [sys.executable, "-m", "asbbook.cli", "sweep", "05", "--smoke"]
    proc = subprocess.Popen(
        [*command, "--executor", "processes", "--cache-dir", str(tmp_path)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parent = psutil.Process(proc.pid)
    workers: list = []
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            children = parent.children(recursive=True)
            workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        if len(workers) >= 2:
            break
        time.sleep(0.05)
    assert len(workers) >= 2, "the sweep's worker processes never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=5)
    leftovers = [p.pid for p in alive if p.is_running()]
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    assert leftovers == [], "processes outlived the killed `asbbook sweep` by 5 s"


def test_a_scheduler_parameter_is_checked_with_the_parameters():
    import socket

    assert params.scheduler("scheduler", "") is None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(params.ParameterError, match=f"parameter 'scheduler'.*{address}.*refused"):
        params.scheduler("scheduler", address)
    with pytest.raises(params.ParameterError, match="parameter 'scheduler'.*not a scheduler"):
        params.scheduler("scheduler", "http://127.0.0.1:8787/status")
    with pytest.raises(params.ParameterError, match="parameter 'scheduler'"):
        params.scheduler("scheduler", 8786)
