"""Malformed configuration and a database at an unknown or foreign migration state: one clear
refusal, nothing written, no secret in the message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from ledger.errors import ConfigError, PhasegateError
from rollout.engine import Rollout
from rollout.environments import Target, resolve_target
from tests.conftest import to_dsn
from tests.integration.rollout.harness import FAST

PROJECT = Path(__file__).resolve().parents[2]
URLS = {"PHASEGATE_STAGING_DB_URL": "postgresql://app:s3cr3t-pw@127.0.0.1:9/app",
        "PHASEGATE_STAGING_REDIS_URL": "redis://127.0.0.1:9/0"}

MALFORMED = [
    (b"[[[ not toml", "phasegate.toml is malformed"),
    (b"\xff\xfe[settings]", "phasegate.toml is malformed"),
    (b"environments = 3", "[environments] and [settings] must be tables"),
    (b"[settings]\nbogus = 1", "unknown setting 'bogus'"),
    (b"[settings]\nlock_timeout_ms = \"fast\"", "setting lock_timeout_ms must be a number"),
    (b"[settings]\nlock_timeout_ms = true", "setting lock_timeout_ms must be a number"),
    (b"[settings]\nlock_timeout_ms = -5", "setting lock_timeout_ms must be between 1 and 2147483647 (got -5)"),
    (b"[settings]\nlock_timeout_ms = inf", "must be a finite number"),
    (b"[settings]\nlock_timeout_ms = nan", "must be a finite number"),
    (b"[settings]\nddl_retries = 2.5", "must be a whole number"),
    (b"[environments]\nstaging = \"x\"", "[environments.staging] must be a table"),
    (b"[environments.staging]\nsettings = 4", "environment settings must be a table"),
    (b"[environments.staging]\ndb_url_env = 5", "db_url_env must be the name of an environment variable"),
    # Issue 13: each value below used to be accepted.
    (b"[settings]\nlock_timeout_ms = 0", "setting lock_timeout_ms must be between 1 and 2147483647 (got 0)"),
    (b"[settings]\nlock_timeout_ms = 2147483648",
     "setting lock_timeout_ms must be between 1 and 2147483647 (got 2147483648)"),
    (b"[settings]\nddl_retries = 0", "setting ddl_retries must be between 1 and 100 (got 0)"),
    (b"[settings]\nflag_ttl_seconds = 1e9", "setting flag_ttl_seconds must be between 0 and 300 (got 1000000000)"),
    (b"[environments.staging.settings]\nlock_timeout_ms = 0", "must be between 1 and 2147483647 (got 0)"),
    (b"[environments.staging.settings]\nbogus = 1",
     "unknown setting 'bogus' in [environments.staging.settings]; known: "),
    (b"[environments.staging]\nproducton = true",
     "unknown key 'producton' in [environments.staging]; known: db_url_env, redis_url_env, pulumi_stack, "
     "production, settings"),
    (b"[environments.staging]\nproduction = \"false\"",
     "[environments.staging] production must be true or false, not 'false': use production = false (no quotes)"),
    (b"[environments.staging]\nproduction = 1", "[environments.staging] production must be true or false, not 1"),
    (b"[environments.staging]\npulumi_stack = 3", "[environments.staging] pulumi_stack must be a Pulumi stack name"),
    (b"setings = 1", "unknown key 'setings' in phasegate.toml; known: environments, settings"),
    # Another environment's table is checked too: the whole file is read, and refused, at once.
    (b"[environments.prod]\nproducton = true", "unknown key 'producton' in [environments.prod]"),
    (b"[environments.prod.settings]\nddl_retries = 0", "setting ddl_retries must be between 1 and 100"),
    (b"[environments.\"staging\\n\"]\nproduction = true", "invalid environment name 'staging\\n'"),
    (b"[environments.Prod]\nproduction = true", "invalid environment name 'Prod'"),
    (b"[environments.local]\nproduction = true", "[environments.local]: local is built in"),
]


@pytest.mark.parametrize(("content", "message"), MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed_config_is_one_clear_error(content: bytes, message: str, tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "phasegate.toml"
    cfg.write_bytes(content)
    monkeypatch.setenv("PHASEGATE_CONFIG", str(cfg))
    for key, value in URLS.items():
        if b"db_url_env" not in content:  # the variables would win over db_url_env
            monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as err:
        resolve_target("staging", tmp_path)
    assert message in str(err.value)
    assert "s3cr3t-pw" not in str(err.value) and len(str(err.value).splitlines()) == 1


def test_malformed_config_through_the_cli_is_one_line(tmp_path) -> None:
    cfg = tmp_path / "phasegate.toml"
    cfg.write_bytes(b"[settings]\nlock_timeout_ms = inf\n")
    for args in (("rollout", "--status", "--env", "staging"), ("plan", "--env", "staging")):
        out = subprocess.run([sys.executable, "-m", "invoke", "-r", str(PROJECT), *args], capture_output=True,
                             text=True, timeout=120, env={**os.environ, **URLS, "PHASEGATE_CONFIG": str(cfg)})
        lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
        assert out.returncode == 2 and lines == [
            "phasegate: setting lock_timeout_ms must be a finite number, not inf"], lines


def test_wrong_url_scheme_is_refused_without_the_password(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PHASEGATE_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("PHASEGATE_STAGING_DB_URL", "mysql://app:s3cr3t-pw@127.0.0.1/app")
    monkeypatch.setenv("PHASEGATE_STAGING_REDIS_URL", "redis://127.0.0.1:9/0")
    with pytest.raises(ConfigError, match="must start with postgresql://") as err:
        resolve_target("staging", tmp_path)
    assert "s3cr3t-pw" not in str(err.value)


FOREIGN = [
    ("UPDATE alembic_version SET version_num = 'someone_elses_rev'", "which phasegate does not ship; refusing to guess"),
    ("INSERT INTO alembic_version VALUES ('p0002_kit')", "several migration heads"),
]


@pytest.mark.parametrize(("tamper", "message"), FOREIGN, ids=["foreign", "two-heads"])
def test_unknown_migration_state_is_refused_and_nothing_is_written(tamper, message, make_db, redis_url,
                                                                  tmp_path) -> None:
    url = make_db("baseline")
    with psycopg.connect(to_dsn(url), autocommit=True) as conn:
        conn.execute(tamper)
        before = conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchone()
    ro = Rollout(Target("test", url, redis_url, False, FAST), "rm", plans_dir=tmp_path / "plans")
    try:
        for attempt in (lambda: ro.apply("expand"), ro.status, lambda: ro.rollback("baseline")):
            with pytest.raises(PhasegateError, match=message):
                attempt()
    finally:
        ro.close()
    with psycopg.connect(to_dsn(url)) as conn:
        after = conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchone()
        assert conn.execute("SELECT to_regclass('phasegate_rollout_state')").fetchone()[0] is None
    assert after == before  # not a table, index or sequence more
    assert not (tmp_path / "plans").exists()  # refused before any plan was written


def test_unknown_migration_state_through_the_cli_is_one_line(make_db, redis_url) -> None:
    url = make_db("baseline")
    with psycopg.connect(to_dsn(url), autocommit=True) as conn:
        conn.execute(FOREIGN[0][0])
    env = {**os.environ, "PHASEGATE_T1_DB_URL": url, "PHASEGATE_T1_REDIS_URL": redis_url,
           "PHASEGATE_CONFIG": "/nonexistent/phasegate.toml"}
    for args in (("rollout", "--phase", "expand", "--env", "t1"), ("migrate", "--env", "t1", "--to", "head")):
        out = subprocess.run([sys.executable, "-m", "invoke", "-r", str(PROJECT), *args], capture_output=True,
                             text=True, timeout=120, env=env)
        lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
        assert out.returncode == 1 and len(lines) == 1 and FOREIGN[0][1] in lines[0], lines


def _cli(args: tuple[str, ...], cfg: Path) -> tuple[int, list[str]]:
    out = subprocess.run([sys.executable, "-m", "invoke", "-r", str(PROJECT), *args], capture_output=True,
                         text=True, timeout=120, env={**os.environ, **URLS, "PHASEGATE_CONFIG": str(cfg)})
    assert "Traceback" not in out.stdout + out.stderr
    return out.returncode, [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]


# Issue 13 through the real CLI: one line, the documented exit code, and nothing written (no
# plans/ or .phasegate/ folder next to the configuration: the refusal comes before any work).
BAD_CONFIG_CLI = [
    (b"[environments.staging]\nproducton = true\n", "unknown key 'producton' in [environments.staging]; known: "
     "db_url_env, redis_url_env, pulumi_stack, production, settings"),
    (b"[environments.staging]\nproduction = \"false\"\n",
     "[environments.staging] production must be true or false, not 'false': use production = false (no quotes)"),
    (b"[settings]\nlock_timeout_ms = 0\n", "setting lock_timeout_ms must be between 1 and 2147483647 (got 0)"),
]


@pytest.mark.parametrize(("content", "message"), BAD_CONFIG_CLI, ids=["producton", "quoted-bool", "lock-0"])
def test_bad_config_through_the_cli_is_one_line_and_writes_nothing(content: bytes, message: str,
                                                                   tmp_path) -> None:
    cfg = tmp_path / "phasegate.toml"
    cfg.write_bytes(content)
    for args, code in ((("plan", "--env", "staging"), 2),
                       (("check", "--env", "staging", "--check", "schema_objects"), 2)):
        assert _cli(args, cfg) == (code, [f"phasegate: {message}"]), args
    assert list(tmp_path.iterdir()) == [cfg]


BAD_PARAMS = [
    ("nan", "phasegate: --param takes key=value, not 'nan'"),
    ("triage_budget_ms=nan", "phasegate: setting triage_budget_ms must be a finite number, not nan"),
    ("lock_timeout_ms=0", "phasegate: setting lock_timeout_ms must be between 1 and 2147483647 (got 0)"),
    ("triage_budget=20", "phasegate: unknown key 'triage_budget' in --param; known: "),
    ("parity_since=yesterday",
     "phasegate: --param parity_since must be an ISO-8601 time (2024-05-01T12:00:00Z), not 'yesterday'"),
    ("backfill_until_id=-1", "phasegate: --param backfill_until_id must be an id (a whole number from 0), not '-1'"),
]


@pytest.mark.parametrize(("param", "message"), BAD_PARAMS, ids=[p for p, _ in BAD_PARAMS])
def test_bad_check_param_is_one_line_and_exit_2(param: str, message: str, tmp_path) -> None:
    cfg = tmp_path / "phasegate.toml"
    cfg.write_bytes(b"[environments.staging]\nproduction = false\n")
    code, lines = _cli(("check", "--env", "staging", "--param", param), cfg)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(message), lines
    assert list(tmp_path.iterdir()) == [cfg]


def test_environment_name_with_a_trailing_newline_creates_no_folder(tmp_path) -> None:
    # It used to pass validation (re.match with $) and plan wrote plans/'staging\n'/.
    cfg = tmp_path / "phasegate.toml"
    cfg.write_bytes(b'[environments.staging]\ndb_url_env = "X_DB"\nredis_url_env = "X_REDIS"\n')
    assert _cli(("plan", "--env", "staging\n"), cfg) == (
        2, ["phasegate: invalid environment name 'staging\\n': lowercase letters, digits, '-' and '_' only"])
    cfg.write_bytes(b'[environments."staging\\n"]\ndb_url_env = "X_DB"\nredis_url_env = "X_REDIS"\n')
    for args in (("plan", "--env", "staging\n"), ("plan", "--env", "staging")):
        code, lines = _cli(args, cfg)
        assert code == 2 and lines == [
            "phasegate: invalid environment name 'staging\\n': lowercase letters, digits, '-' and '_' only"], lines
    assert list(tmp_path.iterdir()) == [cfg]
