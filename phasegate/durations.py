"""Durations typed by people: ``90s``, ``15m``, ``2h``, ``7d``, ``1w``."""

from __future__ import annotations

import re
from datetime import timedelta

from phasegate.errors import ConfigError
from phasegate.text import printable

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Longer than any retention or look-back anyone means; beyond it datetime arithmetic
# overflows, which would be a traceback instead of a message.
MAX_DURATION = timedelta(days=36_500)


def parse_duration(text: str | None, flag: str = "duration") -> timedelta:
    """``'2h'`` -> ``timedelta(hours=2)``; anything else is one ConfigError naming ``flag``."""
    m = _DURATION.match(text or "")
    if not m:
        raise ConfigError(f"{flag} must look like 30m, 2h or 7d, not {printable(str(text), 60)!r}")
    seconds = float(m[1]) * UNIT_SECONDS[m[2]]
    if seconds > MAX_DURATION.total_seconds():
        raise ConfigError(f"{flag} must be at most {MAX_DURATION.days} days, not {m[0].strip()}")
    return timedelta(seconds=seconds)


def is_duration(text: str | None) -> bool:
    """Does ``text`` look like a duration (so a caller may try other forms otherwise)?"""
    return bool(_DURATION.match(text or ""))
