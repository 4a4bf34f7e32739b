"""The stack files (infra/Pulumi.<stack>.yaml) as the program reads them, under mocks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.components import settings
from tests.unit.infra.test_program import run_graph

INFRA = Path(__file__).resolve().parents[3] / "infra"
SECRETS = {"phasegate:pgAdminPassword": "s3cret-admin",
           "phasegate:redisUrl": "rediss://u:s3cret-redis@redis.example.com:6380/0"}


def stack_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text())["config"]


def test_config_keys_lists_every_key_the_program_reads() -> None:
    source = Path(settings.__file__).read_text()
    read = set(re.findall(r'cfg\.(?:get\w*|require\w*)\("(\w+)"\)', source))
    assert read == set(settings.CONFIG_KEYS)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_files_use_only_known_keys_and_no_clear_secrets(stack: str) -> None:
    config = stack_config(stack)
    keys = {k.removeprefix("phasegate:") for k in config}
    assert all(k.startswith("phasegate:") for k in config)
    assert keys <= settings.CONFIG_KEYS, keys - settings.CONFIG_KEYS
    assert not keys & {"pgAdminPassword", "redisUrl"}, "secrets belong in encrypted config"


@pytest.mark.parametrize(("stack", "protected", "managed_redis"), [
    ("dev", False, False), ("staging", False, True), ("prod", True, True)])
def test_each_stack_file_declares_a_sound_graph(stack: str, protected: bool, managed_redis: bool) -> None:
    config = {k: json.dumps(v) if isinstance(v, dict | list) else str(v).lower()
              if isinstance(v, bool) else str(v) for k, v in stack_config(stack).items()}
    secrets = {"phasegate:pgAdminPassword": SECRETS["phasegate:pgAdminPassword"]}
    if managed_redis:
        secrets["phasegate:redisUrl"] = SECRETS["phasegate:redisUrl"]
    g = run_graph({"stack": stack, "config": {**config, **secrets}, "secret_keys": sorted(secrets)})
    assert "error" not in g, g.get("error")
    resources = [r for r in g["resources"] if r["type"] != "pulumi:pulumi:Stack"]
    assert {r["protect"] for r in resources} == {protected}
    containers = [r for r in resources if r["type"] == "docker:index/container:Container"]
    assert bool(containers) is not managed_redis
    for key in ("migrator_dsn", "app_dsn", "operator_dsn", "readonly_dsn", "redis_url"):
        assert g["outputs"][key]["secret"] is True
    assert g["outputs"]["database"]["value"] == stack_config(stack)["phasegate:database"]
