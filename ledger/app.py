"""``LedgerApp``: the whole write path behind one object, safe in every rollout mode.

The workload generator, the demo and applications build one per process::

    app = LedgerApp(db_url, redis_url, flag_ttl=1.0, handlers={"email": send_email})
    app.dispatch("cron.tick")                 # at most one send per window (to a Redis
                                              # stream, or with dispatch_job_type= a job)
    job_id = app.enqueue_job("email", {"to": "a@b"})
    app.run_one()                             # claim + run one job
    app.record_run("sync", "run-1", outcome="succeeded")
    app.read_status("sync", "run-1")

Each call reads the modes once (through the flag cache) and acts on them, so the process
follows the rollout's flag flips without a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import redis as redis_lib

from ledger import correlation, jobs
from ledger.classify import ErrorClassifier, RetryPolicies
from ledger.db import Database
from ledger.deadletter import DeadLetters
from ledger.dispatch import DispatchEvent, DispatchLedger, DispatchOutcome, Sender
from ledger.effects import EffectLedger
from ledger.flags import FlagReader
from ledger.models import ErrorClass
from ledger.modes import Counters, ModeSource
from ledger.runner import Handler, JobRunner, RunOutcome
from ledger.runs import RunLedger
from ledger.status import JobStatusStore, ReconcileReport, RunStatus

# Redis calls fail fast: in dual mode a dead Redis must cost a call milliseconds, not minutes.
REDIS_TIMEOUT_SECONDS = 2.0


def redis_client(url: str, timeout: float = REDIS_TIMEOUT_SECONDS) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(url, socket_timeout=timeout,
                                    socket_connect_timeout=timeout)


class JobSender:
    """A :class:`Sender` that enqueues the dispatched work as a ``background_job``, carrying
    the dispatch's correlation id and key into the job (and so into every attempt's run
    ledger row and log line): cron tick -> dispatch -> job -> attempts, one correlation id."""

    def __init__(self, db: Database, modes: ModeSource, job_type: str,
                 max_attempts: int = 5, max_payload_bytes: int = jobs.MAX_PAYLOAD_BYTES) -> None:
        self.db, self.modes, self.job_type, self.max_attempts = db, modes, job_type, max_attempts
        self.max_payload_bytes = jobs.payload_limit(max_payload_bytes)

    def send(self, event: DispatchEvent) -> str:
        job_id = jobs.enqueue(self.db, self.job_type, event.payload,
                              with_ledger_columns=self.modes.modes().writes_db,
                              max_attempts=self.max_attempts,
                              correlation_id=event.correlation_id,
                              dispatch_key=event.dispatch_key,
                              max_payload_bytes=self.max_payload_bytes)
        return f"job:{job_id}"


class LedgerApp:
    """The dispatch ledger, run ledger, status store, runner and dead letters, wired.

    ``max_payload_bytes`` (default :data:`ledger.jobs.MAX_PAYLOAD_BYTES`, 1 MiB) bounds a
    job's payload, as JSON text in UTF-8 bytes: :meth:`enqueue_job` refuses a bigger one
    before writing, and the runner dead-letters one (put there by other means) without
    loading it."""

    def __init__(self, db_url: str, redis_url: str, *, flag_ttl: float | None = None,
                 handlers: Mapping[str, Handler] | None = None,
                 windows: Mapping[str, float] | None = None, default_window: float = 60.0,
                 sender: Sender | None = None,
                 inline: Callable[[DispatchEvent], object] | None = None,
                 worker_id: str | None = None, lease_seconds: float = 30.0,
                 heartbeat_seconds: float | None = None,
                 policies: RetryPolicies | None = None,
                 classifier: ErrorClassifier | None = None, pool_size: int = 10,
                 dispatch_job_type: str | None = None,
                 max_payload_bytes: int = jobs.MAX_PAYLOAD_BYTES) -> None:
        # Checked first: a bad limit must not leave a pool and a client open behind it.
        self.max_payload_bytes = jobs.payload_limit(max_payload_bytes)
        self.db = Database(db_url, pool_size=pool_size)
        self.redis = redis_client(redis_url)
        self.flags = FlagReader(self.db.engine, ttl=flag_ttl)
        self.modes = ModeSource(self.flags)
        self.counters = Counters()
        if sender is None and dispatch_job_type is not None:
            sender = JobSender(self.db, self.modes, dispatch_job_type,
                               max_payload_bytes=self.max_payload_bytes)
        self.runs = RunLedger(self.db)
        self.status = JobStatusStore(self.db, self.redis, self.modes, self.runs,
                                     counters=self.counters)
        self.dispatcher = DispatchLedger(self.db, self.redis, self.modes, windows=windows,
                                         default_window=default_window, sender=sender,
                                         inline=inline, counters=self.counters)
        self.effects = EffectLedger(self.db, self.redis, self.modes, self.counters)
        self.runner = JobRunner(self.db, self.status, self.modes, handlers, effects=self.effects,
                                worker_id=worker_id, lease_seconds=lease_seconds,
                                heartbeat_seconds=heartbeat_seconds, classifier=classifier,
                                policies=policies, max_payload_bytes=self.max_payload_bytes)
        self.dead_letters = DeadLetters(self.db)

    def dispatch(self, source: str, at: datetime | None = None,
                 payload: Mapping[str, Any] | None = None,
                 correlation_id: str | None = None) -> DispatchOutcome:
        """Send ``source``'s event for the window ``at`` is in, unless already sent."""
        return self.dispatcher.dispatch(source, at, payload, correlation_id)

    def enqueue_job(self, job_type: str, payload: Mapping[str, Any] | None = None, *,
                    max_attempts: int = 5, run_at: datetime | None = None,
                    correlation_id: str | None = None, dispatch_key: str | None = None) -> int:
        """Insert a PENDING job (correlation id and dispatch key kept once expanded); a
        payload over ``max_payload_bytes`` is refused (:class:`PayloadTooLarge`), unwritten."""
        with_ledger = self.modes.modes().writes_db
        return jobs.enqueue(self.db, job_type, payload, with_ledger_columns=with_ledger,
                            max_attempts=max_attempts, run_at=run_at,
                            correlation_id=correlation.ensure(correlation_id),
                            dispatch_key=dispatch_key, max_payload_bytes=self.max_payload_bytes)

    def run_one(self) -> RunOutcome | None:
        """Claim and run one due job; None when nothing is due."""
        return self.runner.run_one()

    def rescue_expired(self) -> list[int]:
        return self.runner.rescue_expired()

    def record_run(self, function_name: str, run_id: str, attempt: int = 1, *,
                   outcome: str = "succeeded", error: BaseException | str | None = None,
                   correlation_id: str | None = None,
                   dispatch_key: str | None = None) -> RunStatus:
        """Record an attempt of a function run: started and, unless ``outcome`` is
        ``running``, finished (``succeeded`` or ``failed``, with ``error`` classified)."""
        st = self.status.start(function_name, run_id, attempt, dispatch_key=dispatch_key,
                               correlation_id=correlation_id)
        if outcome == "running":
            return st
        if outcome == "succeeded":
            return self.status.succeed(function_name, run_id, attempt)
        if outcome != "failed":
            raise ValueError(f"outcome must be running|succeeded|failed, not {outcome!r}")
        if isinstance(error, BaseException):
            error_class = self.runner.classifier.classify(error)
            text = f"{type(error).__name__}: {error}"
        else:
            error_class, text = ErrorClass.TERMINAL, error or "failed"
        return self.status.fail(function_name, run_id, attempt, error_class, text)

    def read_status(self, function_name: str, run_id: str) -> RunStatus | None:
        """The run's latest status from the store ``read_source`` names."""
        return self.status.read(function_name, run_id)

    def reconcile(self, since: datetime | timedelta,
                  until: datetime | None = None) -> ReconcileReport:
        return self.status.reconcile(since, until)

    def close(self) -> None:
        self.db.dispose()
        self.redis.close()

    def __enter__(self) -> LedgerApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
