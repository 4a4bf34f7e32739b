"""Least privilege of the migrations' grants, triggers and ownership, proven by connecting AS
each role (fixtures: ``conftest.py`` in this folder).

Two kinds of test: the catalog holds exactly the privilege matrix the revisions declare, and
each forbidden act, run AS the role it is forbidden to, is refused by PostgreSQL itself — by
privilege, by ownership or by a trigger — with the SQLSTATE and rule named, and leaves rows,
triggers, owners and grants exactly as they were. Tests that change data get a fresh database
each; tests whose statements are all refused share one per module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from infra import ephemeral
from migrations import api
from migrations.points import HEAD
from tests.conftest import to_dsn
from tests.integration.infra.conftest import LAST_WITHOUT_GRANTS, ROLE_ENV, GrantedDb

DENIED = psycopg.errors.InsufficientPrivilege
ALL_TABLES = ("background_job", "phasegate_flag", "phasegate_rollout_state",
              "phasegate_rollout_event", "background_dispatch_window", "background_function_run",
              "background_dead_letter", "background_job_effect", "background_operator_audit")
LEDGER_TABLES = ("background_dispatch_window", "background_function_run",
                 "background_dead_letter", "background_job_effect")
LOGS = ("phasegate_rollout_event", "background_operator_audit")
OPERATOR_FUNCTIONS = ("phasegate_dlq_requeue(bigint, text, text)",
                      "phasegate_dlq_discard(bigint, text, text)",
                      "phasegate_dlq_inspect(bigint, text)")
AUDIT_FUNCTION = "phasegate_dlq_audit(text, bigint, text, text, text, jsonb)"
FAULT_README = Path(__file__).resolve().parents[2] / "fault" / "README.md"


def not_refused(g: GrantedDb, key: str, statements: list[str] | tuple[str, ...]) -> list[str]:
    """The statements ``key`` was NOT refused (InsufficientPrivilege) on; each in its own
    transaction, rolled back, so nothing changes even when a grant is wrong."""
    allowed = []
    with g.connect(key) as conn:
        for stmt in statements:
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute(stmt)
                allowed.append(stmt)
            except DENIED as exc:
                assert "permission denied" in str(exc) or "must be owner" in str(exc), exc
    return allowed


def privileges(g: GrantedDb, key: str) -> dict[str, set[str]]:
    """table -> the table-level privileges ``key`` holds on it, read from the catalog."""
    role = g.roles.names[key]
    with psycopg.connect(to_dsn(g.url)) as conn:
        rows = conn.execute(
            "SELECT t, p FROM unnest(%s::text[]) t, unnest(ARRAY['SELECT','INSERT','UPDATE',"
            "'DELETE','TRUNCATE','REFERENCES','TRIGGER']) p WHERE has_table_privilege(%s, t, p)",
            (list(ALL_TABLES), role)).fetchall()
    out: dict[str, set[str]] = {t: set() for t in ALL_TABLES}
    for table, priv in rows:
        out[table].add(priv)
    return out


def executable(g: GrantedDb, key: str) -> set[str]:
    """The phasegate functions ``key`` may EXECUTE."""
    with psycopg.connect(to_dsn(g.url)) as conn:
        return {fn for fn in (*OPERATOR_FUNCTIONS, AUDIT_FUNCTION) if conn.execute(
            "SELECT has_function_privilege(%s, %s, 'EXECUTE')",
            (g.roles.names[key], fn)).fetchone()[0]}


RW = {"SELECT", "INSERT", "UPDATE", "DELETE"}
ALL = RW | {"TRUNCATE", "REFERENCES", "TRIGGER"}


@pytest.mark.parametrize("migrated_by", ["shared", "by_migrator"])
def test_catalog_holds_exactly_the_least_privilege_matrix(migrated_by: str,
                                                          request: pytest.FixtureRequest) -> None:
    """The same matrix whether the superuser or the migrator ran the migrations."""
    granted: GrantedDb = request.getfixturevalue(migrated_by)
    assert privileges(granted, "app") == {
        **{t: RW for t in ("background_job", "background_dispatch_window",
                           "background_function_run", "background_job_effect")},
        "background_dead_letter": {"SELECT", "INSERT"},  # the write path inserts letters
        "background_operator_audit": set(),
        "phasegate_flag": {"SELECT"},
        "phasegate_rollout_state": set(),
        "phasegate_rollout_event": set(),
    }
    assert privileges(granted, "operator") == {t: {"SELECT"} for t in ALL_TABLES}
    assert privileges(granted, "readonly") == {t: {"SELECT"} for t in ALL_TABLES}
    # The owner holds the logs (by ownership) and nothing else.
    assert privileges(granted, "owner") == {t: (ALL if t in LOGS else set()) for t in ALL_TABLES}
    with granted.admin() as conn:
        assert conn.execute("SELECT has_any_column_privilege(%s, 'background_dead_letter', "
                            "'UPDATE')", (granted.roles.names["operator"],)).fetchone() == (False,)
    assert executable(granted, "operator") == set(OPERATOR_FUNCTIONS)
    assert executable(granted, "app") == executable(granted, "readonly") == set()
    if migrated_by == "by_migrator":
        # The role that runs rollouts owns everything but the logs, where it may only append.
        assert privileges(granted, "migrator") == {
            t: ({"SELECT", "INSERT"} if t in LOGS else ALL) for t in ALL_TABLES}


APP_DDL = (
    "CREATE TABLE app_owned (id int)",
    "ALTER TABLE background_job ADD COLUMN sneaky text",
    "CREATE INDEX ix_sneaky ON background_job (type)",
    "DROP TABLE background_job_effect",
    "TRUNCATE background_function_run",
    "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
)
APP_OFF_LIMITS = (
    "SELECT * FROM phasegate_rollout_state",
    "INSERT INTO phasegate_rollout_state (phase, status) VALUES ('expand', 'applied')",
    "SELECT * FROM phasegate_rollout_event",
    "INSERT INTO phasegate_rollout_event (rollout_id, phase, event, actor) VALUES ('r', 'x', 'y', 'z')",
    "UPDATE phasegate_flag SET value = 'redis_only'",
    "DELETE FROM phasegate_flag",
    # The audit is not the app's at all (p0014): the operator functions write it.
    "SELECT * FROM background_operator_audit",
    "INSERT INTO background_operator_audit (operator, action, target_kind, outcome) "
    "VALUES ('ann', 'requeue', 'dead_letter', 'ok')",
    "UPDATE background_operator_audit SET reason = 'x'",
    "DELETE FROM background_operator_audit",
    # Dead letters: the app inserts them; resolving or deleting them is not its to do.
    "UPDATE background_dead_letter SET status = 'DISCARDED', resolved_by = 'mallory', "
    "resolution_reason = 'x' WHERE status = 'OPEN'",
    "DELETE FROM background_dead_letter",
)


def test_app_cannot_run_ddl(shared: GrantedDb) -> None:
    assert not_refused(shared, "app", APP_DDL) == []


def test_app_cannot_touch_the_rollout_tables_flags_or_audit_history(shared: GrantedDb) -> None:
    assert not_refused(shared, "app", APP_OFF_LIMITS) == []


def test_app_reads_flags_and_writes_the_ledger(granted: GrantedDb) -> None:
    with granted.connect("app") as conn:
        assert conn.execute("SELECT value FROM phasegate_flag").fetchone() == ("dual",)
        # Identity columns need no sequence grant: INSERT on the table is enough.
        job = conn.execute("INSERT INTO background_job (type) VALUES ('sms') RETURNING id").fetchone()[0]
        conn.execute("UPDATE background_job SET status = 'RUNNING' WHERE id = %s", (job,))
        conn.execute(
            "INSERT INTO background_dispatch_window (dispatch_key, source, window_start, window_end, "
            "correlation_id) VALUES ('k1', 'cron', now(), now(), 'c1')")
        conn.execute("INSERT INTO background_function_run (run_key, function_name, run_id, attempt) "
                     "VALUES ('f:r:1', 'f', 'r', 1)")
        conn.execute("INSERT INTO background_job_effect (effect_key, job_id) VALUES ('e1', %s)", (job,))
        # The write path's dead letter (ledger/sql/jobs.sql open_dead_letter), ON CONFLICT included.
        for _ in range(2):
            conn.execute("INSERT INTO background_dead_letter (job_id, job_type, error_class, attempts) "
                         "VALUES (%s, 'sms', 'TERMINAL', 1) ON CONFLICT (job_id) WHERE status = 'OPEN' "
                         "DO NOTHING", (job,))
        conn.execute("DELETE FROM background_function_run WHERE run_key = 'f:r:1'")
    with granted.admin() as admin:
        assert admin.execute("SELECT status FROM background_job WHERE id = %s", (job,)).fetchone() == ("RUNNING",)
        assert admin.execute("SELECT count(*) FROM background_dead_letter WHERE job_id = %s",
                             (job,)).fetchone() == (1,)
        assert admin.execute("SELECT count(*) FROM background_function_run").fetchone() == (0,)


OPERATOR_REFUSED = (
    "DROP TABLE background_dead_letter",
    "ALTER TABLE background_dead_letter ADD COLUMN note text",
    "ALTER TABLE background_job ALTER COLUMN type SET DEFAULT 'x'",
    "CREATE INDEX ix_op ON background_dead_letter (job_type)",
    "TRUNCATE background_job",
    "DELETE FROM background_dead_letter",
    "DELETE FROM background_job",
    "UPDATE background_job SET status = 'FAILED'",
    "UPDATE background_dead_letter SET payload = '{}'::jsonb",
    "UPDATE phasegate_flag SET value = 'x'",
    "INSERT INTO phasegate_rollout_event (rollout_id, phase, event, actor) VALUES ('r', 'x', 'y', 'z')",
    # Its dead-letter actions go through the functions (p0014), not around them.
    "UPDATE background_dead_letter SET status = 'DISCARDED', resolved_by = 'x', "
    "resolution_reason = 'y' WHERE status = 'OPEN'",
    "INSERT INTO background_job (type) VALUES ('email')",
    "INSERT INTO background_operator_audit (operator, action, target_kind, outcome) "
    "VALUES ('ann', 'requeue', 'dead_letter', 'ok')",
)


def test_operator_cannot_drop_alter_delete_or_rewrite(shared: GrantedDb) -> None:
    assert not_refused(shared, "operator", OPERATOR_REFUSED) == []


def test_operator_reads_everything_and_acts_through_the_functions(granted: GrantedDb) -> None:
    with granted.connect("operator") as conn:
        for table in ALL_TABLES:
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        dl = conn.execute("SELECT id FROM background_dead_letter WHERE status = 'OPEN'").fetchone()[0]
        assert conn.execute("SELECT outcome FROM phasegate_dlq_inspect(%s, 'ann')", (dl,)).fetchone() == ("ok",)
        outcome, status, new_job, _ = conn.execute(
            "SELECT * FROM phasegate_dlq_requeue(%s, 'ann', 'fixed')", (dl,)).fetchone()
        assert (outcome, status) == ("ok", "REQUEUED")
    with granted.admin() as admin:
        assert admin.execute("SELECT status, requeued_job_id, resolved_by FROM background_dead_letter "
                             "WHERE id = %s", (dl,)).fetchone() == ("REQUEUED", new_job, "ann")
        assert admin.execute(
            "SELECT operator, db_role, action, outcome FROM background_operator_audit "
            "WHERE target_id = %s ORDER BY id", (str(dl),)).fetchall() == [
            ("ann", granted.roles.names["operator"], "inspect", "ok"),
            ("ann", granted.roles.names["operator"], "requeue", "ok")]


# A column of each table, for an UPDATE that would be valid if it were allowed.
SOME_COLUMN = {
    "background_job": "type", "phasegate_flag": "value", "phasegate_rollout_state": "status",
    "phasegate_rollout_event": "actor", "background_dispatch_window": "source",
    "background_function_run": "function_name", "background_dead_letter": "job_type",
    "background_job_effect": "run_key", "background_operator_audit": "reason",
}


def _writes(table: str) -> list[str]:
    t, c = sql.Identifier(table), sql.Identifier(SOME_COLUMN[table])
    return [stmt.as_string() for stmt in (
        sql.SQL("INSERT INTO {} DEFAULT VALUES").format(t), sql.SQL("UPDATE {} SET {} = {}").format(t, c, c),
        sql.SQL("DELETE FROM {}").format(t), sql.SQL("TRUNCATE {}").format(t))]


READONLY_WRITES = tuple(stmt for table in ALL_TABLES for stmt in _writes(table))


def test_readonly_reads_everything_but_cannot_write(shared: GrantedDb) -> None:
    with shared.connect("readonly") as conn:
        for table in ALL_TABLES:
            conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(table)))
    assert len(READONLY_WRITES) == 4 * len(ALL_TABLES)
    assert not_refused(shared, "readonly", READONLY_WRITES) == []


def test_downgrade_revokes_and_upgrade_grants_again(granted: GrantedDb) -> None:
    api.downgrade(granted.url, LAST_WITHOUT_GRANTS)
    for key in ("app", "operator", "readonly"):
        assert privileges(granted, key) == {t: set() for t in ALL_TABLES}, key
    with granted.connect("operator") as conn, pytest.raises(DENIED):
        conn.execute("UPDATE background_dead_letter SET status = 'DISCARDED'")
    api.upgrade(granted.url, "head")
    assert privileges(granted, "readonly") == {t: {"SELECT"} for t in ALL_TABLES}


def test_missing_roles_are_skipped(make_db: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_db(LAST_WITHOUT_GRANTS)
    for var in ROLE_ENV.values():
        monkeypatch.setenv(var, "phasegate_no_such_role")
    api.upgrade(url, "head")
    with psycopg.connect(to_dsn(url)) as conn:
        acl = conn.execute("SELECT relacl::text FROM pg_class WHERE relname = 'background_job'").fetchone()[0]
        owners = {r[0] for r in conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
    assert api.current(url) == HEAD
    assert acl is None or "no_such_role" not in acl
    assert len(owners) == 1  # no owner role: the logs stay with the migrating role


def test_role_names_are_quoted_identifiers(make_db: Callable[[str], str], pg_server: ephemeral.PostgresServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    odd = 'Odd "app"; DROP TABLE background_job; --'
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(odd)))
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(odd)))
    url = make_db(LAST_WITHOUT_GRANTS)
    monkeypatch.setenv("PHASEGATE_ROLE_APP", odd)
    monkeypatch.setenv("PHASEGATE_ROLE_OWNER", odd)  # p0014 hands it the logs: quoted too
    with psycopg.connect(pg_server.dsn(url.rsplit("/", 1)[1]), autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(sql.Identifier(odd)))
    try:
        api.upgrade(url, "head")
        with psycopg.connect(to_dsn(url)) as conn:
            assert conn.execute("SELECT has_table_privilege(%s, 'background_job', 'INSERT'), "
                                "has_table_privilege(%s, 'phasegate_rollout_state', 'SELECT'), "
                                "(SELECT tableowner FROM pg_tables WHERE tablename = "
                                "'background_operator_audit') = %s",
                                (odd, odd, odd)).fetchone() == (True, False, True)
        api.downgrade(url, LAST_WITHOUT_GRANTS)
        with psycopg.connect(to_dsn(url)) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE tableowner = %s",
                                (odd,)).fetchone() == (0,)
    finally:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(url.rsplit("/", 1)[1])))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(odd)))


def test_migrator_runs_every_migration_without_superuser(by_migrator_fresh: GrantedDb) -> None:
    """The migrator owns neither the database nor its schema (the owner role does), only what
    it creates: every table, except the two logs p0014 handed to the owner role."""
    db = by_migrator_fresh
    assert api.current(db.url) == HEAD
    with db.admin() as conn:
        owners = dict(conn.execute("SELECT tablename, tableowner FROM pg_tables "
                                   "WHERE schemaname = 'public'").fetchall())
        assert conn.execute("SELECT has_table_privilege(%s, 'background_job', 'DELETE')",
                            (db.roles.names["app"],)).fetchone() == (True,)
    assert {t: o for t, o in owners.items() if t in LOGS} == dict.fromkeys(LOGS, db.roles.names["owner"])
    assert {o for t, o in owners.items() if t not in LOGS} == {db.roles.names["migrator"]}


# --------------------------------------------------------------------------- role by role
# (role, forbidden statement, SQLSTATE, the words of the refusal). Run AS the role on a
# database the migrator migrated (the production shape), one statement per autocommit
# transaction: a statement that were allowed would commit, and the state check would see it.
# "owner" is the migrator after SET ROLE: the only way anyone becomes the NOLOGIN owner.
# The seed (conftest.py): dead letter 1 OPEN (job 1), dead letter 2 REQUEUED (job 2 -> job 3).
NO = "42501"  # insufficient_privilege: privileges, ownership, the append-only triggers
RULE = "23514"  # check_violation: the dead-letter state machine (p0014)
AUDIT_ROW = ("INSERT INTO background_operator_audit (operator, action, target_kind, target_id, "
             "outcome) VALUES ('ann', 'discard', 'dead_letter', '1', 'ok')")
REOPEN = ("UPDATE background_dead_letter SET status = 'OPEN', resolved_at = NULL, resolved_by = NULL, "
          "resolution_reason = NULL, requeued_job_id = NULL WHERE status = 'REQUEUED'")
RESOLVE = ("UPDATE background_dead_letter SET status = 'DISCARDED', resolved_by = 'mallory', "
           "resolution_reason = 'x' WHERE status = 'OPEN'")
FORBIDDEN: tuple[tuple[str, str, str, str], ...] = (
    # app: inserts dead letters (its write path), nothing more; the audit is not its own
    ("app", "DELETE FROM background_dead_letter", NO, "permission denied"),
    ("app", RESOLVE, NO, "permission denied"),
    ("app", REOPEN, NO, "permission denied"),
    ("app", "INSERT INTO background_dead_letter (job_id, job_type, error_class, attempts, status, "
     "resolved_by, resolution_reason) VALUES (1, 'email', 'TERMINAL', 1, 'DISCARDED', 'mallory', "
     "'x')", RULE, "born OPEN"),
    ("app", "INSERT INTO background_dead_letter (job_id, job_type, error_class, attempts, "
     "requeued_job_id) VALUES (2, 'sms', 'TERMINAL', 1, 3)", RULE, "born OPEN"),
    ("app", AUDIT_ROW, NO, "permission denied"),
    ("app", "SELECT count(*) FROM background_operator_audit", NO, "permission denied"),
    ("app", "SELECT * FROM phasegate_dlq_requeue(1, 'ann', 'x')", NO, "permission denied for function"),
    ("app", "SELECT * FROM phasegate_dlq_discard(1, 'ann', 'x')", NO, "permission denied for function"),
    ("app", "SELECT * FROM phasegate_dlq_inspect(1, 'ann')", NO, "permission denied for function"),
    ("app", "SELECT phasegate_dlq_audit('discard', 1, 'ann', 'ok', 'x', '{}')", NO,
     "permission denied for function"),
    # operator: reads everything; changes things only through the three functions
    ("operator", REOPEN, NO, "permission denied"),
    ("operator", RESOLVE, NO, "permission denied"),
    ("operator", "INSERT INTO background_job (type, payload) SELECT job_type, payload "
     "FROM background_dead_letter WHERE id = 1", NO, "permission denied"),
    ("operator", AUDIT_ROW, NO, "permission denied"),
    ("operator", "UPDATE background_operator_audit SET reason = 'x'", NO, "permission denied"),
    ("operator", "DELETE FROM background_operator_audit", NO, "permission denied"),
    ("operator", "TRUNCATE background_operator_audit", NO, "permission denied"),
    ("operator", "DELETE FROM background_dead_letter", NO, "permission denied"),
    ("operator", "TRUNCATE phasegate_rollout_event", NO, "permission denied"),
    ("operator", "SELECT phasegate_dlq_audit('requeue', 1, 'ann', 'ok', NULL, '{}')", NO,
     "permission denied for function"),
    # readonly: SELECT only, no functions
    ("readonly", "SELECT * FROM phasegate_dlq_requeue(1, 'ann', 'x')", NO, "permission denied for function"),
    ("readonly", "SELECT * FROM phasegate_dlq_discard(1, 'ann', 'x')", NO, "permission denied for function"),
    ("readonly", "SELECT * FROM phasegate_dlq_inspect(1, 'ann')", NO, "permission denied for function"),
    # migrator: runs the rollouts and owns the dead letters, but no longer the logs
    ("migrator", "TRUNCATE background_operator_audit", NO, "permission denied"),
    ("migrator", "TRUNCATE phasegate_rollout_event", NO, "permission denied"),
    ("migrator", "ALTER TABLE background_operator_audit DISABLE TRIGGER "
     "background_operator_audit_append_only", NO, "must be owner"),
    ("migrator", "ALTER TABLE phasegate_rollout_event DISABLE TRIGGER ALL", NO, "must be owner"),
    ("migrator", "UPDATE background_operator_audit SET reason = 'x'", NO, "permission denied"),
    ("migrator", "DELETE FROM phasegate_rollout_event", NO, "permission denied"),
    ("migrator", "DROP TABLE background_operator_audit", NO, "must be owner"),
    ("migrator", "DROP TABLE phasegate_rollout_event CASCADE", NO, "must be owner"),
    ("migrator", "DROP SCHEMA public CASCADE", NO, "must be owner"),
    ("migrator", "ALTER SCHEMA public RENAME TO elsewhere", NO, "must be owner"),
    ("migrator", "ALTER TABLE phasegate_rollout_event OWNER TO CURRENT_USER", NO, "must be owner"),
    ("migrator", REOPEN, RULE, "dead letter 2: REQUEUED is final"),
    ("migrator", "UPDATE background_dead_letter SET requeued_job_id = 1 WHERE id = 2", RULE,
     "REQUEUED is final"),
    ("migrator", "UPDATE background_dead_letter SET payload = '{\"to\": \"b@example.com\"}' "
     "WHERE id = 1", RULE, "dead letter 1: its snapshot"),
    ("migrator", "UPDATE background_dead_letter SET status = 'REQUEUED', resolved_by = 'x' "
     "WHERE id = 1", RULE, "REQUEUED needs requeued_job_id"),
    ("migrator", "UPDATE background_dead_letter SET status = 'DISCARDED', resolved_by = 'x', "
     "resolution_reason = ' ' WHERE id = 1", RULE, "DISCARDED needs a reason"),
    ("migrator", "UPDATE background_dead_letter SET resolved_by = 'x' WHERE id = 1", RULE,
     "resolution columns are set only with REQUEUED or DISCARDED"),
    ("migrator", "DELETE FROM background_dead_letter WHERE id = 2", NO,
     "dead letter 2: discard never deletes history"),
    # owner (SET ROLE): owns the logs, and still cannot rewrite them while the triggers stand
    ("owner", "TRUNCATE background_operator_audit", NO, "append-only: TRUNCATE refused"),
    ("owner", "TRUNCATE phasegate_rollout_event", NO, "append-only: TRUNCATE refused"),
    ("owner", "UPDATE background_operator_audit SET operator = 'mallory'", NO, "append-only: UPDATE refused"),
    ("owner", "DELETE FROM phasegate_rollout_event", NO, "append-only: DELETE refused"),
    ("owner", REOPEN, NO, "permission denied"),
    ("owner", "INSERT INTO background_job (type) VALUES ('email')", NO, "permission denied"),
)
STATE_TABLES = ("background_job", "background_dead_letter", "background_operator_audit",
                "phasegate_rollout_event", "phasegate_flag")


def database_state(db: GrantedDb) -> dict[str, object]:
    """Rows of the tables the forbidden acts aim at, and every table's owner, grants and
    triggers (enabled or not): what a refused act must leave as it was."""
    with db.admin() as conn:
        state: dict[str, object] = {t: conn.execute(
            sql.SQL("SELECT t::text FROM {} t ORDER BY 1").format(sql.Identifier(t))).fetchall()
            for t in STATE_TABLES}
        state["tables"] = conn.execute(
            "SELECT relname, relowner::regrole::text, relacl::text FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1").fetchall()
        state["triggers"] = conn.execute(
            "SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger "
            "WHERE NOT tgisinternal ORDER BY 1, 2").fetchall()
    return state


@pytest.mark.parametrize(("key", "statement", "sqlstate", "words"), FORBIDDEN,
                         ids=[f"{k}-{i}" for i, (k, *_rest) in enumerate(FORBIDDEN)])
def test_each_role_is_refused_each_forbidden_act_by_postgresql(
        by_migrator: GrantedDb, key: str, statement: str, sqlstate: str, words: str) -> None:
    before = database_state(by_migrator)
    with by_migrator.connect(key) as conn:
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(statement)  # type: ignore[arg-type]
    assert refused.value.sqlstate == sqlstate, refused.value
    assert words in str(refused.value), refused.value
    assert database_state(by_migrator) == before


def test_the_privileges_tested_are_counted_in_the_fault_readme() -> None:
    """tests/fault/README.md states how many privileges these tests try; the number is this."""
    refused = (len(FORBIDDEN) + len(APP_DDL) + len(APP_OFF_LIMITS) + len(OPERATOR_REFUSED)
               + len(READONLY_WRITES))
    stated = re.search(r"(\d+) privileges tested", FAULT_README.read_text(encoding="utf-8"))
    assert stated and int(stated[1]) == refused + len(ALLOWED_ACTS)


# The allowed acts the tests in this folder run AS each role (each would fail if refused).
ALLOWED_ACTS = (
    "app: read flags", "app: write background_job", "app: write the ledger tables",
    "app: insert a dead letter (ON CONFLICT DO NOTHING)", "operator: read every table",
    "operator: phasegate_dlq_inspect", "operator: phasegate_dlq_requeue",
    "operator: phasegate_dlq_discard", "readonly: read every table",
    "migrator: run every migration", "migrator: append to the audit",
    "migrator: append to the event log",
)
