"""Bounded pruning of run-ledger history (runs and dispatch windows older than N days).

Batched deletes (``LIMIT`` + ``SKIP LOCKED``), each its own short transaction, so pruning
never holds many row locks nor blocks a writer; it stops after ``max_batches`` to stay
bounded per call. Never deletes a row inside its dedupe window, a RUNNING run, or a run
whose job has an OPEN dead letter. The application runs it (e.g. from its maintenance
cron) only while the ``retention`` flag is ``on``; the rollout's retention phase turns it on
and runs the first prune.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from ledger import sqlfiles

# Pruned in this order, each until a batch comes back short (or max_batches is reached).
PRUNE_SQL = {
    "runs": sqlfiles.query(__file__, "retention", "prune_runs"),
    "windows": sqlfiles.query(__file__, "retention", "prune_windows"),
}


@dataclass(frozen=True)
class PruneResult:
    cutoff: datetime
    runs_deleted: int
    windows_deleted: int
    batches: int
    complete: bool  # False when max_batches stopped it before the backlog was gone


def cutoff_for(retention_days: float, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(days=retention_days)


def prune(engine: Engine, retention_days: float, *, batch_size: int = 5000,
          max_batches: int = 10_000, cutoff: datetime | None = None,
          on_batch: Callable[[int], None] | None = None) -> PruneResult:
    """Delete history older than ``retention_days`` in batches; returns what it did.
    ``on_batch(n)`` is called after the n-th batch committed (progress, crash tests)."""
    if retention_days <= 0:
        raise ValueError("retention_days must be positive")
    cutoff = cutoff or cutoff_for(retention_days)
    counts = dict.fromkeys(PRUNE_SQL, 0)
    params = {"cutoff": cutoff, "batch_size": batch_size}
    batches = 0
    for kind, statement in PRUNE_SQL.items():
        while batches < max_batches:
            with engine.begin() as conn:
                deleted = sqlfiles.execute(conn, statement, params).rowcount
            batches += 1
            counts[kind] += deleted
            if on_batch is not None:
                on_batch(batches)
            if deleted < batch_size:
                break
    return PruneResult(cutoff, counts["runs"], counts["windows"], batches,
                       complete=batches < max_batches)
