"""Shared benchmark helpers: throwaway servers, interleaved timing, a ratio table, JSON.

Every figure is a ratio against a raw baseline measured in the same run, on the same
servers, interleaved with the subject in short alternating chunks, so a noisy neighbour
(other test suites on a 2-core box) slows both alike. Throughputs are medians over repeats.
"""

from __future__ import annotations

import contextlib
import json
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from infra import ephemeral

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Servers:
    db_url: str  # SQLAlchemy URL of a fresh database migrated to ``point``
    redis_url: str


@contextlib.contextmanager
def servers(point: str = "head", provider: str | None = None) -> Iterator[Servers]:
    """A throwaway Postgres + Redis and a database migrated to ``point``."""
    import psycopg

    from migrations import api

    with ephemeral.postgres(provider) as pg, ephemeral.redis(provider) as rd:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        url = pg.sqlalchemy_url("bench")
        api.upgrade(url, point)
        yield Servers(url, rd.url)


@dataclass(frozen=True)
class Comparison:
    """A subject against its baseline: throughputs in operations (or rows) per second."""

    name: str
    baseline: str
    subject_ops: float
    baseline_ops: float
    target: float  # the subject's throughput must be >= target x the baseline's
    unit: str = "ops"

    @property
    def ratio(self) -> float:
        return self.subject_ops / self.baseline_ops if self.baseline_ops else 0.0

    @property
    def cost(self) -> float:
        """Time per operation relative to the baseline (1 / ratio)."""
        return self.baseline_ops / self.subject_ops if self.subject_ops else float("inf")

    @property
    def meets_target(self) -> bool:
        return self.ratio >= self.target


def _timed(fn: Callable[[int], object], start: int, count: int) -> float:
    t0 = time.perf_counter()
    for i in range(start, start + count):
        fn(i)
    return time.perf_counter() - t0


def compare(name: str, baseline_name: str, baseline: Callable[[int], object],
            subject: Callable[[int], object], *, n: int, repeats: int = 5, target: float,
            warmup: int = 50, chunk: int = 10, per_call: int = 1,
            unit: str = "ops") -> Comparison:
    """Throughputs of ``subject`` and ``baseline`` over ``n`` calls each, per repeat.

    The two alternate in chunks of ``chunk`` calls (baseline, subject, baseline, ...), so
    load from anything else on the machine lands on both alike; each repeat's throughput
    is calls / summed time, and the figure is the median over repeats. ``fn(i)`` gets a
    fresh i on every call (use it for unique keys); ``per_call`` scales calls to units."""
    _timed(baseline, 0, warmup)
    _timed(subject, 0, warmup)
    next_i = warmup
    base_rates, subj_rates = [], []
    for _ in range(repeats):
        base_t = subj_t = 0.0
        for _ in range(0, n, chunk):
            base_t += _timed(baseline, next_i, chunk)
            subj_t += _timed(subject, next_i, chunk)
            next_i += chunk
        calls = (n + chunk - 1) // chunk * chunk
        base_rates.append(calls * per_call / base_t)
        subj_rates.append(calls * per_call / subj_t)
    return Comparison(name, baseline_name, statistics.median(subj_rates),
                      statistics.median(base_rates), target, unit)


def report(bench: str, rows: list[Comparison], extra: dict[str, object] | None = None,
           console: Console | None = None) -> Path:
    """Print a ratio table and write ``bench/results/<bench>.json``; the JSON's path."""
    console = console or Console()
    table = Table(title=f"{bench}: subject vs raw baseline (same run)")
    for col in ("measure", "baseline", "subject /s", "baseline /s", "ratio", "target", "ok"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.name, r.baseline, f"{r.subject_ops:,.0f} {r.unit}",
                      f"{r.baseline_ops:,.0f} {r.unit}", f"{r.ratio:.2f}x",
                      f">= {r.target:.2f}x", "yes" if r.meets_target else "NO")
    console.print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{bench}.json"
    doc = {
        "bench": bench,
        "at": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": [{**asdict(r), "ratio": round(r.ratio, 4), "cost": round(r.cost, 4),
                     "meets_target": r.meets_target} for r in rows],
        **(extra or {}),
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
