"""Named SQL blocks kept in ``.sql`` files, loaded once; the one parser every package uses.

A block starts with ``-- name: <name>``, then a ``-- <one-line description>``, and runs to
the next ``-- name:`` line (comments inside a block stay part of its SQL).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import PhasegateError

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
        lines = text[mark.end():end].strip("\n").splitlines()
        if not lines or not lines[0].startswith("--"):
            raise PhasegateError(f"{source}: query {mark['name']} has no description line")
        if mark["name"] in out:
            raise PhasegateError(f"{source}: query {mark['name']} defined twice")
        description = lines[0].lstrip("-").strip()
        sql = "\n".join(lines[1:]).strip().rstrip(";")
        out[mark["name"]] = NamedQuery(mark["name"], description, sql)
    return out


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


def query(module_file: str, sql_name: str, name: str) -> str:
    """The block ``name`` of the .sql file ``sql_name`` next to ``module_file``."""
    return named(Path(module_file).with_name(sql_name), name)
