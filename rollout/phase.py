"""The one protocol every phase implements, and the frozen actions a phase plans.

A phase is *preflight -> plan -> apply -> gate -> rollback*. ``plan`` returns an ordered list
of :class:`Action` with stable ids; the executor (``rollout/executor.py``) runs them,
checkpoints each id and undoes them in reverse on failure; the rollback plan document is
generated from the same list, so the document cannot drift from what runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rollout.consent import Consent

if TYPE_CHECKING:
    from redis import Redis
    from sqlalchemy.engine import Engine

    from rollout.environments import Target
    from rollout.settings import Settings
    from rollout.state import PhaseState, StateStore

PHASE_ORDER = ("expand", "dual_write", "cutover", "retention", "contract")


@dataclass(frozen=True)
class Sizes:
    """Approximate row counts of the tables a phase touches (from pg_class.reltuples)."""

    rows: Mapping[str, int] = field(default_factory=dict)

    def of(self, table: str) -> int:
        return int(self.rows.get(table, 0))


@dataclass(frozen=True)
class Action:
    """One idempotent step; ``undo`` None means there is nothing to undo."""

    id: str  # stable: "<phase>.<step>"
    title: str
    changes: str  # what it changes, for the plan
    apply: Callable[[PhaseContext], None]
    undo: Callable[[PhaseContext], None] | None = None
    irreversible: bool = False  # its effect cannot be undone: needs --yes to run
    # Rollback stops at this action once it ran (contract's key expiry: the legacy read path
    # is gone). False for retention's prune: the phase rolls back (pruning off) and the plan
    # says the deleted rows are not restored.
    rollback_stops: bool = False
    # The tables ('t') and columns ('t.c') its undo drops (rollout/drops.py): when they hold
    # rows the rollback is irreversible and asks for --yes (and an export of OPEN dead letters).
    undo_drops: tuple[str, ...] = ()
    manual_apply: tuple[str, ...] = ()  # exact SQL / redis-cli commands
    manual_undo: tuple[str, ...] = ()
    verify_undo: tuple[str, ...] = ()  # queries that prove the undo worked
    estimate: Callable[[Sizes, Settings], float] | None = None  # seconds
    long_running: bool = False  # the crash matrix also kills it mid-way


@dataclass(frozen=True)
class ProgressEvent:
    """How far a long action has come, for whoever shows it: the library only reports, the
    CLI draws the bar (``cli/progress.py``)."""

    action_id: str  # the reporting action, e.g. "dual_write.backfill"
    done: int  # in ``unit``s, counting what an earlier, killed run did before this one resumed
    total: int  # in ``unit``s; 0 when there is nothing to do
    rows_per_second: float  # rows this run handled per second so far
    unit: str = "ids"
    finished: bool = False  # the action's last event: it stopped, done or failed


# Called with every event, in the rollout's own thread; None: nobody is watching.
OnProgress = Callable[[ProgressEvent], None]


@dataclass
class PhaseContext:
    """What an action sees: the target, its connections and the running state."""

    target: Target
    engine: Engine
    redis: Redis
    settings: Settings
    actor: str
    rollout_id: str
    store: StateStore
    state: PhaseState
    log: logging.LoggerAdapter
    on_progress: OnProgress | None = None
    # Raises when the rollout may not go on (its lock's session died); called before every
    # action and every checkpoint.
    guard: Callable[[], None] = field(default=lambda: None)
    # What the command agreed to (--yes, --confirm, --export): an undo that drops rows asks it.
    consent: Consent = field(default_factory=Consent)

    def checkpoint(self, **values: Any) -> None:
        """Persist progress of a long action, so a killed run resumes from here."""
        self.guard()
        self.state.checkpoint.update(values)
        self.store.save(self.state)


class Phase(Protocol):
    name: str
    # Ids of the checks that gate it, in report order: the one place this is written (the
    # gate runner, ``invoke check --phase``, ``--status`` and the plans read it).
    gate_checks: tuple[str, ...]

    def preflight(self, ctx: PhaseContext) -> list[str]:
        """Reasons to refuse to start (empty: go)."""

    def plan(self) -> list[Action]:
        """The ordered actions of apply; their undos, reversed, are the rollback."""

    def gate(self, ctx: PhaseContext) -> list[Any]:
        """Run the gate checks; a list of checks.CheckResult."""

    def rollback_preflight(self, ctx: PhaseContext) -> list[str]:
        """Reasons to refuse to roll back (empty: go)."""
