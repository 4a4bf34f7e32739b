"""Never crash, never skip: any input gives findings, or one line and "could not lint"."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checks.lint import CouldNotLint, lint_paths

PROJECT = Path(__file__).resolve().parents[3]


def rules(path: Path) -> list[tuple[str, int]]:
    return [(f.rule_id, f.line) for f in lint_paths([path]) if f.rule_id != "PG011"]


def test_a_bom_is_dropped_and_the_file_linted(tmp_path: Path) -> None:
    path = tmp_path / "m.sql"
    path.write_bytes(b"\xef\xbb\xbfCREATE INDEX ix ON t (a);\nALTER TABLE t DROP COLUMN c;\n")
    assert rules(path) == [("PG001", 1), ("PG010", 2)]


def test_a_psql_meta_command_does_not_hide_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "m.sql"
    path.write_text("\\set ON_ERROR_STOP on\nCREATE INDEX ix ON t (a);\nALTER TABLE t DROP COLUMN c;\n")
    assert rules(path) == [("PG001", 2), ("PG010", 3)]


def test_an_unparseable_statement_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "m.sql"
    path.write_text("CREATE INDEX ix ON t (a);\n\nALTER TABL t ADD c int;\nALTER TABLE t DROP COLUMN c;\n")
    found = lint_paths([path])
    assert [(f.rule_id, f.line) for f in found if f.rule_id != "PG011"] == \
        [("PG001", 1), ("PG019", 3), ("PG010", 4)]
    assert next(f for f in found if f.rule_id == "PG019").severity == "error"


def test_five_hundred_nested_calls_in_a_default(tmp_path: Path) -> None:
    path = tmp_path / "m.sql"
    path.write_text("ALTER TABLE t ADD COLUMN c int DEFAULT "
                    + "abs(" * 500 + "random()::int" + ")" * 500 + ";\n")
    assert ("PG007", 1) in rules(path)


def test_a_revision_nested_too_deep_for_python(tmp_path: Path) -> None:
    path = tmp_path / "rev.py"
    path.write_text("from alembic import op\nphase = 'expand'\ndef upgrade():\n"
                    "    op.execute(" + "'x' + " * 3000 + "'y')\n")
    assert {f.rule_id for f in lint_paths([path])} <= {"PG019", "PG018"}


def test_a_python_coding_cookie_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "rev.py"
    path.write_bytes("# -*- coding: latin-1 -*-\nfrom alembic import op\nphase = 'expand'\n"
                     "def upgrade():\n    op.execute('ALTER TABLE caf\u00e9 DROP COLUMN c')\n"
                     .encode("latin-1"))
    assert "PG010" in {f.rule_id for f in lint_paths([path])}


@pytest.mark.parametrize(("data", "match"), [
    (b"SELECT 1;\n\xff\xfeDROP TABLE t;\n", "not UTF-8 text .* on line 2"),
    (b"SELECT 1;\nDROP\x00 TABLE t;\n", "NUL byte on line 2"),
])
def test_undecodable_files_are_refused_with_their_line(tmp_path: Path, data: bytes, match: str) -> None:
    path = tmp_path / "m.sql"
    path.write_bytes(data)
    with pytest.raises(CouldNotLint, match=match):
        lint_paths([path])


def test_special_files_are_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.sql"
    os.mkfifo(fifo)
    with pytest.raises(CouldNotLint, match="FIFO"):
        lint_paths([fifo])
    with pytest.raises(CouldNotLint, match="a device"):
        lint_paths(["/dev/zero"])
    loop = tmp_path / "loop.sql"
    loop.symlink_to(loop)
    with pytest.raises(CouldNotLint, match="symbolic link loop"):
        lint_paths([loop])
    folder = tmp_path / "migrations"
    (folder / "x.sql").mkdir(parents=True)
    with pytest.raises(CouldNotLint, match="x.sql: a directory"):
        lint_paths([folder])
    with pytest.raises(CouldNotLint, match="no migration files"):
        lint_paths([tmp_path / "migrations" / "x.sql"])
    with pytest.raises(CouldNotLint, match="no such file"):
        lint_paths([tmp_path / "missing.sql"])


def _bench_sql(n: int) -> str:
    stmt = ("ALTER TABLE background_job ADD COLUMN IF NOT EXISTS c{0} text DEFAULT 'x';\n"
            "UPDATE background_job SET c{0} = 'y' WHERE id = {0};\n")
    return "SET lock_timeout = '2s';\n" + "".join(stmt.format(i) for i in range(n // 2))


def test_linting_time_is_linear_in_the_input(tmp_path: Path) -> None:
    times = []
    for n in (4000, 16000):
        path = tmp_path / f"m{n}.sql"
        path.write_text(_bench_sql(n))
        start = time.perf_counter()
        lint_paths([path])
        times.append(time.perf_counter() - start)
    # 4x the statements: well under 8x the time (the old linter grew quadratically)
    assert times[1] < 8 * times[0] + 0.5, times


@pytest.mark.parametrize("make", ["fifo", "directory", "loop", "dev", "binary"])
def test_the_cli_says_could_not_lint_in_one_line(tmp_path: Path, make: str) -> None:
    target = tmp_path / "x.sql"
    if make == "fifo":
        os.mkfifo(target)
    elif make == "directory":
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "x.sql").mkdir()
        target = tmp_path / "d"
    elif make == "loop":
        target.symlink_to(target)
    elif make == "dev":
        target = Path("/dev/zero")
    else:
        target.write_bytes(b"\x80\x81 SELECT 1;")
    done = subprocess.run([sys.executable, "-m", "invoke", "lint", "--paths", str(target)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("phasegate: "), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
