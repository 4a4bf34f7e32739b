"""What ``invoke dlq.list`` and ``dlq.show`` print: dead letters as Rich tables, or as JSON.

Imported only when a task prints, so ``invoke --list`` does not pay for Rich; the ledger
(``ledger/deadletter.py``) returns the data, this decides how it looks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ledger.deadletter import DeadLetter, DeadLetterDetail
from phasegate.text import printable


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_json(obj: Any) -> str:
    """Dataclasses (and lists of them) as JSON, datetimes as ISO-8601."""
    if isinstance(obj, list):
        return json.dumps([_plain(asdict(o)) for o in obj], indent=2, default=str)
    return json.dumps(_plain(asdict(obj)), indent=2, default=str)


def _safe(value: object, limit: int | None = None) -> str:
    """Text from the database as inert output: no Rich markup, no terminal escapes (error
    texts, reasons and names come from jobs and operators, not from us)."""
    return escape(printable("" if value is None else str(value), limit))


def print_letters(letters: Sequence[DeadLetter], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"dead letters ({len(letters)})")
    for col in ("id", "job", "function", "class", "attempts", "status", "dead at", "last error"):
        table.add_column(col)
    for d in letters:
        table.add_row(str(d.id), str(d.job_id), _safe(d.job_type), d.error_class, str(d.attempts),
                      d.status, f"{d.dead_at:%Y-%m-%d %H:%M:%S}", _safe(d.last_error, 60))
    console.print(table)


def print_detail(detail: DeadLetterDetail, console: Console | None = None) -> None:
    console = console or Console()
    d = detail.letter
    console.print(f"dead letter {d.id}: job {d.job_id} ({_safe(d.job_type)}) {d.status}, "
                  f"{d.error_class} after {d.attempts} attempt(s); correlation {_safe(d.correlation_id)}")
    console.print(f"last error: {_safe(d.last_error)}")
    # What a requeue enqueues: the letter's own snapshot (p0014), shown whole, not the job row.
    console.print(f"payload: {_safe(json.dumps(d.payload, sort_keys=True, default=str))}")
    if d.resolved_at:
        console.print(f"resolved {d.resolved_at:%Y-%m-%d %H:%M:%S} by {_safe(d.resolved_by)}: "
                      f"{_safe(d.resolution_reason or '-')}"
                      + (f" -> job {d.requeued_job_id}" if d.requeued_job_id else ""))
    runs = Table(title="attempts")
    for col in ("run key", "status", "class", "started", "ms", "error"):
        runs.add_column(col)
    for r in detail.attempts:
        runs.add_row(_safe(r.run_key), r.status, r.error_class or "",
                     f"{r.started_at:%H:%M:%S}" if r.started_at else "",
                     str(r.duration_ms or ""), _safe(r.terminal_error, 60))
    console.print(runs)
    for a in detail.audit:
        # db_role is who logged in (the database records it); operator is the name they gave.
        role = _safe(a.db_role) if a.db_role else "-"
        console.print(f"audit: {a.at:%Y-%m-%d %H:%M:%S} {a.action} {a.outcome} by "
                      f"{_safe(a.operator)} (db role {role}) {_safe(a.reason)}")
