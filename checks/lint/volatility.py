"""Function volatility from PostgreSQL's own catalog (``pg_proc.provolatile``), shipped as
``volatility.tsv`` (regenerate with ``python -m checks.lint.gen_volatility``).

A function the table does not know (or a call with an argument count no built-in overload
accepts) is treated as volatile: that is PostgreSQL's default for ``CREATE FUNCTION``, and a
user function of unknown volatility in a column default may rewrite the table. A migration
that declares its own function ``IMMUTABLE`` or ``STABLE`` says so through ``declared``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

IMMUTABLE, STABLE, VOLATILE = "i", "s", "v"
_RANK = {IMMUTABLE: 0, STABLE: 1, VOLATILE: 2}
TABLE = Path(__file__).with_name("volatility.tsv")

# name -> [(fewest args, most args or None for variadic, volatility)]
Overloads = dict[str, list[tuple[int, int | None, str]]]


@functools.cache
def table() -> Overloads:
    out: Overloads = {}
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, low, high, vol = line.split("\t")
        out.setdefault(name, []).append((int(low), None if high == "*" else int(high), vol))
    return out


def volatility(name: str, nargs: int | None = None,
               declared: Mapping[str, str] | None = None) -> str:
    """``i``, ``s`` or ``v`` for a call of ``name`` (lower case, unqualified) with ``nargs``
    arguments (None: any overload)."""
    if declared and name in declared:
        return declared[name]
    fits = [vol for low, high, vol in table().get(name, ())
            if nargs is None or (low <= nargs and (high is None or nargs <= high))]
    if not fits:
        return VOLATILE
    return max(fits, key=_RANK.__getitem__)


def known(name: str) -> bool:
    """Whether the shipped catalog has a function of that name."""
    return name in table()
