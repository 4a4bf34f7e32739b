"""Schema checks: every object the ledger needs is present, valid, ready and validated.

The expectation is read from ``ledger.models`` (the schema at head), so it cannot drift
from the migrations: a test elsewhere asserts models == migrated database.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, UniqueConstraint
from sqlalchemy import Enum as SaEnum

from checks.base import Outcome, Probe, Verdict, check
from checks.sqlfile import query
from ledger.models import BASELINE_TABLES, EXPAND_TABLES, FUNCTIONS, KIT_TABLES, TRIGGERS, Base


@dataclass(frozen=True)
class Expected:
    """Names the database must hold, derived from the models."""

    tables: tuple[str, ...]
    columns: frozenset[tuple[str, str]]
    enums: dict[str, tuple[str, ...]]
    constraints: frozenset[tuple[str, str]]  # (table, name)
    indexes: frozenset[tuple[str, str]]
    triggers: frozenset[tuple[str, str]]  # (table, name)
    functions: frozenset[str]


def expected(tables: tuple[str, ...] = BASELINE_TABLES + KIT_TABLES + EXPAND_TABLES) -> Expected:
    """What the models say must exist for ``tables``."""
    columns, constraints, indexes = set(), set(), set()
    enums: dict[str, tuple[str, ...]] = {}
    for name in tables:
        table = Base.metadata.tables[name]
        for col in table.columns:
            columns.add((name, col.name))
            if isinstance(col.type, SaEnum) and col.type.name:
                enums[col.type.name] = tuple(col.type.enums)
        if table.primary_key.name:
            constraints.add((name, str(table.primary_key.name)))
        for con in table.constraints:
            if isinstance(con, UniqueConstraint | CheckConstraint | ForeignKeyConstraint) and con.name:
                constraints.add((name, str(con.name)))
        for idx in table.indexes:
            indexes.add((name, str(idx.name)))
    triggers = frozenset((t, name) for t in tables for name in TRIGGERS.get(t, ()))
    return Expected(tuple(tables), frozenset(columns), enums, frozenset(constraints),
                    frozenset(indexes), triggers, frozenset(FUNCTIONS))


def _missing(probe: Probe, exp: Expected) -> list[dict]:
    tables = [list(exp.tables)]
    have_tables = {r["name"] for r in probe.rows(query("schema", "tables"))}
    have_cols = {(r["table_name"], r["column_name"])
                 for r in probe.rows(query("schema", "columns"), {"tables": tables[0]})}
    have_enums: dict[str, set[str]] = {}
    for r in probe.rows(query("schema", "enum_values")):
        have_enums.setdefault(r["enum_name"], set()).add(r["label"])
    have_cons = {(r["table_name"], r["name"])
                 for r in probe.rows(query("schema", "constraints"), {"tables": tables[0]})}
    have_idx = {(r["table_name"], r["name"])
                for r in probe.rows(query("schema", "indexes"), {"tables": tables[0]})}
    have_trg = {(r["table_name"], r["name"])
                for r in probe.rows(query("schema", "triggers"), {"tables": tables[0]})}
    have_fn = {r["name"] for r in probe.rows(query("schema", "functions"))}
    missing: list[dict] = []
    missing += [{"kind": "table", "name": t} for t in exp.tables if t not in have_tables]
    missing += [{"kind": "column", "name": f"{t}.{c}"} for t, c in sorted(exp.columns - have_cols)
                if t in have_tables]
    for enum_name, labels in sorted(exp.enums.items()):
        if enum_name not in have_enums:
            missing.append({"kind": "enum", "name": enum_name})
        missing += [{"kind": "enum value", "name": f"{enum_name}.{v}"} for v in labels
                    if enum_name in have_enums and v not in have_enums[enum_name]]
    missing += [{"kind": "constraint", "name": f"{t}.{n}"} for t, n in sorted(exp.constraints - have_cons)
                if t in have_tables]
    missing += [{"kind": "index", "name": f"{t}.{n}"} for t, n in sorted(exp.indexes - have_idx)
                if t in have_tables]
    missing += [{"kind": "trigger", "name": f"{t}.{n}"} for t, n in sorted(exp.triggers - have_trg)
                if t in have_tables]
    missing += [{"kind": "function", "name": n} for n in sorted(exp.functions - have_fn)]
    return missing


@check("schema_objects", "every expected table, column, enum value, constraint, index, trigger "
       "and function exists", sql_file="schema")
def schema_objects(probe: Probe) -> Outcome:
    exp = expected()
    missing = _missing(probe, exp)
    total = (len(exp.tables) + len(exp.columns) + sum(len(v) + 1 for v in exp.enums.values())
             + len(exp.constraints) + len(exp.indexes) + len(exp.triggers) + len(exp.functions))
    if not missing:
        return Outcome(Verdict.PASS, f"all {total} expected objects present")
    first = missing[0]
    return Outcome(Verdict.FAIL, f"{len(missing)} expected object(s) missing, first: "
                   f"{first['kind']} {first['name']}", tuple(missing))


@check("schema_valid", "every index valid and ready, every constraint validated, every "
       "guard trigger enabled", sql_file="schema")
def schema_valid(probe: Probe) -> Outcome:
    exp = expected()
    tables = list(exp.tables)
    bad: list[dict] = []
    # A disabled trigger is how an owner bypasses the append-only logs or the dead-letter rules.
    for r in probe.rows(query("schema", "triggers"), {"tables": tables}):
        if (r["table_name"], r["name"]) in exp.triggers and not r["enabled"]:
            bad.append({"kind": "trigger", "name": f"{r['table_name']}.{r['name']}",
                        "enabled": False})
    for r in probe.rows(query("schema", "indexes"), {"tables": tables}):
        if not (r["valid"] and r["ready"]):
            bad.append({"kind": "index", "name": f"{r['table_name']}.{r['name']}",
                        "valid": r["valid"], "ready": r["ready"]})
    for r in probe.rows(query("schema", "constraints"), {"tables": tables}):
        if not r["validated"]:
            bad.append({"kind": "constraint", "name": f"{r['table_name']}.{r['name']}",
                        "validated": False})
    if not bad:
        return Outcome(Verdict.PASS, "every index valid and ready, every constraint validated, "
                       "every guard trigger enabled")
    return Outcome(Verdict.FAIL, f"{len(bad)} invalid object(s), first: {bad[0]['kind']} "
                   f"{bad[0]['name']}", tuple(bad))
