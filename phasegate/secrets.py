"""Secrets masked by their value, wherever text leaves the process.

Pattern masking (``user:***@`` in a URL, ``password=***``) misses a password that libpq or a
driver echoes on its own, or one with an ``@`` or a space that no pattern can delimit. So
every URL the kit is given is parsed once (:func:`phasegate.urls.parse_url`), its password is
remembered here, and :func:`mask` replaces each remembered value (raw and percent-encoded)
in any text: CLI lines, check summaries, JUnit/JSON reports, events, logs.
"""

from __future__ import annotations

import threading
from urllib.parse import quote, quote_plus

MASK = "***"
# A value this short would mask ordinary words ("pw" inside "pwd"); such a password is still
# masked inside URLs and ``password=`` options by the patterns in phasegate.text.
MIN_LENGTH = 4

_lock = threading.Lock()
_known: set[str] = set()
_ordered: tuple[str, ...] = ()  # longest first, so a value's encoded form goes before its parts


def remember(secret: str | None) -> None:
    """Mask ``secret`` (and its percent-encoded forms) in all text from now on."""
    global _ordered
    if not secret or len(secret) < MIN_LENGTH:
        return
    # Raw, and every encoding a client may print it in: fully percent-encoded, form-encoded,
    # with '/' kept, and SQLAlchemy's rendering (spaces and '+' kept).
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret),
             quote(secret, safe=" +")}
    with _lock:
        if forms <= _known:
            return
        _known.update(forms)
        _ordered = tuple(sorted(_known, key=len, reverse=True))


def mask(text: str) -> str:
    """``text`` with every remembered secret replaced by ``***``."""
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def known() -> int:
    """How many values (forms included) are masked; for tests and diagnostics."""
    return len(_known)
