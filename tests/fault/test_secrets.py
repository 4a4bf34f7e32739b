"""Secrets: a role with a known password (scram-sha-256, really checked) runs a full rollout,
plans are generated, connections fail (wrong password, wrong port, wrong database); every
log line (root logger at DEBUG), CLI output, plan file, error message and rollout event is
scanned for the password."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from rollout.engine import Rollout
from rollout.environments import Target
from rollout.errors import PhasegateError
from tests.integration.rollout.harness import FAST, apply_through, make_target

PROJECT = Path(__file__).resolve().parents[2]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[_Capture]:
    root, handler = logging.getLogger(), _Capture()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def secret_db(pg_server, db_templates) -> Iterator[tuple[str, str, str]]:
    """(url with the password, role, password): a fresh baseline database reached as a role
    that must authenticate with scram-sha-256 (roles are cluster-wide: unique, dropped)."""
    password = f"Pw-{uuid.uuid4().hex}-s3cret"
    with scram_database(pg_server, db_templates, "sec", password) as (role, dbname):
        base = pg_server.sqlalchemy_url(dbname)
        scheme, _, rest = base.partition("://")
        yield f"{scheme}://{role}:{password}@{rest.split('@', 1)[1]}", role, password


@contextlib.contextmanager
def scram_database(pg_server, db_templates, prefix: str, password: str) -> Iterator[tuple[str, str]]:
    """(role, database): a LOGIN role with ``password`` that must prove it (scram-sha-256,
    really checked; everyone else keeps the server's trust), owning a fresh baseline database;
    both dropped and pg_hba.conf restored afterwards."""
    role, dbname = f"{prefix}_{uuid.uuid4().hex[:10]}", f"{prefix}_{uuid.uuid4().hex[:10]}"
    hba = Path(pg_server.data_dir) / "pg_hba.conf"
    original = hba.read_text(encoding="utf-8")
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
            sql.Identifier(dbname), sql.Identifier(db_templates.template("baseline")), sql.Identifier(role)))
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\nhost all {role} ::1/128 scram-sha-256\n"
                       + original, encoding="utf-8")
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield role, dbname
    finally:
        hba.write_text(original, encoding="utf-8")
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _invoke(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "invoke", "-r", str(PROJECT), *args], capture_output=True,
                         text=True, timeout=300, env={**os.environ, **env})
    return out.stdout + out.stderr


@pytest.mark.slow  # a full rollout, five phases, plus CLI runs
def test_no_password_in_logs_plans_errors_or_events(secret_db, logs, redis_url, tmp_path) -> None:
    url, role, password = secret_db
    target = make_target(url, redis_url, jobs=400)
    apply_through(target, "contract", tmp_path)  # every phase; plans written before each apply
    texts: list[str] = []
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        texts.append(repr(ro.status()))
    finally:
        ro.close()

    env = {"PHASEGATE_CONFIG": str(tmp_path / "none.toml"), "PHASEGATE_SEC_DB_URL": url,
           "PHASEGATE_SEC_REDIS_URL": redis_url}
    texts.append(_invoke("rollout", "--status", "--env", "sec", env=env))
    texts.append(_invoke("plan", "--env", "sec", "--format", "both", "--out", str(tmp_path / "cli-plans"), env=env))
    texts.append(_invoke("plan", "--env", "sec", "--format", "json", "--out", "-", env=env))
    assert "contract" in texts[-1]  # the commands really ran

    host = url.rsplit("@", 1)[1]
    failures = {
        "wrong password": url.replace(password, password[::-1]),
        "wrong port": url.replace(host, "127.0.0.1:9/" + host.split("/", 1)[1]),
        "wrong database": url.rsplit("/", 1)[0] + "/no_such_db",
    }
    for label, bad in failures.items():
        out = _invoke("rollout", "--status", "--env", "bad", env={**env, "PHASEGATE_BAD_DB_URL": bad,
                                                                    "PHASEGATE_BAD_REDIS_URL": redis_url})
        assert out.startswith("phasegate: cannot reach the database of bad"), (label, out)
        texts.append(out)
        engine = Rollout(Target("bad", bad, redis_url, False, FAST), "rm", plans_dir=tmp_path / "bad")
        with pytest.raises(PhasegateError) as err:
            engine.apply("expand")
        engine.close()
        texts.append(str(err.value))
    assert "password authentication failed" in texts[-5]  # the password really was checked

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        texts += [str(r) for r in conn.execute("SELECT detail FROM phasegate_rollout_event").fetchall()]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".md" for p in files) and any(p.suffix == ".json" for p in files)
    texts += [p.read_text(encoding="utf-8") for p in files]
    assert logs.lines, "nothing was logged: the scan would prove nothing"
    texts += logs.lines

    leaks = [t[:200] for t in texts if password in t or password[::-1] in t]
    assert leaks == []


# Passwords pattern masking cannot delimit, or that clients split differently when unencoded.
HARD_PASSWORDS = {
    "at-colon-slash": "p@ss:w/rd",
    "hash-space": "pa#ss w0rd long",
    "non-ascii": "Пароль-секрет-ß",
    "everything": "a@b:c/d#e f?g%h",
}


@pytest.fixture
def hard_secret(pg_server, db_templates, request) -> Iterator[tuple[str, str, str]]:
    """(percent-encoded URL, role, password) for a scram role whose password is hard."""
    from urllib.parse import quote

    password = request.param
    with scram_database(pg_server, db_templates, "hard", password) as (role, dbname):
        url = f"postgresql://{role}:{quote(password, safe='')}@127.0.0.1:{pg_server.port}/{dbname}"
        yield url, role, password


@pytest.mark.parametrize("hard_secret", list(HARD_PASSWORDS.values()), ids=list(HARD_PASSWORDS),
                         indirect=True)
def test_a_hard_password_appears_nowhere(hard_secret, redis_url, tmp_path) -> None:
    """Every output of a rollout step, a check report (JSON and JUnit files), a plan, a failed
    login and the event log is scanned for the password, raw and percent-encoded; the same
    password given unencoded is refused in one line that does not repeat it."""
    from urllib.parse import quote

    url, _role, password = hard_secret
    forms = {password, quote(password, safe=""), quote(password)}
    env = {"PHASEGATE_CONFIG": str(tmp_path / "none.toml"), "PHASEGATE_SEC_DB_URL": url,
           "PHASEGATE_SEC_REDIS_URL": redis_url}
    texts = [
        _invoke("rollout", "--phase", "expand", "--env", "sec", env=env),
        _invoke("check", "--env", "sec", "--phase", "expand", "--format", "json",
                "--output", str(tmp_path / "checks.json"), env=env),
        _invoke("check", "--env", "sec", "--phase", "expand", "--format", "junit",
                "--output", str(tmp_path / "checks.xml"), env=env),
        _invoke("plan", "--env", "sec", "--format", "both", "--out", str(tmp_path / "plans"), env=env),
    ]
    assert "gated" in texts[0], texts[0]
    wrong = url.replace(quote(password, safe=""), quote(password[::-1], safe=""))
    failed = _invoke("rollout", "--status", "--env", "bad",
                     env={**env, "PHASEGATE_BAD_DB_URL": wrong, "PHASEGATE_BAD_REDIS_URL": redis_url})
    assert failed.startswith("phasegate: cannot reach the database of bad"), failed
    texts.append(failed)
    raw = url.replace(quote(password, safe=""), password)
    refused = _invoke("rollout", "--status", "--env", "raw",
                      env={**env, "PHASEGATE_RAW_DB_URL": raw, "PHASEGATE_RAW_REDIS_URL": redis_url})
    if any(ch in password for ch in "@/#? %"):
        assert "percent-encode" in refused and refused.count("\n") <= 1, refused
    texts.append(refused)
    with psycopg.connect(url) as conn:
        texts += [str(r) for r in conn.execute(
            "SELECT actor, detail FROM phasegate_rollout_event").fetchall()]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"checks.json", "checks.xml"} <= {p.name for p in files}
    texts += [p.read_text(encoding="utf-8") for p in files]
    leaks = [t[:200] for t in texts for form in forms | {password[::-1]} if form in t]
    assert leaks == []
