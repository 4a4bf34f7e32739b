"""``op.<name>(...)`` (and ``batch_op.<name>(...)``) -> the SQL statements it runs.

Only what matters for the rules is rendered (a column's type, nullability, default and
inline constraints; CONCURRENTLY, NOT VALID, WHERE); the rest (comments, schema names,
ON DELETE actions) does not change a lock or a compatibility verdict. An op the linter does
not know is :class:`CannotVerify`: it may be a plugin that runs anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checks.lint.py_alembic import (
    CannotVerify,
    SaColumn,
    SaItem,
    cols,
    column_sql,
    flag,
    q,
    s,
    sql_default,
    table_constraint,
    type_sql,
)

# Ops that run no SQL a rule cares about (bulk_insert only INSERTs; comments take no
# lock that blocks the application).
HARMLESS = {"bulk_insert", "create_table_comment", "drop_table_comment", "inline_literal", "f",
            "get_bind", "get_context", "batch_alter_table", "context"}
# Arguments a batch op takes without the table name, in the order op.* takes them after it.
_BATCH_TABLE_AT = {"add_column": 0, "drop_column": 0, "alter_column": 0, "create_index": 1,
                   "create_foreign_key": 1, "create_check_constraint": 1,
                   "create_unique_constraint": 1, "create_primary_key": 1, "drop_constraint": 1,
                   "create_exclude_constraint": 1, "drop_index": -1}


def batch_args(name: str, table: str, args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """A batch op's arguments, with the batch's table put where the op.* form has it."""
    at = _BATCH_TABLE_AT.get(name)
    if at is None:
        raise CannotVerify(f"batch_op.{name}() is not an operation the linter knows")
    if at < 0:
        return args, {**kwargs, "table_name": table}
    return [*args[:at], table, *args[at:]], kwargs


def _arg(args: list[Any], kwargs: dict[str, Any], index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def op_sql(name: str, args: list[Any], kwargs: dict[str, Any]) -> list[str]:
    """The statements ``op.<name>(*args, **kwargs)`` runs."""
    if name in HARMLESS:
        return []
    render = _OPS.get(name)
    if render is None:
        raise CannotVerify(f"op.{name}() is not an operation the linter knows")
    return render(args, kwargs)


def _create_table(args: list[Any], kw: dict[str, Any]) -> list[str]:
    table = s(_arg(args, kw, 0, "table_name"), "the table name")
    defs = []
    for item in args[1:]:
        if isinstance(item, SaColumn):
            defs.append(column_sql(item))
            if flag(item.kwargs.get("primary_key", False)):
                defs.append(f"PRIMARY KEY ({q(item.name)})")
            if item.kwargs.get("unique") is True:
                defs.append(f"UNIQUE ({q(item.name)})")
        elif isinstance(item, SaItem):
            rendered = table_constraint(item)
            if rendered:
                defs.append(rendered)
        else:
            column_sql(item)  # raises CannotVerify with what the item is
    exists = "IF NOT EXISTS " if kw.get("if_not_exists") is True else ""
    return [f"CREATE TABLE {exists}{q(table)} ({', '.join(defs)})"]


def _drop_table(args: list[Any], kw: dict[str, Any]) -> list[str]:
    return [f"DROP TABLE {q(s(_arg(args, kw, 0, 'table_name'), 'the table name'))}"]


def _rename_table(args: list[Any], kw: dict[str, Any]) -> list[str]:
    old = s(_arg(args, kw, 0, "old_table_name"), "the table name")
    new = s(_arg(args, kw, 1, "new_table_name"), "the new table name")
    return [f"ALTER TABLE {q(old)} RENAME TO {q(new)}"]


def _add_column(args: list[Any], kw: dict[str, Any]) -> list[str]:
    table = s(_arg(args, kw, 0, "table_name"), "the table name")
    col = column_sql(_arg(args, kw, 1, "column"), table_level=False)
    return [f"ALTER TABLE {q(table)} ADD COLUMN {col}"]


def _drop_column(args: list[Any], kw: dict[str, Any]) -> list[str]:
    table = s(_arg(args, kw, 0, "table_name"), "the table name")
    col = s(_arg(args, kw, 1, "column_name"), "the column name")
    return [f"ALTER TABLE {q(table)} DROP COLUMN {q(col)}"]


def _alter_column(args: list[Any], kw: dict[str, Any]) -> list[str]:
    table = s(_arg(args, kw, 0, "table_name"), "the table name")
    col = q(s(_arg(args, kw, 1, "column_name"), "the column name"))
    actions = []
    if kw.get("type_") is not None:
        using = kw.get("postgresql_using")
        actions.append(f"ALTER COLUMN {col} TYPE {type_sql(kw['type_'])}"
                       + (f" USING {sql_default(using, 'postgresql_using')}" if using else ""))
    nullable = kw.get("nullable")
    if nullable is False:
        actions.append(f"ALTER COLUMN {col} SET NOT NULL")
    elif nullable is True:
        actions.append(f"ALTER COLUMN {col} DROP NOT NULL")
    elif nullable is not None:
        raise CannotVerify("nullable= is a value known only at run time")
    if "server_default" in kw and kw["server_default"] is not False:
        default = kw["server_default"]
        actions.append(f"ALTER COLUMN {col} DROP DEFAULT" if default is None else
                       f"ALTER COLUMN {col} SET DEFAULT {sql_default(default, 'server_default')}")
    out = [f"ALTER TABLE {q(table)} {', '.join(actions)}"] if actions else []
    new = kw.get("new_column_name")
    if new is not None:
        out.append(f"ALTER TABLE {q(table)} RENAME COLUMN {col} TO {q(s(new, 'new_column_name'))}")
    return out


def _create_index(args: list[Any], kw: dict[str, Any]) -> list[str]:
    name = _arg(args, kw, 0, "index_name")
    table = s(_arg(args, kw, 1, "table_name"), "the table name")
    columns = cols(_arg(args, kw, 2, "columns"), "the index columns")
    unique = "UNIQUE " if flag(kw.get("unique", False)) else ""
    conc = "CONCURRENTLY " if kw.get("postgresql_concurrently") is True else ""
    label = q(s(name, "the index name")) + " " if name is not None else ""
    where = kw.get("postgresql_where")
    return [f"CREATE {unique}INDEX {conc}{label}ON {q(table)} ({columns})"
            + (f" WHERE {sql_default(where, 'postgresql_where')}" if where is not None else "")]


def _drop_index(args: list[Any], kw: dict[str, Any]) -> list[str]:
    name = s(_arg(args, kw, 0, "index_name"), "the index name")
    conc = "CONCURRENTLY " if kw.get("postgresql_concurrently") is True else ""
    return [f"DROP INDEX {conc}{q(name)}"]


def _not_valid(kw: dict[str, Any]) -> str:
    return " NOT VALID" if kw.get("postgresql_not_valid") is True else ""


def _create_foreign_key(args: list[Any], kw: dict[str, Any]) -> list[str]:
    name = s(_arg(args, kw, 0, "constraint_name"), "the constraint name")
    table = s(_arg(args, kw, 1, "source_table"), "the table name")
    ref = s(_arg(args, kw, 2, "referent_table"), "the referenced table")
    local = cols(_arg(args, kw, 3, "local_cols"), "the foreign key columns")
    remote = cols(_arg(args, kw, 4, "remote_cols"), "the referenced columns")
    return [f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} FOREIGN KEY ({local}) "
            f"REFERENCES {q(ref)} ({remote}){_not_valid(kw)}"]


def _create_check(args: list[Any], kw: dict[str, Any]) -> list[str]:
    name = s(_arg(args, kw, 0, "constraint_name"), "the constraint name")
    table = s(_arg(args, kw, 1, "table_name"), "the table name")
    cond = _arg(args, kw, 2, "condition")
    sql = cond if isinstance(cond, str) else sql_default(cond, "the CHECK condition")
    return [f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} CHECK ({sql}){_not_valid(kw)}"]


def _create_unique(kind: str) -> Callable[[list[Any], dict[str, Any]], list[str]]:
    def render(args: list[Any], kw: dict[str, Any]) -> list[str]:
        name = _arg(args, kw, 0, "constraint_name")
        table = s(_arg(args, kw, 1, "table_name"), "the table name")
        columns = cols(_arg(args, kw, 2, "columns"), "the constraint columns")
        head = f"CONSTRAINT {q(s(name, 'the constraint name'))} " if name is not None else ""
        return [f"ALTER TABLE {q(table)} ADD {head}{kind} ({columns})"]
    return render


def _create_exclude(args: list[Any], kw: dict[str, Any]) -> list[str]:
    name = s(_arg(args, kw, 0, "constraint_name"), "the constraint name")
    table = s(_arg(args, kw, 1, "table_name"), "the table name")
    using = kw.get("using", "gist")
    return [f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} EXCLUDE USING "
            f"{using if isinstance(using, str) else 'gist'} (x WITH =)"]


def _drop_constraint(args: list[Any], kw: dict[str, Any]) -> list[str]:
    name = s(_arg(args, kw, 0, "constraint_name"), "the constraint name")
    table = s(_arg(args, kw, 1, "table_name"), "the table name")
    return [f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)}"]


def _execute(args: list[Any], kw: dict[str, Any]) -> list[str]:
    raise AssertionError("op.execute is handled by the interpreter")  # pragma: no cover


def _sequence(verb: str) -> Callable[[list[Any], dict[str, Any]], list[str]]:
    def render(args: list[Any], kw: dict[str, Any]) -> list[str]:
        seq = args[0] if args else kw.get("sequence")
        name = getattr(seq, "args", [None])[0] if isinstance(seq, SaItem) else seq
        return [f"{verb} SEQUENCE {q(s(name, 'the sequence name'))}"]
    return render


_OPS: dict[str, Callable[[list[Any], dict[str, Any]], list[str]]] = {
    "create_table": _create_table, "drop_table": _drop_table, "rename_table": _rename_table,
    "add_column": _add_column, "drop_column": _drop_column, "alter_column": _alter_column,
    "create_index": _create_index, "drop_index": _drop_index,
    "create_foreign_key": _create_foreign_key, "create_check_constraint": _create_check,
    "create_unique_constraint": _create_unique("UNIQUE"),
    "create_primary_key": _create_unique("PRIMARY KEY"),
    "create_exclude_constraint": _create_exclude, "drop_constraint": _drop_constraint,
    "create_sequence": _sequence("CREATE"), "drop_sequence": _sequence("DROP"),
}
