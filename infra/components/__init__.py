"""The Pulumi components of phasegate's infrastructure (see ``infra/README.md``)."""

from __future__ import annotations

from infra.components.database import (
    AdminConnection,
    ReliabilityDatabase,
    ReliabilityDatabaseArgs,
    RoleSpec,
)
from infra.components.redis_store import DockerRedisArgs, ReliabilityRedis, ReliabilityRedisArgs
from infra.components.role_setting import RoleSetting, RoleSettingArgs

__all__ = [
    "AdminConnection",
    "DockerRedisArgs",
    "ReliabilityDatabase",
    "ReliabilityDatabaseArgs",
    "ReliabilityRedis",
    "ReliabilityRedisArgs",
    "RoleSetting",
    "RoleSettingArgs",
    "RoleSpec",
]
