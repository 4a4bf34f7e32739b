"""Named SQL blocks in ``checks/sql/*.sql``, loaded once.

A block starts with ``-- name: <name>`` followed by ``-- <one-line description>``, and runs
to the next ``-- name:`` line. Queries use psycopg's ``%(param)s`` placeholders.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import PhasegateError

SQL_DIR = Path(__file__).resolve().parent / "sql"
_NAME = re.compile(r"^--\s*name:\s*(?P<name>[a-z0-9_]+)\s*$", re.M)


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str


def parse(text: str, source: str = "<string>") -> dict[str, NamedQuery]:
    """Split a file's text into its named queries."""
    out: dict[str, NamedQuery] = {}
    marks = list(_NAME.finditer(text))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[mark.end():end].strip("\n")
        lines = body.splitlines()
        if not lines or not lines[0].startswith("--"):
            raise PhasegateError(f"{source}: query {mark['name']} has no description line")
        description = lines[0].lstrip("-").strip()
        sql = "\n".join(lines[1:]).strip().rstrip(";")
        if mark["name"] in out:
            raise PhasegateError(f"{source}: query {mark['name']} defined twice")
        out[mark["name"]] = NamedQuery(mark["name"], description, sql)
    return out


@functools.cache
def load(file: str) -> dict[str, NamedQuery]:
    """Every named query of ``checks/sql/<file>.sql``."""
    path = SQL_DIR / f"{file}.sql"
    return parse(path.read_text(), path.name)


def query(file: str, name: str) -> str:
    """The SQL text of one named query."""
    queries = load(file)
    if name not in queries:
        raise PhasegateError(f"no query {name!r} in checks/sql/{file}.sql")
    return queries[name].sql
