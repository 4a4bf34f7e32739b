"""The library packages stay libraries: none imports the terminal or command-line layers.

``ledger/``, ``rollout/``, ``checks/``, ``infra/`` and ``migrations/`` return data and report
through callbacks; drawing (Rich) and tasks (Invoke) belong to ``cli/`` (and the demo). Nor do
they import ``cli/``, ``demo/`` or ``tasks.py``: the engine must not depend on what drives it.
Read from the source (every import statement, including those inside functions), so an
import that only runs on some code path is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("ledger", "rollout", "checks", "infra", "migrations")
FORBIDDEN = {
    "rich": "drawing belongs to cli/ (a callback or a returned string instead)",
    "invoke": "tasks belong to cli/",
    "cli": "the command line drives the library, not the other way round",
    "demo": "the demo drives the engine, not the other way round",
    "tasks": "the command line drives the library, not the other way round",
}


def imported_modules(source: str) -> set[str]:
    """Top-level names of every absolute import in ``source``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _library_files() -> list[Path]:
    return sorted(p for package in LIBRARIES for p in (ROOT / package).rglob("*.py"))


def test_the_walk_sees_every_library_package_and_catches_a_hidden_import() -> None:
    files = _library_files()
    assert {p.relative_to(ROOT).parts[0] for p in files} == set(LIBRARIES)
    assert len(files) > 60
    nested = "def f():\n    from rich.table import Table\n    import invoke.tasks\n"
    assert imported_modules(nested) == {"rich", "invoke"}


@pytest.mark.parametrize("path", _library_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_library_module_imports_no_terminal_or_cli_layer(path: Path) -> None:
    found = imported_modules(path.read_text(encoding="utf-8")) & FORBIDDEN.keys()
    assert not found, "; ".join(f"{path.relative_to(ROOT)} imports {name}: {FORBIDDEN[name]}"
                                for name in sorted(found))


# The packages that must reach the one error root without the application's ledger.
NEUTRAL_ERRORS = ("infra", "migrations", "checks", "rollout", "cli", "demo")


def _full_imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", NEUTRAL_ERRORS)
def test_errors_come_from_the_neutral_floor(package: str) -> None:
    """``phasegate.errors`` is the root (and ``phasegate.text`` the masking); importing them
    through ``ledger.errors`` would load the write path's error module into infra/, the
    migrations and the engine."""
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / package).rglob("*.py"))
                 if "ledger.errors" in _full_imports(p.read_text(encoding="utf-8"))]
    assert offenders == []
