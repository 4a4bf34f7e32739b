"""Helpers shared by the zero-downtime report and the benchmarks of issue 7.

* :class:`PgBench` drives the database with ``pgbench`` (PostgreSQL's own load client, a
  client nobody here wrote) in back-to-back chunks until stopped, and parses its
  per-transaction logs: every transaction's end time, latency and failure;
* :func:`write_results` / :func:`print_table` write ``bench/results/<name>.json`` and print
  a table, for reports that are not plain ratios (``bench/_common.py`` has those).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:  # `python bench/x.py` from a clean clone, without installing
    sys.path.insert(0, str(ROOT))

# Inserts and updates on background_job, naming only baseline columns: valid at every
# migration point of the rollout, before expand and after contract alike. The update leaves
# updated_at alone: touching it on months-old rows trips a backfill overflow (see
# bench/README.md, findings), which the report records separately.
PGBENCH_SCRIPT = """\
\\set id random(1, :maxid)
BEGIN;
INSERT INTO background_job (type, payload, status, attempts)
  VALUES ('pgbench.task', '{"by": "pgbench"}', 'SUCCEEDED', 1);
UPDATE background_job SET payload = payload || '{"touched": true}' WHERE id = :id;
END;
"""
_ABORTED = re.compile(r"client (\d+) .*aborted in command \d+[^:]*: (.*)")


@dataclass(frozen=True)
class PgTxn:
    """One pgbench transaction: ``end`` epoch seconds, latency, failed or not."""

    end: float
    latency_ms: float
    failed: bool

    @property
    def start(self) -> float:
        return self.end - self.latency_ms / 1000.0


@dataclass
class PgBenchRun:
    """Everything the chunks of one :class:`PgBench` produced."""

    txns: list[PgTxn] = field(default_factory=list)
    aborted_clients: int = 0
    errors: list[str] = field(default_factory=list)
    chunks: int = 0

    def summary(self, t0: float | None = None, t1: float | None = None) -> dict[str, Any]:
        sel = [x for x in self.txns if (t0 is None or x.end >= t0) and (t1 is None or x.end < t1)]
        lat = sorted(x.latency_ms for x in sel)
        p99 = lat[max(0, -(-99 * len(lat) // 100) - 1)] if lat else 0.0
        return {"transactions": len(sel), "failed": sum(x.failed for x in sel),
                "max_latency_ms": round(max(lat, default=0.0), 3), "p99_ms": round(p99, 3)}


def pgbench_binary() -> Path | None:
    from infra import ephemeral

    bindir = ephemeral.find_pg_bindir()
    found = bindir / "pgbench" if bindir else None
    if found and found.exists():
        return found
    which = shutil.which("pgbench")
    return Path(which) if which else None


def libpq_args(db_url: str) -> tuple[list[str], dict[str, str]]:
    """(connection arguments, environment) for a PostgreSQL client from a URL; the password
    goes through PGPASSWORD, never the command line."""
    u = urlsplit(db_url.replace("postgresql+psycopg://", "postgresql://", 1))
    args = ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432),
            "-U", unquote(u.username or "postgres"), unquote(u.path.lstrip("/")) or "postgres"]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = unquote(u.password)
    return args, env


class PgBench:
    """Runs ``pgbench`` in chunks of ``chunk_seconds`` until :meth:`stop`."""

    def __init__(self, db_url: str, *, clients: int = 2, rate: float = 40.0,
                 chunk_seconds: int = 5, max_id: int = 1000) -> None:
        binary = pgbench_binary()
        if binary is None:
            raise RuntimeError("pgbench not found (PostgreSQL client binaries)")
        self.binary, self.db_url = binary, db_url
        self.clients, self.rate, self.chunk_seconds, self.max_id = clients, rate, chunk_seconds, max_id
        self.dir = Path(tempfile.mkdtemp(prefix="phasegate-pgbench-"))
        (self.dir / "script.sql").write_text(PGBENCH_SCRIPT)
        self.run = PgBenchRun()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pgbench", daemon=True)

    def start(self) -> PgBench:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._chunk(self.run.chunks)
            self.run.chunks += 1

    def _chunk(self, n: int) -> None:
        conn, env = libpq_args(self.db_url)
        prefix = self.dir / f"chunk{n}"
        # -R: a steady rate like an application's, not a saturating benchmark; latency then
        # counts from each transaction's scheduled start (queueing behind a lock shows).
        argv = [str(self.binary), "-n", "-f", str(self.dir / "script.sql"),
                "-c", str(self.clients), "-j", "1", "-T", str(self.chunk_seconds),
                "-R", str(self.rate), "-D", f"maxid={self.max_id}", "-l",
                f"--log-prefix={prefix}", "--failures-detailed", *conn]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=self.chunk_seconds + 120, check=False)
        for line in proc.stderr.splitlines():
            m = _ABORTED.search(line)
            if m:
                self.run.aborted_clients += 1
                self.run.errors.append(m.group(2)[:200])
                # The transaction it was in failed: count it at the time the chunk ended.
                self.run.txns.append(PgTxn(time.time(), 0.0, True))
        for log in sorted(self.dir.glob(f"chunk{n}.*")):
            self.run.txns.extend(parse_log(log.read_text()))
            log.unlink()

    def stop(self) -> PgBenchRun:
        """Stop after the chunk in flight (at most ``chunk_seconds``) and return the run."""
        self._stop.set()
        self._thread.join(self.chunk_seconds + 150)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.run.txns.sort(key=lambda x: x.end)
        return self.run


def parse_log(text: str) -> list[PgTxn]:
    """pgbench's per-transaction log: ``client txn time script epoch us [lag]``; ``time`` is
    microseconds, or ``failed``/``serialization``/``deadlock`` (--failures-detailed), or
    ``skipped``."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6 or parts[2] == "skipped":
            continue
        end = int(parts[4]) + int(parts[5]) / 1e6
        if parts[2].isdigit():
            out.append(PgTxn(end, int(parts[2]) / 1000.0, False))
        else:
            out.append(PgTxn(end, 0.0, True))
    return out


# --------------------------------------------------------------------------- results


def machine() -> dict[str, Any]:
    # The load average says how much else ran on the machine meanwhile (ratios in the same
    # run cancel most of it out; absolute latencies do not).
    return {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "platform": platform.platform(), "at": datetime.now(UTC).isoformat(timespec="seconds")}


def write_results(name: str, payload: dict[str, Any], out_dir: Path = RESULTS) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload},
                               indent=2, default=str) + "\n")
    return path


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*[f"{v:,.3f}" if isinstance(v, float) else str(v) for v in row])
    Console(width=max(160, shutil.get_terminal_size().columns)).print(table)


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    seconds: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
