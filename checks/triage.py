"""Triage budgets: the operator queries use their indexes and answer within budget.

Each query of ``sql/triage.sql`` runs under ``EXPLAIN (ANALYZE, FORMAT JSON)`` on the real
data; the plan must name the query's index and the execution time must be within
``triage_budget_ms``. Below ``triage_min_rows`` estimated rows a sequential scan is the
planner's right choice, so only the budget applies there (the summary says so).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from psycopg import sql as pgsql

from checks.base import Outcome, Probe, Verdict, check
from checks.sqlfile import query


@dataclass(frozen=True)
class TriageQuery:
    name: str  # block in sql/triage.sql
    table: str
    index: str  # the index the plan must use


TRIAGE = (
    TriageQuery("running", "background_function_run", "ix_background_function_run_running"),
    TriageQuery("failed_by_function", "background_function_run",
                "ix_background_function_run_function_status_requested"),
    TriageQuery("terminal_errors", "background_function_run", "ix_background_function_run_failed"),
    TriageQuery("dead_letters_by_type", "background_dead_letter", "ix_background_dead_letter_open"),
    TriageQuery("attempts_of_run", "background_function_run", "ix_background_function_run_run_id"),
)


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of an EXPLAIN JSON plan, depth first."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from plan_nodes(child)


def explain(probe: Probe, text: str, params: dict[str, Any]) -> dict[str, Any]:
    stmt = pgsql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ") + pgsql.SQL(text)  # type: ignore[arg-type]
    row = probe.conn.execute(stmt, params).fetchone()
    doc = row[0] if row else [{}]
    if isinstance(doc, str):
        doc = json.loads(doc)
    return dict(doc[0])


@check("triage_budgets", "operator triage queries use their indexes within budget",
       reads=("triage_budget_ms", "triage_min_rows"), sql_file="triage")
def triage_budgets(probe: Probe) -> Outcome:
    budget = float(probe.setting("triage_budget_ms"))
    min_rows = float(probe.setting("triage_min_rows"))
    values = probe.one(query("triage", "sample_values"))
    params = {"function_name": values.get("function_name") or "none",
              "run_id": values.get("run_id") or "none", "job_type": values.get("job_type") or "none"}
    sizes = {r["table_name"]: r["rows"] for r in probe.rows(
        query("triage", "table_rows"), {"tables": sorted({q.table for q in TRIAGE})})}
    results, bad = [], []
    for q in TRIAGE:
        doc = explain(probe, query("triage", q.name), params)
        nodes = list(plan_nodes(doc["Plan"]))
        used = sorted({n["Index Name"] for n in nodes if "Index Name" in n})
        seq = any(n.get("Node Type") == "Seq Scan" and n.get("Relation Name") == q.table
                  for n in nodes)
        ms = float(doc.get("Execution Time", 0.0))
        big = sizes.get(q.table, 0) >= min_rows
        row = {"query": q.name, "ms": round(ms, 3), "expected_index": q.index,
               "indexes_used": used, "seq_scan": seq, "rows_estimate": sizes.get(q.table, 0)}
        results.append(row)
        problems = []
        if big and q.index not in used:
            problems.append(f"does not use {q.index}" + (" (seq scan)" if seq else ""))
        if ms > budget:
            problems.append(f"took {ms:.1f} ms > {budget:g} ms")
        if problems:
            bad.append({**row, "problem": "; ".join(problems)})
    if bad:
        return Outcome(Verdict.FAIL, f"{len(bad)} of {len(TRIAGE)} triage queries off budget, "
                       f"first: {bad[0]['query']} {bad[0]['problem']}", tuple(bad))
    worst = max(r["ms"] for r in results)
    note = "" if all(r["rows_estimate"] >= min_rows for r in results) else \
        f"; index use not required below {min_rows:g} rows"
    return Outcome(Verdict.PASS, f"{len(TRIAGE)} triage queries within {budget:g} ms "
                   f"(slowest {worst:.2f} ms){note}", tuple(results))
