"""Named SQL blocks in ``checks/sql/*.sql``, loaded once (parsed by ``ledger.sqlfiles``).

Queries use psycopg's ``%(param)s`` placeholders.
"""

from __future__ import annotations

from pathlib import Path

from ledger import sqlfiles
from ledger.sqlfiles import NamedQuery, parse

__all__ = ["SQL_DIR", "NamedQuery", "load", "parse", "query"]

SQL_DIR = Path(__file__).resolve().parent / "sql"


def load(file: str) -> dict[str, NamedQuery]:
    """Every named query of ``checks/sql/<file>.sql``."""
    return sqlfiles.load(str(SQL_DIR / f"{file}.sql"))


def query(file: str, name: str) -> str:
    """The SQL text of one named query."""
    return sqlfiles.named(SQL_DIR / f"{file}.sql", name)
