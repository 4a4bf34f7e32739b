"""``invoke dlq.*`` end to end (subprocess) against a test database."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.classify import RetryPolicies, RetryPolicy
from tests.integration.ledger.conftest import q, seed_history

PROJECT = Path(__file__).resolve().parents[3]


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("PHASEGATE_DB_URL", None)
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(PROJECT), *args],
                          capture_output=True, text=True, timeout=120, env=full_env)


@pytest.fixture
def dead(make_app):
    app = make_app("dual", policies=RetryPolicies(default=RetryPolicy(max_attempts=1)))

    def boom(ctx) -> None:
        raise ValueError("bad address")

    app.runner.register("email", boom)
    app.enqueue_job("email", {"to": "x"})
    app.run_one()
    return app, q(app.test_db_url, "SELECT id FROM background_dead_letter")[0][0]


def test_list_show_requeue_discard(dead) -> None:
    app, dl_id = dead
    url = app.test_db_url
    out = invoke("dlq.list", "--db-url", url, "--format", "json")
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [d["id"] for d in listed["dead_letters"]] == [dl_id]
    assert listed["next_cursor"] is None and listed["next_page"] is None
    table = invoke("dlq.list", "--db-url", url, "--error-class", "terminal")
    assert table.returncode == 0 and "bad address" in table.stdout
    shown = invoke("dlq.show", "--id", str(dl_id), "--db-url", url, "--format", "json",
                   env={"PHASEGATE_ACTOR": "erin"})
    assert json.loads(shown.stdout)["attempts"][0]["status"] == "FAILED"
    req = invoke("dlq.requeue", "--id", str(dl_id), "--operator", "alice", "--db-url", url)
    assert req.returncode == 0 and "requeued as job" in req.stdout
    again = invoke("dlq.requeue", "--id", str(dl_id), "--operator", "bob", "--db-url", url)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"phasegate: dead letter {dl_id} is REQUEUED, not OPEN: nothing done"]
    assert q(url, "SELECT operator, action, outcome FROM background_operator_audit "
             "ORDER BY id") == [("erin", "inspect", "ok"), ("alice", "requeue", "ok"),
                                ("bob", "requeue", "refused")]


LOGIN_CAROL = {"USER": "carol", "LOGNAME": "carol", "PHASEGATE_ACTOR": ""}


def test_discard_uses_the_login_name_as_operator_and_needs_a_reason(dead) -> None:
    app, dl_id = dead
    url = app.test_db_url
    no_reason = invoke("dlq.discard", "--id", str(dl_id), "--db-url", url, env=LOGIN_CAROL)
    assert no_reason.returncode == 1
    assert len(no_reason.stderr.strip().splitlines()) == 1 and "reason" in no_reason.stderr
    ok = invoke("dlq.discard", "--id", str(dl_id), "--reason", "spam", "--db-url", url,
                env=LOGIN_CAROL)
    assert ok.returncode == 0, ok.stderr
    assert q(url, "SELECT status, resolved_by FROM background_dead_letter") == [
        ("DISCARDED", "carol")]


def test_the_actor_variable_names_the_operator_before_the_login(dead) -> None:
    """One rule for every command (phasegate.actor): option, $PHASEGATE_ACTOR, login name."""
    app, dl_id = dead
    url = app.test_db_url
    shown = invoke("dlq.show", "--id", str(dl_id), "--db-url", url,
                   env={**LOGIN_CAROL, "PHASEGATE_ACTOR": "oncall-dave"})
    assert shown.returncode == 0, shown.stderr
    assert q(url, "SELECT operator, action FROM background_operator_audit") == [
        ("oncall-dave", "inspect")]


@pytest.mark.parametrize("args, expect", [
    (["dlq.list", "--older-than", "soon"], "--older-than"),
    (["dlq.list", "--limit", "abc"], "--limit must be a whole number from 1 to 1000"),
    (["dlq.list", "--limit", "0"], "--limit must be a whole number from 1 to 1000"),
    (["dlq.list", "--limit", "99999999999999999999"], "--limit must be"),
    (["dlq.list", "--limit", "1001"], "--limit must be"),
    (["dlq.list", "--cursor", "yesterday"], "--cursor must be the token"),
    (["dlq.show", "--id", "abc"], "--id"),
    (["dlq.show", "--id", "424242"], "does not exist"),
])
def test_bad_input_is_one_line_and_non_zero(dead, args, expect) -> None:
    app, _ = dead
    out = invoke(*args, "--db-url", app.test_db_url)
    assert out.returncode == (1 if "does not exist" in expect else 2)  # refused / bad input
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0] and "Traceback" not in out.stderr


def test_unreachable_database_is_one_line_without_the_password() -> None:
    out = invoke("dlq.list", "--db-url",
                 "postgresql+psycopg://admin:s3cret-pw@127.0.0.1:1/nope")
    assert out.returncode == 2
    assert "s3cret-pw" not in out.stderr + out.stdout
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_not_expanded_database_says_so(make_db) -> None:
    out = invoke("dlq.list", "--db-url", make_db("kit"))
    assert out.returncode == 1 and "not been expanded" in out.stderr


def test_env_is_resolved_by_the_rollout_environments() -> None:
    out = invoke("dlq.list", "--env", "nosuchenv")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown environment 'nosuchenv'" in lines[0]


def _nothing_done(url: str) -> None:
    assert q(url, "SELECT status::text, resolution_reason FROM background_dead_letter") == [
        ("OPEN", None)]
    assert q(url, "SELECT count(*) FROM background_operator_audit") == [(0,)]
    assert q(url, "SELECT count(*) FROM background_job") == [(1,)]


@pytest.mark.parametrize("task", ["dlq.discard", "dlq.requeue"])
def test_a_reason_over_4096_characters_is_refused_in_one_line(dead, task) -> None:
    app, dl_id = dead
    out = invoke(task, "--id", str(dl_id), "--operator", "alice", "--reason", "r" * 5000,
                 "--db-url", app.test_db_url)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "phasegate: --reason is 5000 characters, over the 4096-character limit: nothing done"]
    _nothing_done(app.test_db_url)


@pytest.mark.parametrize("task", ["dlq.discard", "dlq.requeue", "dlq.show"])
def test_an_operator_name_over_64_characters_is_refused_not_cut(dead, task) -> None:
    app, dl_id = dead
    reason = [] if task == "dlq.show" else ["--reason", "spam"]
    out = invoke(task, "--id", str(dl_id), "--operator", "o" * 65, *reason,
                 "--db-url", app.test_db_url)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "phasegate: --operator is 65 characters, over the 64-character limit: nothing done"]
    _nothing_done(app.test_db_url)


def test_list_pages_with_a_cursor_and_prints_the_next_command(dead) -> None:
    app, first = dead
    for _ in range(2):
        app.enqueue_job("email", {"to": "y"})
    app.runner.run_until_empty()
    url = app.test_db_url
    newest_first = [r[0] for r in q(url, "SELECT id FROM background_dead_letter "
                                    "ORDER BY dead_at DESC, id DESC")]
    assert len(newest_first) == 3

    table = invoke("dlq.list", "--limit", "2", "--db-url", url)
    assert table.returncode == 0, table.stderr
    (line,) = [ln for ln in table.stdout.splitlines() if ln.startswith("next page: ")]
    command = shlex.split(line.removeprefix("next page: "))
    assert command[:4] == ["invoke", "dlq.list", "--limit", "2"] and command[-2] == "--cursor"
    rest = invoke(*command[1:])  # exactly the printed command (this URL has no password)
    assert rest.returncode == 0, rest.stderr
    assert "next page" not in rest.stdout and f"│ {newest_first[2]} " in rest.stdout

    page = json.loads(invoke("dlq.list", "--limit", "2", "--format", "json",
                             "--db-url", url).stdout)
    assert [d["id"] for d in page["dead_letters"]] == newest_first[:2]
    assert page["next_page"].endswith(f"--cursor {page['next_cursor']}")
    last = json.loads(invoke("dlq.list", "--limit", "2", "--format", "json", "--db-url", url,
                             "--cursor", page["next_cursor"]).stdout)
    assert [d["id"] for d in last["dead_letters"]] == newest_first[2:]
    assert last["next_cursor"] is None and last["next_page"] is None


def test_show_and_list_of_huge_stored_texts_are_bounded_tables_and_whole_json(dead) -> None:
    """Texts stored before the bounds (or by SQL): a 64 KB reason and a 1 MB error. The
    tables cut them and say so; JSON has them whole. (Sizes, not times: see the unit test.)"""
    app, dl_id = dead
    url = app.test_db_url
    reason, error = "r" * 64 * 1024, "e" * 1024 * 1024
    seed_history(url, "UPDATE background_dead_letter SET status = 'DISCARDED', resolved_at = "
                 "now(), resolved_by = 'old', resolution_reason = %s, last_error = %s",
                 (reason, error))
    seed_history(url, "INSERT INTO background_operator_audit (operator, action, target_kind, "
                 "target_id, outcome, reason) VALUES ('old', 'discard', 'dead_letter', %s, "
                 "'ok', %s)", (str(dl_id), reason))
    shown = invoke("dlq.show", "--id", str(dl_id), "--db-url", url, "--operator", "erin")
    assert shown.returncode == 0, shown.stderr
    assert len(shown.stdout) < 20_000 and f"({len(reason) - 1000} more, see --format json)" \
        in shown.stdout
    whole = json.loads(invoke("dlq.show", "--id", str(dl_id), "--db-url", url, "--operator",
                              "erin", "--format", "json").stdout)
    assert whole["letter"]["resolution_reason"] == reason and whole["letter"]["last_error"] == error
    assert whole["audit"][0]["reason"] == reason
    listed = invoke("dlq.list", "--status", "all", "--db-url", url)
    assert listed.returncode == 0 and len(listed.stdout) < 20_000, listed.stderr
    page = json.loads(invoke("dlq.list", "--status", "all", "--db-url", url, "--format",
                             "json").stdout)
    assert page["dead_letters"][0]["last_error"] == error
