"""A live application workload: worker processes driving the ledger API at a target rate.

Each worker process builds its own :class:`ledger.app.LedgerApp` (processes are *spawned*:
never forked after an engine exists) and, paced to its share of the target rate, does what
the application does:

``dispatch``     a cron tick sent by several senders at once (every worker sends the same
                 source; the window decides, so most sends are duplicates)
``enqueue``      a job insert
``run``          claim one due job and run it; the handler records an effect once and fails
                 now and then (retriable: retried later; terminal: dead-lettered)
``record_run``   one attempt of a function run (start + finish), with retries and failures
``read_status``  a status read, through whatever read path the flags name now
``rescue``       (every few seconds) return jobs whose lease expired to the queue: it is
                 maintenance, so it counts for failures but not in the latency figures

Every operation is recorded as :class:`OpRecord` (wall-clock start, op, latency, ok, error)
in a per-process JSON-lines file; the parent aggregates them. A "failed" operation is an
exception from a ledger API call. The run is bounded by ``duration`` and ``max_ops`` and
stops by itself (or earlier with :meth:`Workload.stop`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import multiprocessing as mp
import os
import queue
import random
import re
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from phasegate.errors import ConfigError, PhasegateError
from phasegate.text import mask_secrets

READ_OPS = frozenset({"read_status"})
MAINTENANCE_OPS = frozenset({"rescue"})  # not a request: no latency figure
WORKLOAD_JOB_TYPE = "wl.task"
TICK_SOURCE = "wl.cron.tick"
RUN_FUNCTION = "wl.sync"
DEFAULT_MIX: tuple[tuple[str, float], ...] = (
    ("dispatch", 0.15), ("enqueue", 0.25), ("run", 0.25), ("record_run", 0.20),
    ("read_status", 0.15))
STARTUP_TIMEOUT_SECONDS = 60.0
FLUSH_SECONDS = 0.5  # how often a worker appends its records to its file


class WorkloadError(PhasegateError):
    """The workload could not start or its workers died."""


@dataclass(frozen=True)
class WorkloadConfig:
    """What to run, how fast and for how long."""

    db_url: str
    redis_url: str
    workers: int = 3
    rate: float = 150.0  # target operations per second, all workers together
    duration: float = 60.0  # upper bound (seconds); stop() ends the run earlier
    max_ops: int = 1_000_000  # upper bound on operations per worker
    flag_ttl: float = 2.0  # must equal the rollout's Settings.flag_ttl_seconds
    mix: tuple[tuple[str, float], ...] = DEFAULT_MIX
    retriable_rate: float = 0.10  # share of job runs / run attempts that fail retriably
    terminal_rate: float = 0.02  # share that fail terminally
    tick_window: float = 1.0  # seconds: the cron source's dedupe window
    lease_seconds: float = 10.0
    rescue_every: float = 5.0  # seconds between a worker's lease rescues
    rescue_limit: int = 100  # jobs returned to the queue per rescue
    job_types: tuple[str, ...] = (WORKLOAD_JOB_TYPE,)  # types the runners take
    seed: int = 0

    def validate(self) -> None:
        if self.workers < 1 or self.rate <= 0 or self.duration <= 0 or self.max_ops < 1:
            raise ConfigError("workload: workers, rate, duration and max_ops must be positive")
        unknown = {op for op, _ in self.mix} - {op for op, _ in DEFAULT_MIX}
        if unknown:
            raise ConfigError(f"workload: unknown operations in mix: {', '.join(sorted(unknown))}")
        for url in (self.db_url, self.redis_url):
            require_loopback(url)


def require_loopback(url: str) -> None:
    """A load generator only ever points at this machine (never at a shared server)."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigError(f"workload: {mask_secrets(url)} is not a loopback address; "
                          "the workload generator only targets 127.0.0.1 / localhost")


@dataclass(frozen=True)
class OpRecord:
    """One operation: started at ``t`` (epoch seconds), took ``latency_ms``."""

    t: float
    op: str
    latency_ms: float
    ok: bool
    error: str | None = None
    worker: int = 0
    detail: str | None = None

    @property
    def is_read(self) -> bool:
        return self.op in READ_OPS

    @property
    def end(self) -> float:
        return self.t + self.latency_ms / 1000.0


# --------------------------------------------------------------------------- the worker


class _Actor:
    """One worker's application: the ledger calls and the state they need between calls."""

    def __init__(self, cfg: WorkloadConfig, index: int) -> None:
        from ledger.app import LedgerApp
        from ledger.classify import Retriable, Terminal

        self.cfg, self.index = cfg, index
        self.rng = random.Random(cfg.seed * 1000 + index)
        self.retriable, self.terminal = Retriable, Terminal
        handlers = {t: self._handle for t in cfg.job_types}
        self.app = LedgerApp(cfg.db_url, cfg.redis_url, flag_ttl=cfg.flag_ttl,
                             handlers=handlers, windows={TICK_SOURCE: cfg.tick_window},
                             worker_id=f"wl-{index}", lease_seconds=cfg.lease_seconds,
                             pool_size=2)
        # Warm up (flags read, one pooled connection, Redis reachable) before the clock starts.
        self.app.modes.modes()
        with self.app.db.connect():
            pass
        self.app.redis.ping()
        self.recent: deque[str] = deque(maxlen=200)  # run ids this worker recorded
        self.n = 0
        self.ops: dict[str, Callable[[], str | None]] = {
            "dispatch": self.dispatch, "enqueue": self.enqueue, "run": self.run,
            "record_run": self.record_run, "read_status": self.read_status,
            "rescue": self.rescue}

    def _handle(self, ctx: Any) -> None:
        ctx.once(f"wl-effect:{ctx.job_id}", lambda conn: {"sent": True})
        roll = self.rng.random()
        if roll < self.cfg.terminal_rate:
            raise self.terminal("recipient rejected (simulated)")
        if roll < self.cfg.terminal_rate + self.cfg.retriable_rate and ctx.attempt == 1:
            raise self.retriable("upstream timeout (simulated)")

    def dispatch(self) -> str:
        out = self.app.dispatch(TICK_SOURCE, payload={"worker": self.index})
        return "duplicate" if out.duplicate else str(out.status)

    def enqueue(self) -> str:
        self.n += 1
        self.app.enqueue_job(WORKLOAD_JOB_TYPE, {"w": self.index, "n": self.n}, max_attempts=3)
        return "enqueued"

    def run(self) -> str:
        outcome = self.app.run_one()
        return "idle" if outcome is None else outcome.outcome

    def record_run(self) -> str:
        self.n += 1
        run_id = f"wl-{self.index}-{self.n}"
        roll = self.rng.random()
        if roll < self.cfg.retriable_rate:  # attempt 1 fails retriably, attempt 2 succeeds
            self.app.record_run(RUN_FUNCTION, run_id, 1, outcome="failed",
                                error=TimeoutError("upstream timeout (simulated)"))
            self.app.record_run(RUN_FUNCTION, run_id, 2, outcome="succeeded")
            detail = "retried"
        elif roll < self.cfg.retriable_rate + self.cfg.terminal_rate:
            self.app.record_run(RUN_FUNCTION, run_id, 1, outcome="failed",
                                error=ValueError("bad payload (simulated)"))
            detail = "failed"
        else:
            self.app.record_run(RUN_FUNCTION, run_id, 1, outcome="succeeded")
            detail = "succeeded"
        self.recent.append(run_id)
        return detail

    def read_status(self) -> str:
        if not self.recent:
            return "nothing-to-read"
        st = self.app.read_status(RUN_FUNCTION, self.rng.choice(self.recent))
        return "miss" if st is None else f"{st.source}:{st.status}"

    def rescue(self) -> str:
        return f"rescued:{len(self.app.runner.rescue_expired(self.cfg.rescue_limit))}"

    def call(self, op: str) -> OpRecord:
        t = time.time()
        t0 = time.perf_counter()
        try:
            detail = self.ops[op]()
            ok, error = True, None
        except Exception as exc:  # every failure of a ledger call is a recorded outcome
            ok, detail = False, None
            error = mask_secrets(f"{type(exc).__name__}: {exc}".replace("\n", " "))[:300]
        return OpRecord(t, op, (time.perf_counter() - t0) * 1000.0, ok, error, self.index, detail)


def _worker_main(cfg: WorkloadConfig, index: int, out_path: str, stop: Any, ready: Any) -> None:
    """Entry point of one spawned worker process."""
    import logging
    import signal

    logging.disable(logging.ERROR)  # the ledger logs every simulated failure; we record them
    # Ctrl-C in a terminal reaches the whole process group: the parent stops the workers
    # through ``stop`` (and they exit if orphaned), so they ignore it rather than each
    # printing a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    actor = _Actor(cfg, index)
    ops = [op for op, _ in cfg.mix]
    weights = [w for _, w in cfg.mix]
    interval = cfg.workers / cfg.rate
    pending: list[OpRecord] = []
    done = 0
    ready.put(index)
    start = time.monotonic()
    deadline = start + cfg.duration
    due = start + actor.rng.random() * interval  # spread the workers over one interval
    last_rescue = last_flush = start
    with open(out_path, "w", encoding="utf-8") as fh:
        try:
            while not stop.is_set() and done < cfg.max_ops:
                now = time.monotonic()
                if now >= deadline or os.getppid() != parent:  # bounded; never orphaned
                    break
                if now - last_flush >= FLUSH_SECONDS:  # the parent reads progress live
                    _flush(fh, pending)
                    last_flush = now
                if due > now:
                    stop.wait(min(due - now, FLUSH_SECONDS))
                    continue
                # Behind schedule by more than a second (a stall): resume the pace, no burst.
                due = max(due + interval, now - 1.0)
                if now - last_rescue >= cfg.rescue_every:
                    last_rescue = now
                    pending.append(actor.call("rescue"))
                pending.append(actor.call(actor.rng.choices(ops, weights)[0]))
                done += 1
        finally:
            _flush(fh, pending)
            actor.app.close()


def _flush(fh: Any, pending: list[OpRecord]) -> None:
    fh.write("".join(json.dumps(asdict(rec)) + "\n" for rec in pending))
    fh.flush()
    pending.clear()


# --------------------------------------------------------------------------- the parent


class Workload:
    """Starts the worker processes; :meth:`stop` (or the bounds) ends them, then aggregates.

    ::

        with Workload(WorkloadConfig(db_url, redis_url, duration=120)) as wl:
            ...                      # run the rollout
        ops = wl.records             # every operation of every worker
    """

    def __init__(self, config: WorkloadConfig) -> None:
        config.validate()
        self.config = config
        self._tmp: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
            prefix="phasegate-wl-")
        self.out_dir = Path(self._tmp.name)
        self._ctx = mp.get_context("spawn")
        self._stop = self._ctx.Event()
        self._procs: list[Any] = []
        self.records: list[OpRecord] = []

    def _path(self, index: int) -> Path:
        return self.out_dir / f"worker-{index}.jsonl"

    def start(self) -> Workload:
        """Spawn the workers and return once every one has built its app and is pacing."""
        ready = self._ctx.Queue()
        for i in range(self.config.workers):
            p = self._ctx.Process(target=_worker_main, name=f"phasegate-wl-{i}", daemon=True,
                                  args=(self.config, i, str(self._path(i)), self._stop, ready))
            p.start()
            self._procs.append(p)
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        waiting = len(self._procs)
        while waiting:
            try:
                ready.get(timeout=0.2)
                waiting -= 1
                continue
            except queue.Empty:
                pass
            if time.monotonic() > deadline or any(p.exitcode is not None for p in self._procs):
                with contextlib.suppress(WorkloadError):
                    self.stop()
                raise WorkloadError("workload workers did not start (see their stderr)")
        return self

    def stop(self) -> list[OpRecord]:
        """Ask the workers to stop, wait for them, and load every record (sorted by time)."""
        if not self._procs:
            return self.records
        self._stop.set()
        for p in self._procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join(5)
        self.records = sorted(load_records(self._path(i) for i in range(len(self._procs))),
                              key=lambda r: r.t)
        dead = [p.name for p in self._procs if p.exitcode not in (0, None)]
        self._procs = []
        if self._tmp is not None:  # the records are in memory now
            self._tmp.cleanup()
            self._tmp = None
        if dead:
            raise WorkloadError(f"workload worker(s) crashed: {', '.join(dead)}")
        return self.records

    def records_so_far(self) -> list[OpRecord]:
        """The records the workers have flushed so far (at most ``FLUSH_SECONDS`` behind)."""
        if not self._procs:
            return self.records
        return sorted(load_records(self._path(i) for i in range(len(self._procs))),
                      key=lambda r: r.t)

    def wait(self) -> list[OpRecord]:
        """Let the run end by its own bounds (duration / max_ops), then aggregate."""
        for p in self._procs:
            p.join(timeout=self.config.duration + 30)
        return self.stop()

    def __enter__(self) -> Workload:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._procs:
            with contextlib.suppress(WorkloadError):
                self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def run_workload(config: WorkloadConfig) -> list[OpRecord]:
    """Run the workload to its bounds and return every operation."""
    with Workload(config) as wl:
        return wl.wait()


def load_records(paths: Iterable[Path]) -> list[OpRecord]:
    """Every complete record in the workers' files (a line being written is skipped)."""
    out: list[OpRecord] = []
    for path in paths:
        if not path.exists():
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.endswith("\n"):
                    out.append(OpRecord(**json.loads(line)))
    return out


# --------------------------------------------------------------------------- summaries


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def longest_stall_ms(records: Sequence[OpRecord], t0: float, t1: float) -> float:
    """The longest stretch of [t0, t1] in which no operation completed (all workers stuck)."""
    ends = sorted(r.end for r in records if t0 <= r.end <= t1)
    edges = [t0, *ends, t1]
    return max((b - a for a, b in zip(edges, edges[1:], strict=False)), default=0.0) * 1000.0


@dataclass(frozen=True)
class Summary:
    """What a window of the workload did."""

    seconds: float
    ops: int
    writes: int
    failed_writes: int
    reads: int
    failed_reads: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    max_write_ms: float
    longest_stall_ms: float
    ops_per_second: float
    by_op: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # first error texts, counted

    @property
    def failed(self) -> int:
        return self.failed_writes + self.failed_reads

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize(records: Sequence[OpRecord], t0: float | None = None,
              t1: float | None = None) -> Summary:
    """Summarise the operations that *started* in [t0, t1) (default: all of them)."""
    lo = t0 if t0 is not None else min((r.t for r in records), default=0.0)
    hi = t1 if t1 is not None else max((r.end for r in records), default=lo)
    window = [r for r in records if lo <= r.t < hi or (t1 is None and r.t >= lo)]
    writes = [r for r in window if not r.is_read]
    reads = [r for r in window if r.is_read]
    lat = [r.latency_ms for r in window if r.op not in MAINTENANCE_OPS]
    errors = Counter(_error_kind(r) for r in window if not r.ok)
    seconds = max(hi - lo, 1e-9)
    return Summary(
        seconds=round(seconds, 3), ops=len(window), writes=len(writes),
        failed_writes=sum(not r.ok for r in writes), reads=len(reads),
        failed_reads=sum(not r.ok for r in reads), p50_ms=percentile(lat, 50),
        p99_ms=percentile(lat, 99), max_ms=max(lat, default=0.0),
        max_write_ms=max((r.latency_ms for r in writes if r.op not in MAINTENANCE_OPS), default=0.0),
        longest_stall_ms=longest_stall_ms(window, lo, hi), ops_per_second=len(window) / seconds,
        by_op=dict(Counter(r.op for r in window)), errors=dict(errors.most_common(10)))


_KEYS = re.compile(r"\S+@\S+Z|\S+:(job|wl)-[\w-]+:\d+|\d+")


def _error_kind(r: OpRecord) -> str:
    """``op: error`` with keys and numbers blanked, so one cause counts as one kind."""
    return _KEYS.sub("…", f"{r.op}: {r.error or '?'}")[:200]
