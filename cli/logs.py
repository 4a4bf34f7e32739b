"""Logging for the command line: the kit's log lines reach the terminal.

Every ``phasegate.*`` logger (the rollout's lines carry ``[rollout id/phase/action id]``, the
write path's the correlation id) goes to stderr, so stdout stays the command's own output
(tables, JSON, paths) and can be piped. ``text`` is for people; ``json`` writes one object per
line for log shippers. Chosen by ``phasegate --log-format``, or ``PHASEGATE_LOG_FORMAT`` and
``PHASEGATE_LOG_LEVEL`` for ``invoke`` (whose own flags cannot be extended).
"""

from __future__ import annotations

import logging
import os
import sys

from invoke import Exit

from ledger.logs import configure
from phasegate.text import mask_secrets

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_installed: logging.Handler | None = None


class _TerminalFormatter(logging.Formatter):
    """``14:07:49 INFO  [rollout/phase/action] message``: the rollout's tag is already in the
    message; the write path's correlation id is added only when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        cid = getattr(record, "correlation_id", None)
        line = line if not cid or cid == "-" else f"{line} (correlation {cid})"
        # Masked here, after formatting, so a password in an argument or a traceback is
        # caught too (JsonFormatter masks its own fields the same way).
        return mask_secrets(line)


def configure_logging(fmt: str | None = None, level: str | None = None) -> None:
    """(Re)install the one stderr handler of the ``phasegate`` logger; idempotent."""
    global _installed
    fmt = (fmt or os.environ.get("PHASEGATE_LOG_FORMAT") or "text").strip().lower()
    level = (level or os.environ.get("PHASEGATE_LOG_LEVEL") or "INFO").strip().upper()
    if fmt not in FORMATS:
        raise Exit(f"phasegate: log format must be one of {', '.join(FORMATS)}, not {fmt[:40]!r}", code=2)
    if level not in LEVELS:
        raise Exit(f"phasegate: log level must be one of {', '.join(LEVELS)}, not {level[:40]!r}", code=2)
    root = logging.getLogger("phasegate")
    if _installed is not None:
        root.removeHandler(_installed)
    _installed = configure(json_format=fmt == "json", level=getattr(logging, level),
                           handler=logging.StreamHandler(sys.stderr))
    if fmt == "text":
        _installed.setFormatter(_TerminalFormatter())
    # The kit's lines are shown once, here, not again by a handler the host set on root.
    root.propagate = False
