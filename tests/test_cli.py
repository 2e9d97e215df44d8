"""The asbbook command line: chapter lookup, parameter checking and coercion."""

from __future__ import annotations

import subprocess
import sys

import pytest

from asbbook import cli, notebooks


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
