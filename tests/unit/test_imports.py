"""Every module of every shipped package imports with only the README's install.

A module that imports a package missing from the extras fails here, by name, instead of
breaking collection of whichever test happens to import it first (as pulumi_docker and
matplotlib once did on a fresh machine).
"""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Modules that run something when imported, by design: the Pulumi program (it declares
# resources, so it needs a Pulumi engine or mocks) and Alembic's env.py (it needs Alembic's
# migration context). Both are imported under their own harness by other tests.
RUN_ON_IMPORT = {"infra.__main__", "migrations.env"}


def _shipped_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({p.rstrip("*").rstrip(".") for p in patterns})


def _modules() -> list[str]:
    names: list[str] = []
    for package in _shipped_packages():
        path = ROOT / package
        if not (path / "__init__.py").exists():
            continue
        names.append(package)
        for info in pkgutil.walk_packages([str(path)], prefix=f"{package}."):
            names.append(info.name)
    # Revision modules live in a folder Alembic loads by path, not as a package.
    for revision in sorted((ROOT / "migrations" / "versions").glob("p*.py")):
        names.append(f"migrations.versions.{revision.stem}")
    return [name for name in names if name not in RUN_ON_IMPORT]


def test_walk_finds_every_package() -> None:
    modules = _modules()
    for package in ("ledger", "rollout", "checks", "infra", "migrations"):
        assert package in modules
    assert len(modules) > 60


@pytest.mark.parametrize("module", _modules())
def test_module_imports(module: str) -> None:
    importlib.import_module(module)
