"""RoleSetting: ``ALTER ROLE r IN DATABASE d SET name = value``, as a Pulumi dynamic resource.

Why a dynamic resource: pulumi-postgresql's ``Role`` manages ``statement_timeout`` but has no
``lock_timeout`` (nor any other per-role setting), and the migrator must carry its own
``lock_timeout`` so that DDL run outside ``migrations/safe_ddl.py`` still gives up quickly
instead of stalling the application behind a queued ACCESS EXCLUSIVE lock.

The provider talks to the server with the same admin connection as the postgresql provider.
Its SQL is composed with ``psycopg.sql``; only the settings listed in ``ALLOWED_SETTINGS``
can be managed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import pulumi
from psycopg import sql
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

ALLOWED_SETTINGS = frozenset(
    {"lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout"}
)
# Changing any of these means a different (role, database, setting) triple: replace.
_IDENTITY = ("role", "database", "setting")


def _connect(props: dict[str, Any]) -> psycopg.Connection:
    return psycopg.connect(
        host=props["admin_host"],
        port=int(props["admin_port"]),
        user=props["admin_user"],
        password=props.get("admin_password") or None,
        dbname=props["admin_database"],
        sslmode=props["admin_sslmode"],
        autocommit=True,
        connect_timeout=15,
    )


def _check_setting(name: str) -> str:
    if name not in ALLOWED_SETTINGS:
        raise ValueError(f"unsupported role setting {name!r}; allowed: {sorted(ALLOWED_SETTINGS)}")
    return name


def apply_setting(props: dict[str, Any]) -> None:
    """``ALTER ROLE .. IN DATABASE .. SET setting = value`` with the admin connection."""
    stmt = sql.SQL("ALTER ROLE {} IN DATABASE {} SET {} = {}").format(
        sql.Identifier(props["role"]),
        sql.Identifier(props["database"]),
        sql.Identifier(_check_setting(props["setting"])),
        sql.Literal(str(props["value"])),
    )
    with _connect(props) as conn:
        conn.execute(stmt)


def reset_setting(props: dict[str, Any]) -> None:
    """``ALTER ROLE .. IN DATABASE .. RESET setting``; a role or database already gone is fine."""
    stmt = sql.SQL("ALTER ROLE {} IN DATABASE {} RESET {}").format(
        sql.Identifier(props["role"]),
        sql.Identifier(props["database"]),
        sql.Identifier(_check_setting(props["setting"])),
    )
    with _connect(props) as conn:
        try:
            conn.execute(stmt)
        except (psycopg.errors.UndefinedObject, psycopg.errors.InvalidCatalogName):
            pass


class RoleSettingProvider(ResourceProvider):
    """CRUD for one per-role, per-database setting."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        apply_setting(props)
        return CreateResult(f"{props['role']}@{props['database']}/{props['setting']}", dict(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k, v in news.items() if olds.get(k) != v and not k.startswith("__")]
        replaces = [k for k in changed if k in _IDENTITY]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        apply_setting(news)
        return UpdateResult(dict(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        reset_setting(props)


@dataclass(frozen=True)
class RoleSettingArgs:
    """Which setting of which role in which database, and how to reach the server."""

    role: pulumi.Input[str]
    database: pulumi.Input[str]
    setting: str
    value: pulumi.Input[str]
    admin_host: pulumi.Input[str]
    admin_port: pulumi.Input[int]
    admin_user: pulumi.Input[str]
    admin_password: pulumi.Input[str] | None
    admin_database: pulumi.Input[str]
    admin_sslmode: pulumi.Input[str]

    def __post_init__(self) -> None:
        _check_setting(self.setting)


class RoleSetting(Resource, module="phasegate", name="RoleSetting"):
    """One ``ALTER ROLE .. IN DATABASE .. SET``; the admin password is kept secret in state."""

    def __init__(
        self, name: str, args: RoleSettingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "role": args.role,
            "database": args.database,
            "setting": args.setting,
            "value": args.value,
            "admin_host": args.admin_host,
            "admin_port": args.admin_port,
            "admin_user": args.admin_user,
            "admin_password": pulumi.Output.secret(args.admin_password or ""),
            "admin_database": args.admin_database,
            "admin_sslmode": args.admin_sslmode,
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=["admin_password"])
        super().__init__(
            RoleSettingProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret)
        )
