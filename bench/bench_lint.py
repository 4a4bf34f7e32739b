"""The migration linter on large SQL files vs pglast's bare ``parse_sql()`` of the same text.

    python -m bench.bench_lint                          # 15k, 30k, 120k statements and 50 MB
    python -m bench.bench_lint --sizes 15000,30000 --mb 0 --repeats 3

Each size is one generated ``.sql`` file: a realistic expand script (``SET lock_timeout``,
ADD COLUMN with constant defaults, NOT VALID constraints and their VALIDATE, CREATE INDEX
CONCURRENTLY, batched UPDATEs, INSERTs with quoted semicolons, comments, dollar-quoted
function bodies, and one plain CREATE INDEX per 1,000 statements so findings are produced
and reported). The subject is ``checks.lint.lint([path])`` end to end: read, split, parse,
every rule, findings. The baseline is ``pglast.parse_sql(text)`` of the same text (PostgreSQL's
parser building pglast's node objects, no linting at all). Each measurement runs in a fresh
process, so its peak memory (``ru_maxrss``) is its own; subject and baseline alternate per
repeat so load from other work on the machine lands on both alike. Issue 15 measured the
previous linter at 16 s for 15k statements, 36 s for 30k and 381 s (845 MB) for 120k.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Comparison, report  # noqa: E402

MIX = (
    "ALTER TABLE background_job ADD COLUMN IF NOT EXISTS c{i} text DEFAULT 'x';\n",
    "UPDATE background_job SET c{i} = 'y' WHERE id BETWEEN {i} AND {i} + 100;\n",
    "INSERT INTO bench_audit (id, note) VALUES ({i}, 'it''s; not a boundary');\n",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_c{i} ON background_job (c{i});\n",
    "COMMENT ON COLUMN background_job.c{i} IS 'note {i}';\n",
    "-- set a marker\nSELECT set_config('app.marker', '{i}', false);\n",
    "ALTER TABLE background_job ADD CONSTRAINT ck_c{i} CHECK (length(c{i}) < 100) NOT VALID;\n",
    "ALTER TABLE background_job VALIDATE CONSTRAINT ck_c{i};\n",
    "CREATE OR REPLACE FUNCTION f_{i}() RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT {i}; $$;\n",
    "DROP INDEX CONCURRENTLY IF EXISTS ix_old_{i};\n",
)
UNSAFE = "CREATE INDEX ix_bad_{i} ON background_job (c{i});\n"


def generate(path: Path, statements: int | None = None, size_mb: float | None = None) -> int:
    """Write the script; return its statement count."""
    n, out, size = 1, ["SET lock_timeout = '2s';\n"], 0
    limit = int(size_mb * 1024 * 1024) if size_mb else None
    with path.open("w", encoding="utf-8") as handle:
        i = 0
        while (statements is not None and n < statements) or (limit is not None and size < limit):
            line = UNSAFE.format(i=i) if i % 1000 == 999 else MIX[i % len(MIX)].format(i=i)
            out.append(line)
            size += len(line)
            n, i = n + 1, i + 1
            if len(out) >= 10_000:
                handle.write("".join(out))
                out = []
        handle.write("".join(out))
    return n


CHILD = """
import json, resource, sys, time
from pathlib import Path
path, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "lint":
    from checks.lint import lint
    start, cpu = time.perf_counter(), time.process_time()
    found = len(lint([path]).findings)
else:
    from pglast import parse_sql
    text = path.read_text(encoding="utf-8")
    start, cpu = time.perf_counter(), time.process_time()
    found = len(parse_sql(text))
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "count": found,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(path: Path, mode: str) -> dict[str, float]:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], cwd=root,
                          capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="15000,30000,120000", help="statement counts")
    ap.add_argument("--mb", type=float, default=50.0, help="also a file of this many MB (0: none)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per size (1 for the MB file)")
    args = ap.parse_args()
    rows: list[Comparison] = []
    sizes: list[dict[str, object]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="phasegate-bench-lint-") as tmp:
        plan: list[tuple[str, int | None, float | None]] = [
            (f"{int(s):,} statements", int(s), None) for s in args.sizes.split(",") if s]
        if args.mb:
            plan.append((f"{args.mb:g} MB file", None, args.mb))
        for label, count, mb in plan:
            path = Path(tmp) / "bench.sql"
            n = generate(path, count, mb)
            size = path.stat().st_size
            subject, baseline = [], []
            for _ in range(1 if mb else args.repeats):
                baseline.append(measure(path, "parse"))
                subject.append(measure(path, "lint"))
            s_time = statistics.median(r["seconds"] for r in subject)
            b_time = statistics.median(r["seconds"] for r in baseline)
            s_peak = max(r["peak_mb"] for r in subject)
            b_peak = max(r["peak_mb"] for r in baseline)
            rows.append(Comparison(f"lint {label}", "pglast parse_sql()", n / s_time, n / b_time,
                                   target=1.0, unit="stmt"))
            sizes.append({"label": label, "statements": n, "bytes": size,
                                   "lint_seconds": round(s_time, 3), "lint_peak_mb": round(s_peak, 1),
                                   "lint_cpu_seconds": round(statistics.median(
                                       r["cpu_seconds"] for r in subject), 3),
                                   "lint_findings": int(subject[0]["count"]),
                                   "parse_seconds": round(b_time, 3), "parse_peak_mb": round(b_peak, 1),
                                   "parse_cpu_seconds": round(statistics.median(
                                       r["cpu_seconds"] for r in baseline), 3),
                                   "lint_statements_per_s": round(n / s_time),
                                   "parse_statements_per_s": round(n / b_time)})
            print(f"{label}: {n:,} statements, {size / 1e6:.1f} MB; lint {s_time:.2f} s "
                  f"({n / s_time:,.0f}/s, peak {s_peak:.0f} MB), parse_sql {b_time:.2f} s "
                  f"({n / b_time:,.0f}/s, peak {b_peak:.0f} MB)", flush=True)
            path.unlink()
    # The machine is shared: the load average says how much else ran alongside.
    extra: dict[str, object] = {"sizes": sizes, "cpus": os.cpu_count(),
                                "load_average_before": load_before,
                                "load_average_after": os.getloadavg()}
    print(f"results: {report('lint', rows, extra)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
