"""The lock names a real holder (issue 13, finding 3): the advisory lock needs no privilege
and any client sets its own application_name, so a refused rollout names the holder by its
session's login role too, and calls it a rollout only when that role is the kit's own and
its label is the kit's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from rollout.engine import Rollout
from rollout.errors import LockHeld
from rollout.state import LOCK_KEY, TargetLock
from tests.integration.rollout.harness import make_target

FORGED = "phasegate-rollout by alice since 2024-01-01T00:00:00Z"


@pytest.fixture
def stranger(pg_server) -> Iterator[str]:
    """A second LOGIN role with nothing but CONNECT (PUBLIC's default)."""
    role = f"stranger_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    yield role
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def target(make_db, redis_url):
    return make_target(make_db("baseline"), redis_url, jobs=50)


def _own_role(target) -> str:
    with psycopg.connect(target.dsn) as conn:
        return conn.execute("SELECT session_user").fetchone()[0]


def _refusal(target, tmp_path) -> LockHeld:
    ro = Rollout(target, "carol", plans_dir=tmp_path / "plans")
    try:
        ro.ensure_kit()
        with pytest.raises(LockHeld) as err:
            ro.apply("expand")
    finally:
        ro.close()
    with psycopg.connect(target.dsn) as conn:
        assert conn.execute("SELECT to_regclass('background_function_run')").fetchone()[0] is None
        holder = conn.execute("SELECT detail->>'holder' FROM phasegate_rollout_event "
                              "WHERE event = 'lock_refused'").fetchone()[0]
    assert holder in str(err.value)  # the event says what the line says
    return err.value


def test_another_role_with_a_forged_label_is_a_foreign_session(stranger, target, tmp_path) -> None:
    dsn = psycopg.conninfo.make_conninfo(target.dsn, user=stranger, application_name=FORGED)
    with psycopg.connect(dsn, autocommit=True) as squatter:
        squatter.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        err = _refusal(target, tmp_path)
        pid = squatter.info.backend_pid
    assert str(err) == (f"target test is locked by a foreign session: role {stranger}, pid {pid}, "
                        f"application_name '{FORGED}' (not a phasegate rollout)")
    assert err.foreign and err.role == stranger and err.pid == pid


def test_the_kits_own_role_without_the_kits_label_is_a_foreign_session(target, tmp_path) -> None:
    with psycopg.connect(target.dsn, autocommit=True, application_name="psql") as squatter:
        squatter.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        err = _refusal(target, tmp_path)
    assert err.foreign and f"role {_own_role(target)}," in str(err) and "application_name 'psql'" in str(err)


def test_a_rollout_is_named_as_one_even_beside_a_lookalike_lock(stranger, target, tmp_path) -> None:
    # The same two halves as the key, taken as two int4s (first, so pg_locks lists it first):
    # another lock, which must not be mistaken for the holder.
    dsn = psycopg.conninfo.make_conninfo(target.dsn, user=stranger, application_name=FORGED)
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF))
        with TargetLock(target.dsn, target.name, "bob@ops"):
            err = _refusal(target, tmp_path)
    assert not err.foreign and err.role == _own_role(target)
    assert str(err).startswith(f"target test is locked by a rollout of role {_own_role(target)} "
                               "(phasegate-rollout by bob@ops since 20")
