"""The mode switches the rollout flips and the application reads.

The application reads flags through :class:`FlagReader`, a cache with a short TTL, so a
flag change reaches every process within ``ttl`` seconds without a deploy; the rollout
waits out that TTL (:func:`propagation_wait`) before it gates. Before the kit's tables
exist (a database at the baseline) every flag reads as its default.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ProgrammingError

from ledger import sqlfiles
from ledger.errors import ConfigError

WRITE_MODE = "write_mode"  # where job status is written
READ_SOURCE = "read_source"  # where job status is read from
RETENTION = "retention"  # whether the pruner may delete history

# Allowed values; the first is the default (the state before any rollout).
ALLOWED: Mapping[str, tuple[str, ...]] = {
    WRITE_MODE: ("redis_only", "dual", "db_only"),
    READ_SOURCE: ("redis", "db"),
    RETENTION: ("off", "on"),
}
DEFAULTS: Mapping[str, str] = {name: values[0] for name, values in ALLOWED.items()}

READ_SQL = sqlfiles.query(__file__, "flags", "read_flags")
SET_SQL = sqlfiles.query(__file__, "flags", "set_flag")


def default_ttl() -> float:
    raw = os.environ.get("PHASEGATE_FLAG_TTL", "")
    try:
        return float(raw) if raw else 2.0
    except ValueError as exc:
        raise ConfigError(f"PHASEGATE_FLAG_TTL must be a number of seconds, not {raw!r}") from exc


def propagation_wait(ttl: float | None = None) -> float:
    """How long after a flag write every reader is guaranteed to see it (TTL + margin)."""
    return (default_ttl() if ttl is None else ttl) + 0.2


def validate(name: str, value: str) -> None:
    if name not in ALLOWED:
        raise ConfigError(f"unknown flag {name!r}; flags are {', '.join(ALLOWED)}")
    if value not in ALLOWED[name]:
        raise ConfigError(f"flag {name} cannot be {value!r}; allowed: {', '.join(ALLOWED[name])}")


def read_all(conn: Connection) -> dict[str, str]:
    """Current flags straight from the table (defaults where unset or before the kit)."""
    flags = dict(DEFAULTS)
    try:
        with conn.begin_nested():
            rows = sqlfiles.execute(conn, READ_SQL).all()
    except ProgrammingError:
        # phasegate_flag does not exist yet: the database is at the baseline.
        return flags
    flags.update({name: value for name, value in rows if name in ALLOWED})
    return flags


def set_flag(conn: Connection, name: str, value: str, actor: str) -> None:
    """Upsert one flag (in the caller's transaction)."""
    validate(name, value)
    sqlfiles.execute(conn, SET_SQL, {"name": name, "value": value, "actor": actor})


@dataclass(frozen=True)
class Modes:
    write_mode: str
    read_source: str
    retention: str

    @property
    def writes_redis(self) -> bool:
        return self.write_mode in ("redis_only", "dual")

    @property
    def writes_db(self) -> bool:
        return self.write_mode in ("dual", "db_only")

    @property
    def reads_db(self) -> bool:
        return self.read_source == "db"


class FlagReader:
    """Thread-safe, TTL-cached view of the flags for one engine."""

    def __init__(self, engine: Engine, ttl: float | None = None) -> None:
        self.engine = engine
        self.ttl = default_ttl() if ttl is None else ttl
        self._lock = threading.Lock()
        self._cached: dict[str, str] | None = None
        self._at = 0.0

    def all(self) -> dict[str, str]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._at >= self.ttl:
                with self.engine.connect() as conn:
                    self._cached = read_all(conn)
                self._at = time.monotonic()
            return dict(self._cached)

    def modes(self) -> Modes:
        f = self.all()
        return Modes(f[WRITE_MODE], f[READ_SOURCE], f[RETENTION])

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None
