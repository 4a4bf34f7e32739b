"""URLs the kit is given, parsed once.

:func:`parse_url` checks that the user information cannot be split two ways and remembers
the password (:mod:`phasegate.secrets`), so it is masked by value wherever text leaves the
process. The two spellings of one database URL are converted here only: SQLAlchemy's
(``postgresql+psycopg://``, what the kit stores and passes around) and libpq's
(``postgresql://``, what psycopg, ``psql`` and ``pg_dump`` take).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from phasegate import secrets
from phasegate.errors import ConfigError

SQLALCHEMY_SCHEME = "postgresql+psycopg://"
LIBPQ_SCHEMES = ("postgresql://", "postgres://")

# Characters that end or split the user information when unencoded: libpq takes the first
# '@' and stops at '/', SQLAlchemy and redis-py read differently, and a space or '#' is cut
# by some parsers and kept by others. '%' must start a %XX escape.
_AMBIGUOUS = {"@": "@ (%40)", "/": "/ (%2F)", "?": "? (%3F)", "#": "# (%23)", " ": "a space (%20)"}
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class ParsedUrl:
    """A URL split once: the password decoded (never shown), the rest as given."""

    scheme: str
    user: str | None
    password: str | None
    location: str  # host[:port][/path][?query], as given


def parse_url(url: str, what: str = "URL") -> ParsedUrl:
    """Split ``url`` and remember its password; refuse user information libpq, SQLAlchemy and
    redis-py could read differently, with a hint to percent-encode. The message never
    repeats the URL (it holds the password)."""
    scheme, sep, remainder = url.partition("://")
    if not sep or not scheme:
        raise ConfigError(f"{what} must look like scheme://host[:port][/...] (user name and "
                          "password, if any, percent-encoded before the host and an @)")
    at = remainder.rfind("@")
    if at < 0:
        return ParsedUrl(scheme, None, None, remainder)
    userinfo, location = remainder[:at], remainder[at + 1:]
    user, colon, password = userinfo.partition(":")
    # Remembered before any refusal, so no later message can carry it either.
    secrets.remember(password)
    secrets.remember(unquote(password))
    found = [label for ch, label in _AMBIGUOUS.items() if ch in userinfo]
    if any(not ch.isprintable() for ch in userinfo):
        found.append("a control character")
    if _BAD_ESCAPE.search(userinfo):
        found.append("a % that starts no %XX escape (%25)")
    if found:
        raise ConfigError(
            f"{what}: the user name or password holds {', '.join(found)} unencoded, which "
            "clients split differently; percent-encode it (or use PGPASSFILE / a URL without "
            "the password)")
    return ParsedUrl(scheme, unquote(user) or None, unquote(password) if colon else None, location)


def remember_url(url: str, what: str = "URL") -> None:
    """Parse ``url`` only for its password (refusing an ambiguous one)."""
    parse_url(url, what)


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` or ``postgres://`` -> ``postgresql+psycopg://``; other text unchanged.
    The URL is parsed (and its password remembered) on the way."""
    remember_url(url, "database URL")
    for prefix in LIBPQ_SCHEMES:
        if url.startswith(prefix):
            return SQLALCHEMY_SCHEME + url[len(prefix):]
    return url


def libpq_dsn(url: str) -> str:
    """``postgresql+psycopg://`` -> ``postgresql://``; a libpq URL is returned as it is."""
    if url.startswith(SQLALCHEMY_SCHEME):
        return LIBPQ_SCHEMES[0] + url[len(SQLALCHEMY_SCHEME):]
    return url
