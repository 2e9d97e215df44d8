"""asbbook.notebooks: the build keys a chapter on its inputs as they were when its run started,
and executed chapters carry no progress-bar or warning debris (issue 12, items 1 and 11)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import papermill
import pytest

from asbbook import notebooks

REPO = Path(__file__).resolve().parents[1]


def _tiny_book(root: Path, cells: list[str]) -> Path:
    """A one-chapter book: the root files and ``book/ch.ipynb`` with a parameters cell."""
    (root / "book").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/ch\n")
    (root / "_config.yml").write_text("title: tiny\n")
    (root / "references.bib").write_text("")
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("beta = 1.0  # inverse temperature")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    source = root / "book" / "ch.ipynb"
    nbformat.write(nb, source)
    return source


@pytest.fixture
def fake_papermill(monkeypatch):
    """Replaces papermill's executor by a copy; ``edits`` holds callables run mid-"execution"."""
    calls, edits = [], []

    def execute_notebook(input_path, output_path, **kwargs):
        calls.append(input_path)
        shutil.copy(input_path, output_path)
        while edits:
            edits.pop(0)()

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    return calls, edits


def test_an_edit_during_the_run_is_not_marked_up_to_date(tmp_path, fake_papermill, capsys):
    calls, edits = fake_papermill
    source = _tiny_book(tmp_path / "root", ["x = beta * 2"])
    stage = tmp_path / "stage"
    executed = stage / "book" / "ch.ipynb"

    def edit_default_beta():  # what the issue reproduced: beta changed while the chapter ran
        nb = nbformat.read(source, as_version=4)
        nb.cells[0].source = "beta = 3.0  # inverse temperature"
        nbformat.write(nb, source)

    edits.append(edit_default_beta)
    times = notebooks.execute_book(tmp_path / "root", stage, progress=False)
    assert calls == [str(source)] and times.changed_during_run == ["ch"]
    assert "changed while it ran" in capsys.readouterr().out
    assert notebooks.inputs_changed_during_run(executed)
    assert not notebooks.is_up_to_date(executed, notebooks.execution_key(source, {}))

    # The next build runs it again (with the new inputs) and then it is up to date.
    times = notebooks.execute_book(tmp_path / "root", stage, progress=False)
    assert len(calls) == 2 and times.changed_during_run == []
    assert notebooks.is_up_to_date(executed, notebooks.execution_key(source, {}))
    assert not notebooks.inputs_changed_during_run(executed)
    times = notebooks.execute_book(tmp_path / "root", stage, progress=False)
    assert len(calls) == 2 and times == {"ch": 0.0}
    assert "up to date, not re-executed" in capsys.readouterr().out


def test_the_key_is_taken_before_the_run_for_parameters_and_code(tmp_path, fake_papermill):
    calls, edits = fake_papermill
    source = _tiny_book(tmp_path / "root", ["x = 1"])
    out = tmp_path / "out.ipynb"
    key = notebooks.execution_key(source, {"beta": 2.0})
    notebooks.execute_chapter(source, out, {"beta": 2.0}, progress=False)
    assert notebooks.is_up_to_date(out, key)
    # A key given by the caller (the build's snapshot) that no longer matches: not stamped.
    notebooks.execute_chapter(source, out, {"beta": 2.0}, progress=False, key="0" * 16)
    assert notebooks.inputs_changed_during_run(out) and not notebooks.is_up_to_date(out, key)


@pytest.mark.timeout(120)
def test_executed_chapters_carry_no_progress_bar_or_warning_debris(tmp_path, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    source = _tiny_book(
        tmp_path / "root",
        [
            "import warnings\nfrom tqdm import tqdm\nfor _ in tqdm(range(3), desc='bar-debris'):\n"
            "    pass",
            "warnings.warn('warning-debris')",
            "from asbbook import sweep\n\n\ndef trial(point):\n    return {'a': 1}\n\n\n"
            "sweep.run_sweep(trial, [{}], cache_dir='cache', desc='sweep-debris')",
            "print('kept on stdout')",
        ],
    )
    out = tmp_path / "out.ipynb"
    notebooks.execute_chapter(source, out, cwd=tmp_path, progress=False)
    assert notebooks.stderr_outputs(out) == []
    stdout = [
        o["text"]
        for c in nbformat.read(out, as_version=4).cells
        for o in c.get("outputs", [])
        if o.get("name") == "stdout"
    ]
    assert stdout == ["kept on stdout\n"]  # ordinary output is untouched
    assert "TQDM_DISABLE" not in __import__("os").environ  # restored after the run


def test_stderr_outputs_lists_stream_debris(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="  0%|          | 0/3\r"),
        nbformat.v4.new_output("stream", name="stdout", text="fine\n"),
        nbformat.v4.new_output("stream", name="stderr", text="UserWarning: w\n"),
    ]
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert notebooks.stderr_outputs(tmp_path / "n.ipynb") == [
        "  0%|          | 0/3\r",
        "UserWarning: w\n",
    ]
