"""The two spellings of one database URL: SQLAlchemy's (``postgresql+psycopg://``, what the
kit stores and passes around) and libpq's (``postgresql://``, what psycopg, ``psql`` and
``pg_dump`` take). Converted here only, so every package agrees on both."""

from __future__ import annotations

SQLALCHEMY_SCHEME = "postgresql+psycopg://"
LIBPQ_SCHEMES = ("postgresql://", "postgres://")


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` or ``postgres://`` -> ``postgresql+psycopg://``; other text unchanged."""
    for prefix in LIBPQ_SCHEMES:
        if url.startswith(prefix):
            return SQLALCHEMY_SCHEME + url[len(prefix):]
    return url


def libpq_dsn(url: str) -> str:
    """``postgresql+psycopg://`` -> ``postgresql://``; a libpq URL is returned as it is."""
    if url.startswith(SQLALCHEMY_SCHEME):
        return LIBPQ_SCHEMES[0] + url[len(SQLALCHEMY_SCHEME):]
    return url
