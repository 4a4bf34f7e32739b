"""Issue 13's findings, each reproduced AS the role that had it, now refused by PostgreSQL, and
the allowed paths that replace them (fixtures: ``conftest.py`` in this folder).

Findings: the app could delete and resolve dead letters and write the audit in anyone's name;
the audit did not know who acted; the operator could reopen a REQUEUED letter by SQL and
requeue it again (two live copies of one job); requeue copied the job row as it is now, not
what the operator inspected; the role running rollouts owned the logs, so it could TRUNCATE
them or disable their triggers. The role-by-role table of refusals is in ``test_grants.py``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import psycopg
import pytest
import redis as redis_lib
from psycopg import sql

from infra import ephemeral
from ledger.app import LedgerApp
from ledger.classify import RetryPolicies, RetryPolicy
from ledger.db import Database
from ledger.deadletter import DeadLetters
from ledger.errors import DeadLetterNotOpen, DeadLetterPermissionDenied
from migrations import api
from tests.integration.infra.conftest import GrantedDb, Roles, drop, migrated_by_migrator

OPEN_LETTER, REQUEUED_LETTER = 1, 2  # the seed (conftest.py)
EXPAND_BEFORE = "p0012_expand_dead_letter_job_ix"
EXPAND_AFTER = "p0014_expand_ledger_integrity"


def rows(db: GrantedDb, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with db.admin() as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


@contextlib.contextmanager
def dead_letters_as(db: GrantedDb, key: str) -> Iterator[DeadLetters]:
    """The library's dead-letter API, connected AS the role ``key``."""
    database = Database(db.url_as(key), pool_size=2, max_overflow=0)
    try:
        yield DeadLetters(database)
    finally:
        database.dispose()


def test_requeue_enqueues_the_letters_snapshot_not_a_rewritten_job_row(
        by_migrator_fresh: GrantedDb) -> None:
    """Finding: after the job row was rewritten, requeue enqueued the rewritten job with the
    operator on record as approving it. The app may rewrite its own job rows; requeue now reads
    the letter, which nobody can rewrite."""
    db = by_migrator_fresh
    with db.connect("app") as app:
        app.execute("UPDATE background_job SET type = 'wire_money', payload = '{\"to\": \"mallory\"}' "
                    "WHERE id = (SELECT job_id FROM background_dead_letter WHERE id = %s)",
                    (OPEN_LETTER,))
    with dead_letters_as(db, "operator") as dead_letters:
        shown = dead_letters.show(OPEN_LETTER, operator="alice")
        assert (shown.letter.job_type, shown.letter.payload) == ("email", {"to": "a@example.com"})
        res = dead_letters.requeue(OPEN_LETTER, "alice", "address fixed")
    assert rows(db, "SELECT type, payload, attempts, status::text FROM background_job WHERE id = %s",
                (res.new_job_id,)) == [("email", {"to": "a@example.com"}, 0, "PENDING")]
    operator = db.roles.names["operator"]
    assert rows(db, "SELECT operator, db_role, action, outcome, detail->>'job_type' FROM "
                "background_operator_audit WHERE target_id = %s ORDER BY id", (str(OPEN_LETTER),)) == [
        ("alice", operator, "inspect", "ok", None), ("alice", operator, "requeue", "ok", "email")]


def test_two_concurrent_requeues_of_one_letter_give_one_live_job(by_migrator_fresh: GrantedDb) -> None:
    """Two operator sessions, released together: the function's row lock lets one through."""
    db = by_migrator_fresh
    jobs_before = rows(db, "SELECT count(*) FROM background_job")[0][0]
    barrier, outcomes = threading.Barrier(2), []

    def requeue(name: str) -> None:
        with db.connect("operator") as conn:
            barrier.wait()
            outcomes.append(conn.execute("SELECT outcome FROM phasegate_dlq_requeue(%s, %s, 'go')",
                                         (OPEN_LETTER, name)).fetchone()[0])

    threads = [threading.Thread(target=requeue, args=(f"op{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["not_open", "ok"]
    assert rows(db, "SELECT count(*) FROM background_job")[0][0] == jobs_before + 1
    assert rows(db, "SELECT outcome, db_role FROM background_operator_audit WHERE target_id = %s "
                "ORDER BY outcome", (str(OPEN_LETTER),)) == [
        ("ok", db.roles.names["operator"]), ("refused", db.roles.names["operator"])]


def test_a_requeued_letter_cannot_be_reopened_nor_requeued_again(by_migrator_fresh: GrantedDb) -> None:
    """Finding: the operator reopened a REQUEUED letter by plain SQL and requeued it again."""
    db = by_migrator_fresh
    with db.connect("operator") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE background_dead_letter SET status = 'OPEN' WHERE id = %s", (REQUEUED_LETTER,))
    with db.connect("migrator") as conn, pytest.raises(psycopg.errors.CheckViolation, match="final"):
        conn.execute("UPDATE background_dead_letter SET status = 'OPEN', resolved_at = NULL, "
                     "resolved_by = NULL, resolution_reason = NULL, requeued_job_id = NULL "
                     "WHERE id = %s", (REQUEUED_LETTER,))
    jobs = rows(db, "SELECT id, type, status::text FROM background_job ORDER BY id")
    with dead_letters_as(db, "operator") as dead_letters, \
            pytest.raises(DeadLetterNotOpen, match="REQUEUED"):
        dead_letters.requeue(REQUEUED_LETTER, "bob")
    assert rows(db, "SELECT id, type, status::text FROM background_job ORDER BY id") == jobs
    assert rows(db, "SELECT operator, db_role, outcome, detail->>'status' FROM background_operator_audit "
                "WHERE target_id = %s AND operator = 'bob'", (str(REQUEUED_LETTER),)) == [
        ("bob", db.roles.names["operator"], "refused", "REQUEUED")]


def test_the_audit_and_the_event_log_record_who_logged_in_whatever_the_insert_says(
        by_migrator_fresh: GrantedDb) -> None:
    """Finding: audit rows were written in anyone's name. The display name is still the
    caller's; db_role is session_user, which no INSERT can set."""
    db = by_migrator_fresh
    with db.connect("migrator") as conn:  # the migrator appends to both logs (a rollout does)
        conn.execute("INSERT INTO background_operator_audit (operator, db_role, action, target_kind, "
                     "outcome) VALUES ('bob', 'postgres', 'reconcile', 'run', 'ok')")
        conn.execute("INSERT INTO phasegate_rollout_event (rollout_id, phase, event, actor, db_role) "
                     "VALUES ('r2', 'expand', 'started', 'bob', 'postgres')")
    migrator = db.roles.names["migrator"]
    assert rows(db, "SELECT operator, db_role FROM background_operator_audit WHERE action = 'reconcile'") == [
        ("bob", migrator)]
    assert rows(db, "SELECT actor, db_role FROM phasegate_rollout_event WHERE rollout_id = 'r2'") == [
        ("bob", migrator)]


def test_the_app_writes_dead_letters_but_cannot_resolve_them(
        by_migrator_fresh: GrantedDb, redis_url: str) -> None:
    """The app's write path (LedgerApp as the app role) still dead-letters a failing job; the
    operator actions refuse it in the database, and nothing changes, in PostgreSQL or Redis."""
    db = by_migrator_fresh
    app = LedgerApp(db.url_as("app"), redis_url, flag_ttl=0,
                    policies=RetryPolicies(default=RetryPolicy(max_attempts=1, base_seconds=0)))
    try:
        app.runner.register("email", lambda ctx: (_ for _ in ()).throw(ValueError("bounced")))
        job = app.enqueue_job("email", {"to": "x"})
        assert app.run_one().outcome == "dead"
        [(letter,)] = rows(db, "SELECT id FROM background_dead_letter WHERE job_id = %s", (job,))
        before = (rows(db, "SELECT d::text FROM background_dead_letter d ORDER BY id"),
                  rows(db, "SELECT j::text FROM background_job j ORDER BY id"))
        client = redis_lib.Redis.from_url(redis_url)
        keys = {k: client.dump(k) for k in client.scan_iter()}
        for act in (lambda: app.dead_letters.requeue(letter, "app"),
                    lambda: app.dead_letters.discard(letter, "app", "noise"),
                    lambda: app.dead_letters.show(letter, operator="app")):
            with pytest.raises(DeadLetterPermissionDenied, match="permission denied for function") as e:
                act()
            assert isinstance(e.value.__cause__, psycopg.errors.InsufficientPrivilege)
        assert (rows(db, "SELECT d::text FROM background_dead_letter d ORDER BY id"),
                rows(db, "SELECT j::text FROM background_job j ORDER BY id")) == before
        assert {k: client.dump(k) for k in client.scan_iter()} == keys
        client.close()
    finally:
        app.close()


def test_discard_needs_a_reason_in_the_database_too(by_migrator_fresh: GrantedDb) -> None:
    db = by_migrator_fresh
    with db.connect("operator") as conn:
        assert conn.execute("SELECT * FROM phasegate_dlq_discard(%s, 'ann', '  ')",
                            (OPEN_LETTER,)).fetchone() == ("reason_required", "OPEN")
        assert conn.execute("SELECT * FROM phasegate_dlq_discard(%s, 'ann', 'spam')",
                            (OPEN_LETTER,)).fetchone() == ("ok", "DISCARDED")
    assert rows(db, "SELECT status::text, resolved_by, resolution_reason FROM background_dead_letter "
                "WHERE id = %s", (OPEN_LETTER,)) == [("DISCARDED", "ann", "spam")]
    assert rows(db, "SELECT outcome, detail->>'rule' FROM background_operator_audit WHERE target_id = %s "
                "ORDER BY id", (str(OPEN_LETTER),)) == [("refused", "reason required"), ("ok", None)]


def _catalog(db: GrantedDb) -> dict[str, object]:
    """Owners, grants, triggers, functions and columns: what p0014 changes and must restore."""
    with db.admin() as conn:
        return {
            # Each table's grants as a sorted set: the order of ACL items carries no meaning
            # (a re-granted privilege is appended).
            "tables": conn.execute(
                "SELECT relname, relowner::regrole::text, (SELECT array_agg(a::text ORDER BY "
                "a::text) FROM unnest(relacl) a) FROM pg_class WHERE relnamespace = "
                "'public'::regnamespace AND relkind = 'r' ORDER BY 1").fetchall(),
            "triggers": conn.execute("SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
                                     "WHERE NOT tgisinternal ORDER BY 1, 2").fetchall(),
            "functions": conn.execute("SELECT proname FROM pg_proc WHERE pronamespace = "
                                      "'public'::regnamespace ORDER BY 1").fetchall(),
            "columns": conn.execute("SELECT table_name, column_name FROM information_schema.columns "
                                    "WHERE table_schema = 'public' ORDER BY 1, 2").fetchall(),
        }


def _bridge_inherits(db: GrantedDb, inherit: bool) -> None:
    with db.admin() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} " + ("INHERIT" if inherit else "NOINHERIT")).format(
            sql.Identifier(db.roles.names["bridge"])))


def test_the_downgrade_gives_the_logs_back_exactly_and_refuses_when_it_cannot(
        by_migrator_fresh: GrantedDb, roles: Roles, pg_server: ephemeral.PostgresServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As the migrator (a member of the owner only through the NOINHERIT bridge) the downgrade
    cannot take the logs back: it refuses before changing anything. With the bridge inheriting
    (infra/README.md, "Rolling back past p0014") it restores owners, grants, triggers,
    functions and columns exactly as a database that never had p0014 has them."""
    db = by_migrator_fresh
    pristine_db = migrated_by_migrator(roles, pg_server, monkeypatch, EXPAND_BEFORE)
    try:
        pristine = _catalog(pristine_db)
    finally:
        drop(pg_server, pristine_db.dbname)
    as_migrator = db.url_as("migrator")
    api.downgrade(as_migrator, EXPAND_AFTER)  # the contract revision first
    after = _catalog(db)
    assert after != pristine
    with pytest.raises(Exception, match="cannot give it back"):
        api.downgrade(as_migrator, EXPAND_BEFORE)
    assert api.current(db.url) == EXPAND_AFTER
    assert _catalog(db) == after
    _bridge_inherits(db, True)
    try:
        api.downgrade(as_migrator, EXPAND_BEFORE)
        restored = _catalog(db)
        # Exactly as before p0014, but for who acted: the db_role columns stay (the logs are
        # append-only history; an automated rollback must not lose it).
        kept = [c for c in restored["columns"] if c not in pristine["columns"]]  # type: ignore[operator]
        assert kept == [("background_operator_audit", "db_role"), ("phasegate_rollout_event", "db_role")]
        assert {**restored, "columns": pristine["columns"]} == pristine
        api.upgrade(as_migrator, EXPAND_AFTER)
        assert _catalog(db) == after
    finally:
        _bridge_inherits(db, False)


def test_a_role_the_database_refuses_gets_one_line_from_the_cli(by_migrator_fresh: GrantedDb) -> None:
    """dlq.requeue connected as readonly: PostgreSQL refuses, the operator reads one line."""
    from tests.integration.ledger.test_dlq_tasks import invoke

    db = by_migrator_fresh
    out = invoke("dlq.requeue", "--id", str(OPEN_LETTER), "--operator", "erin",
                 "--db-url", db.url_as("readonly"))
    assert out.returncode == 1, out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "permission denied for function phasegate_dlq_requeue" in lines[0]
    assert db.roles.password not in out.stderr + out.stdout
    assert rows(db, "SELECT status::text FROM background_dead_letter WHERE id = %s",
                (OPEN_LETTER,)) == [("OPEN",)]
