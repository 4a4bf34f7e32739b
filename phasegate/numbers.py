"""Numbers typed on a command line: whole numbers within bounds, or one clear line.

Invoke converts an option with an ``int`` default itself and a bad value ends in its
traceback, so tasks take such options as text and parse them here."""

from __future__ import annotations

from phasegate.errors import ConfigError
from phasegate.text import printable


def whole_number(value: object, flag: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``; anything else is a ConfigError naming ``flag``."""
    text = str(value).strip()
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a whole number, not {printable(text, 40)!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{flag} must be between {low} and {high}, not {printable(text, 40)}")
    return number
