"""Stack config (namespace ``phasegate``) -> the components' typed arguments.

Every key, its default and its meaning are listed in ``infra/README.md``. Secrets
(``pgAdminPassword``, ``redisUrl``) are read with ``get_secret`` so they stay Outputs marked
secret all the way to the resources that use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.components.database import (
    ROLE_KEYS,
    AdminConnection,
    ReliabilityDatabaseArgs,
    RoleSpec,
    default_roles,
)
from infra.components.redis_store import DockerRedisArgs, ReliabilityRedisArgs
from phasegate.errors import ConfigError

NAMESPACE = "phasegate"
# Stacks whose resources are protected unless ``phasegate:protect`` says otherwise.
PRODUCTION_STACKS = frozenset({"prod", "production"})
_ROLE_FIELDS = {"name", "connectionLimit", "statementTimeoutMs"}
_OWNER_FIELDS = {"name"}  # NOLOGIN: no limits to set
# Every key the program reads; Pulumi ignores unknown keys, so a test holds the stack files
# to this list (a typo in a stack file would otherwise silently fall back to a default).
CONFIG_KEYS = frozenset({
    "pgHost", "pgPort", "pgAdminUser", "pgAdminPassword", "pgSslMode", "pgSuperuser",
    "pgMaintenanceDb", "pgDsnHost", "database", "schema", "databaseConnectionLimit", "roles",
    "migratorLockTimeoutMs", "destroyDropsData", "protect", "redisUrl", "redisImage",
    "redisPort", "redisBindIp", "redisHost", "redisUser", "redisMaxmemory", "redisKeyPatterns",
    "redisContainerName", "dockerHost",
})


@dataclass(frozen=True)
class ProgramSettings:
    """What the program declares for one stack."""

    database: ReliabilityDatabaseArgs
    redis: ReliabilityRedisArgs
    protect: bool


def _roles(raw: Any) -> dict[str, RoleSpec]:
    roles = default_roles()
    if raw is None:
        return roles
    if not isinstance(raw, dict) or not set(raw) <= set(ROLE_KEYS):
        raise ConfigError(f"phasegate:roles must be an object with keys among {', '.join(ROLE_KEYS)}")
    for key, spec in raw.items():
        fields = _OWNER_FIELDS if key == "owner" else _ROLE_FIELDS
        if not isinstance(spec, dict) or not set(spec) <= fields:
            raise ConfigError(f"phasegate:roles.{key} takes {', '.join(sorted(fields))}")
        base = roles[key]
        roles[key] = RoleSpec(
            name=str(spec.get("name", base.name)),
            connection_limit=int(spec.get("connectionLimit", base.connection_limit)),
            statement_timeout_ms=int(spec.get("statementTimeoutMs", base.statement_timeout_ms)),
        )
    return roles


def database_args(cfg: pulumi.Config) -> ReliabilityDatabaseArgs:
    admin = AdminConnection(
        host=cfg.require("pgHost"),
        password=cfg.get_secret("pgAdminPassword"),
        port=cfg.get_int("pgPort") or 5432,
        username=cfg.get("pgAdminUser") or "postgres",
        sslmode=cfg.get("pgSslMode") or "require",
        superuser=bool(cfg.get_bool("pgSuperuser")),
        database=cfg.get("pgMaintenanceDb") or "postgres",
    )
    return ReliabilityDatabaseArgs(
        admin=admin,
        database=cfg.get("database") or "phasegate",
        schema=cfg.get("schema") or "public",
        connection_limit=cfg.get_int("databaseConnectionLimit") or 200,
        roles=_roles(cfg.get_object("roles")),
        migrator_lock_timeout_ms=cfg.get_int("migratorLockTimeoutMs") or 5000,
        dsn_host=cfg.get("pgDsnHost"),
        drop_cascade_on_destroy=bool(cfg.get_bool("destroyDropsData")),
    )


def redis_args(cfg: pulumi.Config) -> ReliabilityRedisArgs:
    managed = cfg.get_secret("redisUrl")
    if managed is not None:
        return ReliabilityRedisArgs(managed_url=managed)
    patterns = cfg.get_object("redisKeyPatterns") or ["*"]
    if not isinstance(patterns, list):
        raise ConfigError("phasegate:redisKeyPatterns must be a list of key globs")
    defaults = DockerRedisArgs()
    return ReliabilityRedisArgs(docker=DockerRedisArgs(
        image=cfg.get("redisImage") or defaults.image,
        host_port=cfg.get_int("redisPort") or defaults.host_port,
        bind_ip=cfg.get("redisBindIp") or defaults.bind_ip,
        public_host=cfg.get("redisHost") or defaults.public_host,
        username=cfg.get("redisUser") or defaults.username,
        maxmemory=cfg.get("redisMaxmemory") or defaults.maxmemory,
        key_patterns=tuple(str(p) for p in patterns),
        container_name=cfg.get("redisContainerName") or defaults.container_name,
        docker_host=cfg.get("dockerHost"),
    ))


def program_settings(cfg: pulumi.Config, stack: str) -> ProgramSettings:
    """Read the stack's config; production stacks are protected by default."""
    protect = cfg.get_bool("protect")
    return ProgramSettings(
        database=database_args(cfg),
        redis=redis_args(cfg),
        protect=stack in PRODUCTION_STACKS if protect is None else protect,
    )
