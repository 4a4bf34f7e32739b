"""The Pulumi program's declared graph, under ``pulumi.runtime.set_mocks`` (no CLI, no plugin).

Each scenario runs the program once in a child process (see ``pulumi_graph.py``) and the
tests assert on what it registered: every role and grant, secrets, protection, outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
ADMIN_PASSWORD = "admin-Pa55word"
MANAGED_REDIS = "rediss://svc:managed-Secret@redis.example.com:6380/0"
BASE = {"phasegate:pgHost": "db.example.com", "phasegate:pgAdminPassword": ADMIN_PASSWORD}
SCENARIOS: dict[str, dict[str, Any]] = {
    "dev": {"stack": "dev", "config": BASE, "secret_keys": ["phasegate:pgAdminPassword"]},
    "prod": {
        "stack": "prod",
        "config": {**BASE, "phasegate:redisUrl": MANAGED_REDIS, "phasegate:pgSslMode": "verify-full"},
        "secret_keys": ["phasegate:pgAdminPassword", "phasegate:redisUrl"],
    },
    "renamed": {
        "stack": "staging",
        "config": {**BASE, "phasegate:roles": json.dumps({
            "migrator": {"name": "pg_mig"}, "app": {"name": "pg_app", "connectionLimit": 7},
            "operator": {"name": "pg_ops"}, "readonly": {"name": "pg_ro"},
            "owner": {"name": "pg_logs"}}),
            "phasegate:database": "ledger_db", "phasegate:migratorLockTimeoutMs": "1234"},
        "secret_keys": ["phasegate:pgAdminPassword"],
    },
    "bad-role": {
        "stack": "dev",
        "config": {**BASE, "phasegate:roles": json.dumps({"app": {"name": "App; DROP"}})},
    },
    "owner-with-limits": {
        "stack": "dev",
        "config": {**BASE, "phasegate:roles": json.dumps({"owner": {"connectionLimit": 3}})},
    },
    "owner-name-too-long": {
        "stack": "dev",
        "config": {**BASE, "phasegate:roles": json.dumps({"owner": {"name": "o" * 54}})},
    },
}
DEFAULT_NAMES = {"migrator": "migrator", "app": "app", "operator": "operator", "readonly": "readonly"}


def run_graph(request: dict[str, Any]) -> dict[str, Any]:
    """The program's graph for one stack and config, from a child process under mocks."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.unit.infra.pulumi_graph"],
        input=json.dumps(request), capture_output=True, text=True, cwd=ROOT,
        timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@cache
def graph(scenario: str) -> dict[str, Any]:
    return run_graph(SCENARIOS[scenario])


def of_type(g: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
    return [r for r in g["resources"] if r["type"].endswith(suffix)]


def by_name(g: dict[str, Any], name: str) -> dict[str, Any]:
    found = [r for r in g["resources"] if r["name"] == name]
    assert len(found) == 1, f"{name}: {len(found)} resources"
    return found[0]


@pytest.mark.parametrize(("scenario", "names"), [
    ("dev", DEFAULT_NAMES),
    ("renamed", {"migrator": "pg_mig", "app": "pg_app", "operator": "pg_ops", "readonly": "pg_ro"}),
])
def test_four_login_roles_without_elevated_attributes(scenario: str, names: dict[str, str]) -> None:
    g = graph(scenario)
    roles = {r["name"].removeprefix("ledger-role-"): r for r in of_type(g, ":Role")
             if r["inputs"]["login"]}
    assert {k: r["inputs"]["name"] for k, r in roles.items()} == names
    for role in roles.values():
        inputs = role["inputs"]
        assert inputs["login"] is True
        assert not any(inputs[a] for a in ("superuser", "createDatabase", "createRole",
                                           "replication", "bypassRowLevelSecurity"))
        assert inputs["connectionLimit"] > 0 and inputs["statementTimeout"] > 0
        assert "password" in role["secret_inputs"], "role password must be sent as a secret"
        assert role["provider"] == "ledger-admin-id" and role["parent"] == "ledger"
    if scenario == "renamed":
        assert roles["app"]["inputs"]["connectionLimit"] == 7


ELEVATED = ("superuser", "createDatabase", "createRole", "replication", "bypassRowLevelSecurity")


@pytest.mark.parametrize(("scenario", "owner"), [("dev", "phasegate_owner"), ("renamed", "pg_logs")])
def test_the_logs_owner_is_nologin_and_the_migrator_reaches_it_only_through_a_noinherit_bridge(
        scenario: str, owner: str) -> None:
    """p0014 hands the append-only logs to the owner; PostgreSQL 15 lets the migrator do that
    (ALTER ... OWNER TO checks membership) without inheriting the owner's rights only if the
    membership goes through a role that does not inherit."""
    g = graph(scenario)
    nologin = {r["name"]: r["inputs"] for r in of_type(g, ":Role") if not r["inputs"]["login"]}
    assert set(nologin) == {"ledger-role-owner", "ledger-role-owner-bridge"}
    assert nologin["ledger-role-owner"]["name"] == owner
    assert nologin["ledger-role-owner"].get("roles", []) == []  # a member of nothing
    bridge = nologin["ledger-role-owner-bridge"]
    assert (bridge["name"], bridge["inherit"], bridge["roles"]) == (
        f"{owner}_noinherit", False, [owner])
    for inputs in nologin.values():
        assert "password" not in inputs and not any(inputs[a] for a in ELEVATED)
    logins = {r["name"]: r["inputs"] for r in of_type(g, ":Role") if r["inputs"]["login"]}
    members = {name: inputs.get("roles", []) for name, inputs in logins.items()}
    assert members.pop("ledger-role-migrator") == [f"{owner}_noinherit"]
    assert all(roles == [] for roles in members.values()), members
    assert all(inputs.get("inherit", True) for inputs in logins.values())  # other memberships inherit
    assert set(g["outputs"]) >= {"migrator_dsn"} and "owner_dsn" not in g["outputs"]
    assert g["outputs"]["role_names"]["value"]["owner"] == owner


def test_the_owner_role_may_not_take_limits_nor_a_name_without_room_for_the_bridge() -> None:
    assert "phasegate:roles.owner takes name" in graph("owner-with-limits")["error"]
    assert "at most 53 characters" in graph("owner-name-too-long")["error"]


def test_database_and_schema_are_owned_by_the_owner_not_the_migrator() -> None:
    """Whoever owns a database or a schema may drop anything in it, the logs included."""
    g = graph("renamed")
    db = by_name(g, "ledger-database")["inputs"]
    assert (db["name"], db["owner"]) == ("ledger_db", "pg_logs")
    assert db["connectionLimit"] > 0
    schema = by_name(g, "ledger-schema")["inputs"]
    assert (schema["name"], schema["owner"], schema["database"]) == ("public", "pg_logs", "ledger_db")


def _grants(g: dict[str, Any]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {
        (r["inputs"]["objectType"], r["inputs"].get("schema", ""), r["inputs"]["role"],
         tuple(sorted(r["inputs"]["privileges"])))
        for r in of_type(g, ":Grant")
    }


def test_database_and_schema_grants_are_exactly_least_privilege() -> None:
    g = graph("renamed")
    users = ("pg_app", "pg_ops", "pg_ro")
    assert _grants(g) == {
        ("database", "", "public", ()),  # PUBLIC loses CONNECT and TEMPORARY
        ("schema", "public", "public", ()),  # nobody but the migrator may CREATE
        *{("database", "", u, ("CONNECT",)) for u in (*users, "pg_mig")},
        *{("schema", "public", u, ("USAGE",)) for u in users},
        ("schema", "public", "pg_mig", ("CREATE", "USAGE")),  # DDL, without owning the schema
    }
    assert all(r["inputs"]["database"] == "ledger_db" for r in of_type(g, ":Grant"))


def test_default_privileges_make_later_tables_readable_by_operator_and_readonly_only() -> None:
    g = graph("renamed")
    defaults = {(r["inputs"]["role"], r["inputs"]["owner"], r["inputs"]["objectType"],
                 tuple(r["inputs"]["privileges"])) for r in of_type(g, ":DefaultPrivileges")}
    # The app gets no default privileges: its table grants come from the migrations.
    assert defaults == {("pg_ops", "pg_mig", "table", ("SELECT",)),
                        ("pg_ro", "pg_mig", "table", ("SELECT",))}


def test_migrator_has_its_own_lock_timeout() -> None:
    g = graph("renamed")
    [setting] = of_type(g, "dynamic/phasegate:RoleSetting")
    inputs = setting["inputs"]
    assert (inputs["role"], inputs["database"], inputs["setting"], inputs["value"]) == (
        "pg_mig", "ledger_db", "lock_timeout", "1234")
    assert "admin_password" in setting["secret_inputs"]
    assert "admin_password" in setting["additional_secret_outputs"]
    migrator = by_name(g, "ledger-role-migrator")["inputs"]
    assert migrator["statementTimeout"] > by_name(g, "ledger-role-app")["inputs"]["statementTimeout"]


def test_passwords_come_from_random_and_stay_secret() -> None:
    g = graph("dev")
    passwords = of_type(g, ":RandomPassword")
    assert sorted(p["name"] for p in passwords) == sorted(
        [f"ledger-{k}-password" for k in DEFAULT_NAMES] + ["status-password"])
    for pw in passwords:
        assert pw["inputs"]["length"] >= 32 and pw["inputs"]["special"] is False
        assert "result" in pw["additional_secret_outputs"]
    provider = by_name(g, "ledger-admin")
    assert provider["secret_inputs"] == ["password"]
    assert provider["inputs"]["password"] == ADMIN_PASSWORD


@pytest.mark.parametrize("scenario", ["dev", "prod", "renamed"])
def test_every_credential_output_is_secret(scenario: str) -> None:
    outputs = graph(scenario)["outputs"]
    for key in ("migrator_dsn", "app_dsn", "operator_dsn", "readonly_dsn", "redis_url"):
        assert outputs[key]["secret"] is True, key
    assert outputs["database"]["secret"] is False  # names are not secrets


def test_dsns_name_each_role_and_its_own_password() -> None:
    outputs = graph("prod")["outputs"]
    for key in DEFAULT_NAMES:
        assert outputs[f"{key}_dsn"]["value"] == (
            f"postgresql://{key}:pw-ledger-{key}-password@db.example.com:5432/phasegate"
            "?sslmode=verify-full")
    assert outputs["redis_url"]["value"] == MANAGED_REDIS


def test_prod_protects_every_resource_and_dev_none() -> None:
    prod = [r for r in graph("prod")["resources"] if r["type"] != "pulumi:pulumi:Stack"]
    assert prod and all(r["protect"] for r in prod), [r["name"] for r in prod if not r["protect"]]
    assert graph("prod")["outputs"]["protected"]["value"] is True
    dev = [r for r in graph("dev")["resources"] if r["type"] != "pulumi:pulumi:Stack"]
    assert not any(r["protect"] for r in dev)


def test_self_hosted_redis_has_acl_persistence_and_no_eviction() -> None:
    g = graph("dev")
    container = by_name(g, "status-container")
    command = container["inputs"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "uploads" in container["secret_inputs"]
    acl = container["inputs"]["uploads"][0]["content"]
    assert acl.startswith("user default off\n") and "-@dangerous" in acl
    password = "pw-status-password"
    assert password not in acl and password not in json.dumps(container["inputs"])
    assert container["inputs"]["ports"][0]["ip"] == "127.0.0.1"
    assert g["outputs"]["redis_url"]["value"] == f"redis://phasegate:{password}@127.0.0.1:6379/0"


def test_managed_redis_declares_no_container() -> None:
    g = graph("prod")
    assert not of_type(g, "docker:index/container:Container")
    assert not of_type(g, "docker:index/remoteImage:RemoteImage")


def test_invalid_role_name_is_refused_before_anything_is_declared() -> None:
    error = graph("bad-role")["error"]
    assert "ConfigError" in error and "role name must be a lower-case identifier" in error
