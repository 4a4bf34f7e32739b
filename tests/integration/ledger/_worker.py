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


def main() -> None:
    db_url, redis_url, worker_id, lease, mode = sys.argv[1:6]
    app = LedgerApp(db_url, redis_url, flag_ttl=0, worker_id=worker_id,
                    lease_seconds=float(lease), handlers={"t": handler})
    if mode == "hang":
        app.run_one()
        return
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 0.5:
        if app.run_one() is not None:
            idle_since = time.monotonic()
    app.close()


if __name__ == "__main__":
    main()
