"""The package's one-way architecture, enforced by parsing the imports.

Layers, from the bottom up:

* **core**: validation, statistics, the symbolic and numeric network, ensembles, data and the
  phase-diagram cells. Core modules import only other core modules.
* **concept modules**: one per idea of the book (``boltzmann``, ``circuits``, ``symmetry``,
  ``assembly``, ``capacity``, ``dynamics``). They import the core and the infrastructure, never
  each other, so a newcomer can change one chapter's science without touching another's.
* **infrastructure**: running, caching and presenting (sweeps, parameters, reports, notebooks,
  the CLI). It may import the core, and only the CLI reaches the concept modules, by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "asbbook"

CORE = {
    "validation",
    "stats",
    "transitions",
    "symbolic",
    "nets",
    "order",
    "ensemble",
    "data",
    "phase",
}
CONCEPTS = {"boltzmann", "circuits", "symmetry", "assembly", "capacity", "dynamics"}
INFRASTRUCTURE = {
    "sweep",
    "params",
    "report",
    "plotting",
    "notebooks",
    "appendix",
    "sphinxext",
    "pdf",
    "cli",
}
MAX_LINES = 600


def _module_name(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _modules() -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        out.setdefault(_module_name(path), []).append(path)
    return out


def asbbook_imports(path: Path) -> set[str]:
    """The top-level ``asbbook`` modules a file imports (``import asbbook.x``,
    ``from asbbook import x``, ``from asbbook.x import y``), wherever the import stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "asbbook" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "asbbook":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            raise AssertionError(f"{path}: use absolute imports (from asbbook...)")
    return found


def test_every_module_is_assigned_a_layer():
    unknown = set(_modules()) - CORE - CONCEPTS - INFRASTRUCTURE
    assert not unknown, f"assign these modules to a layer in tests/test_architecture.py: {unknown}"


@pytest.mark.parametrize("module", sorted(CONCEPTS))
def test_concept_modules_import_only_the_core_and_infrastructure(module):
    for path in _modules().get(module, []):
        sideways = (asbbook_imports(path) & CONCEPTS) - {module}
        assert not sideways, f"{path.name} imports the concept module(s) {sorted(sideways)}"


@pytest.mark.parametrize("module", sorted(CORE))
def test_core_modules_import_only_the_core(module):
    for path in _modules().get(module, []):
        upward = asbbook_imports(path) - CORE - {"__version__"}
        assert not upward, f"core module {path.name} imports {sorted(upward)}"


@pytest.mark.parametrize("module", sorted(INFRASTRUCTURE - {"cli", "notebooks"}))
def test_infrastructure_does_not_import_concept_modules(module):
    for path in _modules().get(module, []):
        concepts = asbbook_imports(path) & CONCEPTS
        assert not concepts, f"{path.name} imports the concept module(s) {sorted(concepts)}"


def test_no_file_is_above_the_size_limit():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these files (limit {MAX_LINES} lines): {long}"


def test_the_import_parser_sees_sideways_imports(tmp_path):
    """The rule's own check: a sideways import in any of the three spellings is found."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import asbbook.capacity\n"
        "from asbbook import symmetry, nets\n"
        "def f():\n    from asbbook.assembly import x\n"
    )
    assert asbbook_imports(sample) == {"capacity", "symmetry", "nets", "assembly"}


CONCEPT_PACKAGES = sorted(CONCEPTS)


@pytest.mark.parametrize("module", CONCEPT_PACKAGES)
def test_every_derivation_returns_a_frozen_dataclass(module):
    """One convention: ``derive_*`` returns a frozen dataclass built on the core's
    ``symbolic.DerivationResult`` (read from the annotation, so the sympy work is not run here;
    the modules' own tests call the derivations)."""
    import dataclasses
    import importlib
    import inspect
    import typing

    from asbbook.symbolic import DerivationResult

    mod = importlib.import_module(f"asbbook.{module}")
    derivations = {
        name: fn
        for name, fn in vars(mod).items()
        if name.startswith("derive_") and inspect.isfunction(fn)
    }
    assert derivations, f"asbbook.{module} exports no derive_* function"
    for name, fn in derivations.items():
        returned = typing.get_type_hints(fn).get("return")
        assert returned is not None, f"{module}.{name} has no return annotation"
        assert dataclasses.is_dataclass(returned), f"{module}.{name} returns {returned!r}"
        assert returned.__dataclass_params__.frozen, f"{module}.{name}: {returned} is not frozen"
        assert issubclass(returned, DerivationResult), (
            f"{module}.{name}: {returned} has no key access"
        )
