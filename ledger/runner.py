"""The job runner: claim, lease, run, record, retry or dead-letter ``background_job`` rows.

* **Claim** with ``FOR UPDATE SKIP LOCKED`` in one ``UPDATE ... RETURNING``: any number of
  runner processes on any number of machines take different rows and never wait on each
  other's locks. Taking a job sets ``RUNNING``, ``locked_by`` and bumps ``attempts``.
* **Lease**: a heartbeat thread refreshes ``locked_at`` while the handler runs. Every later
  write to the job is guarded by ``locked_by`` and ``attempts``, so a worker that lost its
  lease (it stalled and was rescued) cannot overwrite the rescuer's outcome.
* **Rescue**: ``RUNNING`` rows whose heartbeat is older than the lease belong to a dead
  worker; they go back to ``PENDING`` (or are dead-lettered when out of attempts) and the
  dead attempt is recorded as a retriable failure.
* Every attempt is recorded through :class:`JobStatusStore` (run ledger and/or Redis, per
  ``write_mode``); failures are classified; retriable ones come back after exponential
  backoff with jitter; terminal or exhausted ones are dead-lettered (in ``redis_only`` the
  legacy behaviour: the job is just ``FAILED``).
* Handlers wrap side effects in ``ctx.once(effect_key, fn)`` (:mod:`ledger.effects`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ledger import correlation, jobs
from ledger.classify import ErrorClassifier, RetryPolicies, Terminal, describe
from ledger.db import Database
from ledger.effects import EffectLedger
from ledger.errors import IllegalRunTransition
from ledger.models import ErrorClass
from ledger.modes import ModeSource
from ledger.status import JobStatusStore

log = logging.getLogger("phasegate.ledger.runner")

Handler = Callable[["JobContext"], object]

# Re-exported: the limit lives with enqueue and the claim, which both enforce it.
MAX_PAYLOAD_BYTES = jobs.MAX_PAYLOAD_BYTES


class MalformedPayload(Terminal):
    """The job's payload is not a JSON object or is too large: no attempt can succeed."""


def payload_problem(job: jobs.ClaimedJob, max_bytes: int = MAX_PAYLOAD_BYTES) -> str | None:
    """Why this job's payload cannot be handed to a handler, or None when it can. The size
    was measured by the claim, in SQL: an oversized payload was never loaded (it is None;
    so is a JSON ``null``, which the size tells apart)."""
    if job.payload_bytes is not None and job.payload_bytes > max_bytes:
        return f"payload is {job.payload_bytes} bytes, over the {max_bytes}-byte limit"
    if not isinstance(job.payload, Mapping):
        return f"payload must be a JSON object, not {type(job.payload).__name__}"
    return None


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the job, its attempt, its correlation id, and ``once``."""

    job_id: int
    job_type: str
    payload: Mapping[str, Any]
    attempt: int
    max_attempts: int
    correlation_id: str
    dispatch_key: str | None
    run_key: str
    worker_id: str
    effects: EffectLedger = field(repr=False)

    def once(self, effect_key: str, fn: Callable[[psycopg.Connection | None], Any]) -> Any:
        """Run the side effect ``fn`` unless ``effect_key`` already happened; its value."""
        return self.effects.once(effect_key, fn, job_id=self.job_id, run_key=self.run_key).value


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one claimed job."""

    job_id: int
    job_type: str
    attempt: int
    outcome: str  # succeeded | retry | dead | lease_lost
    error_class: str | None = None
    error: str | None = None
    retry_in: float | None = None


class _Heartbeat:
    """Refreshes the lease while a handler runs; notices when the lease was lost."""

    def __init__(self, db: Database, job: jobs.ClaimedJob, worker_id: str,
                 interval: float) -> None:
        self.db, self.job, self.worker_id, self.interval = db, job, worker_id, interval
        self.stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"heartbeat-{job.id}")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                alive = self.db.run(lambda c: c.execute(
                    jobs.HEARTBEAT_SQL, jobs.lease_params(self.job, self.worker_id)).rowcount)
            except psycopg.Error as exc:  # keep beating: the database may come back
                log.warning("job %s: heartbeat failed: %s", self.job.id, type(exc).__name__)
                continue
            if not alive:
                self.lost.set()
                return


class JobRunner:
    """Runs ``background_job`` rows with registered handlers (one per job type)."""

    def __init__(self, db: Database, status: JobStatusStore, modes: ModeSource,
                 handlers: Mapping[str, Handler] | None = None, *,
                 effects: EffectLedger | None = None, worker_id: str | None = None,
                 lease_seconds: float = 30.0, heartbeat_seconds: float | None = None,
                 classifier: ErrorClassifier | None = None,
                 policies: RetryPolicies | None = None,
                 max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self.db, self.status, self.modes = db, status, modes
        self.max_payload_bytes = jobs.payload_limit(max_payload_bytes)
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.effects = effects or EffectLedger(db, status.redis, modes, status.counters)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds or max(lease_seconds / 3, 0.05)
        self.classifier = classifier or ErrorClassifier()
        self.policies = policies or RetryPolicies()

    def register(self, job_type: str, handler: Handler) -> None:
        self.handlers[job_type] = handler

    # ------------------------------------------------------------------ loop

    def run_one(self) -> RunOutcome | None:
        """Claim one due job and run it to an outcome; None when nothing is due."""
        modes = self.modes.modes()
        job = jobs.claim(self.db, self.worker_id, with_ledger_columns=modes.writes_db,
                         job_types=list(self.handlers) or None,
                         max_payload_bytes=self.max_payload_bytes)
        if job is None:
            return None
        with correlation.use(job.correlation_id):
            return self._execute(job, correlation.ensure())

    def run_until_empty(self, max_jobs: int | None = None) -> list[RunOutcome]:
        """Run due jobs until none is left (or ``max_jobs`` ran)."""
        done: list[RunOutcome] = []
        while max_jobs is None or len(done) < max_jobs:
            outcome = self.run_one()
            if outcome is None:
                break
            done.append(outcome)
        return done

    def work(self, stop: threading.Event, idle_sleep: float = 0.1,
             rescue_every: float | None = None) -> int:
        """Run until ``stop`` is set, rescuing expired leases now and then; jobs run."""
        rescue_every = rescue_every or self.lease_seconds
        count, last_rescue = 0, 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now - last_rescue >= rescue_every:
                self.rescue_expired()
                last_rescue = now
            if self.run_one() is None:
                stop.wait(idle_sleep)
            else:
                count += 1
        return count

    # ------------------------------------------------------------------ one job

    def _execute(self, job: jobs.ClaimedJob, cid: str) -> RunOutcome:
        run_id = jobs.run_id(job.id)
        st = self.status.start(job.type, run_id, job.attempts, dispatch_key=job.dispatch_key,
                               correlation_id=cid, job_id=job.id)
        ctx = JobContext(job.id, job.type, job.payload or {}, job.attempts, job.max_attempts, cid,
                         job.dispatch_key, st.run_key, self.worker_id, self.effects)
        log.info("job %s (%s) attempt %s started", job.id, job.type, job.attempts,
                 extra={"job_id": job.id, "run_key": st.run_key})
        handler = self.handlers.get(job.type)
        with _Heartbeat(self.db, job, self.worker_id, self.heartbeat_seconds) as hb:
            try:
                if handler is None:
                    raise LookupError(f"no handler registered for job type {job.type!r}")
                problem = payload_problem(job, self.max_payload_bytes)
                if problem:
                    raise MalformedPayload(problem)
                handler(ctx)
            except Exception as exc:  # every handler failure is classified, none escapes
                return self._failed(job, run_id, exc, hb.lost.is_set())
        try:
            self.status.succeed(job.type, run_id, job.attempts)
        except IllegalRunTransition:
            # A rescuer already recorded this attempt as failed (lease expired): we stalled.
            return self._lease_lost(job)
        if not jobs.finish_succeeded(self.db, job, self.worker_id):
            return self._lease_lost(job)
        log.info("job %s (%s) attempt %s succeeded", job.id, job.type, job.attempts)
        return RunOutcome(job.id, job.type, job.attempts, "succeeded")

    def _failed(self, job: jobs.ClaimedJob, run_id: str, exc: Exception,
                lease_lost: bool) -> RunOutcome:
        error_class = ErrorClass.TERMINAL if isinstance(exc, LookupError) else \
            self.classifier.classify(exc)
        error = describe(exc)
        self.status.fail(job.type, run_id, job.attempts, error_class, error)
        policy = self.policies.for_job(job.type, job.max_attempts)
        if policy.should_retry(job.attempts, error_class):
            delay = policy.delay(job.attempts)
            if not jobs.retry_later(self.db, job, self.worker_id, delay, error):
                return self._lease_lost(job)
            log.warning("job %s (%s) attempt %s failed (%s), retry in %.2fs: %s", job.id,
                        job.type, job.attempts, error_class.value, delay, error)
            return RunOutcome(job.id, job.type, job.attempts, "retry", error_class.value,
                              error, delay)
        dead = jobs.dead_letter(self.db, job, error_class, error,
                                with_ledger=self.modes.modes().writes_db,
                                worker_id=self.worker_id)
        if not dead:
            return self._lease_lost(job)
        log.error("job %s (%s) dead after attempt %s (%s): %s", job.id, job.type,
                  job.attempts, error_class.value, error)
        return RunOutcome(job.id, job.type, job.attempts, "dead", error_class.value, error)

    def _lease_lost(self, job: jobs.ClaimedJob) -> RunOutcome:
        log.warning("job %s attempt %s: lease lost (rescued by another worker); outcome "
                    "left to the rescuer", job.id, job.attempts)
        return RunOutcome(job.id, job.type, job.attempts, "lease_lost")

    # ------------------------------------------------------------------ rescue

    def rescue_expired(self, limit: int = 100) -> list[int]:
        """Return jobs whose lease expired (their worker died) to the queue; their ids."""
        modes = self.modes.modes()
        rescued = jobs.rescue(self.db, self.lease_seconds, self.policies, limit,
                              with_ledger=modes.writes_db)
        for job in rescued:
            with correlation.use(job.correlation_id):
                log.warning("job %s: lease of %s expired at attempt %s; rescued", job.id,
                            job.locked_by, job.attempts)
                try:
                    self.status.fail(job.type, jobs.run_id(job.id), job.attempts,
                                     ErrorClass.RETRIABLE, f"lease expired (worker {job.locked_by})")
                except IllegalRunTransition:
                    pass  # the worker died before recording its start, or after its outcome
        return [j.id for j in rescued]

