"""Backfill of history into the run ledger: bounded, resumable, throttled, reporting progress.

Keyset-paginated over ``background_job.id`` up to the highest id that existed when the
backfill started (later jobs are covered by the live dual write). Each batch is one
statement, and the checkpoint (last id done) is saved after it, so a killed backfill
resumes at the next batch; batches are idempotent (``ON CONFLICT DO NOTHING``), so a batch
replayed after a crash between its commit and its checkpoint changes nothing.

The throttle holds a target rate (rows/s; 0 = none) and backs off, doubling its pause up to
2 s, while sessions wait on locks or a replica lags: the application comes first.

Progress goes to ``ctx.on_progress`` (a :class:`rollout.phase.ProgressEvent` after every
batch, and a last one when it stops); the CLI draws it, this module never prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from infra.fault_injection import fault_point
from ledger import sqlfiles
from ledger.redis_layout import SQL_ESCAPE_PARAMS
from rollout.phase import PhaseContext, ProgressEvent

MAX_BACKOFF_SECONDS = 2.0
ACTION_ID = "dual_write.backfill"

BOUNDS_SQL = sqlfiles.query(__file__, "backfill", "backfill_bounds")
BATCH_SQL = sqlfiles.query(__file__, "backfill", "backfill_runs")
LOCK_WAITERS_SQL = sqlfiles.query(__file__, "backfill", "backfill_lock_waiters")
REPLICATION_LAG_SQL = sqlfiles.query(__file__, "backfill", "backfill_replication_lag")


@dataclass(frozen=True)
class BackfillResult:
    scanned: int
    inserted_runs: int
    inserted_letters: int
    seconds: float
    batches: int


def _pressure(ctx: PhaseContext) -> bool:
    """True while the application is waiting on locks or a replica lags behind."""
    with ctx.engine.connect() as conn:
        waiters = sqlfiles.execute(conn, LOCK_WAITERS_SQL).scalar() or 0
        lag = float(sqlfiles.execute(conn, REPLICATION_LAG_SQL).scalar() or 0)
    s = ctx.settings
    return waiters >= s.backfill_backoff_lock_waiters or lag > s.max_replication_lag_seconds


def run(ctx: PhaseContext) -> BackfillResult:
    cp = ctx.state.checkpoint
    if "backfill_until_id" not in cp:
        with ctx.engine.connect() as conn:
            after_id, until_id = sqlfiles.execute(conn, BOUNDS_SQL).one()
        ctx.checkpoint(backfill_after_id=int(after_id), backfill_until_id=int(until_id),
                       backfill_start_id=int(after_id))
    after_id, until_id = int(cp["backfill_after_id"]), int(cp["backfill_until_id"])
    total = max(0, until_id - int(cp.get("backfill_start_id", after_id)))
    s = ctx.settings
    t0, scanned, runs, letters, batches, pause = time.monotonic(), 0, 0, 0, 0, 0.0

    def report(finished: bool = False) -> None:
        if ctx.on_progress is not None:
            rate = scanned / max(time.monotonic() - t0, 1e-6)
            ctx.on_progress(ProgressEvent(ACTION_ID, total - max(0, until_id - after_id), total,
                                          rate, finished=finished))

    report()
    try:
        while after_id < until_id:
            batch_t0 = time.monotonic()
            with ctx.engine.begin() as conn:
                row = sqlfiles.execute(conn, BATCH_SQL, {
                    "after_id": after_id, "until_id": until_id, "batch_size": s.backfill_batch_size,
                    **SQL_ESCAPE_PARAMS,
                }).one()
            if row.last_id is None:
                break
            after_id = int(row.last_id)
            scanned, runs, letters = scanned + row.scanned, runs + row.inserted_runs, letters + row.inserted_letters
            batches += 1
            ctx.checkpoint(backfill_after_id=after_id)
            if batches == 1:
                fault_point("during", ACTION_ID)
            report()
            # Throttle: hold the target rate, and back off while the application is under pressure.
            wait = 0.0
            if s.backfill_rows_per_second > 0:
                wait = row.scanned / s.backfill_rows_per_second - (time.monotonic() - batch_t0)
            if batches % 5 == 0 or pause > 0:
                pause = min(MAX_BACKOFF_SECONDS, max(0.05, pause * 2)) if _pressure(ctx) else 0.0
            if max(wait, pause) > 0:
                time.sleep(max(wait, pause))
    finally:
        report(finished=True)  # also on failure: the display stops where the backfill did
    result = BackfillResult(scanned, runs, letters, round(time.monotonic() - t0, 3), batches)
    ctx.log.info("backfill done: %s", result, extra={"action_id": ACTION_ID})
    return result
