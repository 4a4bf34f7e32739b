"""``invoke provision`` and ``stack_outputs`` through the Automation API.

The real Pulumi CLI cannot be installed here: tests prove the one-line error without it,
and drive the Automation API against a stand-in ``pulumi`` executable (a small script that
answers the handful of commands the API runs) to prove the plumbing around it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import automation
from infra.pulumi_outputs import OUTPUT_NAMES, StackOutputsMissing, map_outputs, stack_outputs
from ledger.errors import ConfigError, PhasegateError

ROOT = Path(__file__).resolve().parents[3]
OUTPUTS = {
    "migrator_dsn": "postgresql://migrator:m1gr@db:5432/phasegate?sslmode=require",
    "app_dsn": "postgresql://app:appPw@db:5432/phasegate?sslmode=require",
    "operator_dsn": "postgresql://operator:opPw@db:5432/phasegate?sslmode=require",
    "readonly_dsn": "postgresql://readonly:roPw@db:5432/phasegate?sslmode=require",
    "redis_url": "redis://phasegate:rdPw@127.0.0.1:6390/0",
    "database": "phasegate",
}
SECRET = {k for k in OUTPUTS if k != "database"}

FAKE_CLI = r'''#!{python}
"""A stand-in for the Pulumi CLI: answers the commands the Automation API runs."""
import json, os, sys
args = [a for a in sys.argv[1:] if a != "--non-interactive"]
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
stack = args[args.index("--stack") + 1] if "--stack" in args else None
if args[:1] == ["version"]:
    print("v3.272.0")
elif args[:2] == ["stack", "select"] and stack not in os.environ["FAKE_PULUMI_STACKS"].split(","):
    print(f"error: no stack named '{{stack}}' found", file=sys.stderr)
    sys.exit(255)
elif args[:2] == ["stack", "output"]:
    outputs = json.loads(os.environ["FAKE_PULUMI_OUTPUTS"])
    secret = set(json.loads(os.environ["FAKE_PULUMI_SECRET"]))
    if "--show-secrets" not in args:
        outputs = {{k: "[secret]" if k in secret else v for k, v in outputs.items()}}
    print(json.dumps(outputs))
elif args[:1] in (["up"], ["preview"], ["destroy"]):
    print("Updating (dev)")
    print("error: connecting to postgresql://admin:hunter2@db:5432/postgres: refused",
          file=sys.stderr)
    sys.exit(255)
'''


@pytest.fixture
def no_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    cli = bindir / "pulumi"
    cli.write_text(FAKE_CLI.format(python=sys.executable))
    cli.chmod(0o755)
    log = tmp_path / "argv.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))
    monkeypatch.setenv("FAKE_PULUMI_STACKS", "dev,prod")
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", json.dumps(OUTPUTS))
    monkeypatch.setenv("FAKE_PULUMI_SECRET", json.dumps(sorted(SECRET)))
    monkeypatch.setenv("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", "1")
    return log


def _invoke(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_provision_without_cli_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = _invoke("provision", "--stack", "dev", path=str(tmp_path))
    assert proc.returncode == 2  # could not run: a tool is missing
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    assert lines == ["phasegate: the Pulumi CLI is not installed "
                     "(https://www.pulumi.com/docs/install/); provision needs it"]


@pytest.mark.parametrize(("args", "message"), [
    (("--stack", "no such"), "invalid Pulumi stack name"),
    (("--stack", "qa"), "no settings for stack 'qa'"),
    (("--preview", "--destroy"), "at most one of --preview and --destroy"),
])
def test_provision_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    proc = _invoke("provision", *args, path=str(tmp_path))
    out = (proc.stderr + proc.stdout).strip()
    assert proc.returncode == 2 and len(out.splitlines()) == 1 and message in out, out


def test_stack_outputs_without_cli_raises_one_clear_line(no_cli: None) -> None:
    with pytest.raises(automation.PulumiCliMissing) as err:
        stack_outputs("prod")
    assert isinstance(err.value, PhasegateError)
    assert str(err.value).count("\n") == 0 and "pulumi.com/docs/install" in str(err.value)


def test_map_outputs_names_what_the_rollout_reads() -> None:
    mapped = map_outputs("dev", OUTPUTS)
    assert mapped == {
        "db_url": OUTPUTS["migrator_dsn"], "app_db_url": OUTPUTS["app_dsn"],
        "operator_db_url": OUTPUTS["operator_dsn"], "readonly_db_url": OUTPUTS["readonly_dsn"],
        "redis_url": OUTPUTS["redis_url"],
    }
    assert set(mapped) == set(OUTPUT_NAMES.values())


def test_map_outputs_refuses_a_stack_that_was_never_provisioned() -> None:
    with pytest.raises(StackOutputsMissing, match="no db_url|no migrator_dsn") as err:
        map_outputs("dev", {"redis_url": "redis://x"})
    assert "invoke provision --stack dev" in str(err.value)


def test_stack_outputs_reads_secrets_through_the_automation_api(fake_cli: Path) -> None:
    assert stack_outputs("prod") == map_outputs("prod", OUTPUTS)
    calls = [json.loads(line) for line in fake_cli.read_text().splitlines()]
    assert ["stack", "select", "--stack", "prod"] in calls
    assert any("--show-secrets" in c for c in calls if c[:2] == ["stack", "output"])
    assert (Path(automation.INFRA_DIR) / "Pulumi.yaml").exists()


def test_stack_outputs_of_an_unknown_stack_is_a_clear_error(fake_cli: Path) -> None:
    with pytest.raises(automation.StackNotFound, match="'qa' does not exist"):
        stack_outputs("qa")


def test_failed_provision_reports_the_error_line_with_secrets_masked(fake_cli: Path) -> None:
    with pytest.raises(automation.PulumiCommandFailed) as err:
        automation.provision("dev", automation.Action.PREVIEW, on_output=None)
    message = str(err.value)
    assert "hunter2" not in message and "postgresql://admin:***@db" in message
    assert message.startswith("pulumi preview on stack 'dev' failed: connecting to")


def test_invalid_stack_names_are_config_errors() -> None:
    for bad in ("", "a b", "x" * 200, "a/b/c/d", "dev;rm"):
        with pytest.raises(ConfigError):
            automation.validate_stack(bad)
    assert automation.validate_stack("acme/phasegate/prod") == "acme/phasegate/prod"
    assert automation.known_stacks() == ["dev", "prod", "staging"]


def test_rollout_env_reads_the_migrator_dsn_and_redis_url_from_the_stack(
    fake_cli: Path, tmp_path: Path
) -> None:
    from rollout.environments import resolve_target

    (tmp_path / "phasegate.toml").write_text(
        '[environments.prod]\npulumi_stack = "prod"\nproduction = true\n')
    target = resolve_target("prod", tmp_path)
    assert target.db_url == OUTPUTS["migrator_dsn"].replace("postgresql://", "postgresql+psycopg://")
    assert target.redis_url == OUTPUTS["redis_url"]
    assert target.production is True
