"""Shared fixtures: the book executed at smoke size and built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asbbook import appendix, notebooks

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def executed_book(tmp_path_factory) -> dict:
    """Every chapter of ``_toc.yml`` executed by papermill with its smoke parameters, in fresh
    kernels, into a staged copy of the book (as ``make book`` does at full size)."""
    out = tmp_path_factory.mktemp("book")
    # Sweeps start from an empty cache, so the smoke runs exercise the computation itself.
    os.environ["ASBBOOK_CACHE_DIR"] = str(out / "cache")
    stage = out / "src"
    # Two chapters at a time (CI has two cores); each kernel is independent of the others.
    times = notebooks.execute_book(ROOT, stage, smoke=True, force=True, progress=False, jobs=2)
    appendix.write_generated_pages(ROOT, stage)
    return {"out": out, "stage": stage, "times": times}


@pytest.fixture(scope="session")
def built_html(executed_book) -> Path:
    """The HTML built from the executed copies with ``-W -n --keep-going``."""
    return notebooks.build_html(executed_book["stage"], executed_book["out"], strict=True)


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.path.exists(candidate):
            return candidate
    return None
