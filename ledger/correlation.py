"""Correlation ids that flow from a cron tick through dispatch, runs and job attempts.

A correlation id lives in a :class:`contextvars.ContextVar`, so it follows the code path
(threads started with ``contextvars.copy_context().run`` and asyncio tasks inherit it) and
every log line can carry it (:mod:`ledger.logs`).
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "phasegate_correlation_id", default=None
)


def new_id() -> str:
    """A fresh correlation id (uuid4 hex: short, unique, safe in keys and logs)."""
    return uuid.uuid4().hex


def current() -> str | None:
    """The correlation id of the running code path, or None outside one."""
    return _current.get()


def ensure(correlation_id: str | None = None) -> str:
    """The given id, else the current one, else a new one."""
    return correlation_id or _current.get() or new_id()


@contextlib.contextmanager
def use(correlation_id: str | None = None) -> Iterator[str]:
    """Run the block under ``correlation_id`` (the current or a new one when None)."""
    cid = ensure(correlation_id)
    token = _current.set(cid)
    try:
        yield cid
    finally:
        _current.reset(token)
