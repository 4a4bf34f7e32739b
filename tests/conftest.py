"""Shared fixtures: one real PostgreSQL and one real Redis per test session, a fresh
database per test cloned from a migrated template (CREATE DATABASE ... TEMPLATE is fast),
and a flushed Redis per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis as redis_lib
from psycopg import sql

from infra import ephemeral
from migrations import api as migrations_api

TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if TESTS / "integration" in path.parents:
            item.add_marker(pytest.mark.integration)
        if TESTS / "fault" in path.parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.fault)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ephemeral.PostgresServer]:
    with ephemeral.postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ephemeral.RedisServer]:
    with ephemeral.redis() as server:
        yield server


class DatabaseFactory:
    """Creates databases at a named migration point from per-point templates."""

    def __init__(self, server: ephemeral.PostgresServer) -> None:
        self.server = server
        self.templates: dict[str, str] = {}
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.server.dsn(), autocommit=True)

    def template(self, point: str) -> str:
        if point not in self.templates:
            name = f"tpl_{point}"
            with self._admin() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            if point != "empty":
                migrations_api.upgrade(self.server.sqlalchemy_url(name), point)
            self.templates[point] = name
        return self.templates[point]

    def create(self, point: str = "head") -> str:
        """A new database at ``point``; returns its SQLAlchemy URL."""
        tpl = self.template(point)
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(tpl)))
        self.created.append(name)
        return self.server.sqlalchemy_url(name)

    def drop_created(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.created.clear()


@pytest.fixture(scope="session")
def db_templates(pg_server: ephemeral.PostgresServer) -> DatabaseFactory:
    return DatabaseFactory(pg_server)


@pytest.fixture
def make_db(db_templates: DatabaseFactory) -> Iterator[Callable[[str], str]]:
    """Factory: ``make_db("baseline")`` -> URL of a fresh database at that point."""
    yield db_templates.create
    db_templates.drop_created()


@pytest.fixture
def db_url(make_db: Callable[[str], str]) -> str:
    """A fresh database migrated to head."""
    return make_db("head")


def to_dsn(url: str) -> str:
    """SQLAlchemy URL -> libpq DSN."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def redis_url(redis_server: ephemeral.RedisServer) -> Iterator[str]:
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url
