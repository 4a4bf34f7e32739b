"""``invoke migrate``: a schema move by hand, under the rules a phase runs under.

The manual path of every plan moves the schema with ``invoke migrate``; it is the one
command that changes the schema outside a phase, so it carries the phase's guarantees:

* **The same lock.** It holds the target's rollout lock (:class:`TargetLock`) for the whole
  move: it never runs beside a rollout, and a rollout never starts beside it.
* **The same audit.** ``migrate_started``, ``migrate_done``, ``migrate_refused`` and
  ``migrate_failed`` go to the event log with who, from, to, the revisions crossed, what was
  dropped and the file OPEN dead letters were exported to.
* **No silent target.** ``--to`` is required; a target below the first revision is refused
  in one line before anything runs.
* **The rollout state decides.** A move that contradicts the recorded state of a phase that
  owns the revisions it crosses (a revision's ``phase`` attribute) is refused with the
  command to run instead: applying a phase's revisions while the phase is not applied
  ("past the current phase"), or undoing them while it is (or while a later phase runs on
  them). A plan's manual path contradicts the state on purpose; it says so exactly, with
  ``--against-state PHASE`` naming the one phase it contradicts. What no manual path needs
  is never allowed: undoing expand under an active dual_write, applying contract's
  revisions before every earlier phase is gated, dropping the kit's tables (which hold the
  rollout state) while a phase is active.
* **The same drop rule.** Each revision undone is judged by :mod:`rollout.drops`: rows
  would be lost, so ``--yes``, the typed-back name in production, and an export of OPEN
  dead letters; all checked before the first revision moves, again right before each drop.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from ledger import sqlfiles
from migrations import api as migrations_api
from migrations.points import BASELINE
from phasegate.errors import ConfigError
from phasegate.text import first_line
from rollout import drops, executor
from rollout.actions import export_ddl_settings
from rollout.consent import Consent
from rollout.environments import Target
from rollout.errors import IrreversibleStep, MoveRefused, RolloutError
from rollout.phase import PHASE_ORDER
from rollout.state import APPLIED, GATED, PENDING, ROLLED_BACK, StateStore, TargetLock

EVENT_PHASE = "migrate"  # the event log's phase column for a schema move
HAS_JOBS_SQL = sqlfiles.query(__file__, "engine", "has_background_job")
SCHEMA_PHASES = ("expand", "contract")  # the rollout phases that own revisions
DONE, INACTIVE = (APPLIED, GATED), (PENDING, ROLLED_BACK)


class MoveFailed(RolloutError):
    """A revision of a schema move failed: the move stopped there."""


@dataclass(frozen=True)
class Step:
    """One revision applied (``up``) or undone."""

    revision: str
    up: bool
    owner: str  # the revision's ``phase``: baseline | kit | expand | contract
    drops: tuple[str, ...] = ()  # undone: the tables and columns it drops (rollout/drops.py)


@dataclass(frozen=True)
class Conflict:
    """The move contradicts the recorded state of ``phase``."""

    phase: str
    reason: str
    instead: str
    overridable: bool  # a plan's manual path may say --against-state PHASE


@dataclass(frozen=True)
class MovePlan:
    """What a move would do, read without the lock and without writing anything."""

    target: str
    current: str | None
    goal: str
    steps: tuple[Step, ...]
    conflicts: tuple[Conflict, ...]
    holding: tuple[str, ...] = ()  # dropped tables/columns that hold rows right now
    open_dead_letters: int = 0
    refusal: str | None = None  # what run() would refuse with (the dry run shows it)


@dataclass(frozen=True)
class MoveReport:
    plan: MovePlan
    reached: str | None
    exported: Path | None = None
    message: str = ""


def resolve_goal(to: str) -> str:
    """The revision ``to`` names; below the first revision is refused before anything runs."""
    if to.strip() == "base":
        raise MoveRefused(to, f"'base' is below the first revision ({BASELINE}), the "
                              "application's own background_job, which phasegate never drops; "
                              "the lowest point is baseline")
    goal = migrations_api.resolve(to.strip())
    return migrations_api.revision_chain()[-1] if goal == "head" else goal


def steps_between(current: str | None, goal: str) -> list[Step]:
    """The revisions from ``current`` to ``goal``, in the order they move."""
    chain = migrations_api.revision_chain()
    here = -1 if current is None else chain.index(current)
    there = chain.index(goal)

    def owner(rev: str) -> str:
        return str(getattr(migrations_api.revision_module(rev), "phase", "expand"))

    if there >= here:
        return [Step(rev, True, owner(rev)) for rev in chain[here + 1: there + 1]]
    return [Step(rev, False, owner(rev), drops.drops_of(rev))
            for rev in reversed(chain[there + 1: here + 1])]


def conflicts(statuses: Mapping[str, str], steps: list[Step], env: str) -> list[Conflict]:
    """How a move of ``steps`` contradicts the phases' recorded ``statuses`` (pure)."""
    out: list[Conflict] = []
    for name in SCHEMA_PHASES:
        if any(s.owner == name and not s.up for s in steps):
            out += _undo_conflicts(statuses, name, env)
        if any(s.owner == name and s.up for s in steps):
            out += _apply_conflicts(statuses, name, env)
    active = [p for p in PHASE_ORDER if statuses.get(p, PENDING) not in INACTIVE]
    if any(s.owner == "kit" and not s.up for s in steps) and active:
        out.append(Conflict("kit", f"{active[-1]} is {statuses[active[-1]]} and the kit's tables "
                                   "hold the rollout state", _rollback_to(env, "baseline"), False))
    return out


def _undo_conflicts(statuses: Mapping[str, str], name: str, env: str) -> list[Conflict]:
    idx = PHASE_ORDER.index(name)
    previous = PHASE_ORDER[idx - 1] if idx else "baseline"
    later = [p for p in PHASE_ORDER[idx + 1:] if statuses.get(p, PENDING) not in INACTIVE]
    if later:
        return [Conflict(name, f"{later[-1]} is {statuses[later[-1]]} and runs on {name}'s schema",
                         _rollback_to(env, previous), False)]
    status = statuses.get(name, PENDING)
    if status in INACTIVE:
        return []
    return [Conflict(name, f"{name} is {status}, so its schema is in use",
                     _rollback_to(env, previous), True)]


def _apply_conflicts(statuses: Mapping[str, str], name: str, env: str) -> list[Conflict]:
    idx = PHASE_ORDER.index(name)
    earlier = [p for p in PHASE_ORDER[:idx] if statuses.get(p, PENDING) != GATED]
    if earlier:
        return [Conflict(name, f"{earlier[0]} is {statuses.get(earlier[0], PENDING)}, not gated",
                         f"invoke rollout --env {env} --phase {earlier[0]}", False)]
    status = statuses.get(name, PENDING)
    if status in DONE:
        return []  # the state says the schema is there: putting it back agrees with it
    return [Conflict(name, f"{name} is {status}: its revisions run in the phase, with its "
                           "preflight and gate", f"invoke rollout --env {env} --phase {name}", True)]


def _undone(steps: list[Step]) -> list[tuple[str, tuple[str, ...]]]:
    """(revision, what its downgrade drops) of the revisions undone that drop something."""
    return [(s.revision, s.drops) for s in steps if s.drops]


def _rollback_to(env: str, to: str) -> str:
    return f"invoke rollout --env {env} --rollback --to {to}"


def refusal(found: list[Conflict], against: str | None, revision: str) -> MoveRefused | None:
    """The refusal the conflicts call for, given ``--against-state`` (None: go)."""
    goal = migrations_api.point_of(revision) or revision
    hard = [c for c in found if not c.overridable]
    if hard:
        return MoveRefused(goal, hard[0].reason, hard[0].instead)
    named = sorted({c.phase for c in found})
    if against is None:
        if not named:
            return None
        c = found[0]
        return MoveRefused(goal, c.reason, f"{c.instead} (a plan's manual path says "
                                           f"--against-state {c.phase})")
    if named == [against]:
        return None
    if len(named) > 1:
        return MoveRefused(goal, f"the move contradicts {' and '.join(named)}; move one phase at a time")
    if named:
        return MoveRefused(goal, f"--against-state {against}: the move contradicts {named[0]}'s "
                                 f"state, not {against}'s")
    return MoveRefused(goal, f"--against-state {against}: the move does not contradict "
                             f"{against}'s state; leave the flag out")


class SchemaMove:
    """Moves one target's schema; built by :meth:`rollout.engine.Rollout.migrate`."""

    def __init__(self, target: Target, engine: Engine, store: StateStore, actor: str) -> None:
        self.target, self.engine, self.store, self.actor = target, engine, store, actor

    def plan(self, goal: str, against: str | None, agreed: Consent | None = None) -> MovePlan:
        """The move to ``goal`` from where the schema is now, and (given ``agreed``, for a dry
        run) what :meth:`run` would refuse with. Reads only."""
        if against is not None and against not in SCHEMA_PHASES:
            raise ConfigError(f"--against-state names a phase that owns revisions: "
                              f"{' or '.join(SCHEMA_PHASES)}, not {against!r}")
        current = self._current()
        steps = steps_between(current, goal)
        statuses = {p: self.store.get(p).status for p in PHASE_ORDER}
        found = conflicts(statuses, steps, self.target.name)
        check = drops.inspect(self.engine, (o for s in steps for o in s.drops))
        plan = MovePlan(self.target.name, current, goal, tuple(steps), tuple(found),
                        check.holding, check.open_dead_letters)
        if agreed is None or not steps:
            return plan
        why = self._refusal(plan, against, agreed)
        return replace(plan, refusal=str(why) if why else None)

    def _refusal(self, plan: MovePlan, against: str | None, agreed: Consent) -> Exception | None:
        """Why the move may not run: the rollout state first, then the drop rule."""
        why = refusal(list(plan.conflicts), against, plan.goal)
        if why is not None:
            return why
        try:
            drops.require(self.engine, self.target, EVENT_PHASE, _undone(list(plan.steps)), agreed,
                          self._hint(plan.goal))
        except (IrreversibleStep, ConfigError) as exc:
            return exc
        return None

    def run(self, goal: str, against: str | None, agreed: Consent) -> MoveReport:
        """Move under the rollout lock; refusals and outcomes are recorded."""
        with TargetLock(self.target.dsn, self.target.name, self.actor) as lock:
            plan = self.plan(goal, against)
            if not plan.steps:
                return MoveReport(plan, plan.current, message=f"{self.target.name} is already at {goal}")
            move_id = uuid.uuid4().hex[:12]
            adopt = plan.current is not None and migrations_api.current(self.target.db_url) is None
            detail = self._detail(plan, against, adopt)
            self._refuse(plan, against, agreed, move_id, detail)
            if adopt:
                migrations_api.stamp(self.target.db_url, BASELINE)
            self._event(move_id, "migrate_started", None, detail)
            export_ddl_settings(self.target.settings)
            exported = None
            for step in plan.steps:
                lock.ensure_held()
                exported = self._step(step, agreed, move_id, detail) or exported
            reached = migrations_api.current(self.target.db_url)
            self._event(move_id, "migrate_done", "ok", {**detail, "reached": reached,
                                                        "exported": str(exported) if exported else None})
        gone = "" if self.store.installed() else " (the kit's tables, the event log among them, went with it)"
        return MoveReport(plan, reached, exported,
                          f"{self.target.name}: {plan.current} -> {reached}{gone}")

    def _refuse(self, plan: MovePlan, against: str | None, agreed: Consent, move_id: str,
                detail: dict[str, Any]) -> None:
        why = self._refusal(plan, against, agreed)
        if why is not None:
            self._event(move_id, "migrate_refused", "refused", {**detail, "error": str(why)})
            raise why

    def _step(self, step: Step, agreed: Consent, move_id: str, detail: dict[str, Any]) -> Path | None:
        url, exported = self.target.db_url, None
        try:
            if step.up:
                migrations_api.upgrade(url, step.revision)
                return None
            if step.drops:
                def record(event: str, extra: dict[str, Any]) -> None:
                    self._event(move_id, event, "ok", {**detail, **extra})

                exported = drops.before_drop(self.engine, self.target, EVENT_PHASE, step.revision,
                                             step.drops, agreed, self._hint(detail["to"]), record)
            chain = migrations_api.revision_chain()
            migrations_api.downgrade(url, chain[chain.index(step.revision) - 1])
            return exported
        except (IrreversibleStep, ConfigError) as exc:  # rows came since the check; a bad --export
            self._event(move_id, "migrate_refused", "refused", {**detail, "at": step.revision,
                                                                "error": str(exc)})
            raise
        except Exception as exc:
            if executor.connection_lost(exc):
                raise  # Rollout._guarded: one line, recorded, nothing more attempted
            at = migrations_api.current(url)
            self._event(move_id, "migrate_failed", "failed",
                        {**detail, "at": step.revision, "reached": at, "error": first_line(exc)})
            raise MoveFailed(f"migrate to {detail['to']} stopped at {step.revision}: "
                             f"{first_line(exc)}; the schema is at {at}, nothing after it ran") from exc

    def _current(self) -> str | None:
        """Where the schema is. An application database with no migration state is at the
        baseline (the rollout adopts it the same way, :meth:`Rollout.ensure_kit`): its
        background_job is stamped, never created again; :meth:`run` stamps it."""
        current = migrations_api.current(self.target.db_url)
        if current is None:
            with self.engine.connect() as conn:
                if sqlfiles.execute(conn, HAS_JOBS_SQL).scalar():
                    return BASELINE
        return current

    def _detail(self, plan: MovePlan, against: str | None, adopted: bool) -> dict[str, Any]:
        return {"from": plan.current, "to": plan.goal, "point": migrations_api.point_of(plan.goal),
                "revisions": [s.revision for s in plan.steps],
                "direction": "up" if plan.steps[0].up else "down",
                "against_state": against, "drops": list(plan.holding),
                "adopted_baseline": adopted or None}

    def _event(self, move_id: str, event: str, outcome: str | None, detail: dict[str, Any]) -> None:
        # Below the kit there is no event log to write to (before the move, or after it).
        if self.store.installed():
            self.store.event(move_id, EVENT_PHASE, event, self.actor, outcome=outcome, detail=detail)

    def _hint(self, goal: str) -> str:
        name = migrations_api.point_of(goal) or goal
        return f"see what it drops first: invoke migrate --env {self.target.name} --to {name} --dry-run"


__all__ = ["MoveFailed", "MovePlan", "MoveReport", "SchemaMove", "resolve_goal"]
