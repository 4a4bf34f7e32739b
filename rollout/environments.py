"""Where a rollout runs: ``--env local`` (default), ``--env ci`` and configured environments.

``local``  the embedded, persistent Postgres + Redis of ``infra/local.py`` (started on demand).
``ci``     throwaway servers for the life of one command (``infra/ephemeral.py``).
others     ``phasegate.toml`` in the project root::

    [settings]                 # defaults for every environment
    lock_timeout_ms = 2000

    [environments.staging]
    db_url_env = "STAGING_DATABASE_URL"     # the URL itself never lives in the file
    redis_url_env = "STAGING_REDIS_URL"
    production = false
    [environments.staging.settings]
    backfill_rows_per_second = 20000

    [environments.prod]
    pulumi_stack = "prod"                   # URLs from the stack's secret outputs
    production = true

Environment variables ``PHASEGATE_<ENV>_DB_URL`` / ``PHASEGATE_<ENV>_REDIS_URL`` override.
The whole file is checked when it is read (:func:`load_config`): unknown keys, values of the
wrong type and out-of-range settings are refused in one line, whichever environment is used.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger import sqlfiles
from phasegate.errors import ConfigError
from phasegate.text import first_line
from phasegate.urls import SQLALCHEMY_SCHEME, libpq_dsn, remember_url, sqlalchemy_url
from rollout.settings import Settings

CONFIG_FILE = "phasegate.toml"
MAX_CONFIG_BYTES = 1024 * 1024  # a configuration file is a few hundred bytes
_ENV_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # matched whole (fullmatch: no trailing newline)
BUILT_IN = ("local", "ci")
TOP_KEYS = ("environments", "settings", "lint_paths")  # lint_paths: checks/lint/targets.py
ENV_KEYS = ("db_url_env", "redis_url_env", "pulumi_stack", "production", "settings")  # of [environments.X]
CREATE_CI_DATABASE_SQL = sqlfiles.query(__file__, "environments", "create_ci_database")


@dataclass(frozen=True)
class Target:
    name: str
    db_url: str  # SQLAlchemy URL (postgresql+psycopg://) of a role that may run DDL
    redis_url: str
    production: bool = False
    settings: Settings = field(default_factory=Settings)

    @property
    def dsn(self) -> str:
        return libpq_dsn(self.db_url)


def validate_env_name(name: str) -> str:
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        shown = name if isinstance(name, str) and len(name) < 40 else "<invalid>"  # !r escapes \n
        raise ConfigError(
            f"invalid environment name {shown!r}: lowercase letters, digits, '-' and '_' only")
    return name


def config_path(project: Path) -> Path:
    """``$PHASEGATE_CONFIG`` if set, else ``phasegate.toml`` in the project root."""
    return Path(os.environ.get("PHASEGATE_CONFIG") or project / CONFIG_FILE)


def load_config(project: Path) -> dict[str, Any]:
    path = config_path(project)
    if not path.exists():
        return {}
    if not path.is_file():
        raise ConfigError(f"{path} is not a file (a directory or a device?); "
                          f"{CONFIG_FILE} must be a TOML file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: not a {CONFIG_FILE}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{CONFIG_FILE} is malformed: {exc}") from exc
    except RecursionError:  # arrays nested thousands deep: tomllib recurses once per level
        raise ConfigError(f"{CONFIG_FILE} is malformed: nested too deeply") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror}") from None
    if not isinstance(data.get("environments", {}), dict) or not isinstance(data.get("settings", {}), dict):
        raise ConfigError(f"{CONFIG_FILE}: [environments] and [settings] must be tables")
    _check_keys(data, TOP_KEYS, CONFIG_FILE)
    Settings.from_mapping(data.get("settings", {}), where="[settings]")
    for name, env_cfg in data.get("environments", {}).items():
        _check_environment(data, name, env_cfg)
    return data


def _check_keys(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = [key for key in table if key not in known]
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {where}; known: {', '.join(known)}")


def _check_environment(config: dict[str, Any], name: str, env_cfg: Any) -> None:
    """One [environments.X] table: a valid name, known keys, each value of its TOML type
    (``production`` a boolean: ``bool("false")`` is true), valid settings."""
    validate_env_name(name)
    where = f"[environments.{name}]"
    if name in BUILT_IN:
        raise ConfigError(f"{where}: {name} is built in; its settings come from [settings]")
    if not isinstance(env_cfg, dict):
        raise ConfigError(f"{where} must be a table")
    _check_keys(env_cfg, ENV_KEYS, where)
    production = env_cfg.get("production", False)
    if not isinstance(production, bool):
        hint = ""
        if isinstance(production, str) and production.strip().lower() in ("true", "false"):
            hint = f": use production = {production.strip().lower()} (no quotes)"
        raise ConfigError(f"{where} production must be true or false, not {production!r}{hint}")
    for key in ("db_url_env", "redis_url_env", "pulumi_stack"):
        if key in env_cfg and (not isinstance(env_cfg[key], str) or not env_cfg[key].strip()):
            what = "a Pulumi stack name" if key == "pulumi_stack" else "the name of an environment variable"
            raise ConfigError(f"{where} {key} must be {what}")
    _settings_for(config, env_cfg, name)


def _settings_for(config: dict[str, Any], env_cfg: dict[str, Any], name: str) -> Settings:
    base = Settings.from_mapping(config.get("settings", {}), where="[settings]")
    overrides = env_cfg.get("settings", {})
    if not isinstance(overrides, dict):
        raise ConfigError("environment settings must be a table")
    return Settings.from_mapping(overrides, base, where=f"[environments.{name}.settings]")


def known_environments(project: Path) -> list[str]:
    return ["local", "ci", *sorted(load_config(project).get("environments", {}))]


def _url_from(env_cfg: dict[str, Any], key: str, env_name: str, what: str) -> str | None:
    name = f"PHASEGATE_{env_name.upper().replace('-', '_')}_{what}_URL"
    value = os.environ.get(name)
    if not value:
        name = env_cfg.get(f"{key}_env")
        if not name:
            return None
        if not isinstance(name, str):
            raise ConfigError(f"{key}_env must be the name of an environment variable")
        value = os.environ.get(name)
    if value and "://" not in value:
        # Named, never shown: the variable may hold a secret of another shape.
        raise ConfigError(f"environment {env_name}: ${name} holds no URL "
                          f"(expected {'postgresql' if what == 'DB' else 'redis'}://...)")
    return value or None


def _normalise_db_url(url: str) -> str:
    converted = sqlalchemy_url(url)
    if not converted.startswith(SQLALCHEMY_SCHEME):
        raise ConfigError("database URL must start with postgresql:// (psycopg 3 is the driver)")
    # libpq's own parser, before any connection: an unknown option (?bogus=1) or a malformed
    # URL is bad input, said once here, not a driver traceback later.
    import psycopg

    try:
        psycopg.conninfo.conninfo_to_dict(libpq_dsn(converted))
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"database URL: {first_line(exc)}") from None
    return converted


def resolve_target(env_name: str, project: Path) -> Target:
    """A configured (non-throwaway) environment; ``ci`` goes through :func:`open_target`."""
    validate_env_name(env_name)
    config = load_config(project)
    if env_name == "local":
        from infra import local

        st = local.attach(project)  # never starts them: local.up and the demo do
        return Target("local", st.pg_url, st.redis_url, False,
                      Settings.from_mapping(config.get("settings", {})))
    envs = config.get("environments", {})
    prefix = f"PHASEGATE_{env_name.upper().replace('-', '_')}"
    if env_name not in envs and os.environ.get(f"{prefix}_DB_URL") and os.environ.get(f"{prefix}_REDIS_URL"):
        envs = {**envs, env_name: {}}  # an environment given entirely by its variables
    if env_name not in envs:
        raise ConfigError(
            f"unknown environment {env_name!r}; known: {', '.join(known_environments(project))} "
            f"(add [environments.{env_name}] to {CONFIG_FILE})")
    env_cfg = envs[env_name]
    if not isinstance(env_cfg, dict):
        raise ConfigError(f"[environments.{env_name}] must be a table")
    db_url = _url_from(env_cfg, "db_url", env_name, "DB")
    redis_url = _url_from(env_cfg, "redis_url", env_name, "REDIS")
    if (db_url is None or redis_url is None) and env_cfg.get("pulumi_stack"):
        from infra.pulumi_outputs import stack_outputs  # needs the Pulumi CLI

        outputs = stack_outputs(str(env_cfg["pulumi_stack"]))
        db_url = db_url or outputs.get("db_url")
        redis_url = redis_url or outputs.get("redis_url")
    if not db_url or not redis_url:
        raise ConfigError(
            f"environment {env_name}: no database or Redis URL (set "
            f"PHASEGATE_{env_name.upper()}_DB_URL / _REDIS_URL, db_url_env / redis_url_env, "
            f"or pulumi_stack)")
    remember_url(redis_url, f"environment {env_name}: Redis URL")
    return Target(env_name, _normalise_db_url(db_url), redis_url,
                  env_cfg.get("production", False), _settings_for(config, env_cfg, env_name))


@contextlib.contextmanager
def open_target(env_name: str, project: Path, provider: str | None = None) -> Iterator[Target]:
    """Any environment; for ``ci`` the servers live exactly as long as the block."""
    validate_env_name(env_name)
    if env_name != "ci":
        yield resolve_target(env_name, project)
        return
    import psycopg

    from infra import ephemeral
    from migrations import api as migrations_api

    config = load_config(project)
    with ephemeral.postgres(provider) as pg, ephemeral.redis(provider) as rd:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(CREATE_CI_DATABASE_SQL)
        url = pg.sqlalchemy_url("phasegate_ci")  # the database create_ci_database makes
        migrations_api.upgrade(url, "baseline")  # a throwaway target starts as the application's baseline
        yield Target("ci", url, rd.url, False,
                     Settings.from_mapping(config.get("settings", {})))
