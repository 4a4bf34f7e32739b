"""Rollout state, the append-only event log, and the one-rollout-per-target lock.

State lives in the target database (``phasegate_rollout_state``, one row per phase), so a
killed rollout resumes where it stopped: each completed action id is checkpointed in the
same table, and long actions (the backfill) checkpoint their progress there too.

The lock is a session-level advisory lock held on a dedicated connection for the whole
command: it disappears with the process, so a crash never leaves a stale lock behind.
The holder advertises itself through ``application_name``, which is how a second rollout
can say who holds the target and since when.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Engine

from rollout.errors import LockHeld

log = logging.getLogger("phasegate.rollout.state")

# pg_advisory_lock key: a fixed 64-bit number ("phasegate" in ASCII, truncated) per database.
LOCK_KEY = 0x7068617365676174
APP_NAME_PREFIX = "phasegate-rollout"

PENDING, APPLYING, APPLIED, GATED, FAILED = "pending", "applying", "applied", "gated", "failed"
ROLLING_BACK, ROLLED_BACK = "rolling_back", "rolled_back"


@dataclass
class PhaseState:
    phase: str
    status: str = PENDING
    rollout_id: str | None = None
    direction: str | None = None
    current_action: str | None = None
    completed_actions: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] = field(default_factory=dict)
    gate_results: list[dict[str, Any]] = field(default_factory=list)
    actor: str | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None


class StateStore:
    """Reads and writes phase state and events; every write is its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def installed(self) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(text("SELECT to_regclass('phasegate_rollout_state') IS NOT NULL")).scalar())

    def get(self, phase: str) -> PhaseState:
        if not self.installed():
            return PhaseState(phase)
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT phase, status, rollout_id, direction, current_action, completed_actions, "
                     "checkpoint, gate_results, actor, started_at, updated_at "
                     "FROM phasegate_rollout_state WHERE phase = :p"), {"p": phase}
            ).mappings().first()
        return PhaseState(**row) if row else PhaseState(phase)

    def save(self, st: PhaseState) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO phasegate_rollout_state AS s (phase, status, rollout_id, direction, "
                    "current_action, completed_actions, checkpoint, gate_results, actor, started_at, updated_at) "
                    "VALUES (:phase, :status, :rollout_id, :direction, :current_action, "
                    "CAST(:completed AS jsonb), CAST(:checkpoint AS jsonb), CAST(:gate AS jsonb), :actor, "
                    ":started_at, now()) ON CONFLICT (phase) DO UPDATE SET status = EXCLUDED.status, "
                    "rollout_id = EXCLUDED.rollout_id, direction = EXCLUDED.direction, "
                    "current_action = EXCLUDED.current_action, completed_actions = EXCLUDED.completed_actions, "
                    "checkpoint = EXCLUDED.checkpoint, gate_results = EXCLUDED.gate_results, "
                    "actor = EXCLUDED.actor, started_at = EXCLUDED.started_at, updated_at = now()"
                ),
                {
                    "phase": st.phase, "status": st.status, "rollout_id": st.rollout_id,
                    "direction": st.direction, "current_action": st.current_action,
                    "completed": json.dumps(st.completed_actions),
                    "checkpoint": json.dumps(st.checkpoint, default=str),
                    "gate": json.dumps(st.gate_results, default=str),
                    "actor": st.actor, "started_at": st.started_at,
                },
            )

    def event(self, rollout_id: str, phase: str, event: str, actor: str, *,
              action_id: str | None = None, outcome: str | None = None,
              detail: dict[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO phasegate_rollout_event (rollout_id, phase, action_id, event, outcome, actor, detail) "
                     "VALUES (:r, :p, :a, :e, :o, :actor, CAST(:d AS jsonb))"),
                {"r": rollout_id, "p": phase, "a": action_id, "e": event, "o": outcome,
                 "actor": actor, "d": json.dumps(detail or {}, default=str)},
            )

    def events(self, limit: int = 50, rollout_id: str | None = None) -> list[dict[str, Any]]:
        if not self.installed():
            return []
        sql = ("SELECT id, rollout_id, phase, action_id, event, outcome, actor, detail, at "
               "FROM phasegate_rollout_event")
        params: dict[str, Any] = {"n": limit}
        if rollout_id:
            sql += " WHERE rollout_id = :r"
            params["r"] = rollout_id
        with self.engine.connect() as conn:
            rows = conn.execute(text(sql + " ORDER BY id DESC LIMIT :n"), params).mappings().all()
        return [dict(r) for r in reversed(rows)]


class TargetLock:
    """One rollout per target: ``pg_try_advisory_lock`` on a connection held open."""

    def __init__(self, dsn: str, target: str, actor: str) -> None:
        self.dsn, self.target, self.actor = dsn, target, actor
        self.conn: psycopg.Connection | None = None

    def __enter__(self) -> TargetLock:
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # application_name is at most 63 bytes; keep the actor short and printable.
        actor = "".join(ch for ch in self.actor if ch.isprintable())[:24]
        app = f"{APP_NAME_PREFIX} by {actor} since {since}"
        conn = psycopg.connect(self.dsn, autocommit=True, application_name=app)
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        got = bool(row and row[0])
        if not got:
            holder = conn.execute(
                "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = (%s::bigint & 4294967295)::oid "
                "AND l.classid = (%s::bigint >> 32)::oid AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
                (LOCK_KEY, LOCK_KEY),
            ).fetchone()
            conn.close()
            who = f"{holder[0]} (pid {holder[1]})" if holder else "an unknown session"
            raise LockHeld(self.target, who)
        self.conn = conn
        return self

    def ensure_held(self) -> None:
        """Raise psycopg.OperationalError if the lock's session is gone (a server restart
        ends it, and the lock with it): the caller must stop before its next step."""
        if self.conn is not None:
            self.conn.execute("SELECT 1")

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            try:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            except psycopg.Error:
                pass  # the server dropped the session, and the lock with it
            self.conn.close()
            self.conn = None
