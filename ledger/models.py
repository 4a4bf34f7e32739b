"""SQLAlchemy 2 models of everything phasegate touches.

Three groups, matching the migration points (see ``migrations/README.md``):

* **baseline** – what the application has before any rollout: ``background_job``.
* **kit** – phasegate's own bookkeeping: flags the application reads, rollout state and
  the append-only rollout event log.
* **expand** – the reliability ledger of seed 165b/165d: dispatch windows, per-attempt
  function runs, dead letters, effect keys and the operator audit.

The models are the source of truth for the schema at ``head``; a test asserts that an
Alembic autogenerate diff between them and a fully migrated database is empty.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Every constraint and index gets a predictable name, so migrations can refer to them and
# downgrades can drop exactly what upgrades created.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NOW = text("now()")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _pg_enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


# --------------------------------------------------------------------------- baseline


class JobStatus(enum.StrEnum):
    PENDING = "PENDING"  # waiting for run_at and a free worker
    RUNNING = "RUNNING"  # claimed; locked_at is the lease heartbeat
    SUCCEEDED = "SUCCEEDED"  # finished; terminal
    FAILED = "FAILED"  # out of attempts or terminal error; terminal


class BackgroundJob(Base):
    """A unit of background work: the application's queue table before any rollout."""

    __tablename__ = "background_job"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    type: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[JobStatus] = mapped_column(
        _pg_enum(JobStatus, "background_job_status"), server_default="PENDING"
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, server_default="5")
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_by: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    # Added by the expand phase (nullable, no default: a catalog-only change).
    correlation_id: Mapped[str | None] = mapped_column(Text)
    dispatch_key: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # Claim path: the oldest due PENDING job. Added in expand, replacing the baseline's
        # (status, run_at) index, which the contract phase drops.
        Index(
            "ix_background_job_claimable",
            "run_at",
            postgresql_where=text("status = 'PENDING'"),
        ),
        # Lease rescue: RUNNING jobs by heartbeat age.
        Index(
            "ix_background_job_running_lease",
            "locked_at",
            postgresql_where=text("status = 'RUNNING'"),
        ),
    )


# --------------------------------------------------------------------------- kit


class Flag(Base):
    """A mode switch the application reads through a short-lived cache."""

    __tablename__ = "phasegate_flag"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_by: Mapped[str] = mapped_column(Text, server_default="phasegate")


class RolloutState(Base):
    """Where each phase of a target's rollout stands; one row per phase."""

    __tablename__ = "phasegate_rollout_state"

    phase: Mapped[str] = mapped_column(Text, primary_key=True)
    status: Mapped[str] = mapped_column(Text)  # pending|applying|applied|gated|failed|rolling_back|rolled_back
    rollout_id: Mapped[str | None] = mapped_column(Text)
    direction: Mapped[str | None] = mapped_column(Text)  # forward|rollback
    current_action: Mapped[str | None] = mapped_column(Text)
    completed_actions: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    checkpoint: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    gate_results: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    actor: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)


class RolloutEvent(Base):
    """Append-only log of everything a rollout did (triggers refuse UPDATE, DELETE and
    TRUNCATE; from p0014 it is owned by a role the rollouts do not run as)."""

    __tablename__ = "phasegate_rollout_event"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    rollout_id: Mapped[str] = mapped_column(Text)
    phase: Mapped[str] = mapped_column(Text)
    action_id: Mapped[str | None] = mapped_column(Text)
    event: Mapped[str] = mapped_column(Text)  # started|succeeded|failed|gate|refused|...
    outcome: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)  # the display name the rollout was given
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    # Who wrote it: session_user, set by a trigger whatever the INSERT says (p0014); NULL on
    # rows written before.
    db_role: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_phasegate_rollout_event_rollout_id_at", "rollout_id", "at"),)


# --------------------------------------------------------------------------- expand


class DispatchStatus(enum.StrEnum):
    DISPATCHING = "DISPATCHING"  # a sender won the key and is enqueueing
    ENQUEUED = "ENQUEUED"  # handed to the queue; terminal
    ENQUEUE_FAILED = "ENQUEUE_FAILED"  # the queue refused and inline was not allowed; terminal
    INLINE_EMERGENCY = "INLINE_EMERGENCY"  # the queue refused; the work ran inline; terminal


class FunctionRunStatus(enum.StrEnum):
    RUNNING = "RUNNING"  # attempt started, no outcome yet
    SUCCEEDED = "SUCCEEDED"  # attempt finished without error
    FAILED = "FAILED"  # attempt finished with an error (see error_class)


class ErrorClass(enum.StrEnum):
    RETRIABLE = "RETRIABLE"  # transient: timeouts, connection loss, serialization, deadlock
    TERMINAL = "TERMINAL"  # retrying cannot help: validation, constraint, malformed payload


class DeadLetterStatus(enum.StrEnum):
    OPEN = "OPEN"  # waiting for an operator
    REQUEUED = "REQUEUED"  # an operator sent it back to the queue as a fresh job
    DISCARDED = "DISCARDED"  # an operator closed it with a reason; history kept


class DispatchWindow(Base):
    """One row per (source, time window): the dedupe record of a cron-to-queue send."""

    __tablename__ = "background_dispatch_window"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dispatch_key: Mapped[str] = mapped_column(Text, unique=True)
    source: Mapped[str] = mapped_column(Text)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    correlation_id: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[DispatchStatus] = mapped_column(
        _pg_enum(DispatchStatus, "background_dispatch_status"), server_default="DISPATCHING"
    )
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)

    __table_args__ = (
        Index("ix_background_dispatch_window_status_window_start", "status", "window_start"),
        Index("ix_background_dispatch_window_window_end", "window_end"),
        # Stuck senders: only DISPATCHING rows, which should be few and short-lived.
        Index(
            "ix_background_dispatch_window_dispatching",
            "created_at",
            postgresql_where=text("status = 'DISPATCHING'"),
        ),
    )


class FunctionRun(Base):
    """One row per attempt of a function run: the durable run ledger."""

    __tablename__ = "background_function_run"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_key: Mapped[str] = mapped_column(Text, unique=True)
    function_name: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    dispatch_key: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[FunctionRunStatus] = mapped_column(
        _pg_enum(FunctionRunStatus, "background_function_run_status"), server_default="RUNNING"
    )
    error_class: Mapped[ErrorClass | None] = mapped_column(
        _pg_enum(ErrorClass, "background_error_class")
    )
    terminal_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)

    __table_args__ = (
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        Index(
            "ix_background_function_run_function_status_requested",
            "function_name",
            "status",
            "requested_at",
        ),
        Index("ix_background_function_run_dispatch_key", "dispatch_key"),
        Index("ix_background_function_run_run_id", "run_id"),
        Index("ix_background_function_run_requested_at", "requested_at"),
        # Liveness triage: only unresolved attempts.
        Index(
            "ix_background_function_run_running",
            "started_at",
            postgresql_where=text("status = 'RUNNING'"),
        ),
        # "Top terminal errors in the last day" is one range scan of this index.
        Index(
            "ix_background_function_run_failed",
            "error_class",
            "finished_at",
            postgresql_where=text("status = 'FAILED'"),
        ),
    )


class DeadLetter(Base):
    """A job that will not be retried automatically: visible until an operator acts."""

    __tablename__ = "background_dead_letter"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("background_job.id"))
    job_type: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    error_class: Mapped[ErrorClass] = mapped_column(_pg_enum(ErrorClass, "background_error_class"))
    last_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    correlation_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[DeadLetterStatus] = mapped_column(
        _pg_enum(DeadLetterStatus, "background_dead_letter_status"), server_default="OPEN"
    )
    dead_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolution_reason: Mapped[str | None] = mapped_column(Text)
    requeued_job_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        # A job has at most one OPEN dead letter: requeue/discard races resolve on this.
        Index(
            "uq_background_dead_letter_open_job",
            "job_id",
            unique=True,
            postgresql_where=text("status = 'OPEN'"),
        ),
        Index(
            "ix_background_dead_letter_open",
            "job_type",
            "dead_at",
            postgresql_where=text("status = 'OPEN'"),
        ),
        # The foreign key's referencing side and the backfill's "already dead-lettered?" probe.
        Index("ix_background_dead_letter_job_id", "job_id"),
        # A job is the requeue of at most one letter (p0013); the state machine that sets
        # requeued_job_id once per letter is the trigger background_dead_letter_guard (p0014).
        Index(
            "uq_background_dead_letter_requeued_job_id",
            "requeued_job_id",
            unique=True,
            postgresql_where=text("requeued_job_id IS NOT NULL"),
        ),
    )


class JobEffect(Base):
    """A side effect that happened, recorded in the same transaction as its record."""

    __tablename__ = "background_job_effect"

    effect_key: Mapped[str] = mapped_column(Text, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    run_key: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)


class OperatorAudit(Base):
    """Append-only record of every operator action (triggers refuse UPDATE, DELETE and
    TRUNCATE; from p0014 written only by the dead-letter functions and the migrating role)."""

    __tablename__ = "background_operator_audit"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    operator: Mapped[str] = mapped_column(Text)  # the display name (--operator), as given
    action: Mapped[str] = mapped_column(Text)  # requeue|discard|inspect|reconcile|...
    target_kind: Mapped[str] = mapped_column(Text)
    target_id: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)  # ok|refused
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    # Who acted: session_user, set by a trigger whatever the INSERT says (p0014); NULL on rows
    # written before.
    db_role: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_background_operator_audit_target", "target_kind", "target_id"),)


BASELINE_TABLES = ("background_job",)
KIT_TABLES = ("phasegate_flag", "phasegate_rollout_state", "phasegate_rollout_event")
EXPAND_TABLES = (
    "background_dispatch_window",
    "background_function_run",
    "background_dead_letter",
    "background_job_effect",
    "background_operator_audit",
)

# What SQLAlchemy models cannot describe but the invariants rest on (p0002, p0006, p0014):
# the triggers, table -> names, and the functions in the schema. The schema checks require
# each to exist and each trigger to be enabled, so a dropped or disabled guard fails a gate.
TRIGGERS: dict[str, tuple[str, ...]] = {
    "phasegate_rollout_event": ("phasegate_rollout_event_append_only",
                                "phasegate_rollout_event_no_truncate",
                                "phasegate_rollout_event_session_role"),
    "background_dead_letter": ("background_dead_letter_guard",),
    "background_operator_audit": ("background_operator_audit_append_only",
                                  "background_operator_audit_no_truncate",
                                  "background_operator_audit_session_role"),
}
FUNCTIONS = ("phasegate_append_only", "phasegate_record_session_role",
             "phasegate_dead_letter_guard", "phasegate_dlq_audit", "phasegate_dlq_requeue",
             "phasegate_dlq_discard", "phasegate_dlq_inspect")
