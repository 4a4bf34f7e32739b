"""Least privilege of the migrations' table grants, proven by connecting AS each role.

A session fixture creates the four roles (LOGIN, password) in the test cluster. A database
at the last revision before the grants gets what Pulumi declares at database and schema level
(see ``infra/components/database.py``), is migrated to head with the roles named in the
environment, and the tests act as the roles: what must fail raises InsufficientPrivilege.
Tests that change data get a fresh database each; tests whose statements are all refused
share one per module.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from infra import ephemeral
from migrations import api
from migrations.points import HEAD
from tests.conftest import DatabaseFactory, to_dsn

DENIED = psycopg.errors.InsufficientPrivilege
LAST_WITHOUT_GRANTS = "p0009_expand_dead_letter_fk"
ROLE_KEYS = ("migrator", "app", "operator", "readonly")
ROLE_ENV = {"app": "PHASEGATE_ROLE_APP", "operator": "PHASEGATE_ROLE_OPERATOR",
            "readonly": "PHASEGATE_ROLE_READONLY"}
ALL_TABLES = ("background_job", "phasegate_flag", "phasegate_rollout_state",
              "phasegate_rollout_event", "background_dispatch_window", "background_function_run",
              "background_dead_letter", "background_job_effect", "background_operator_audit")
LEDGER_TABLES = ("background_dispatch_window", "background_function_run",
                 "background_dead_letter", "background_job_effect")


@dataclass(frozen=True)
class Roles:
    names: dict[str, str]
    password: str


@pytest.fixture(scope="session")
def roles(pg_server: ephemeral.PostgresServer) -> Iterator[Roles]:
    """The four roles, created once per session (roles are cluster-wide), dropped after."""
    names = {key: f"phasegate_{key}_test" for key in ROLE_KEYS}
    password = secrets.token_urlsafe(16)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        for name in names.values():
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)))
    yield Roles(names, password)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        for name in names.values():
            try:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            except psycopg.errors.DependentObjectsStillExist:
                pass  # a database that still holds grants; the throwaway cluster goes anyway


def pulumi_stance(admin_dsn: str, dbname: str, names: dict[str, str]) -> None:
    """What ReliabilityDatabase declares at database and schema level, for one database."""
    db = sql.Identifier(dbname)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
        for key in ("app", "operator", "readonly"):
            role = sql.Identifier(names[key])
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, role))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))


@dataclass(frozen=True)
class GrantedDb:
    url: str
    dbname: str
    roles: Roles
    server: ephemeral.PostgresServer

    def connect(self, key: str) -> psycopg.Connection:
        """An autocommit connection AS the role ``key``."""
        return psycopg.connect(self.server.dsn(self.dbname), user=self.roles.names[key],
                               password=self.roles.password, autocommit=True)


def _name_roles(monkeypatch: pytest.MonkeyPatch, names: dict[str, str]) -> None:
    for key, var in ROLE_ENV.items():
        monkeypatch.setenv(var, names[key])


def _prepare(url: str, roles: Roles, server: ephemeral.PostgresServer,
             monkeypatch: pytest.MonkeyPatch) -> GrantedDb:
    dbname = url.rsplit("/", 1)[1]
    pulumi_stance(server.dsn(dbname), dbname, roles.names)
    _name_roles(monkeypatch, roles.names)
    api.upgrade(url, "head")
    with psycopg.connect(to_dsn(url), autocommit=True) as conn:  # rows to act on
        conn.execute("INSERT INTO phasegate_flag (name, value) VALUES ('write_mode', 'dual')")
        job = conn.execute("INSERT INTO background_job (type) VALUES ('email') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO background_dead_letter (job_id, job_type, error_class, attempts) "
                      "VALUES (%s, 'email', 'TERMINAL', 5)", (job,))
        conn.execute("INSERT INTO background_operator_audit (operator, action, target_kind, outcome) "
                     "VALUES ('ann', 'inspect', 'job', 'ok')")
    return GrantedDb(url, dbname, roles, server)


@pytest.fixture
def granted(make_db: Callable[[str], str], roles: Roles, pg_server: ephemeral.PostgresServer,
            monkeypatch: pytest.MonkeyPatch) -> GrantedDb:
    """A fresh database with the grants, for tests that change it."""
    return _prepare(make_db(LAST_WITHOUT_GRANTS), roles, pg_server, monkeypatch)


@pytest.fixture(scope="module")
def shared(db_templates: DatabaseFactory, roles: Roles,
           pg_server: ephemeral.PostgresServer) -> Iterator[GrantedDb]:
    """One database with the grants for the tests whose statements are all refused."""
    template = db_templates.template(LAST_WITHOUT_GRANTS)
    dbname = f"t_grants_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(dbname), sql.Identifier(template)))
    try:
        with pytest.MonkeyPatch.context() as mp:
            yield _prepare(pg_server.sqlalchemy_url(dbname), roles, pg_server, mp)
    finally:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


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


RW = {"SELECT", "INSERT", "UPDATE", "DELETE"}


def test_catalog_holds_exactly_the_least_privilege_matrix(shared: GrantedDb) -> None:
    granted = shared
    assert privileges(granted, "app") == {
        **{t: RW for t in ("background_job", *LEDGER_TABLES)},
        "background_operator_audit": {"SELECT", "INSERT"},
        "phasegate_flag": {"SELECT"},
        "phasegate_rollout_state": set(),
        "phasegate_rollout_event": set(),
    }
    assert privileges(granted, "operator") == {
        **{t: {"SELECT"} for t in ALL_TABLES},
        "background_job": {"SELECT", "INSERT"},
        "background_operator_audit": {"SELECT", "INSERT"},
        # UPDATE on dead letters is column-level (the resolution columns), not table-level.
    }
    assert privileges(granted, "readonly") == {t: {"SELECT"} for t in ALL_TABLES}


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
    # The audit is append-only for the app by privilege, not only by its trigger.
    "UPDATE background_operator_audit SET reason = 'x'",
    "DELETE FROM background_operator_audit",
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
        conn.execute("INSERT INTO background_operator_audit (operator, action, target_kind, outcome) "
                     "VALUES ('app', 'reconcile', 'run', 'ok')")
        conn.execute("DELETE FROM background_function_run WHERE run_key = 'f:r:1'")
    with psycopg.connect(to_dsn(granted.url)) as admin:
        assert admin.execute("SELECT status FROM background_job WHERE id = %s", (job,)).fetchone() == ("RUNNING",)
        assert admin.execute("SELECT count(*) FROM background_operator_audit").fetchone() == (2,)
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
)


def test_operator_cannot_drop_alter_delete_or_rewrite(shared: GrantedDb) -> None:
    assert not_refused(shared, "operator", OPERATOR_REFUSED) == []


def test_operator_reads_everything_and_performs_dead_letter_actions(granted: GrantedDb) -> None:
    with granted.connect("operator") as conn:
        for table in ALL_TABLES:
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        with conn.transaction():  # requeue: a fresh job, the letter resolved, an audit row
            dl, job_type = conn.execute(
                "SELECT id, job_type FROM background_dead_letter WHERE status = 'OPEN' FOR UPDATE"
            ).fetchone()
            new_job = conn.execute("INSERT INTO background_job (type) VALUES (%s) RETURNING id",
                                   (job_type,)).fetchone()[0]
            conn.execute(
                "UPDATE background_dead_letter SET status = 'REQUEUED', resolved_at = now(), "
                "resolved_by = 'ann', resolution_reason = 'fixed', requeued_job_id = %s WHERE id = %s",
                (new_job, dl))
            conn.execute("INSERT INTO background_operator_audit (operator, action, target_kind, "
                         "target_id, outcome) VALUES ('ann', 'requeue', 'dead_letter', %s, 'ok')",
                         (str(dl),))
    with psycopg.connect(to_dsn(granted.url)) as admin:
        assert admin.execute("SELECT status, requeued_job_id FROM background_dead_letter").fetchone() == (
            "REQUEUED", new_job)
        assert admin.execute("SELECT count(*) FROM background_operator_audit "
                             "WHERE action = 'requeue'").fetchone() == (1,)


# A column of each table, for an UPDATE that would be valid if it were allowed.
SOME_COLUMN = {
    "background_job": "type", "phasegate_flag": "value", "phasegate_rollout_state": "status",
    "phasegate_rollout_event": "actor", "background_dispatch_window": "source",
    "background_function_run": "function_name", "background_dead_letter": "job_type",
    "background_job_effect": "run_key", "background_operator_audit": "reason",
}


def test_readonly_reads_everything_but_cannot_write(shared: GrantedDb) -> None:
    with shared.connect("readonly") as conn:
        for table in ALL_TABLES:
            conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(table)))
    writes = []
    for table in ALL_TABLES:
        t, c = sql.Identifier(table), sql.Identifier(SOME_COLUMN[table])
        for stmt in (sql.SQL("INSERT INTO {} DEFAULT VALUES").format(t),
                     sql.SQL("UPDATE {} SET {} = {}").format(t, c, c),
                     sql.SQL("DELETE FROM {}").format(t), sql.SQL("TRUNCATE {}").format(t)):
            writes.append(stmt.as_string())
    assert len(writes) == 4 * len(ALL_TABLES)
    assert not_refused(shared, "readonly", writes) == []


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
    assert api.current(url) == HEAD
    assert acl is None or "no_such_role" not in acl


def test_role_names_are_quoted_identifiers(make_db: Callable[[str], str], pg_server: ephemeral.PostgresServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    odd = 'Odd "app"; DROP TABLE background_job; --'
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(odd)))
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(odd)))
    url = make_db(LAST_WITHOUT_GRANTS)
    monkeypatch.setenv("PHASEGATE_ROLE_APP", odd)
    try:
        api.upgrade(url, "head")
        with psycopg.connect(to_dsn(url)) as conn:
            assert conn.execute("SELECT has_table_privilege(%s, 'background_job', 'INSERT'), "
                                "has_table_privilege(%s, 'phasegate_rollout_state', 'SELECT')",
                                (odd, odd)).fetchone() == (True, False)
        api.downgrade(url, LAST_WITHOUT_GRANTS)
    finally:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(odd)))


def test_migrator_runs_every_migration_without_superuser(
    roles: Roles, pg_server: ephemeral.PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migrator owns the database (hence, on PostgreSQL 15, its public schema)."""
    dbname = f"t_mig_{secrets.token_hex(4)}"
    migrator = roles.names["migrator"]
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(dbname), sql.Identifier(migrator)))
    try:
        _name_roles(monkeypatch, roles.names)
        base = pg_server.sqlalchemy_url(dbname)
        url = base.replace(f"//{pg_server.user}@", f"//{migrator}:{roles.password}@", 1)
        assert migrator in url
        api.upgrade(url, "head")
        with psycopg.connect(pg_server.dsn(dbname)) as conn:
            owners = {r[0] for r in conn.execute(
                "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
            assert owners == {migrator}
            assert conn.execute("SELECT has_table_privilege(%s, 'background_job', 'DELETE')",
                                (roles.names["app"],)).fetchone() == (True,)
    finally:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
