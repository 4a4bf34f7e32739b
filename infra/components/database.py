"""ReliabilityDatabase: the database, four least-privilege login roles, the NOLOGIN owner of the
append-only logs, and what Pulumi grants.

The split of grants (see ``infra/README.md``):

* **Pulumi (here)**: the roles and their passwords, limits and timeouts; the database and
  the schema, owned by the NOLOGIN ``owner`` (see below); database-level privileges (only our
  roles may CONNECT); schema-level privileges (only the migrator may CREATE, the others get
  USAGE); default privileges so that every table the migrator creates later is readable by
  ``operator`` and ``readonly`` the moment it exists.
* **Migrations** (``migrations/versions/p0011_expand_grants.py`` and every later revision
  that creates a table): table-level grants, because only the revision that creates a table
  knows which role may write it. ``app`` gets no default privileges on purpose: a new table
  is not writable by the application until a revision says so.
* **The owner** (``owner``, NOLOGIN) owns the database, the schema and, once
  ``p0014_expand_ledger_integrity`` hands them over, ``phasegate_rollout_event`` and
  ``background_operator_audit``: so the role that runs rollouts (the migrator) cannot
  TRUNCATE the logs, DISABLE their triggers, or DROP them (a schema's or a database's owner
  may drop anything in it); it owns the tables it creates and nothing around them. ``ALTER TABLE ... OWNER TO`` needs the migrator to be a member of the owner, and
  PostgreSQL 15 has no per-grant INHERIT option; so the migrator is a member through a
  NOINHERIT NOLOGIN bridge role (``<owner>_noinherit``): membership reaches the owner (enough
  for OWNER TO, and for an explicit ``SET ROLE``), privileges stop at the bridge (the
  migrator does not hold the owner's rights implicitly), and the migrator's other
  memberships keep inheriting. See ``infra/README.md`` for what that does and does not allow.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pulumi
import pulumi_random as random

from infra.components.role_setting import RoleSetting, RoleSettingArgs
from phasegate.errors import ConfigError

with warnings.catch_warnings():
    # pulumi_postgresql's __init__ imports its deprecated ``DefaultPrivileg`` alias, which
    # warns at import time; the test suite runs with warnings as errors.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_postgresql as postgresql

# Roles that log in (a password, a DSN each).
LOGIN_KEYS = ("migrator", "app", "operator", "readonly")
# ... and the NOLOGIN owner of the append-only logs.
ROLE_KEYS = (*LOGIN_KEYS, "owner")
# The bridge role's name is the owner's plus this: it must fit in 63 bytes too.
BRIDGE_SUFFIX = "_noinherit"
# Roles that log in to use the schema the migrator owns.
USER_KEYS = ("app", "operator", "readonly")
# Roles that read every table, including tables created after provisioning.
READ_ALL_KEYS = ("operator", "readonly")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Lower-case unquoted identifiers only: role names also appear in DSNs and env vars.
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # matched whole: no trailing newline


def check_identifier(value: str, what: str) -> str:
    """``value`` if it is a plain lower-case PostgreSQL identifier, else ConfigError."""
    if not isinstance(value, str) or not _IDENT.fullmatch(value):
        raise ConfigError(f"{what} must be a lower-case identifier (a-z, 0-9, _), not {value!r}")
    return value


@dataclass(frozen=True)
class RoleSpec:
    """One login role: its name and its limits."""

    name: str
    connection_limit: int
    statement_timeout_ms: int  # 0 = no limit

    def __post_init__(self) -> None:
        check_identifier(self.name, "role name")
        if self.connection_limit < -1 or self.statement_timeout_ms < 0:
            raise ConfigError(f"role {self.name}: limits must not be negative")


def default_roles() -> dict[str, RoleSpec]:
    """Names default to the role keys; limits sized for one app fleet and a few humans."""
    return {
        # Long DDL (VALIDATE, CREATE INDEX CONCURRENTLY) and backfill batches run as migrator.
        "migrator": RoleSpec("migrator", 5, 30 * 60 * 1000),
        "app": RoleSpec("app", 100, 30 * 1000),
        "operator": RoleSpec("operator", 5, 60 * 1000),
        "readonly": RoleSpec("readonly", 10, 60 * 1000),
        # NOLOGIN: the limits do not apply. The name is the migrations' default
        # (PHASEGATE_ROLE_OWNER).
        "owner": RoleSpec("phasegate_owner", 0, 0),
    }


@dataclass(frozen=True)
class AdminConnection:
    """The admin connection to an existing server (a managed one, typically)."""

    host: str
    password: pulumi.Input[str] | None
    port: int = 5432
    username: str = "postgres"
    sslmode: str = "require"
    superuser: bool = False  # False on managed servers (RDS, Cloud SQL, Azure)
    database: str = "postgres"  # the maintenance database the admin connects to

    def __post_init__(self) -> None:
        if self.sslmode not in SSL_MODES:
            raise ConfigError(f"sslmode must be one of {', '.join(SSL_MODES)}, not {self.sslmode!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1-65535, not {self.port}")


@dataclass(frozen=True)
class ReliabilityDatabaseArgs:
    """Everything ReliabilityDatabase declares, typed and validated up front."""

    admin: AdminConnection
    database: str = "phasegate"
    schema: str = "public"
    connection_limit: int = 200
    roles: dict[str, RoleSpec] = field(default_factory=default_roles)
    migrator_lock_timeout_ms: int = 5000
    password_length: int = 32
    dsn_host: str | None = None  # the host clients use, when it differs from the admin's
    drop_cascade_on_destroy: bool = False  # True only where destroy may drop the data

    def __post_init__(self) -> None:
        check_identifier(self.database, "database name")
        check_identifier(self.schema, "schema name")
        if set(self.roles) != set(ROLE_KEYS):
            raise ConfigError(f"roles must be exactly {', '.join(ROLE_KEYS)}")
        names = [spec.name for spec in self.roles.values()]
        names.append(self.roles["owner"].name + BRIDGE_SUFFIX)
        if len(set(names)) != len(names):
            raise ConfigError(f"role names must be distinct: {', '.join(names)}")
        if len(names[-1]) > 63:
            raise ConfigError(f"the owner role's name must leave room for {BRIDGE_SUFFIX!r} "
                              "(at most 53 characters)")
        if self.password_length < 20:
            raise ConfigError("password_length must be at least 20")
        if self.migrator_lock_timeout_ms <= 0:
            raise ConfigError("migrator_lock_timeout_ms must be positive")


# No role gets CREATEDB, CREATEROLE, SUPERUSER, REPLICATION or BYPASSRLS.
_NO_ELEVATED_ATTRIBUTES: dict[str, Any] = {
    "create_database": False, "create_role": False, "superuser": False, "replication": False,
    "bypass_row_level_security": False}


def postgres_dsn(user: str, password: str, host: str, port: int, dbname: str, sslmode: str) -> str:
    """A libpq URL; user, password and database are percent-encoded."""
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
        f"{quote(dbname, safe='')}?sslmode={sslmode}"
    )


class ReliabilityDatabase(pulumi.ComponentResource):
    """The reliability ledger's database on an existing server, with least-privilege roles."""

    passwords: dict[str, pulumi.Output[str]]
    roles: dict[str, postgresql.Role]
    dsns: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: ReliabilityDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("phasegate:infra:ReliabilityDatabase", name, None, opts)
        self.args = args
        admin = args.admin
        self.provider = postgresql.Provider(
            f"{name}-admin",
            host=admin.host,
            port=admin.port,
            username=admin.username,
            password=pulumi.Output.secret(admin.password) if admin.password is not None else None,
            sslmode=admin.sslmode,
            superuser=admin.superuser,
            database=admin.database,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.passwords = {key: self._password(name, key) for key in LOGIN_KEYS}
        self.roles = {"owner": self._owner_role(name, child)}
        self.owner_bridge = self._owner_bridge(name, child)
        self.roles.update({key: self._role(name, key, child) for key in LOGIN_KEYS})
        # The database and the schema belong to the owner, not to the migrator: their owner may
        # DROP any table in them (or the whole database), the append-only logs included.
        owner = self.roles["owner"]
        self.database = postgresql.Database(
            f"{name}-database",
            name=args.database,
            owner=owner.name,
            connection_limit=args.connection_limit,
            opts=child,
        )
        self.schema = postgresql.Schema(
            f"{name}-schema",
            name=args.schema,
            database=self.database.name,
            owner=owner.name,
            if_not_exists=True,  # 'public' already exists in a new database
            drop_cascade=args.drop_cascade_on_destroy,
            opts=child,
        )
        self.grants = self._database_grants(name, child) + self._schema_grants(name, child)
        self.default_privileges = self._default_privileges(name, child)
        self.migrator_lock_timeout = self._migrator_lock_timeout(name)
        self.dsns = {key: self._dsn(key) for key in LOGIN_KEYS}
        self.register_outputs({
            "database": self.database.name,
            "role_names": {key: spec.name for key, spec in args.roles.items()},
            **{f"{key}_dsn": dsn for key, dsn in self.dsns.items()},
        })

    def _password(self, name: str, key: str) -> pulumi.Output[str]:
        # Letters and digits only: safe in URLs and DSNs without escaping; 32 of them are
        # ~190 bits. RandomPassword marks ``result`` secret; Output.secret makes it explicit.
        pw = random.RandomPassword(
            f"{name}-{key}-password",
            length=self.args.password_length,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return pulumi.Output.secret(pw.result)

    def _role(self, name: str, key: str, child: pulumi.ResourceOptions) -> postgresql.Role:
        spec = self.args.roles[key]
        return postgresql.Role(
            f"{name}-role-{key}",
            name=spec.name,
            login=True,
            password=self.passwords[key],
            connection_limit=spec.connection_limit,
            statement_timeout=spec.statement_timeout_ms,
            # Only the migrator is a member of anything: of the bridge, to hand the logs over.
            roles=[self.owner_bridge.name] if key == "migrator" else [],
            **_NO_ELEVATED_ATTRIBUTES,
            opts=child,
        )

    def _owner_role(self, name: str, child: pulumi.ResourceOptions) -> postgresql.Role:
        """NOLOGIN owner of the append-only logs: nobody connects as it."""
        return postgresql.Role(f"{name}-role-owner", name=self.args.roles["owner"].name,
                               login=False, **_NO_ELEVATED_ATTRIBUTES, opts=child)

    def _owner_bridge(self, name: str, child: pulumi.ResourceOptions) -> postgresql.Role:
        """NOINHERIT member of the owner: its members reach the owner by membership (OWNER TO,
        SET ROLE) but do not inherit the owner's privileges (PostgreSQL 15 reads INHERIT off
        the member role, so the bridge carries it instead of the migrator)."""
        return postgresql.Role(f"{name}-role-owner-bridge",
                               name=self.args.roles["owner"].name + BRIDGE_SUFFIX, login=False,
                               inherit=False, roles=[self.roles["owner"].name],
                               **_NO_ELEVATED_ATTRIBUTES, opts=child)

    def _database_grants(self, name: str, child: pulumi.ResourceOptions) -> list[postgresql.Grant]:
        # An empty privilege list revokes: PUBLIC loses the default CONNECT and TEMPORARY.
        grants = [postgresql.Grant(
            f"{name}-db-revoke-public", database=self.database.name, role="public",
            object_type="database", privileges=[], opts=child,
        )]
        for key in LOGIN_KEYS:  # the migrator too: it does not own the database
            grants.append(postgresql.Grant(
                f"{name}-db-connect-{key}", database=self.database.name,
                role=self.roles[key].name, object_type="database", privileges=["CONNECT"],
                opts=child,
            ))
        return grants

    def _schema_grants(self, name: str, child: pulumi.ResourceOptions) -> list[postgresql.Grant]:
        # Only the migrator may CREATE in the schema (it owns what it creates): no DDL for the
        # others. It does not own the schema, so it cannot drop what it did not create.
        grants = [postgresql.Grant(
            f"{name}-schema-revoke-public", database=self.database.name, schema=self.schema.name,
            role="public", object_type="schema", privileges=[], opts=child,
        )]
        for key in USER_KEYS:
            grants.append(postgresql.Grant(
                f"{name}-schema-usage-{key}", database=self.database.name,
                schema=self.schema.name, role=self.roles[key].name, object_type="schema",
                privileges=["USAGE"], opts=child,
            ))
        grants.append(postgresql.Grant(
            f"{name}-schema-create-migrator", database=self.database.name,
            schema=self.schema.name, role=self.roles["migrator"].name, object_type="schema",
            privileges=["CREATE", "USAGE"], opts=child,
        ))
        return grants

    def _default_privileges(
        self, name: str, child: pulumi.ResourceOptions
    ) -> list[postgresql.DefaultPrivileges]:
        return [
            postgresql.DefaultPrivileges(
                f"{name}-defaults-{key}", database=self.database.name, schema=self.schema.name,
                owner=self.roles["migrator"].name, role=self.roles[key].name,
                object_type="table", privileges=["SELECT"], opts=child,
            )
            for key in READ_ALL_KEYS
        ]

    def _migrator_lock_timeout(self, name: str) -> RoleSetting:
        admin = self.args.admin
        return RoleSetting(
            f"{name}-migrator-lock-timeout",
            RoleSettingArgs(
                role=self.roles["migrator"].name,
                database=self.database.name,
                setting="lock_timeout",
                value=str(self.args.migrator_lock_timeout_ms),
                admin_host=admin.host,
                admin_port=admin.port,
                admin_user=admin.username,
                admin_password=admin.password,
                admin_database=admin.database,
                admin_sslmode=admin.sslmode,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.database]),
        )

    def _dsn(self, key: str) -> pulumi.Output[str]:
        admin = self.args.admin
        host = self.args.dsn_host or admin.host
        dsn = pulumi.Output.all(self.roles[key].name, self.passwords[key], self.database.name).apply(
            lambda v: postgres_dsn(v[0], v[1], host, admin.port, v[2], admin.sslmode)
        )
        return pulumi.Output.secret(dsn)
