"""Per-call modes, and the counters the write path keeps for reconciliation.

Every ledger call asks :class:`ModeSource` for the current modes once and acts on that
answer for the whole call, so a running process follows flag flips between calls.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from sqlalchemy.exc import SQLAlchemyError

from ledger.flags import DEFAULTS, READ_SOURCE, RETENTION, WRITE_MODE, FlagReader, Modes

log = logging.getLogger("phasegate.ledger.modes")

LEGACY = Modes(DEFAULTS[WRITE_MODE], DEFAULTS[READ_SOURCE], DEFAULTS[RETENTION])


class ModeSource:
    """:class:`FlagReader` plus a last-known-good answer.

    When the flag read itself fails (the database is briefly unreachable) the previous
    answer is reused rather than failing a call that may not need the database at all
    (Redis-only status writes); before any successful read that is the legacy mode."""

    def __init__(self, flags: FlagReader) -> None:
        self.flags = flags
        self._last: Modes | None = None

    def modes(self) -> Modes:
        try:
            self._last = self.flags.modes()
        except SQLAlchemyError as exc:
            log.warning("flag read failed, using last known modes: %s", type(exc).__name__)
            if self._last is None:
                return LEGACY
        return self._last


class Counters:
    """Thread-safe named counters (Redis write failures, duplicates, ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def incr(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counts[name] += by

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
