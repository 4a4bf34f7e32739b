"""Dead letters and the operator actions on them: inspect, requeue, discard.

The invariants hold in PostgreSQL (``migrations/versions/p0014_expand_ledger_integrity.py``),
whoever connects and whatever SQL they send; this module calls the functions that carry them
and turns their outcomes into exceptions:

* **Only an OPEN dead letter can be acted on**, and only once: ``phasegate_dlq_requeue`` and
  ``phasegate_dlq_discard`` lock the letter (``FOR UPDATE``) and check its status; two
  operators racing serialise on the row lock and the second is refused. Behind them the
  trigger ``background_dead_letter_guard`` refuses any other change: REQUEUED and DISCARDED
  are final, the snapshot never changes, ``requeued_job_id`` is set once; a unique index
  makes a job the requeue of at most one letter. So a requeue never makes a second live copy.
* **Requeue enqueues what the operator inspected**: a fresh job (attempts 0, a new
  correlation id) from the letter's own ``job_type`` and ``payload``, not from the job row,
  which may have been rewritten since; its id is recorded on the letter. The old job, its
  attempts and the letter stay (history kept).
* **Discard needs a reason** (checked here first, and by the function) and deletes nothing:
  the trigger refuses DELETE on dead letters.
* **Every action is audited** in ``background_operator_audit`` by the function, in the
  action's own transaction; a refused action is audited as ``refused`` and returned, not
  raised (raising would roll the audit row back). ``operator`` is the display name the caller
  gives (``--operator``); ``db_role`` is the role that logged in (``session_user``, set by a
  trigger the caller cannot bypass).
* **What an operator stores is bounded** (:data:`MAX_REASON_CHARS`, :data:`MAX_OPERATOR_CHARS`,
  counted on the stored, printable text): a longer reason or name is refused
  (:class:`TextTooLong`) before any write, and not audited (the audit would store it).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ledger import sqlfiles
from ledger.db import Database
from ledger.errors import (
    ConfigError,
    DeadLetterNotFound,
    DeadLetterNotOpen,
    DeadLetterPermissionDenied,
    LedgerNotExpanded,
    ReasonRequired,
    TextTooLong,
    printable,
)
from ledger.runs import RunLedger, RunRecord
from phasegate.actor import MAX_ACTOR
from phasegate.text import first_line

# An audit is read by people: a reason is a paragraph at most (the ticket holds the rest),
# and 64 KB of one was enough to stall every operator's dlq.show. A name is an actor's bound.
MAX_REASON_CHARS = 4096
MAX_OPERATOR_CHARS = MAX_ACTOR
# A page of dead letters: 100 unless asked, never more than 1000 (a terminal, or a script,
# gets a bounded answer; the cursor walks the rest).
DEFAULT_PAGE, MAX_PAGE = 100, 1000
# A page carries each payload up to this size; a bigger one is left out (its size is given)
# so that 1000 rows cannot mean 1000 documents. ``show`` returns it whole.
LIST_PAYLOAD_BYTES = 64 * 1024

LIST_SQL = sqlfiles.query(__file__, "deadletter", "list_dead_letters")
GET_SQL = sqlfiles.query(__file__, "deadletter", "get_dead_letter")
REQUEUE_SQL = sqlfiles.query(__file__, "deadletter", "requeue_dead_letter")
DISCARD_SQL = sqlfiles.query(__file__, "deadletter", "discard_dead_letter")
INSPECT_SQL = sqlfiles.query(__file__, "deadletter", "inspect_dead_letter")
AUDIT_LIST_SQL = sqlfiles.query(__file__, "deadletter", "dead_letter_audit")
# Requeue chains: a dead letter's job may itself be a requeue of earlier dead jobs.
LINEAGE_SQL = sqlfiles.query(__file__, "deadletter", "job_lineage")


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter row."""

    id: int
    job_id: int
    job_type: str
    payload: dict[str, Any]
    error_class: str
    last_error: str | None
    attempts: int
    correlation_id: str | None
    status: str
    dead_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_reason: str | None
    requeued_job_id: int | None
    # Set by list/page when the payload was over LIST_PAYLOAD_BYTES and left out (None).
    payload_omitted_bytes: int | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DeadLetter:
        values: dict[str, Any] = {k: (str(v) if k in ("status", "error_class") else v)
                                  for k, v in row.items()}
        return cls(**values)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOKEN = re.compile(r"(?P<us>[0-9]{1,18})-(?P<id>[0-9]{1,19})")
_MAX_ID = 2**63 - 1  # bigint


@dataclass(frozen=True)
class PageCursor:
    """Where a page ended: its last row's ``(dead_at, id)``. The next page is the rows
    strictly older in that order (keyset paging: stable under inserts, an index range)."""

    dead_at: datetime
    id: int

    @classmethod
    def after(cls, letter: DeadLetter) -> PageCursor:
        return cls(letter.dead_at, letter.id)

    def token(self) -> str:
        """``<dead_at in microseconds since 1970>-<id>``: exact (no float), shell-safe."""
        return f"{(self.dead_at - _EPOCH) // timedelta(microseconds=1)}-{self.id}"

    @classmethod
    def parse(cls, token: str, name: str = "cursor") -> PageCursor:
        """The cursor a :meth:`token` wrote, or a ConfigError naming ``name``."""
        m = _TOKEN.fullmatch(str(token).strip())
        try:
            if m is None or not 0 < int(m["id"]) <= _MAX_ID:
                raise ValueError(token)
            return cls(_EPOCH + timedelta(microseconds=int(m["us"])), int(m["id"]))
        except (ValueError, OverflowError):
            raise ConfigError(f"{name} must be the token a previous dlq.list printed "
                              f"(like 1714532400123456-42), not {printable(str(token), 80)!r}"
                              ) from None


@dataclass(frozen=True)
class DeadLetterPage:
    """One page of dead letters, newest first, and the cursor of the next (None: the last)."""

    letters: list[DeadLetter]
    next_cursor: PageCursor | None


def page_size(limit: object, name: str = "limit") -> int:
    """``limit`` (a number or its text) as a page size, 1 to :data:`MAX_PAGE`, or a
    ConfigError naming ``name``. Digits only: no sign, no float, no 20-digit overflow."""
    text = str(limit).strip()
    if not re.fullmatch(r"[0-9]{1,4}", text) or not 1 <= int(text) <= MAX_PAGE:
        raise ConfigError(f"{name} must be a whole number from 1 to {MAX_PAGE}, "
                          f"not {printable(text, 40)!r}")
    return int(text)


@dataclass(frozen=True)
class AuditEntry:
    operator: str  # the display name the caller gave
    db_role: str | None  # the role that logged in (session_user); None before p0014
    action: str
    outcome: str
    reason: str | None
    detail: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class DeadLetterDetail:
    """A dead letter with the full attempt history of its job (and the jobs it requeued)."""

    letter: DeadLetter
    attempts: list[RunRecord]
    audit: list[AuditEntry]


@dataclass(frozen=True)
class RequeueResult:
    dead_letter_id: int
    new_job_id: int
    correlation_id: str


class DeadLetters:
    """Inspect, requeue and discard dead letters (library API behind ``invoke dlq.*``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.runs = RunLedger(db)

    def list(self, *, function: str | None = None, error_class: str | None = None,
             older_than: timedelta | None = None, status: str | None = "OPEN",
             limit: int = DEFAULT_PAGE) -> builtins.list[DeadLetter]:
        """Dead letters, newest first, filtered by job type, error class, age and status
        (the first page: at most ``limit``, 1 to :data:`MAX_PAGE`)."""
        return self.page(function=function, error_class=error_class, older_than=older_than,
                         status=status, limit=limit).letters

    def page(self, *, function: str | None = None, error_class: str | None = None,
             older_than: timedelta | None = None, status: str | None = "OPEN",
             limit: int = DEFAULT_PAGE, after: PageCursor | None = None) -> DeadLetterPage:
        """One page of :meth:`list`'s dead letters, the one after ``after`` (a previous
        page's ``next_cursor``); payloads over :data:`LIST_PAYLOAD_BYTES` are left out."""
        size = page_size(limit)
        params = {
            "job_type": None if function is None else printable(function),
            "status": None if status is None else status.upper(),
            "error_class": None if error_class is None else error_class.upper(),
            "older_than": None if older_than is None else older_than.total_seconds(),
            "after_dead_at": None if after is None else after.dead_at,
            "after_id": None if after is None else after.id,
            "max_payload_bytes": LIST_PAYLOAD_BYTES,
            "limit": size + 1,  # one more than shown: is there a next page?
        }
        letters = [DeadLetter.from_row(r) for r in self._fetch(LIST_SQL, params)]
        more = len(letters) > size
        letters = letters[:size]
        return DeadLetterPage(letters, PageCursor.after(letters[-1]) if more else None)

    def get(self, dead_letter_id: int) -> DeadLetter:
        rows = self._fetch(GET_SQL, {"id": dead_letter_id})
        if not rows:
            raise DeadLetterNotFound(dead_letter_id)
        return DeadLetter.from_row(rows[0])

    def show(self, dead_letter_id: int, operator: str | None = None) -> DeadLetterDetail:
        """The dead letter, every attempt of its job's lineage, and its audit trail; with
        ``operator``, the inspection itself is audited (action ``inspect``)."""
        if operator:
            self._call(INSPECT_SQL, dead_letter_id,
                       {"display_name": _clean(operator, "operator", MAX_OPERATOR_CHARS)})
        letter = self.get(dead_letter_id)
        lineage = [r["job_id"] for r in self._fetch(LINEAGE_SQL, {"job_id": letter.job_id})]
        audit = [AuditEntry(**r) for r in self._fetch(AUDIT_LIST_SQL,
                                                        {"target_id": str(dead_letter_id)})]
        return DeadLetterDetail(letter, self.runs.history(lineage), audit)

    def requeue(self, dead_letter_id: int, operator: str,
                reason: str | None = None) -> RequeueResult:
        """Send an OPEN dead letter back to the queue as a fresh job (see module doc)."""
        operator = _clean(operator, "operator", MAX_OPERATOR_CHARS)
        reason = None if reason is None else _clean(reason, "reason", MAX_REASON_CHARS)
        row = self._call(REQUEUE_SQL, dead_letter_id, {"display_name": operator, "reason": reason})
        return RequeueResult(dead_letter_id, int(row["new_job_id"]), str(row["new_correlation_id"]))

    def discard(self, dead_letter_id: int, operator: str, reason: str) -> DeadLetter:
        """Close an OPEN dead letter with a (required) reason; nothing is deleted."""
        operator = _clean(operator, "operator", MAX_OPERATOR_CHARS)
        reason = _clean(reason or "", "reason", MAX_REASON_CHARS).strip()
        if not reason:
            raise ReasonRequired()  # the function refuses it too; asking first costs no audit row
        self._call(DISCARD_SQL, dead_letter_id, {"display_name": operator, "reason": reason})
        return self.get(dead_letter_id)

    def _call(self, query: str, dead_letter_id: int, params: dict[str, Any]) -> dict[str, Any]:
        """One operator function (it audits, and commits, even what it refuses); its row, or
        the refusal raised as the exception it stands for."""
        [row] = self._fetch(query, {"id": dead_letter_id, **params})
        outcome = row["outcome"]
        if outcome == "not_found":
            raise DeadLetterNotFound(dead_letter_id)
        if outcome == "not_open":
            raise DeadLetterNotOpen(dead_letter_id, str(row["letter_status"]))
        if outcome == "reason_required":
            raise ReasonRequired()
        assert outcome == "ok", outcome
        return row

    def _act(self, fn: Any) -> Any:
        try:
            return self.db.run(fn)
        except psycopg.errors.UndefinedTable as exc:
            raise LedgerNotExpanded("the dead-letter tables do not exist: this database has "
                                    "not been expanded (run the expand phase first)") from exc
        except psycopg.errors.UndefinedFunction as exc:
            raise LedgerNotExpanded("the dead-letter functions do not exist: this database is "
                                    "not expanded to p0014 (run the expand phase)") from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise DeadLetterPermissionDenied(printable(first_line(exc))) from exc

    def _fetch(self, query: str,
               params: Mapping[str, Any]) -> builtins.list[dict[str, Any]]:
        def fetch(conn: psycopg.Connection) -> builtins.list[dict[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(query, params).fetchall()  # type: ignore[arg-type]

        return self._act(fetch)  # type: ignore[no-any-return]


def _clean(text: str, what: str, limit: int) -> str:
    """Operator input as the audit stores it, refused when over ``limit`` characters."""
    # One printable line: a NUL or bytes that are not UTF-8 (argv decoded with
    # surrogateescape) would otherwise fail the audited write.
    clean = printable(text)
    if len(clean) > limit:
        raise TextTooLong(what, len(clean), limit)
    return clean
