"""``invoke migrate`` under the rules of a phase (issue 13), on real servers: the findings
reproduced and now refused in one line with the schema and its rows unchanged, and the
allowed paths (the lock held, events recorded with the actor, export then drop)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import psycopg.sql
import pytest

from ledger.models import EXPAND_TABLES
from migrations import api
from migrations.points import BASELINE, EXPAND, KIT
from rollout.engine import Rollout
from rollout.errors import LockHeld, MoveRefused
from rollout.state import TargetLock
from tests.conftest import to_dsn
from tests.fault import test_secrets
from tests.integration.rollout.harness import apply_through, make_target

secret_db = test_secrets.secret_db  # the fixture: a role whose password the server checks

PROJECT = Path(__file__).resolve().parents[3]
ENV = "live"  # a production environment of the test's phasegate.toml
HISTORY = ("background_dead_letter", "background_operator_audit", "background_job_effect",
           "background_function_run", "background_dispatch_window", "phasegate_rollout_event")


def _config(tmp_path: Path, production: bool = True) -> Path:
    cfg = tmp_path / "phasegate.toml"
    cfg.write_text(f"[environments.{ENV}]\nproduction = {str(production).lower()}\n"
                   f'db_url_env = "LIVE_DB"\nredis_url_env = "LIVE_REDIS"\n', encoding="utf-8")
    return cfg


def _cli(*args: str, url: str, redis_url: str, cfg: Path, cwd: Path | None = None) -> tuple[int, list[str]]:
    env = {**os.environ, "PHASEGATE_CONFIG": str(cfg), "LIVE_DB": url, "LIVE_REDIS": redis_url,
           "PHASEGATE_ACTOR": "rm@ops"}
    out = subprocess.run([sys.executable, "-m", "invoke", "-r", str(PROJECT), "migrate", "--env", ENV, *args],
                         capture_output=True, text=True, timeout=180, env=env, cwd=cwd or PROJECT)
    text = out.stdout + out.stderr
    assert "Traceback" not in text, text
    return out.returncode, [line for line in text.splitlines() if line.strip()]


def _one(dsn: str, query: str, params: tuple = ()) -> object:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchone()[0]


def _history(url: str) -> dict[str, int]:
    """Rows of every history table that exists (of the event log: the events before the
    test's command, which may append its own), and the schema's revision."""
    dsn = to_dsn(url)
    out: dict[str, int] = {"revision": _one(dsn, "SELECT version_num FROM alembic_version")}
    with psycopg.connect(dsn) as conn:
        for table in HISTORY:
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]:
                where = " WHERE event NOT LIKE 'migrate%%' AND event <> 'lock_refused'" \
                    if table == "phasegate_rollout_event" else ""
                out[table] = conn.execute(f"SELECT count(*) FROM {table}{where}").fetchone()[0]  # noqa: S608
        out["open"] = conn.execute(
            "SELECT count(*) FROM background_dead_letter WHERE status = 'OPEN'").fetchone()[0] \
            if "background_dead_letter" in out else -1
    return out


def _seed_history(url: str) -> None:
    """An OPEN dead letter, an operator audit row and a rollout event: history a drop loses."""
    with psycopg.connect(to_dsn(url), autocommit=True) as conn:
        job = conn.execute("INSERT INTO background_job (type) VALUES ('email.send') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO background_dead_letter (job_id, job_type, error_class, attempts, last_error) "
                     "VALUES (%s, 'email.send', 'TERMINAL', 5, 'bounced')", (job,))
        conn.execute("INSERT INTO background_operator_audit (operator, action, target_kind, outcome) "
                     "VALUES ('op', 'show', 'dead_letter', 'ok')")
        conn.execute("INSERT INTO phasegate_rollout_event (rollout_id, phase, event, actor) "
                     "VALUES ('r0', 'expand', 'started', 'rm')")


def _events(url: str, *names: str) -> list[tuple]:
    with psycopg.connect(to_dsn(url)) as conn:
        return conn.execute("SELECT event, actor, outcome, detail FROM phasegate_rollout_event "
                            "WHERE event = ANY(%s) ORDER BY id", (list(names),)).fetchall()


# ------------------------------------------------------------------ finding 1: the drop rule


@pytest.mark.parametrize(("args", "message"), [
    (("--to", "baseline"), "refusing to run without --yes"),
    (("--to", "baseline", "--yes"), f"{ENV} is production: type its name back with --confirm {ENV}"),
    (("--to", "kit", "--yes", "--confirm", "prod"), f"type its name back with --confirm {ENV}"),
    (("--to", "baseline", "--yes", "--confirm", ENV), "drops 1 OPEN dead letter(s): export them first with --export PATH"),
])
def test_a_move_that_drops_history_is_refused_without_each_consent(args, message, make_db, redis_url,
                                                                   tmp_path) -> None:
    url = make_db("expand")
    _seed_history(url)
    before = _history(url)
    rc, lines = _cli(*args, url=url, redis_url=redis_url, cfg=_config(tmp_path))
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("phasegate: "), lines
    assert message in lines[0]
    assert _history(url) == before and before["open"] == 1
    assert before["revision"] == EXPAND and set(EXPAND_TABLES) <= set(before)
    refused = _events(url, "migrate_refused")
    assert [(e[0], e[1], e[2]) for e in refused] == [("migrate_refused", "rm@ops", "refused")]
    assert refused[0][3]["from"] == EXPAND and message in refused[0][3]["error"]


def test_export_then_drop_writes_the_letters_and_lists_the_file_in_the_event(make_db, redis_url,
                                                                             tmp_path) -> None:
    url = make_db("expand")
    _seed_history(url)
    letter = _one(to_dsn(url), "SELECT id FROM background_dead_letter")
    out = tmp_path / "open.jsonl"
    cfg = _config(tmp_path)
    rc, lines = _cli("--to", "kit", "--yes", "--confirm", ENV, "--export", str(out), url=url,
                     redis_url=redis_url, cfg=cfg)
    assert rc == 0, lines
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["status"], r["last_error"]) for r in rows] == [(letter, "OPEN", "bounced")]
    after = _history(url)
    assert after["revision"] == KIT and "background_dead_letter" not in after
    events = _events(url, "migrate_started", "dead_letters_exported", "migrate_done")
    assert [(e[0], e[1]) for e in events] == [
        ("migrate_started", "rm@ops"), ("dead_letters_exported", "rm@ops"), ("migrate_done", "rm@ops")]
    done = events[-1][3]
    assert (done["from"], done["to"], done["reached"], done["exported"]) == (EXPAND, KIT, KIT, str(out))
    assert events[1][3]["count"] == 1 and "background_dead_letter" in done["drops"]
    # The kit's own history goes too below the kit: the same rule, the same flags.
    rc, lines = _cli("--to", "baseline", url=url, redis_url=redis_url, cfg=cfg)
    assert rc == 1 and "phasegate_rollout_event" in lines[0] and "without --yes" in lines[0]
    rc, lines = _cli("--to", "baseline", "--yes", "--confirm", ENV, url=url, redis_url=redis_url, cfg=cfg)
    assert rc == 0, lines
    assert _one(to_dsn(url), "SELECT version_num FROM alembic_version") == BASELINE
    assert _one(to_dsn(url), "SELECT to_regclass('background_job') IS NOT NULL") is True


def test_an_export_never_goes_through_a_link_or_over_another_file(make_db, redis_url, tmp_path) -> None:
    url = make_db("expand")
    _seed_history(url)
    before, cfg = _history(url), _config(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (tmp_path / "link.jsonl").symlink_to(victim)
    for path, message in ((tmp_path / "link.jsonl", "is a symbolic link"), (victim, "already exists")):
        rc, lines = _cli("--to", "kit", "--yes", "--confirm", ENV, "--export", str(path), url=url,
                         redis_url=redis_url, cfg=cfg)
        assert rc in (1, 2) and len(lines) == 1 and message in lines[0], lines  # 2: bad path
        assert _history(url) == before and victim.read_text() == "keep me\n"


def test_a_drop_of_empty_tables_asks_nothing_and_the_dry_run_shows_what_it_crosses(make_db, redis_url,
                                                                                  tmp_path) -> None:
    url = make_db("expand")
    cfg = _config(tmp_path, production=False)
    rc, lines = _cli("--to", "kit", "--dry-run", url=url, redis_url=redis_url, cfg=cfg)
    assert rc == 0 and "nothing changes" in lines[0]
    assert any("down p0006_expand_dead_letter_audit (expand)  drops background_dead_letter" in line
               for line in lines), lines
    assert not any("[rows:" in line or "would refuse" in line for line in lines)
    assert _history(url)["revision"] == EXPAND and not _events(url, "migrate_started", "migrate_refused")
    rc, lines = _cli("--to", "kit", "--against-state", "expand", url=url, redis_url=redis_url, cfg=cfg)
    assert rc == 1 and "does not contradict expand's state; leave the flag out" in lines[0], lines
    rc, lines = _cli("--to", "kit", url=url, redis_url=redis_url, cfg=cfg)
    assert rc == 0 and lines == [f"{ENV}: {EXPAND} -> {KIT}"], lines


# ------------------------------------------------------------------ no silent target, no base


@pytest.mark.parametrize(("args", "message", "code"), [
    ((), "--to is required: baseline, kit, expand, contract, head or a shipped revision id", 2),
    (("--to", "base"), "'base' is below the first revision (p0001_baseline)", 1),
    (("--to", "nowhere"), "unknown migration point 'nowhere'", 2),
    (("--to", "kit", "--against-state", "dual_write"), "--against-state names a phase that owns revisions", 2),
])
def test_no_target_and_below_the_first_revision_are_one_line_before_anything_runs(
        args, message, code, make_db, redis_url, tmp_path) -> None:
    url = make_db("expand")
    _seed_history(url)
    before = _history(url)
    rc, lines = _cli(*args, url=url, redis_url=redis_url, cfg=_config(tmp_path))
    assert rc == code and len(lines) == 1 and message in lines[0], lines
    assert _history(url) == before


@pytest.mark.parametrize("label", ["wrong password", "server down", "bad port", "role without privileges"])
def test_connection_failures_are_one_line_without_the_password(label, secret_db, pg_server, redis_url,
                                                               tmp_path) -> None:
    url, role, password = secret_db
    host = url.rsplit("@", 1)[1]
    bad = {"wrong password": url.replace(password, password[::-1]),
           "server down": url.replace(host, "127.0.0.1:9/" + host.split("/", 1)[1]),
           "bad port": url.replace(host, "127.0.0.1:99999/" + host.split("/", 1)[1]),
           "role without privileges": url}[label]
    if label == "role without privileges":  # it logs in, and may read nothing
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("ALTER ROLE {} NOSUPERUSER").format(psycopg.sql.Identifier(role)))
            dbname = url.rsplit("/", 1)[1]
            with psycopg.connect(pg_server.dsn(dbname), autocommit=True) as db:
                db.execute(psycopg.sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(
                    psycopg.sql.Identifier(role)))
    rc, lines = _cli("--to", "kit", url=bad, redis_url=redis_url, cfg=_config(tmp_path))
    # Unreachable is "could not run" (2); a server that refuses the role's access, a refusal (1).
    assert rc == (1 if label == "role without privileges" else 2), lines
    assert len(lines) == 1 and lines[0].startswith("phasegate: "), lines
    assert password not in lines[0] and password[::-1] not in lines[0]
    if label == "wrong password":
        assert "password authentication failed" in lines[0]
    if label == "role without privileges":
        assert "may not do this: permission denied" in lines[0]


# ------------------------------------------------------------------ the lock and the state


def test_migrate_beside_a_rollout_is_refused_by_the_lock(make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=100)
    apply_through(target, "expand", tmp_path)
    _seed_history(target.db_url)
    before = _history(target.db_url)
    ro = Rollout(target, "carol", plans_dir=tmp_path / "plans")
    try:
        with TargetLock(target.dsn, target.name, "bob@ops"):
            with pytest.raises(LockHeld, match=r"locked by a rollout of role \w+ \(phasegate-rollout by bob@ops"):
                ro.migrate("kit", against="expand", yes=True, export=tmp_path / "x.jsonl")
    finally:
        ro.close()
    assert _history(target.db_url) == before and not (tmp_path / "x.jsonl").exists()
    assert [(e[0], e[1]) for e in _events(target.db_url, "lock_refused")] == [("lock_refused", "carol")]


def test_a_move_against_the_rollout_state_is_refused_with_the_command_instead(make_db, redis_url,
                                                                              tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=300)
    apply_through(target, "dual_write", tmp_path)
    before = _history(target.db_url)
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        # Under a running dual write, not even a plan's manual path removes its tables.
        with pytest.raises(MoveRefused, match=r"dual_write is gated and runs on expand's schema; "
                                              r"run instead: invoke rollout --env test --rollback --to baseline"):
            ro.migrate("kit", against="expand", yes=True, export=tmp_path / "x.jsonl")
        # Past the current phase: the contract revision with no gate (finding 1's default head).
        with pytest.raises(MoveRefused, match=r"cutover is pending, not gated; run instead: "
                                              r"invoke rollout --env test --phase cutover"):
            ro.migrate("head", against="contract")
    finally:
        ro.close()
    assert _history(target.db_url) == before
    assert len(_events(target.db_url, "migrate_refused")) == 2


def test_undoing_an_applied_phase_needs_the_plans_exact_word(make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=100)
    apply_through(target, "expand", tmp_path)
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        with pytest.raises(MoveRefused, match=r"expand is gated, so its schema is in use; run instead: "
                                              r"invoke rollout --env test --rollback --to baseline "
                                              r"\(a plan's manual path says --against-state expand\)"):
            ro.migrate("kit")
        with pytest.raises(MoveRefused, match="contradicts expand's state, not contract's"):
            ro.migrate("kit", against="contract")
        assert api.current(target.db_url) == EXPAND
        report = ro.migrate("kit", against="expand")  # empty tables: nothing to lose, no --yes
        assert report.reached == KIT
    finally:
        ro.close()
    done = _events(target.db_url, "migrate_done")[-1][3]
    assert done["against_state"] == "expand" and done["direction"] == "down" and done["drops"] == []


def test_expands_runbook_runs_as_printed_in_production_and_exports_the_open_letters(
        make_db, redis_url, tmp_path) -> None:
    """After a dual write (OPEN dead letters backfilled) and its rollback, a person runs
    expand's manual rollback on a production target exactly as the plan prints it."""
    from rollout import plan as plans

    target = make_target(make_db("baseline"), redis_url, jobs=300, production=True)
    apply_through(target, "dual_write", tmp_path)
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        ro.rollback()  # dual_write: flags only
    finally:
        ro.close()
    letters = _one(target.dsn, "SELECT count(*) FROM background_dead_letter WHERE status = 'OPEN'")
    assert letters > 0
    cfg = tmp_path / "phasegate.toml"
    cfg.write_text("[environments.test]\nproduction = true\n", encoding="utf-8")
    env = {**os.environ, "PHASEGATE_CONFIG": str(cfg), "PHASEGATE_TEST_DB_URL": target.db_url,
           "PHASEGATE_TEST_REDIS_URL": redis_url}
    p = plans.build(target, "expand", plans.table_sizes(None))
    commands = [cmd for step in p["manual_rollback"] for cmd in step["commands"]]
    assert any("--yes --confirm test --export " in cmd for cmd in commands), commands
    for cmd in commands:
        # As printed; only run from a scratch folder (the export lands there), so invoke is
        # told where the tasks are.
        argv = cmd.split()
        out = subprocess.run([sys.executable, "-m", "invoke", "-r", str(PROJECT), *argv[1:]],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, (cmd, out.stdout + out.stderr)
    assert _one(target.dsn, "SELECT version_num FROM alembic_version") == KIT
    exported = tmp_path / plans.dead_letters_file("test", "expand")
    assert len(exported.read_text().splitlines()) == letters
