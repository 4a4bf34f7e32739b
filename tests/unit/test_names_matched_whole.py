"""Validated names are matched whole (``re.fullmatch``): with ``re.match`` and ``$`` a name
with a trailing newline passed, and an environment called ``'staging\\n'`` wrote a plans
folder with a newline in its name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.automation import validate_stack
from infra.components.database import check_identifier
from infra.components.redis_store import DockerRedisArgs
from phasegate.errors import ConfigError
from rollout.environments import validate_env_name

VALIDATORS: dict[str, tuple[Callable[[str], Any], str]] = {
    "environment name": (validate_env_name, "staging"),
    "postgres identifier": (lambda v: check_identifier(v, "role name"), "phasegate_app"),
    "pulumi stack": (validate_stack, "acme/phasegate/prod"),
    "redis username": (lambda v: DockerRedisArgs(username=v), "phasegate"),
    "redis key pattern": (lambda v: DockerRedisArgs(key_patterns=(v,)), "jobstatus:*"),
    "redis maxmemory": (lambda v: DockerRedisArgs(maxmemory=v), "256mb"),
}


@pytest.mark.parametrize("what", list(VALIDATORS))
def test_a_valid_name_passes_and_the_same_name_with_a_newline_does_not(what: str) -> None:
    validate, good = VALIDATORS[what]
    validate(good)
    for bad in (f"{good}\n", f"\n{good}", f"{good}\nx"):
        with pytest.raises(ConfigError):
            validate(bad)
