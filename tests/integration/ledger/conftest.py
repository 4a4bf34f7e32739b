"""Fixtures for the ledger's integration tests: a LedgerApp on a fresh database at a
migration point, with the rollout's flags set as a test needs them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import redis as redis_lib
from sqlalchemy import create_engine, pool

from ledger.app import LedgerApp
from ledger.flags import READ_SOURCE, WRITE_MODE, set_flag
from tests.conftest import to_dsn


def set_modes(db_url: str, write_mode: str, read_source: str = "redis") -> None:
    engine = create_engine(db_url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        set_flag(conn, WRITE_MODE, write_mode, "test")
        set_flag(conn, READ_SOURCE, read_source, "test")
    engine.dispose()


def q(db_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one query against the test database (autocommit) and return its rows."""
    with psycopg.connect(to_dsn(db_url), autocommit=True) as conn:
        cur = conn.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def seed_history(db_url: str, query: str, params: tuple[Any, ...] = ()) -> None:
    """Write history the ledger's own paths could not (a text stored before a bound, a
    backdated row): as the test's superuser with triggers off (replica mode), as a restore
    would, so a trigger guarding dead letters' snapshots does not refuse the seed."""
    with psycopg.connect(to_dsn(db_url), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(query, params)  # type: ignore[arg-type]


AppFactory = Callable[..., LedgerApp]


@pytest.fixture
def make_app(make_db: Callable[[str], str], redis_url: str) -> Iterator[AppFactory]:
    """``make_app(write_mode="dual", point="head", read_source="redis", **LedgerApp kwargs)``.

    ``flag_ttl=0`` by default, so a flag change is seen by the next call."""
    apps: list[LedgerApp] = []

    def factory(write_mode: str = "dual", *, point: str = "head", read_source: str = "redis",
                db_url: str | None = None, redis: str | None = None, **kw: Any) -> LedgerApp:
        url = db_url or make_db(point)
        if point != "baseline":
            set_modes(url, write_mode, read_source)
        kw.setdefault("flag_ttl", 0)
        app = LedgerApp(url, redis or redis_url, **kw)
        app.test_db_url = url  # type: ignore[attr-defined]
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()
