"""Turning time-valued params (datetimes or ISO strings, as the rollout stores them) into
aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from phasegate.errors import ConfigError


def as_datetime(value: Any) -> datetime | None:
    """None, a datetime or an ISO-8601 string -> an aware datetime (naive means UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(f"not an ISO-8601 time: {value!r}") from exc
    elif isinstance(value, int | float):
        parsed = datetime.fromtimestamp(float(value), UTC)
    else:
        raise ConfigError(f"not a time: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
