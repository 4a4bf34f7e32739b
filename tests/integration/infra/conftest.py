"""Databases with the roles ``infra/`` declares, for tests that connect AS each role.

A session fixture creates the roles in the test cluster (roles are cluster-wide): the four
LOGIN roles, the NOLOGIN ``owner`` of the append-only logs and the NOINHERIT bridge through
which the migrator is a member of it, as ``infra/components/database.py`` declares them. A
database gets what Pulumi declares at database and schema level and is migrated to head with
the roles named in the environment, either by the test cluster's superuser (``granted``,
``shared``) or by the migrator itself, in a database the owner role owns as Pulumi makes it
(``by_migrator``, ``by_migrator_fresh``). Each is seeded with rows to act on: an OPEN dead
letter, a REQUEUED one (requeued through the function), an audit row and a rollout event.
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
from tests.conftest import DatabaseFactory, to_dsn

LAST_WITHOUT_GRANTS = "p0009_expand_dead_letter_fk"
LOGIN_KEYS = ("migrator", "app", "operator", "readonly")
ROLE_ENV = {"app": "PHASEGATE_ROLE_APP", "operator": "PHASEGATE_ROLE_OPERATOR",
            "readonly": "PHASEGATE_ROLE_READONLY", "owner": "PHASEGATE_ROLE_OWNER"}


@dataclass(frozen=True)
class Roles:
    names: dict[str, str]  # migrator, app, operator, readonly, owner, bridge
    password: str


@pytest.fixture(scope="session")
def roles(pg_server: ephemeral.PostgresServer) -> Iterator[Roles]:
    """The roles, created once per session, dropped after."""
    names = {key: f"phasegate_{key}_test" for key in (*LOGIN_KEYS, "owner", "bridge")}
    password = secrets.token_urlsafe(16)
    ident = {key: sql.Identifier(name) for key, name in names.items()}
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        for key in (*LOGIN_KEYS, "owner", "bridge"):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                  (names[key],)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            attrs = {"owner": "NOLOGIN", "bridge": "NOLOGIN NOINHERIT"}.get(
                key, "LOGIN PASSWORD {}")
            conn.execute(sql.SQL(f"{verb} ROLE {{}} {attrs}").format(
                ident[key], sql.Literal(password)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(ident["owner"], ident["bridge"]))
        conn.execute(sql.SQL("GRANT {} TO {}").format(ident["bridge"], ident["migrator"]))
    yield Roles(names, password)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        for name in names.values():
            try:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            except psycopg.errors.DependentObjectsStillExist:
                pass  # a database that still holds grants; the throwaway cluster goes anyway


def pulumi_stance(admin_dsn: str, dbname: str, names: dict[str, str]) -> None:
    """What ReliabilityDatabase declares at database and schema level, for one database (whose
    owner, and so on PostgreSQL 15 the owner of its public schema, the caller chose)."""
    db = sql.Identifier(dbname)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
        for key in LOGIN_KEYS:
            role = sql.Identifier(names[key])
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, role))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(
            sql.Identifier(names["migrator"])))
        # Where the database is not the owner's (the superuser's databases), the owner still
        # needs CREATE to be handed the logs (ALTER TABLE ... OWNER TO checks it).
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(
            sql.Identifier(names["owner"])))


@dataclass(frozen=True)
class GrantedDb:
    url: str  # the superuser's SQLAlchemy URL
    dbname: str
    roles: Roles
    server: ephemeral.PostgresServer

    def connect(self, key: str) -> psycopg.Connection:
        """An autocommit connection AS the role ``key``; ``owner`` (NOLOGIN) is the migrator
        after ``SET ROLE``, the only way anyone becomes it."""
        login = "migrator" if key == "owner" else key
        conn = psycopg.connect(self.server.dsn(self.dbname), user=self.roles.names[login],
                               password=self.roles.password, autocommit=True)
        if key == "owner":
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.roles.names["owner"])))
        return conn

    def url_as(self, key: str) -> str:
        """A SQLAlchemy URL that logs in as the role ``key``."""
        return self.url.replace(f"//{self.server.user}@",
                                f"//{self.roles.names[key]}:{self.roles.password}@", 1)

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(to_dsn(self.url), autocommit=True)


def name_roles(monkeypatch: pytest.MonkeyPatch, names: dict[str, str]) -> None:
    for key, var in ROLE_ENV.items():
        monkeypatch.setenv(var, names[key])


SEED = (
    "INSERT INTO phasegate_flag (name, value) VALUES ('write_mode', 'dual')",
    "INSERT INTO background_job (type, payload, status) VALUES "
    "('email', '{\"to\": \"a@example.com\"}', 'FAILED'), ('sms', '{\"to\": \"+1\"}', 'FAILED')",
    "INSERT INTO background_dead_letter (job_id, job_type, payload, error_class, attempts) "
    "SELECT id, type, payload, 'TERMINAL', 5 FROM background_job ORDER BY id",
    "SELECT * FROM phasegate_dlq_requeue((SELECT max(id) FROM background_dead_letter), 'seed', 'x')",
    "INSERT INTO background_operator_audit (operator, action, target_kind, outcome) "
    "VALUES ('ann', 'inspect', 'job', 'ok')",
    "INSERT INTO phasegate_rollout_event (rollout_id, phase, event, actor) "
    "VALUES ('r1', 'expand', 'started', 'ann')",
)


def _seed(url: str) -> None:
    with psycopg.connect(to_dsn(url), autocommit=True) as conn:
        for stmt in SEED:
            conn.execute(stmt)


def _prepare(url: str, roles: Roles, server: ephemeral.PostgresServer,
             monkeypatch: pytest.MonkeyPatch) -> GrantedDb:
    dbname = url.rsplit("/", 1)[1]
    pulumi_stance(server.dsn(dbname), dbname, roles.names)
    name_roles(monkeypatch, roles.names)
    api.upgrade(url, "head")
    _seed(url)
    return GrantedDb(url, dbname, roles, server)


@pytest.fixture
def granted(make_db: Callable[[str], str], roles: Roles, pg_server: ephemeral.PostgresServer,
            monkeypatch: pytest.MonkeyPatch) -> GrantedDb:
    """A fresh database with the grants (migrated by the superuser), for tests that change it."""
    return _prepare(make_db(LAST_WITHOUT_GRANTS), roles, pg_server, monkeypatch)


def _clone(server: ephemeral.PostgresServer, template: str, prefix: str) -> str:
    dbname = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(dbname), sql.Identifier(template)))
    return dbname


def drop(server: ephemeral.PostgresServer, dbname: str) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


@pytest.fixture(scope="module")
def shared(db_templates: DatabaseFactory, roles: Roles,
           pg_server: ephemeral.PostgresServer) -> Iterator[GrantedDb]:
    """One superuser-migrated database for the tests whose statements are all refused."""
    dbname = _clone(pg_server, db_templates.template(LAST_WITHOUT_GRANTS), "t_grants")
    try:
        with pytest.MonkeyPatch.context() as mp:
            yield _prepare(pg_server.sqlalchemy_url(dbname), roles, pg_server, mp)
    finally:
        drop(pg_server, dbname)


def migrated_by_migrator(roles: Roles, server: ephemeral.PostgresServer,
                         monkeypatch: pytest.MonkeyPatch, point: str = "head") -> GrantedDb:
    """A database as Pulumi creates it (owned by the owner role, so is its public schema),
    migrated by the migrator itself: the tables are its own, except the two logs p0014 hands
    to the owner role. Seeded only at head (the seed requeues through p0014's function). The
    caller drops it."""
    dbname = f"t_mig_{secrets.token_hex(4)}"
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(dbname), sql.Identifier(roles.names["owner"])))
    pulumi_stance(server.dsn(dbname), dbname, roles.names)
    name_roles(monkeypatch, roles.names)
    db = GrantedDb(server.sqlalchemy_url(dbname), dbname, roles, server)
    api.upgrade(db.url_as("migrator"), point)
    if point == "head":
        _seed(db.url)
    return db


@pytest.fixture(scope="module")
def by_migrator(roles: Roles, pg_server: ephemeral.PostgresServer) -> Iterator[GrantedDb]:
    """Migrated by the migrator, shared by the tests whose statements are all refused."""
    with pytest.MonkeyPatch.context() as mp:
        db = migrated_by_migrator(roles, pg_server, mp)
        try:
            yield db
        finally:
            drop(pg_server, db.dbname)


@pytest.fixture
def by_migrator_fresh(roles: Roles, pg_server: ephemeral.PostgresServer,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[GrantedDb]:
    """Migrated by the migrator, for one test that changes it."""
    db = migrated_by_migrator(roles, pg_server, monkeypatch)
    try:
        yield db
    finally:
        drop(pg_server, db.dbname)
