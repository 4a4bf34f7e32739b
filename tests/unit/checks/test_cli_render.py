"""Renderers, the registry's contract, and the CLI's exit codes and error lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

import checks
from checks import CheckContext, CheckResult, MissingSetting, Verdict, passed, render, run_checks
from checks.base import MAX_EVIDENCE, REGISTRY, CheckSpec, Outcome, bounded
from checks.sqlfile import parse
from cli.check_render import results_table
from rollout.gates import context

PROJECT = Path(__file__).resolve().parents[3]


def _result(cid: str, verdict: Verdict, evidence: tuple[dict, ...] = ()) -> CheckResult:
    return CheckResult(cid, f"title {cid}", verdict, f"summary {cid}", evidence, 12.5, "critical")


RESULTS = [_result("a", Verdict.PASS), _result("b", Verdict.WARN),
           _result("c", Verdict.FAIL, ({"row": 1},))]


def test_passed_blocks_only_on_fail() -> None:
    assert passed(RESULTS[:2])
    assert not passed(RESULTS)
    assert passed([])


def test_render_json_and_table() -> None:
    doc = json.loads(render(RESULTS, "json"))
    assert doc["passed"] is False
    assert [r["verdict"] for r in doc["results"]] == ["pass", "warn", "fail"]
    assert doc["results"][2]["evidence"] == [{"row": 1}]
    table = results_table(RESULTS)  # the CLI's: the library renders no tables
    assert "1 passed, 1 warned, 1 failed" in table and "FAIL" in table


def test_render_junit_is_valid_xml_with_failures() -> None:
    root = ET.fromstring(render(RESULTS, "junit"))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    failed = [tc.get("name") for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert failed == ["c"]


def test_render_rejects_unknown_format() -> None:
    with pytest.raises(checks.base.PhasegateError, match="unknown format"):
        render(RESULTS, "xml")
    with pytest.raises(checks.base.PhasegateError, match="unknown format"):
        render(RESULTS, "table")


def test_bounded_evidence_and_json_safety() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    rows = [{"at": datetime(2026, 1, 1, tzinfo=UTC), "n": Decimal("1.5")}] * 50
    out = bounded(rows)
    assert len(out) == MAX_EVIDENCE
    assert out[0] == {"at": "2026-01-01T00:00:00+00:00", "n": 1.5}
    json.dumps(out)


def test_a_check_that_raises_is_a_fail_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(probe):  # noqa: ANN001, ANN202
        raise RuntimeError("relation does not exist")

    def many(probe):  # noqa: ANN001, ANN202
        return Outcome(Verdict.FAIL, "many", tuple({"i": i} for i in range(100)))

    checks.all_checks()
    monkeypatch.setitem(REGISTRY, "boom", CheckSpec("boom", "t", (), "critical", boom))
    monkeypatch.setitem(REGISTRY, "many", CheckSpec("many", "t", (), "critical", many))
    # No server here: the connection fails, and every check still returns FAIL, in order.
    ctx = context("postgresql+psycopg://u:topsecret@127.0.0.1:1/db", None)
    results = run_checks(["boom", "many"], ctx)
    assert [r.verdict for r in results] == [Verdict.FAIL, Verdict.FAIL]
    assert "cannot connect" in results[0].summary and "topsecret" not in results[0].summary


def test_unknown_check_is_an_error() -> None:
    with pytest.raises(checks.base.UnknownCheck):
        run_checks(["nope"], CheckContext(db_url="postgresql+psycopg://x@127.0.0.1:1/db"))


def test_a_missing_setting_is_an_error_not_a_silent_default() -> None:
    # Checks hold no defaults: without Settings' values the run refuses, naming what is missing.
    with pytest.raises(MissingSetting, match="triage_budget_ms, triage_min_rows"):
        run_checks(["triage_budgets"], CheckContext(db_url="postgresql+psycopg://x@127.0.0.1:1/db"))


def test_every_check_names_its_queries() -> None:
    specs = checks.all_checks().values()
    assert all(s.sql_file or s.check_id == "migrations_lint" for s in specs)


def test_sql_blocks_have_names_and_descriptions() -> None:
    from checks.sqlfile import SQL_DIR, load

    for path in SQL_DIR.glob("*.sql"):
        queries = load(path.stem)
        assert queries and all(q.description and q.sql for q in queries.values())
    with pytest.raises(checks.base.PhasegateError, match="no description"):
        parse("-- name: x\nSELECT 1")


def _invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=PROJECT, text=True,
                          capture_output=True, timeout=120, env={**os.environ, **(env or {})})


def test_cli_lint_passes_on_the_shipped_revisions_and_writes_junit(tmp_path: Path) -> None:
    out = tmp_path / "lint.xml"
    done = _invoke("lint", "--format", "junit", "--output", str(out))
    assert done.returncode == 0, done.stderr
    root = ET.fromstring(out.read_text())
    assert root.find("testsuite").get("failures") == "0"  # type: ignore[union-attr]


def test_cli_lint_fails_with_exit_1_on_an_unsafe_revision(tmp_path: Path) -> None:
    rev = tmp_path / "bad.py"
    rev.write_text('from alembic import op\nphase = "expand"\n\ndef upgrade():\n'
                   '    op.create_index("ix", "background_job", ["type"])\n')
    done = _invoke("lint", "--paths", str(rev), "--format", "json")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert {f["rule"] for f in doc["findings"]} == {"PG001", "PG011"}
    assert done.stderr.strip() == "phasegate: migration lint found 2 error(s)"


@pytest.mark.parametrize("args", [("lint", "--format", "xml"), ("lint", "--paths", "/nope"),
                                  ("check", "--check", "nope", "--env", "ci"),
                                  ("check", "--env", "BAD!"),
                                  ("check", "--phase", "launch", "--env", "ci"),
                                  ("check", "--param", "novalue", "--env", "ci")])
def test_cli_bad_input_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    done = _invoke(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("phasegate: ")
    assert "Traceback" not in done.stderr + done.stdout


def test_cli_check_unreachable_database_fails_without_leaking_the_password() -> None:
    env = {"PHASEGATE_STAGE_DB_URL": "postgresql://app:s3cretpw@127.0.0.1:1/app",
           "PHASEGATE_STAGE_REDIS_URL": "redis://127.0.0.1:1/0"}
    done = _invoke("check", "--env", "stage", "--check", "schema_objects", "--format", "json", env=env)
    assert done.returncode == 2  # could not run: no verdict on an unreachable database
    assert "s3cretpw" not in done.stdout + done.stderr
    # One line saying why, and no report: an unreachable database gives no verdict at all.
    assert done.stdout == "" and done.stderr.startswith("phasegate: cannot reach the database of stage")
