"""Rollout state, the append-only event log, and the one-rollout-per-target lock.

State lives in the target database (``phasegate_rollout_state``, one row per phase), so a
killed rollout resumes where it stopped: each completed action id is checkpointed in the
same table, and long actions (the backfill) checkpoint their progress there too.

The lock is a session-level advisory lock held on a dedicated connection for the whole
command: it disappears with the process, so a crash never leaves a stale lock behind.
The holder advertises itself through ``application_name`` (who and since when), but any
client can set that, and the advisory lock needs no privilege: so a refused rollout names the
holder by its session's login role (``pg_stat_activity.usename``) too, and calls it a rollout
only when that role is the one this rollout connects as *and* the label is the kit's. Anything
else is reported as a foreign session, with its role and pid, so nobody is blamed by a label.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

from ledger import sqlfiles
from migrations.points import RENAMED
from phasegate.text import printable
from rollout.errors import LockHeld

log = logging.getLogger("phasegate.rollout.state")

# pg_advisory_lock key: a fixed 64-bit number ("phasegate" in ASCII, truncated) per database.
LOCK_KEY = 0x7068617365676174
APP_NAME_PREFIX = "phasegate-rollout"

PENDING, APPLYING, APPLIED, GATED, FAILED = "pending", "applying", "applied", "gated", "failed"
ROLLING_BACK, ROLLED_BACK = "rolling_back", "rolled_back"
# Stopped by a signal (Ctrl-C, SIGTERM) mid-phase: nothing runs; ``direction`` says which way
# it was going, and the same command resumes it (every action is idempotent, checkpointed).
INTERRUPTED = "interrupted"

INSTALLED_SQL = sqlfiles.query(__file__, "state", "state_installed")
GET_SQL = sqlfiles.query(__file__, "state", "phase_state")
SAVE_SQL = sqlfiles.query(__file__, "state", "save_phase_state")
EVENT_SQL = sqlfiles.query(__file__, "state", "append_rollout_event")
EVENTS_SQL = sqlfiles.query(__file__, "state", "recent_rollout_events")
TRY_LOCK_SQL = sqlfiles.query(__file__, "state", "try_target_lock")
LOCK_HOLDER_SQL = sqlfiles.query(__file__, "state", "target_lock_holder")
LOCK_ALIVE_SQL = sqlfiles.query(__file__, "state", "target_lock_alive")
UNLOCK_SQL = sqlfiles.query(__file__, "state", "release_target_lock")


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


def current_action_id(action_id: str) -> str:
    """A stored action id under today's name: ``<phase>.migrate.<revision>`` ids name a
    revision, and a renamed revision (``migrations.points.RENAMED``) renames its action."""
    phase, sep, revision = action_id.partition(".migrate.")
    return f"{phase}{sep}{RENAMED[revision]}" if sep and revision in RENAMED else action_id


class StateStore:
    """Reads and writes phase state and events; every write is its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def installed(self) -> bool:
        with self.engine.connect() as conn:
            return bool(sqlfiles.execute(conn, INSTALLED_SQL).scalar())

    def get(self, phase: str) -> PhaseState:
        if not self.installed():
            return PhaseState(phase)
        with self.engine.connect() as conn:
            row = sqlfiles.execute(conn, GET_SQL, {"phase": phase}).mappings().first()
        if not row:
            return PhaseState(phase)
        st = PhaseState(**row)
        # Saved back under the new ids by the next save(); the event log keeps its history.
        st.completed_actions = [current_action_id(a) for a in st.completed_actions]
        st.current_action = st.current_action and current_action_id(st.current_action)
        return st

    def save(self, st: PhaseState) -> None:
        params = {
            "phase": st.phase, "status": st.status, "rollout_id": st.rollout_id,
            "direction": st.direction, "current_action": st.current_action,
            "completed": json.dumps(st.completed_actions),
            "checkpoint": json.dumps(st.checkpoint, default=str),
            "gate": json.dumps(st.gate_results, default=str),
            "actor": st.actor, "started_at": st.started_at,
        }
        with self.engine.begin() as conn:
            sqlfiles.execute(conn, SAVE_SQL, params)

    def event(self, rollout_id: str, phase: str, event: str, actor: str, *,
              action_id: str | None = None, outcome: str | None = None,
              detail: dict[str, Any] | None = None) -> None:
        params = {"rollout_id": rollout_id, "phase": phase, "action_id": action_id,
                  "event": event, "outcome": outcome, "actor": actor,
                  "detail": json.dumps(detail or {}, default=str)}
        with self.engine.begin() as conn:
            sqlfiles.execute(conn, EVENT_SQL, params)

    def events(self, limit: int = 50, rollout_id: str | None = None) -> list[dict[str, Any]]:
        if not self.installed():
            return []
        params = {"rollout_id": rollout_id or None, "limit": limit}
        with self.engine.connect() as conn:
            rows = sqlfiles.execute(conn, EVENTS_SQL, params).mappings().all()
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
        row = conn.execute(TRY_LOCK_SQL, {"lock_key": LOCK_KEY}).fetchone()
        got = bool(row and row[0])
        if not got:
            try:
                holder = conn.execute(LOCK_HOLDER_SQL, {"lock_key": LOCK_KEY}).fetchone()
            finally:
                conn.close()
            raise lock_held(self.target, holder)
        self.conn = conn
        return self

    def ensure_held(self) -> None:
        """Raise psycopg.OperationalError if the lock's session is gone (a server restart
        ends it, and the lock with it): the caller must stop before its next step."""
        if self.conn is not None:
            self.conn.execute(LOCK_ALIVE_SQL)

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            try:
                self.conn.execute(UNLOCK_SQL, {"lock_key": LOCK_KEY})
            except psycopg.Error:
                pass  # the server dropped the session, and the lock with it
            self.conn.close()
            self.conn = None


def lock_held(target: str, holder: tuple[Any, ...] | None) -> LockHeld:
    """The refusal for a lock held by ``holder`` (usename, application_name, pid, own role)."""
    if holder is None:  # it let go between our try and our look
        return LockHeld(target, "a session that has let go since; run the command again")
    role, label, pid, me = holder
    role, label = printable(str(role)), printable(str(label or ""))
    if role != me or not label.startswith(APP_NAME_PREFIX):
        return LockHeld(target, f"a foreign session: role {role}, pid {pid}, application_name "
                                f"'{label}' (not a phasegate rollout)",
                        role=role, pid=pid, label=label, foreign=True)
    return LockHeld(target, f"a rollout of role {role} ({label}), pid {pid}",
                    role=role, pid=pid, label=label)
