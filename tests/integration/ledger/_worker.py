"""A runner process for the multi-process and kill tests (``python -m`` this module).

argv: db_url redis_url worker_id lease_seconds mode   (mode: drain | hang)
``drain`` runs jobs until none is left; ``hang`` claims one job, performs its effect and
then hangs forever (the parent kills it with SIGKILL mid-job).
"""

from __future__ import annotations

import sys
import threading
import time

from ledger.app import LedgerApp
from ledger.runner import JobContext

EFFECT_SQL = "INSERT INTO test_effect (job_id, attempt, worker) VALUES (%s, %s, %s)"


def handler(ctx: JobContext) -> None:
    """The shared test handler: record one effect per job, exactly once."""
    ctx.once(f"effect:{ctx.job_id}",
             lambda conn: conn.execute(EFFECT_SQL, (ctx.job_id, ctx.attempt, ctx.worker_id)))
    if ctx.payload.get("hang"):
        print("effect-done", flush=True)
        threading.Event().wait()


def drain(db_url: str, redis_url: str, worker_id: str, lease: float) -> None:
    """Run jobs until none has been due for half a second."""
    with LedgerApp(db_url, redis_url, flag_ttl=0, worker_id=worker_id, lease_seconds=lease,
                   handlers={"t": handler}) as app:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 0.5:
            if app.run_one() is not None:
                idle_since = time.monotonic()


def main() -> None:
    db_url, redis_url, worker_id, lease, mode = sys.argv[1:6]
    if mode == "drain":
        drain(db_url, redis_url, worker_id, float(lease))
        return
    app = LedgerApp(db_url, redis_url, flag_ttl=0, worker_id=worker_id,
                    lease_seconds=float(lease), handlers={"t": handler})
    app.run_one()  # the handler hangs after its effect; the test kills this process


if __name__ == "__main__":
    main()
