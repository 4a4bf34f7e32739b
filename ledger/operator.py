"""What the operator CLI (``invoke dlq.*``) prints, and parsing its flags.

Kept out of ``cli/`` so the tasks stay thin and this can be tested without Invoke.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ledger.deadletter import DeadLetter, DeadLetterDetail
from ledger.errors import ConfigError, printable

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
FORMATS = ("table", "json")


def parse_age(text: str) -> timedelta:
    """'90s', '15m', '1h', '2d', '1w' -> timedelta; anything else is a ConfigError."""
    m = _AGE.match(text or "")
    if not m:
        raise ConfigError(f"--older-than must look like 30m, 1h or 2d, not {text!r}")
    return timedelta(seconds=float(m[1]) * _UNIT_SECONDS[m[2]])


def parse_id(text: object) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise ConfigError(f"--id must be a dead letter's number, not {text!r}") from None
    if value <= 0:
        raise ConfigError(f"--id must be a positive number, not {value}")
    return value


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


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
        console.print(f"audit: {a.at:%Y-%m-%d %H:%M:%S} {_safe(a.operator)} {a.action} {a.outcome}"
                      f" {_safe(a.reason)}")
