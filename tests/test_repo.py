"""Repository hygiene: pins agree, notebooks are committed without outputs, every chapter is
parameterised and documented, CI and the publishing workflow stay in step."""

from __future__ import annotations

import re
import tomllib

import nbformat
import pytest
import yaml

from asbbook import notebooks


def pyproject(root):
    return tomllib.loads((root / "pyproject.toml").read_text())


def requirement_pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_environment_yml_has_exactly_the_pyproject_pins(root):
    declared = pyproject(root)["project"]["dependencies"]
    pins = requirement_pins(declared)
    assert len(pins) == len(declared), "every runtime dependency must be pinned with =="
    env = yaml.safe_load((root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert requirement_pins(pip_section) == pins


def test_key_pins_are_the_known_good_versions(root):
    pins = requirement_pins(pyproject(root)["project"]["dependencies"])
    assert pins["torch"] == "2.13.0"
    assert pins["jupyter-book"] == "1.0.4.post1"
    assert "sphinx-mathjax-offline" in pins


def test_every_dependency_has_a_reason_in_the_readme(root):
    readme = (root / "README.md").read_text()
    project = pyproject(root)["project"]
    names = list(requirement_pins(project["dependencies"]))
    names += list(requirement_pins(project["optional-dependencies"]["dev"]))
    for name in names:
        assert re.search(rf"`{re.escape(name)}`", readme, re.IGNORECASE), (
            f"README does not explain {name}"
        )


def test_committed_notebooks_have_no_outputs(root):
    for path in sorted((root / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], (
                    f"{path.name} is committed with outputs: run `make strip`"
                )
                assert cell.execution_count is None, path.name


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists(root):
    entries = notebooks.toc_entries(root)
    for entry in entries:
        assert (root / f"{entry}.ipynb").is_file() or (root / f"{entry}.md").is_file(), entry
    listed = {root / f"{e}.ipynb" for e in entries}
    for path in (root / "book").glob("*.ipynb"):
        assert path in listed, f"{path.name} is not listed in _toc.yml"


@pytest.fixture(scope="module")
def chapters(root):
    return notebooks.toc_notebooks(root)


def test_every_chapter_has_documented_parameters_and_smoke_values(chapters):
    assert chapters
    for chapter in chapters:
        nb = nbformat.read(chapter, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{chapter.name}: exactly one cell must be tagged 'parameters'"
        declared = notebooks.declared_parameters(chapter)
        assert declared, chapter.name
        for name, info in declared.items():
            assert info["help"].strip(), f"{chapter.name}: parameter {name!r} has no comment"
            assert info["inferred_type_name"] not in ("None", None), (
                f"{chapter.name}: {name} is untyped"
            )
        smoke = notebooks.smoke_parameters(chapter)
        assert smoke, f"{chapter.name} declares no smoke parameters"
        assert set(smoke) <= set(declared), f"{chapter.name}: unknown smoke parameters"
        # The cell right after the parameters validates them.
        index = nb.cells.index(tagged[0])
        assert "params." in nb.cells[index + 1].source, f"{chapter.name}: no validation cell"


def test_config_sets_what_readers_need(root):
    config = yaml.safe_load((root / "_config.yml").read_text())
    assert config["title"] and config["author"] and config["copyright"]
    assert config["repository"]["url"].startswith("https://")
    assert config["launch_buttons"]["binderhub_url"] and config["launch_buttons"]["colab_url"]
    assert config["bibtex_bibfiles"] == ["references.bib"]
    assert config["execute"]["execute_notebooks"] == "off"
    assert int(config["execute"]["timeout"]) > 0
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]
    # Offline math: nothing may point MathJax at a remote URL.
    assert not re.search(r"mathjax\w*:\s*['\"]?https?://", (root / "_config.yml").read_text())


def test_publishing_workflow_runs_tests_then_book_then_pages(root):
    workflow = yaml.safe_load((root / ".github" / "workflows" / "book.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert "push" in triggers
    steps = workflow["jobs"]["build"]["steps"]
    runs = [s.get("run", "") for s in steps]
    test_at = next(i for i, r in enumerate(runs) if "make test" in r)
    book_at = next(i for i, r in enumerate(runs) if "make book" in r)
    assert test_at < book_at
    uploads = [s for s in steps if "upload-pages-artifact" in s.get("uses", "")]
    assert uploads and uploads[0]["with"]["path"] == "_build/html"
    assert any("deploy-pages" in s.get("uses", "") for s in workflow["jobs"]["deploy"]["steps"])
    # In step with .ci/run: both run `make test`; .ci/run installs Debian's chromium, the
    # workflow uses the runner's own browser (never the snap stub `chromium-browser`), named by
    # ASBBOOK_CHROMIUM for the browser test and the PDF.
    ci = (root / ".ci" / "run").read_text()
    assert "make test" in ci and "chromium" in ci
    assert not any("chromium-browser" in r for r in runs)
    browser = workflow["jobs"]["build"]["env"]["ASBBOOK_CHROMIUM"]
    assert browser.startswith("/") and any("$ASBBOOK_CHROMIUM" in r for r in runs[:test_at])
    pdf_at = next(i for i, r in enumerate(runs) if "make pdf" in r)
    upload_at = next(i for i, s in enumerate(steps) if "upload-pages-artifact" in s.get("uses", ""))
    assert book_at < pdf_at < upload_at


def test_makefile_targets_create_the_venv_once(root):
    makefile = (root / "Makefile").read_text()
    assert re.search(r"^book: \$\(STAMP\)", makefile, re.M)
    assert re.search(r"^test: \$\(STAMP\)", makefile, re.M)
    assert re.search(r"^\$\(STAMP\): pyproject.toml", makefile, re.M)
    assert re.search(r"^pdf: book\b.*\n\t.*-m asbbook\.pdf", makefile, re.M)


def test_lint_is_clean(root):
    import subprocess
    import sys

    paths = [str(root / p) for p in ("asbbook", "tests", "bench", "book") if (root / p).exists()]
    check = subprocess.run(
        [sys.executable, "-m", "ruff", "check", *paths], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *paths], capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_every_chapter_starts_with_the_colab_install_cell(chapters, root):
    from asbbook.appendix import colab_install_cell_source

    expected = colab_install_cell_source(root)
    for chapter in chapters:
        nb = nbformat.read(chapter, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.source == expected, (
            f"{chapter.name}: the first code cell is not the install cell"
        )


def test_colab_install_cell_uses_the_configured_repository(root, tmp_path):
    from asbbook.appendix import colab_install_cell_source

    source = colab_install_cell_source(root)
    url = yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]
    assert f'"git+{url}"' in source and "except ImportError" in source
    compile(source, "install-cell", "exec")  # valid Python, no IPython magic
    config = yaml.safe_load((root / "_config.yml").read_text())
    config["repository"]["url"] = "https://example.org/fork/asbbook"
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    assert "git+https://example.org/fork/asbbook" in colab_install_cell_source(tmp_path)
    config["repository"]["url"] = "<repository URL>"
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="repository.url"):
        colab_install_cell_source(tmp_path)


def bib_entries(root) -> dict[str, str]:
    text = (root / "references.bib").read_text()
    return dict(re.findall(r"@\w+\{([^,]+),(.*?)\n\}", text, re.S))


def test_every_bibliography_entry_has_a_doi_or_arxiv_link(root):
    entries = bib_entries(root)
    assert len(entries) == (root / "references.bib").read_text().count("\n@") + 1
    for key, body in entries.items():
        assert re.search(r"^\s*(doi|eprint|url)\s*=", body, re.M), f"{key}: no doi, eprint or url"
    assert re.search(r"eprint\s*=\s*\{2201\.07934\}", entries["li2022asb"])


def test_exercises_and_numbering_are_configured(root):
    config = yaml.safe_load((root / "_config.yml").read_text())
    assert "sphinx_exercise" in config["sphinx"]["extra_extensions"]
    assert config["sphinx"]["config"]["numfig"] is True
    pins = requirement_pins(pyproject(root)["project"]["dependencies"])
    assert pins["sphinx-exercise"] == "1.2.1"


def test_rerun_appendix_states_the_report_modules_levels(root):
    from asbbook import report

    raw = (root / "book" / "appendix-rerun.md").read_text()
    text = " ".join(raw.split())
    assert f"family-wise level of at most {report.CHAPTER_ALPHA:g}" in text
    assert f"the sum is below **{report.BOOK_FALSE_FAILURE_BUDGET:g}**" in text
    assert "<!-- FALSE-FAILURE-TABLE -->" in raw


def test_recorded_calibration_agrees_with_the_declared_bounds(root):
    """The committed calibration summary (bench/calibrate.py): no chapter's chance failures
    reject its declared bound (one-sided exact test at 5%), no run hit a bug, and every chapter
    has the issue's 200 seeds at smoke size."""
    import json

    from scipy import stats

    path = root / "bench" / "calibration" / "summary.json"
    if not path.is_file():
        pytest.skip("no calibration run recorded")
    rows = json.loads(path.read_text())
    smoke = {r["chapter"]: r for r in rows if r["size"] == "smoke"}
    assert {"01", "02", "03", "04", "05", "06", "book"} <= set(smoke)
    for r in rows:
        assert r["errors"] == 0, r
        p = stats.binom.sf(r["chance_failures"] - 1, r["seeds"], r["declared_bound"])
        assert p >= 0.05, r
    assert all(smoke[c]["seeds"] >= 200 for c in ("01", "02", "03", "04", "05", "06"))
