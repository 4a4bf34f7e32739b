"""What ``invoke dlq.list`` and ``dlq.show`` print: dead letters as Rich tables, or as JSON.

Imported only when a task prints, so ``invoke --list`` does not pay for Rich; the ledger
(``ledger/deadletter.py``) returns the data, this decides how it looks.

Sizes: a stored text (an error, a reason, a name) is shown cut to :data:`CELL_CHARS` in a
table and :data:`LINE_CHARS` on a line of ``show``, saying how much is left and that
``--format json`` has it whole; JSON is never cut. Everything from the database goes out as
:class:`rich.text.Text`, never as a markup string: Text is not parsed for markup (so nothing
to escape) and not run through Rich's highlighter, whose regexes are quadratic on a long
unbroken string (a 64 KB reason took ``dlq.show`` 23 s; 1 MB, hours).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ledger.deadletter import DeadLetter, DeadLetterDetail, DeadLetterPage
from phasegate.text import printable

CELL_CHARS = 200  # a table cell: the row stays readable
LINE_CHARS = 1000  # a line of dlq.show (a reason is at most 4096; an error text unbounded)
TIME = "%Y-%m-%d %H:%M:%S"


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


def page_json(page: DeadLetterPage, next_page: str | None) -> str:
    """A page as JSON: its dead letters, the cursor of the next page and the command that
    prints it (both null on the last page)."""
    return json.dumps({"dead_letters": [_plain(asdict(d)) for d in page.letters],
                       "next_cursor": page.next_cursor and page.next_cursor.token(),
                       "next_page": next_page}, indent=2, default=str)


def cut(value: object, limit: int) -> str:
    """``value`` as one printable line of at most ``limit`` characters, plus what was left
    out and where to read it. Escaped first, then cut: what is shown is what is bounded."""
    text = printable("" if value is None else str(value))
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more, see --format json)"


def _cell(value: object, limit: int = CELL_CHARS) -> Text:
    """Text from the database as an inert table cell (no markup, no escapes, bounded)."""
    return Text(cut(value, limit))


def _line(*parts: str | Text) -> Text:
    """One line of our words and the database's texts (already Text), printed inertly."""
    return Text.assemble(*parts)


def print_letters(letters: Sequence[DeadLetter], next_page: str | None = None,
                  console: Console | None = None) -> None:
    """The page as a table, then the command that prints the next page, if there is one."""
    console = console or Console()
    table = Table(title=f"dead letters ({len(letters)})")
    for col in ("id", "job", "function", "class", "attempts", "status", "dead at", "last error"):
        table.add_column(col)
    for d in letters:
        table.add_row(str(d.id), str(d.job_id), _cell(d.job_type), d.error_class, str(d.attempts),
                      d.status, f"{d.dead_at:{TIME}}", _cell(d.last_error))
    console.print(table)
    if next_page:
        # soft_wrap keeps the command on one line, to copy and paste whole.
        console.print(Text(f"next page: {printable(next_page)}"), soft_wrap=True)


def print_detail(detail: DeadLetterDetail, console: Console | None = None) -> None:
    console = console or Console()
    d = detail.letter
    console.print(_line(f"dead letter {d.id}: job {d.job_id} (", _cell(d.job_type),
                        f") {d.status}, {d.error_class} after {d.attempts} attempt(s); "
                        "correlation ", _cell(d.correlation_id)))
    console.print(_line("last error: ", _cell(d.last_error, LINE_CHARS)))
    # What a requeue enqueues: the letter's own snapshot (p0014), not the job row.
    console.print(_line("payload: ", _cell(json.dumps(d.payload, sort_keys=True, default=str), LINE_CHARS)))
    if d.resolved_at:
        console.print(_line(f"resolved {d.resolved_at:{TIME}} by ", _cell(d.resolved_by), ": ",
                            _cell(d.resolution_reason or "-", LINE_CHARS),
                            f" -> job {d.requeued_job_id}" if d.requeued_job_id else ""))
    runs = Table(title="attempts")
    for col in ("run key", "status", "class", "started", "ms", "error"):
        runs.add_column(col)
    for r in detail.attempts:
        runs.add_row(_cell(r.run_key), r.status, r.error_class or "",
                     f"{r.started_at:%H:%M:%S}" if r.started_at else "",
                     str(r.duration_ms or ""), _cell(r.terminal_error))
    console.print(runs)
    for a in detail.audit:
        # db_role is who logged in (the database records it); operator is the name they gave.
        console.print(_line(f"audit: {a.at:{TIME}} {a.action} {a.outcome} by ", _cell(a.operator),
                            " (db role ", _cell(a.db_role or "-"), ") ", _cell(a.reason, LINE_CHARS)))
