"""Text that leaves the process: one printable line, with secrets masked."""

from __future__ import annotations

import re

from phasegate import secrets

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@", re.I)
_KV_PASSWORD = re.compile(r"(?P<key>password\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str, limit: int | None = None) -> str:
    """One storable, printable line: newlines become spaces, other control characters and
    text that is not valid UTF-8 (lone surrogates from undecodable bytes) become escapes.

    Why: PostgreSQL text cannot hold NUL and psycopg cannot encode a lone surrogate, so an
    error text carrying either would fail the very write that records the failure; and an
    operator's terminal must not receive escape sequences from a job's error."""
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)
    return text if limit is None else text[:limit]


def mask_secrets(text: str, *extra: str) -> str:
    """``text`` with every password the process was given (by value: see
    :mod:`phasegate.secrets`), any ``extra`` secret, and anything shaped like a URL's or a
    DSN's password replaced by ``***``."""
    masked = secrets.mask(text)
    for secret in extra:
        if secret:
            masked = masked.replace(secret, secrets.MASK)
    masked = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", masked)
    return _KV_PASSWORD.sub(lambda m: f"{m['key']}***", masked)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text, or its class name when it has none
    (psycopg's server errors carry DETAIL and HINT lines below the one that matters)."""
    for line in str(exc).strip().splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
