"""Compatibility rules: what breaks the release of the application still running during
expand. Kept apart from the locking rules because the question differs: not "how long is
the table blocked?" but "does the code deployed right now still work afterwards?".

A rename or a move breaks every running release, whatever the phase; a drop (or a dropped
NOT NULL or default) is what a contract revision is for, once the old code is gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from checks.lint import sql_tree as t
from checks.lint.state import Unit

_RENAMED = {"OBJECT_COLUMN": "column", "OBJECT_TABLE": "table", "OBJECT_VIEW": "view",
            "OBJECT_MATVIEW": "materialized view", "OBJECT_SCHEMA": "schema",
            "OBJECT_TYPE": "type", "OBJECT_DOMAIN": "domain", "OBJECT_FUNCTION": "function",
            "OBJECT_PROCEDURE": "procedure", "OBJECT_SEQUENCE": "sequence",
            "OBJECT_FOREIGN_TABLE": "foreign table", "OBJECT_ATTRIBUTE": "attribute",
            "OBJECT_DATABASE": "database"}
_DROPPED = {"OBJECT_TABLE": "table", "OBJECT_VIEW": "view", "OBJECT_MATVIEW": "materialized view",
            "OBJECT_SCHEMA": "schema", "OBJECT_TYPE": "type", "OBJECT_DOMAIN": "domain",
            "OBJECT_FUNCTION": "function", "OBJECT_PROCEDURE": "procedure",
            "OBJECT_SEQUENCE": "sequence", "OBJECT_FOREIGN_TABLE": "foreign table"}


def column_constraints(col: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """contype -> the first constraint of that type written on a column definition."""
    out: dict[str, dict[str, Any]] = {}
    for raw in col.get("constraints", ()):
        con = t.unwrap(raw)[1]
        out.setdefault(con.get("contype", ""), con)
    return out


def _object_name(obj: Any) -> str:
    kind, node = t.unwrap(obj)
    if kind == "List":
        return ".".join(t.strings(node.get("items")))
    if kind == "String":
        return str(node.get("sval", ""))
    if kind == "TypeName":
        return ".".join(t.strings(node.get("names")))
    if kind == "ObjectWithArgs":
        return ".".join(t.strings(node.get("objname")))
    return "?"


class CompatRules:
    """Mixed into the statement linter (``sql_rules.StatementLinter``)."""

    unit: Unit

    if TYPE_CHECKING:  # provided by the linter
        def add(self, rule_id: str, message: str) -> None: ...

    def fresh(self, name: str | None) -> bool:
        """Created by this unit: nobody outside it uses the name yet."""
        return name is not None and (self.unit.exempt(name) or name in self.unit.created)

    # ---------------------------------------------------------------- renames and moves
    def on_RenameStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        what = _RENAMED.get(node.get("renameType", ""))
        if what is None:
            return  # indexes, constraints, triggers: no application reads those names
        table = t.relname(node.get("relation"))
        obj = node.get("object")
        name = table or (_object_name(obj) if obj else node.get("subname") or "?")
        if self.fresh(table or name.split(".")[-1]):
            return
        old = node.get("subname") if what in ("column", "attribute") else name
        where = f" of {table}" if what == "column" else ""
        self.add("PG009", f"rename of {what} {old}{where} to {node.get('newname')}")

    def on_AlterEnumStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        name = ".".join(t.strings(node.get("typeName")))
        if node.get("oldVal") is not None and not self.fresh(name.split(".")[-1]):
            self.add("PG009", f"rename of enum value {node.get('oldVal')!r} of {name} to "
                              f"{node.get('newVal')!r}")

    def on_AlterObjectSchemaStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        table = t.relname(node.get("relation"))
        name = table or _object_name(node.get("object"))
        if not self.fresh((name or "").split(".")[-1]):
            what = str(node.get("objectType", "")).removeprefix("OBJECT_").lower()
            self.add("PG027", f"{what} {name} moved to schema {node.get('newschema')}")

    # ---------------------------------------------------------------- drops
    def dropped(self, node: dict[str, Any]) -> None:
        what = _DROPPED.get(node.get("removeType", ""))
        if what is None or self.unit.drops_allowed:
            return
        names = [_object_name(o) for o in node.get("objects", ())]
        live = [n for n in names if not self.fresh(n.split(".")[-1])]
        if live:
            self.add("PG010", f"DROP {what.upper()} {', '.join(live)} in a {self.unit.phase} revision")

    def alter_compat(self, table: str, sub: str, cmd: dict[str, Any]) -> None:
        col = cmd.get("name")
        if sub == "AT_DropColumn":
            if not self.unit.drops_allowed:
                self.add("PG010", f"DROP COLUMN {table}.{col} in a {self.unit.phase} revision")
        elif sub == "AT_DropNotNull":
            if not self.unit.drops_allowed:
                self.add("PG027", f"DROP NOT NULL on {table}.{col}: the running code may not "
                                  "expect NULL")
        elif sub == "AT_ColumnDefault" and cmd.get("def") is None:
            if not self.unit.drops_allowed:
                self.add("PG027", f"DROP DEFAULT on {table}.{col}: the running code's inserts "
                                  "may rely on it")

    def alter_composite(self, type_name: str | None, sub: str, cmd: dict[str, Any]) -> None:
        if self.fresh(type_name):
            return
        if sub == "AT_DropColumn":
            self.add("PG027", f"DROP ATTRIBUTE {cmd.get('name')} of type {type_name}")
        elif sub == "AT_AlterColumnType":
            self.add("PG027", f"ALTER ATTRIBUTE {cmd.get('name')} TYPE of type {type_name}")

    # ---------------------------------------------------------------- new columns
    def new_column_compat(self, table: str, col: dict[str, Any], typ: list[str]) -> None:
        if typ[-1:] == ["json"]:
            self.add("PG027", f"{table}.{col.get('colname')} is json: SELECT DISTINCT, UNION "
                              "and GROUP BY over * fail (no equality operator); use jsonb")
