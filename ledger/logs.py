"""Structured logs for the write path: every record carries the correlation id.

``CorrelationFilter`` stamps ``record.correlation_id`` from :mod:`ledger.correlation`;
``JsonFormatter`` writes one JSON object per line for machines; :func:`configure` installs
both (or a readable format for people) on a handler.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from ledger import correlation
from ledger.errors import mask_secrets

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is
# written as a field of the JSON line.
_STANDARD = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {
    "message", "asctime", "correlation_id", "taskName",
}

READABLE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"


class CorrelationFilter(logging.Filter):
    """Adds ``correlation_id`` (or ``-``) to every record; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", None):
            record.correlation_id = correlation.current() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, correlation_id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
            "correlation_id": getattr(record, "correlation_id", None) or correlation.current(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(doc, default=str)


def configure(*, json_format: bool = False, level: int = logging.INFO,
              handler: logging.Handler | None = None,
              logger: str = "phasegate") -> logging.Handler:
    """Install a handler on ``logger`` that stamps correlation ids (JSON or readable)."""
    handler = handler or logging.StreamHandler()
    handler.addFilter(CorrelationFilter())
    handler.setFormatter(JsonFormatter() if json_format else logging.Formatter(READABLE_FORMAT))
    target = logging.getLogger(logger)
    target.addHandler(handler)
    target.setLevel(level)
    return handler
