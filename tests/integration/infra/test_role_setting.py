"""The RoleSetting dynamic provider's SQL against a real PostgreSQL (no Pulumi engine needed:
its create / update / delete are plain methods)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from infra import ephemeral
from infra.components.role_setting import RoleSettingArgs, RoleSettingProvider


@pytest.fixture
def role_and_db(pg_server: ephemeral.PostgresServer) -> Iterator[tuple[str, str]]:
    role, db = f"phasegate_rs_{secrets.token_hex(3)}", f"t_rs_{secrets.token_hex(3)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(role)))
    yield role, db
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _props(server: ephemeral.PostgresServer, role: str, db: str, value: str) -> dict[str, object]:
    return {"role": role, "database": db, "setting": "lock_timeout", "value": value,
            "admin_host": server.host, "admin_port": server.port, "admin_user": server.user,
            "admin_password": "", "admin_database": "postgres", "admin_sslmode": "disable"}


def _session_lock_timeout(server: ephemeral.PostgresServer, role: str, db: str) -> str:
    with psycopg.connect(server.dsn(db), user=role) as conn:
        return conn.execute("SHOW lock_timeout").fetchone()[0]


def test_create_update_delete_manage_the_roles_lock_timeout(
    pg_server: ephemeral.PostgresServer, role_and_db: tuple[str, str]
) -> None:
    role, db = role_and_db
    provider = RoleSettingProvider()
    created = provider.create(_props(pg_server, role, db, "1234"))
    assert created.id == f"{role}@{db}/lock_timeout"
    assert _session_lock_timeout(pg_server, role, db) == "1234ms"
    provider.update(created.id, created.outs, _props(pg_server, role, db, "2500"))
    assert _session_lock_timeout(pg_server, role, db) == "2500ms"
    provider.delete(created.id, _props(pg_server, role, db, "2500"))
    assert _session_lock_timeout(pg_server, role, db) == "0"


def test_diff_replaces_on_a_new_role_and_updates_on_a_new_value() -> None:
    old = {"role": "a", "database": "d", "setting": "lock_timeout", "value": "1"}
    provider = RoleSettingProvider()
    assert provider.diff("x", old, {**old, "value": "2"}).replaces == []
    assert provider.diff("x", old, {**old, "role": "b"}).replaces == ["role"]
    assert provider.diff("x", old, dict(old)).changes is False


def test_only_known_settings_are_accepted() -> None:
    with pytest.raises(ValueError, match="unsupported role setting"):
        RoleSettingArgs(role="r", database="d", setting="search_path; DROP", value="x",
                        admin_host="h", admin_port=1, admin_user="u", admin_password=None,
                        admin_database="postgres", admin_sslmode="disable")
