"""phasegate's Pulumi program: read the stack's config, declare the components, export.

Run it through ``invoke provision --stack dev`` (the Automation API) or the Pulumi CLI from
this directory. Every output that carries a password is a secret.
"""

from __future__ import annotations

import pulumi

from infra.components import ReliabilityDatabase, ReliabilityRedis
from infra.components.settings import NAMESPACE, program_settings

settings = program_settings(pulumi.Config(NAMESPACE), pulumi.get_stack())
opts = pulumi.ResourceOptions(protect=settings.protect)

database = ReliabilityDatabase("ledger", settings.database, opts)
redis = ReliabilityRedis("status", settings.redis, opts)

for key, dsn in database.dsns.items():
    pulumi.export(f"{key}_dsn", dsn)
pulumi.export("redis_url", redis.url)
pulumi.export("database", database.database.name)
pulumi.export("role_names", {key: spec.name for key, spec in settings.database.roles.items()})
pulumi.export("protected", settings.protect)
