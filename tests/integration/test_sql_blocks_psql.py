"""Every named SQL block runs in ``psql`` once its parameters are written in: pasted by a
person, a block means what it means to the kit (no driver-only escape, no bind syntax that
psql reads as one of its variables)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger import sqlfiles
from tests.conftest import to_dsn
from tests.unit.test_sql_convention import _rel, _sql_files

PSQL = shutil.which("psql")
# Statements EXPLAIN cannot plan; the kit runs them, a test may not (a second CI database).
NOT_EXPLAINABLE = {"create_ci_database", "create_demo_database", "drop_demo_database", "analyze_jobs"}


def _script(path: Path) -> str:
    """EXPLAIN of every block of a file, each announced, its parameters all NULL."""
    lines = []
    for block in sqlfiles.load(str(path)).values():
        if block.name in NOT_EXPLAINABLE:
            continue
        params = {m["name"]: None for m in sqlfiles.PLACEHOLDER.finditer(block.sql)}
        lines += [f"\\echo block {block.name}", "EXPLAIN " + sqlfiles.render(block.sql, params)]
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(PSQL is None, reason="no psql on PATH")
@pytest.mark.parametrize("path", _sql_files(), ids=_rel)
def test_every_block_plans_in_psql(path: Path, make_db: Callable[[str], str]) -> None:
    dsn = to_dsn(make_db("head"))
    done = subprocess.run([str(PSQL), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"],
                          input=_script(path), text=True, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout[-400:] + done.stderr
