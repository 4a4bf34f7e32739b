"""What the rules remember while they read a migration, statement by statement.

Three scopes, because PostgreSQL has three: the **transaction** (locks are held until it
ends, ``SET LOCAL`` lasts until then, a constraint added in it is still locked), the
**session** (a plain ``SET lock_timeout`` lasts until the connection closes) and the
**schema** the migrations build up across files (a CHECK validated in one revision proves
NOT NULL for a later one). A **unit** is one thing linted in one go: a revision's
``upgrade()`` or ``downgrade()``, or a ``.sql`` file.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Txn:
    """One transaction: reset at every boundary (COMMIT, autocommit, autocommit_block)."""

    lock_timeout: bool = False  # SET LOCAL lock_timeout (or set_config(..., true))
    locks: list[str] = field(default_factory=list)  # strong locks held, for messages
    added: dict[str, str] = field(default_factory=dict)  # constraint name -> table
    explicit: bool = False  # opened by BEGIN in a .sql file
    begin_line: int = 0
    origin: str = ""  # where it began, when it began in an earlier revision


@dataclass
class Session:
    lock_timeout: bool = False  # SET lock_timeout (session level)


@dataclass
class Schema:
    """Facts about the database that outlive one unit (shared by every file of a run)."""

    # constraint name -> (table, columns a CHECK (col IS NOT NULL ...) proves)
    not_null_checks: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)
    proven_not_null: dict[tuple[str, str], str] = field(default_factory=dict)  # -> constraint
    # VALIDATE of a constraint this run never saw added (added by an earlier migration that
    # was not linted): trusted as the NOT NULL recipe for its table, as squawk does.
    validated_elsewhere: set[str] = field(default_factory=set)
    volatility: dict[str, str] = field(default_factory=dict)  # user functions: name -> i/s/v
    functions: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (lang, body)


@dataclass
class Unit:
    """One revision function or one .sql file."""

    path: str
    function: str  # upgrade | downgrade | sql
    phase: str
    python: bool  # an Alembic revision (its own transaction) rather than a psql script
    new_tables: set[str] = field(default_factory=set)  # created here: nobody sees them yet
    own_tables: set[str] = field(default_factory=set)  # created by the upgrade (downgrade only)
    new_indexes: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)  # other objects created here, by name

    def exempt(self, table: str | None) -> bool:
        return table is not None and (table in self.new_tables or table in self.own_tables)

    @property
    def drops_allowed(self) -> bool:
        """Expand revisions' downgrades remove what their upgrades added; contract drops."""
        return self.function == "downgrade" or self.phase == "contract"
