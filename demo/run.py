"""``invoke demo``: the whole rollout on a realistic baseline, with a live workload running.

Re-runnable: on ``--env local`` it drops and recreates its own database (``phasegate_demo``)
on the embedded cluster and uses its own Redis database number (flushed), so the user's
``phasegate_local`` is never touched; ``--env ci`` uses throwaway servers. Then it seeds a
baseline (jobs in every state, legacy Redis statuses, duplicate cron ticks), starts the
workload generator (:mod:`demo.workload`), applies every phase with its gate, and prints
one table per phase: duration, gate verdicts, and what the workload saw meanwhile. The
rollback plans are written to ``plans/demo/``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis as redis_lib
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from demo.workload import Summary, Workload, WorkloadConfig, summarize
from ledger import sqlfiles
from phasegate.errors import ConfigError
from rollout.environments import Target, open_target, validate_env_name
from rollout.phase import PHASE_ORDER, OnProgress
from rollout.settings import Settings

DEMO_DB = "phasegate_demo"  # the name in demo/sql/run.sql
DROP_DEMO_DB = sqlfiles.query(__file__, "run", "drop_demo_database")
CREATE_DEMO_DB = sqlfiles.query(__file__, "run", "create_demo_database")
DEMO_REDIS_DB = 1  # the local Redis's db 0 belongs to --env local itself
# lease_seconds: the seeded RUNNING jobs have no live runner heartbeating them (the workload's
# rescue returns ~40/s of them to the queue); the liveness gate must not count a seeded job
# whose lease ran out a minute ago as a stuck runner of the demo.
DEMO_SETTINGS = Settings(flag_ttl_seconds=1.0, soak_seconds=0, lease_seconds=300)


@dataclass(frozen=True)
class PhaseResult:
    """One phase of the demo: the engine's verdict and the workload meanwhile."""

    phase: str
    outcome: str
    seconds: float
    gate: tuple[tuple[str, str, str], ...]  # (check, verdict, summary)
    workload: Summary
    error: str | None = None


@dataclass(frozen=True)
class DemoResult:
    phases: tuple[PhaseResult, ...]
    seconds: float
    seed_seconds: float
    workload: Summary
    plans_dir: Path

    @property
    def ok(self) -> bool:
        return all(p.outcome == "gated" for p in self.phases) and len(self.phases) == len(PHASE_ORDER)


@contextlib.contextmanager
def demo_target(env: str, project: Path) -> Iterator[Target]:
    """A fresh baseline database and an empty Redis database for the demo."""
    validate_env_name(env)
    if env == "ci":
        with open_target("ci", project) as t:
            yield Target("demo", t.db_url, t.redis_url, False, DEMO_SETTINGS)
        return
    if env != "local":
        raise ConfigError("the demo runs on --env local (embedded servers) or --env ci "
                          "(throwaway); never on a configured environment")
    from infra import ephemeral, local
    from migrations import api as migrations_api

    st = local.up(project)
    base = f"{ephemeral.PG_SUPERUSER}@127.0.0.1:{st.pg_port}"
    with psycopg.connect(f"postgresql://{base}/postgres", autocommit=True) as conn:
        conn.execute(DROP_DEMO_DB)
        conn.execute(CREATE_DEMO_DB)
    db_url = f"postgresql+psycopg://{base}/{DEMO_DB}"
    redis_url = f"redis://127.0.0.1:{st.redis_port}/{DEMO_REDIS_DB}"
    migrations_api.upgrade(db_url, "baseline")  # the application as it is before the rollout
    r = redis_lib.Redis.from_url(redis_url)
    try:
        r.flushdb()
    finally:
        r.close()
    yield Target("demo", db_url, redis_url, False, DEMO_SETTINGS)


def _phase_table(res: PhaseResult) -> Table:
    title = f"{res.phase}: {res.outcome} in {res.seconds:.1f}s"
    table = Table(title=title, title_justify="left", show_header=False, min_width=60)
    table.add_column("what", style="bold")
    table.add_column("value")
    for check, verdict, summary in res.gate:
        color = {"pass": "green", "fail": "red"}.get(verdict, "yellow")
        why = f": {escape(summary)}" if verdict in ("fail", "warn") and summary else ""
        table.add_row(f"gate {check}", f"[{color}]{verdict}[/]{why}")
    w = res.workload
    table.add_row("workload ops", f"{w.ops:,} ({w.ops_per_second:.0f}/s)")
    errs = "[green]0[/]" if not w.failed else f"[red]{w.failed_writes} writes, {w.failed_reads} reads[/]"
    table.add_row("workload errors", errs)
    table.add_row("latency p50 / p99 / max", f"{w.p50_ms:.1f} / {w.p99_ms:.1f} / {w.max_ms:.1f} ms")
    table.add_row("longest stall", f"{w.longest_stall_ms:.0f} ms")
    for text, n in list(w.errors.items())[:3]:
        table.add_row(f"[red]error x{n}[/]", escape(text))
    if res.error:  # a failed gate's line names each failed check, its summary and threshold
        table.add_row("[red]engine[/]", escape(res.error))
    return table


def _apply(ro: Any, phase: str) -> tuple[str, tuple[tuple[str, str, str], ...], str | None]:
    from phasegate.errors import PhasegateError
    from rollout.errors import Stopped

    try:
        rep = ro.apply(phase, yes=True)  # the demo is not production: irreversible steps run
    except Stopped as exc:
        # The demo's target is its own throwaway database, not an environment the rollout
        # command knows: what resumes it is the demo itself, which starts over cleanly.
        raise Stopped(exc.phase, exc.action_id, exc.signal_name,
                      "invoke demo (it starts over on its own database)") from None
    except PhasegateError as exc:
        return "failed", (), str(exc).splitlines()[0]
    return rep.outcome, tuple((g["check_id"], g["verdict"], g.get("summary", "")) for g in rep.gate), None


def run_demo(env: str, project: Path, *, jobs: int = 100_000, workers: int = 2,
             rate: float = 80.0, plans_dir: Path | None = None,
             on_progress: OnProgress | None = None) -> DemoResult:
    """Seed, start the workload, walk every phase forward with its gate; print as it goes.
    ``on_progress`` receives the backfill's progress (``invoke demo`` draws it as a bar)."""
    from demo.seed import JOB_TYPES, seed_baseline
    from demo.workload import WORKLOAD_JOB_TYPE
    from rollout.engine import Rollout

    if jobs < 100 or workers < 1 or rate <= 0:
        raise ConfigError("demo: --jobs must be at least 100, --workers and --rate positive")
    console = Console()
    plans = plans_dir or project / "plans" / "demo"
    t_start = time.monotonic()
    with demo_target(env, project) as target:
        with console.status(f"seeding a baseline of {jobs:,} jobs, Redis statuses, duplicate ticks"):
            t0 = time.monotonic()
            seeded = seed_baseline(target.db_url, target.redis_url, jobs=jobs)
            seed_seconds = time.monotonic() - t0
        console.print(f"seeded {seeded.jobs:,} jobs, {seeded.redis_statuses:,} Redis statuses, "
                      f"{seeded.duplicate_ticks} duplicate ticks in {seed_seconds:.1f}s")
        cfg = WorkloadConfig(target.db_url, target.redis_url, workers=workers, rate=rate,
                             duration=600, flag_ttl=target.settings.flag_ttl_seconds,
                             job_types=(*JOB_TYPES, WORKLOAD_JOB_TYPE))  # drain the backlog
        ro = Rollout(target, "demo", project=project, plans_dir=plans, on_progress=on_progress)
        results: list[PhaseResult] = []
        records: list = []
        try:
            with console.status(f"starting the live workload ({workers} processes, {rate:g} ops/s)"):
                ro.ensure_kit()
                wl = Workload(cfg).start()
            try:
                for phase in PHASE_ORDER:
                    res = _run_phase(ro, wl, phase, console)
                    results.append(res)
                    console.print(_phase_table(res))
                    if res.outcome != "gated":
                        break
            finally:
                records = wl.stop()
        finally:
            ro.close()
    total = summarize(records)
    result = DemoResult(tuple(results), time.monotonic() - t_start, seed_seconds, total, plans)
    _print_total(console, result)
    return result


def _run_phase(ro: Any, wl: Workload, phase: str, console: Console) -> PhaseResult:
    t0 = time.time()
    with console.status(f"{phase}: apply, then gate"):
        outcome, gate, error = _apply(ro, phase)
    t1 = time.time()
    time.sleep(0.6)  # let the workers flush what they did until t1
    return PhaseResult(phase, outcome, t1 - t0, gate, summarize(wl.records_so_far(), t0, t1), error)


def _print_total(console: Console, r: DemoResult) -> None:
    table = Table(title="demo summary", title_justify="left")
    for col in ("phase", "outcome", "seconds", "gate", "ops", "failed", "p99 ms", "max ms"):
        table.add_column(col)
    for p in r.phases:
        verdicts = ", ".join(sorted({g[1] for g in p.gate})) or "-"
        table.add_row(p.phase, p.outcome, f"{p.seconds:.1f}", verdicts, f"{p.workload.ops:,}",
                      str(p.workload.failed), f"{p.workload.p99_ms:.1f}", f"{p.workload.max_ms:.1f}")
    console.print(table)
    console.print(f"workload: {r.workload.ops:,} operations, {r.workload.failed_writes} failed "
                  f"writes, {r.workload.failed_reads} failed reads; demo took {r.seconds:.0f}s; "
                  f"plans in {r.plans_dir}")
