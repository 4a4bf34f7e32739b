"""Hostile and malformed input: job payloads, error texts that are not UTF-8 or carry control
characters, and SQL- or shell-shaped values in every operator input. Each must end in a
clear refusal or a verbatim, harmless record: no traceback, no partial write, no injection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.types.json import Jsonb

from ledger.classify import RetryPolicies, RetryPolicy
from ledger.runner import MAX_PAYLOAD_BYTES
from tests.integration.ledger.conftest import make_app, q  # noqa: F401 (fixture)

PROJECT = Path(__file__).resolve().parents[2]
ONE_SHOT = RetryPolicies(default=RetryPolicy(max_attempts=3))
SQL_SHAPED = "x'); DROP TABLE background_dead_letter; --"
SHELL_SHAPED = "$(touch {sentinel}); `touch {sentinel}`; touch {sentinel}"
# A job's error as a hostile or broken client produces it: a NUL (PostgreSQL text cannot
# hold it), undecodable bytes as lone surrogates (psycopg cannot encode them), a terminal
# escape, Rich markup and a line break.
NASTY_ERROR = "bad \x00 nul \udcff\udcfe \x1b[2J\x1b[31mred [/bold] [link=x]y[/link]\nline two"


def invoke(*args: str, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "250", **(env or {})}
    full_env.pop("PHASEGATE_DB_URL", None)
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(PROJECT), *args],
                          capture_output=True, text=True, timeout=120, env=full_env,
                          errors="surrogateescape", cwd=cwd)


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    text = out.stdout + out.stderr
    assert out.returncode == 2, text  # bad input: "could not run"
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_malformed_and_oversized_payloads_are_dead_lettered_and_the_runner_carries_on(
        make_app) -> None:  # noqa: F811
    app = make_app("dual", policies=ONE_SHOT)
    seen: list[str] = []
    app.runner.register("email", lambda ctx: seen.append(ctx.payload["to"]))
    bad = ['"a bare string"', "[1, 2, 3]", "null", "42"]
    for payload in bad:
        q(app.test_db_url, "INSERT INTO background_job (type, payload) VALUES ('email', %s::jsonb)",
          (payload,))
    q(app.test_db_url, "INSERT INTO background_job (type, payload) VALUES ('email', %s)",
      (Jsonb({"to": "x", "blob": "y" * (MAX_PAYLOAD_BYTES + 1)}),))
    q(app.test_db_url, "INSERT INTO background_job (type, payload) VALUES ('email', %s)",
      (Jsonb({"to": "good@example.com"}),))

    outcomes = app.runner.run_until_empty()

    assert [o.outcome for o in outcomes] == ["dead"] * 5 + ["succeeded"]
    assert all(o.error_class == "TERMINAL" and o.error.startswith("MalformedPayload: payload")
               for o in outcomes[:5]), outcomes
    assert seen == ["good@example.com"]  # no handler ever saw a malformed payload
    assert dict(q(app.test_db_url, "SELECT status::text, count(*) FROM background_job GROUP BY 1")) == {
        "FAILED": 5, "SUCCEEDED": 1}
    assert q(app.test_db_url, "SELECT count(*) FROM background_dead_letter WHERE status = 'OPEN' "
             "AND error_class = 'TERMINAL'") == [(5,)]
    # The payloads are kept as they were, for the operator to inspect.
    kept = q(app.test_db_url, "SELECT jsonb_typeof(payload) FROM background_dead_letter ORDER BY job_id")
    assert [k[0] for k in kept] == ["string", "array", "null", "number", "object"]


def test_error_text_with_nul_bad_bytes_and_escapes_is_recorded_and_shown_inertly(
        make_app) -> None:  # noqa: F811
    app = make_app("dual", policies=RetryPolicies(default=RetryPolicy(max_attempts=1)))

    def hostile(ctx) -> None:
        raise ValueError(NASTY_ERROR)

    app.runner.register("email", hostile)
    app.runner.register("ok", lambda ctx: None)
    app.enqueue_job("email", {"to": "x"})
    app.enqueue_job("ok", {})
    outcomes = app.runner.run_until_empty()
    assert [o.outcome for o in outcomes] == ["dead", "succeeded"]  # the runner carried on
    stored = q(app.test_db_url, "SELECT last_error FROM background_dead_letter")[0][0]
    assert stored == q(app.test_db_url, "SELECT terminal_error FROM background_function_run "
                       "WHERE status = 'FAILED'")[0][0]
    assert "\\x00 nul \\udcff\\udcfe \\x1b[2J" in stored and "\n" not in stored
    assert app.status.redis_failures == 0
    dl_id = q(app.test_db_url, "SELECT id FROM background_dead_letter")[0][0]

    for args in (("dlq.show", "--id", str(dl_id)), ("dlq.list",)):
        out = invoke(*args, "--db-url", app.test_db_url, "--operator" if args[0] == "dlq.show" else "--limit",
                     "alice" if args[0] == "dlq.show" else "10")
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr and "\x1b" not in out.stdout
        assert "[/bold]" in out.stdout or "[/b" in out.stdout  # markup printed, not obeyed


HOSTILE_ENV_NAMES = ["$(id); rm -rf /", "`id`", "prod' OR '1'='1", "../../etc/passwd", "UPPER",
                     "a" * 40, "tab\there", "nul-\udcff", "", "staging\n", "\nstaging"]


@pytest.mark.parametrize("name", HOSTILE_ENV_NAMES)
def test_hostile_environment_names_are_refused(name: str, tmp_path) -> None:
    from rollout.environments import open_target, resolve_target
    from rollout.errors import ConfigError

    for opener in (resolve_target, open_target):
        with pytest.raises(ConfigError, match="invalid environment name") as err:
            with opener(name, tmp_path) if opener is open_target else _nullcontext(opener(name, tmp_path)):
                pass
        assert str(err.value).isprintable()


def _nullcontext(value):  # type: ignore[no-untyped-def]
    import contextlib

    return contextlib.nullcontext(value)


@pytest.mark.parametrize("task", [("rollout", "--status"), ("dlq.list",), ("plan",)])
def test_hostile_environment_name_is_one_line_from_every_task(task, tmp_path) -> None:
    out = invoke(*task, "--env", "../etc\tx\udcff; $(id)",
                 env={"PHASEGATE_CONFIG": str(tmp_path / "none.toml")})
    line = one_line_error(out)
    assert "invalid environment name" in line and "\t" not in line and "\udcff" not in line


@pytest.mark.slow  # seven CLI processes
def test_sql_and_shell_shaped_operator_input_is_stored_verbatim_and_never_run(
        make_app, tmp_path) -> None:  # noqa: F811
    app = make_app("dual", policies=RetryPolicies(default=RetryPolicy(max_attempts=1)))
    sentinel = tmp_path / "pwned"
    shell = SHELL_SHAPED.format(sentinel=sentinel)

    def boom(ctx) -> None:
        raise ValueError("nope")

    app.runner.register("email", boom)
    for _ in range(2):
        app.enqueue_job("email", {"to": shell})
    app.runner.run_until_empty()
    first, second = (r[0] for r in q(app.test_db_url, "SELECT id FROM background_dead_letter ORDER BY id"))
    url = app.test_db_url

    # Dispatch source: the ledger's key and row carry it verbatim.
    assert app.dispatch(SQL_SHAPED).sent
    assert q(url, "SELECT count(*) FROM background_dispatch_window WHERE dispatch_key LIKE %s",
             (SQL_SHAPED + "%",)) == [(1,)]
    # Filters: an injected predicate matches nothing instead of everything.
    listed = invoke("dlq.list", "--db-url", url, "--function", "x' OR '1'='1", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["dead_letters"] == []
    for flag, value in (("--status", "OPEN' OR 1=1 --"), ("--older-than", "1h; DROP TABLE x"),
                        ("--error-class", SQL_SHAPED)):
        assert "must" in one_line_error(invoke("dlq.list", "--db-url", url, flag, value))
    # Reasons and operator names: stored as text, audited, nothing run. A name is at most
    # 64 characters (longer is refused, not cut), so the shell-shaped name touches a short
    # relative sentinel in the directory the commands run in.
    short_shell = "$(touch pwned); `touch pwned`"
    assert invoke("dlq.discard", "--id", str(first), "--reason", SQL_SHAPED, "--operator",
                  short_shell, "--db-url", url, cwd=tmp_path).returncode == 0
    assert invoke("dlq.requeue", "--id", str(second), "--reason", shell, "--operator", SQL_SHAPED[:64],
                  "--db-url", url, cwd=tmp_path).returncode == 0
    assert q(url, "SELECT operator, action, reason FROM background_operator_audit ORDER BY id") == [
        (short_shell, "discard", SQL_SHAPED), (SQL_SHAPED[:64], "requeue", shell)]
    assert q(url, "SELECT count(*) FROM background_dead_letter") == [(2,)]
    assert not sentinel.exists() and not (tmp_path / "pwned").exists()


def test_operator_text_that_is_not_utf8_is_audited_not_a_traceback(make_app) -> None:  # noqa: F811
    app = make_app("dual", policies=RetryPolicies(default=RetryPolicy(max_attempts=1)))
    app.runner.register("email", lambda ctx: (_ for _ in ()).throw(ValueError("x")))
    app.enqueue_job("email", {})
    app.runner.run_until_empty()
    dl_id = q(app.test_db_url, "SELECT id FROM background_dead_letter")[0][0]
    # argv bytes that are not UTF-8 reach Python as lone surrogates.
    out = invoke("dlq.discard", "--id", str(dl_id), "--reason", "bad \udcff byte",
                 "--operator", "ops\udcfe", "--db-url", app.test_db_url)
    assert out.returncode == 0, out.stderr
    assert q(app.test_db_url, "SELECT operator, reason, outcome FROM background_operator_audit") == [
        ("ops\\udcfe", "bad \\udcff byte", "ok")]


def test_sql_shaped_filters_and_reasons_through_the_library(make_app) -> None:  # noqa: F811
    """The default-run twin of the CLI test above: same values, no subprocesses."""
    app = make_app("dual", policies=RetryPolicies(default=RetryPolicy(max_attempts=1)))
    app.runner.register("email", lambda ctx: (_ for _ in ()).throw(ValueError("x")))
    app.enqueue_job("email", {})
    app.runner.run_until_empty()
    dl_id = q(app.test_db_url, "SELECT id FROM background_dead_letter")[0][0]
    assert app.dead_letters.list(function="x' OR '1'='1") == []
    assert app.dead_letters.list(function=SQL_SHAPED, status=None) == []
    app.dead_letters.discard(dl_id, SQL_SHAPED, SQL_SHAPED)
    assert app.dispatch(SQL_SHAPED).sent
    assert q(app.test_db_url, "SELECT resolved_by, resolution_reason FROM background_dead_letter") == [
        (SQL_SHAPED, SQL_SHAPED)]
    assert q(app.test_db_url, "SELECT count(*) FROM background_dispatch_window "
             "WHERE dispatch_key LIKE %s", (SQL_SHAPED + "%",)) == [(1,)]


def test_sql_shaped_actor_is_recorded_verbatim_and_the_lock_names_it_safely(make_db, redis_url, tmp_path) -> None:
    from rollout.engine import Rollout
    from rollout.errors import LockHeld
    from rollout.state import TargetLock
    from tests.integration.rollout.harness import make_target

    target = make_target(make_db("baseline"), redis_url, jobs=50)
    actor = SQL_SHAPED + " \x1b[2J"
    ro = Rollout(target, actor, plans_dir=tmp_path)
    try:
        ro.ensure_kit()
        with TargetLock(target.dsn, target.name, actor):
            with pytest.raises(LockHeld) as err:
                ro.apply("expand")
        assert "\x1b" not in str(err.value) and "DROP TABLE" in str(err.value)
    finally:
        ro.close()
    assert q(target.db_url, "SELECT actor, event FROM phasegate_rollout_event WHERE event = 'lock_refused'") == [
        (actor, "lock_refused")]
    assert q(target.db_url, "SELECT to_regclass('background_dead_letter') IS NULL") == [(True,)]
