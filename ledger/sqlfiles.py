"""Named SQL blocks kept in ``.sql`` files, loaded once; the one parser every package uses.

A block starts with ``-- name: <name>``, then a ``-- <one-line description>``, and runs to
the next ``-- name:`` line (comments inside a block stay part of its SQL). A module's
blocks live in ``sql/<file>.sql`` beside it and are read with :func:`query`.

One placeholder style: psycopg's ``%(name)s``, so a block goes to the driver exactly as
written, whichever way it is executed, and a person can paste it into ``psql`` after
putting values in (:func:`render` does that for runbooks). No literal ``%`` (psycopg would
read it as a placeholder) and no ``:name`` binds (only SQLAlchemy's ``text()`` reads them).

* On a psycopg connection or cursor (the write path, the checks): ``conn.execute(sql, params)``.
* On a SQLAlchemy connection: :func:`execute`, which hands the text to psycopg unchanged
  inside SQLAlchemy's transaction.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql as pgsql
from sqlalchemy.engine import Connection, CursorResult

from ledger.errors import PhasegateError

SQL_DIR = "sql"  # the folder beside a module that holds its .sql files
_NAME = re.compile(r"^--\s*name:\s*(?P<name>[a-z0-9_]+)\s*$", re.M)
PLACEHOLDER = re.compile(r"%\((?P<name>[a-z_][a-z0-9_]*)\)s")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str


def parse(text: str, source: str = "<string>") -> dict[str, NamedQuery]:
    """Split a file's text into its named queries."""
    out: dict[str, NamedQuery] = {}
    marks = list(_NAME.finditer(text))
    _check_preamble(text[: marks[0].start()] if marks else text, source)
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        lines = text[mark.end():end].strip("\n").splitlines()
        if not lines or not lines[0].startswith("--"):
            raise PhasegateError(f"{source}: query {mark['name']} has no description line")
        if mark["name"] in out:
            raise PhasegateError(f"{source}: query {mark['name']} defined twice")
        description = lines[0].lstrip("-").strip()
        sql = "\n".join(lines[1:]).strip().rstrip(";")
        out[mark["name"]] = NamedQuery(mark["name"], description, sql)
    return out


def _check_preamble(head: str, source: str) -> None:
    # SQL above the first ``-- name:`` belongs to no block: it would be dropped silently.
    if any(line.strip() and not line.lstrip().startswith("--") for line in head.splitlines()):
        raise PhasegateError(f"{source}: SQL before the first '-- name:' line")


@functools.cache
def load(path: str) -> dict[str, NamedQuery]:
    """Every named query of the .sql file at ``path``."""
    file = Path(path)
    return parse(file.read_text(encoding="utf-8"), file.name)


def named(path: Path, name: str) -> str:
    """The SQL text of query ``name`` in the file at ``path``."""
    queries = load(str(path))
    if name not in queries:
        raise PhasegateError(f"no query {name!r} in {path.name}")
    return queries[name].sql


def sql_path(module_file: str, file: str) -> Path:
    """``sql/<file>.sql`` beside the module ``module_file``."""
    return Path(module_file).resolve().parent / SQL_DIR / f"{file}.sql"


def query(module_file: str, file: str, name: str) -> str:
    """The block ``name`` of ``sql/<file>.sql`` beside ``module_file`` (pass ``__file__``).

    Call it with literal names at import time: a missing block then fails the import, and
    the test of the SQL convention finds every reference by reading the calls."""
    return named(sql_path(module_file, file), name)


def execute(conn: Connection, sql: str,
            params: Mapping[str, Any] | None = None) -> CursorResult[*tuple[Any, ...]]:
    """Run a block on a SQLAlchemy connection, in the connection's transaction.

    ``exec_driver_sql`` passes the text and the parameters straight to psycopg, which reads
    ``%(name)s`` itself: no second placeholder syntax, no translation, and the statement
    the server gets is the one in the .sql file."""
    return conn.exec_driver_sql(sql, dict(params or {}))


def render(sql: str, params: Mapping[str, Any]) -> str:
    """A block with its parameters written in as SQL literals, ``;``-terminated: the
    runbook text a person pastes into ``psql`` (never executed by the kit)."""
    def literal(m: re.Match[str]) -> str:
        if m["name"] not in params:
            raise PhasegateError(f"no value for %({m['name']})s")
        return pgsql.Literal(params[m["name"]]).as_string(None)

    lines = [line.strip() for line in PLACEHOLDER.sub(literal, sql).splitlines()]
    lines = [line for line in lines if line and not line.startswith("--")]
    # One line reads best in a runbook; a trailing comment would swallow what follows it.
    joiner = "\n" if any("--" in line for line in lines) else " "
    return joiner.join(lines) + ";"
