"""The rollout engine: one phase at a time, gated, with automated rollback.

``Rollout(target).apply("cutover")`` takes the target's lock, installs the kit's tables if
needed, checks the phase order, runs preflight, writes the rollback plan to disk, runs the
actions (resuming after a crash), runs the gate, and rolls back automatically when an
action or the gate fails. ``rollback(to=...)`` undoes phases newest first.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis as redis_lib
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ledger import sqlfiles
from migrations import api as migrations_api
from migrations.points import BASELINE, KIT
from phasegate.errors import PhasegateError, Unreachable
from phasegate.text import first_line
from rollout import consent, executor, gates, plan
from rollout.consent import Consent
from rollout.environments import Target
from rollout.errors import (
    ActionFailed,
    ConfigError,
    GateFailed,
    Interrupted,
    IrreversibleStep,
    LockHeld,
    LockLost,
    OutOfOrder,
    PreflightFailed,
    RollbackFailed,
    RolloutError,
    Stopped,
)
from rollout.phase import PHASE_ORDER, OnProgress, Phase, PhaseContext
from rollout.phases import PHASES
from rollout.schema_move import MovePlan, MoveReport, SchemaMove, resolve_goal
from rollout.state import (
    APPLIED,
    APPLYING,
    FAILED,
    GATED,
    INTERRUPTED,
    ROLLED_BACK,
    ROLLING_BACK,
    StateStore,
    TargetLock,
)

log = logging.getLogger("phasegate.rollout")

DONE = (GATED,)
REACHABLE_SQL = sqlfiles.query(__file__, "engine", "database_reachable")
HAS_JOBS_SQL = sqlfiles.query(__file__, "engine", "has_background_job")
INACTIVE = ("pending", ROLLED_BACK)


class _Adapter(logging.LoggerAdapter):
    def process(self, msg: str, kwargs: Any) -> tuple[str, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        tag = f"[{extra.get('rollout_id', '-')}/{extra.get('phase', '-')}/{extra.get('action_id', '-')}]"
        return f"{tag} {msg}", kwargs


@dataclass
class PhaseReport:
    phase: str
    direction: str
    outcome: str  # gated | rolled_back | failed | already_done | dry_run
    seconds: float
    gate: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    message: str = ""


def phase_named(name: str) -> Phase:
    key = name.replace("-", "_")
    if key not in PHASES:
        raise ConfigError(f"unknown phase {name!r}; phases in order: {', '.join(PHASE_ORDER)}")
    return PHASES[key]


class Rollout:
    """A rollout of one target, run by one actor."""

    def __init__(self, target: Target, actor: str, *, project: Path | None = None,
                 on_progress: OnProgress | None = None, plans_dir: Path | None = None) -> None:
        self.target, self.actor = target, actor
        self.project = project or Path.cwd()
        self.plans_dir = plans_dir or self.project / "plans" / target.name
        self.on_progress = on_progress  # long actions report here (the CLI draws bars)
        self.engine: Engine = create_engine(target.db_url, pool_pre_ping=True, pool_size=2,
                                            max_overflow=2)
        self.store = StateStore(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ helpers

    def _context(self, phase: Phase, rollout_id: str, state: Any,
                 lock: TargetLock | None = None, agreed: Consent = consent.NONE) -> PhaseContext:
        adapter = _Adapter(log, {"rollout_id": rollout_id, "phase": phase.name, "target": self.target.name})

        def guard() -> None:
            if lock is None:
                return
            try:
                lock.ensure_held()
            except psycopg.OperationalError as exc:
                raise LockLost(phase.name, state.current_action, exc) from exc

        return PhaseContext(
            target=self.target, engine=self.engine,
            redis=redis_lib.Redis.from_url(self.target.redis_url, socket_timeout=10),
            settings=self.target.settings, actor=self.actor, rollout_id=rollout_id,
            store=self.store, state=state, log=adapter, on_progress=self.on_progress,
            guard=guard, consent=agreed,
        )

    def _guarded(self, phase: str, run: Callable[[], Any]) -> Any:
        """Run a command; a refused lock and a lost server are recorded (best effort) and
        surface as one-line errors, and a lost server never triggers a rollback."""
        try:
            return run()
        except LockHeld as exc:
            self._record(phase, "lock_refused", "refused", {"holder": exc.holder})
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM turned into one by the CLI
            raise self._stopped(getattr(exc, "signal_name", "Ctrl-C")) from None
        except Interrupted as exc:
            self._record(phase, "interrupted", "interrupted", {"error": str(exc)})
            raise
        except PhasegateError:
            raise
        except Exception as exc:
            denied = executor.permission_denied(exc)
            if denied is not None:
                raise RolloutError(f"{phase}: the database role of {self.target.name} may not "
                                   f"do this: {first_line(denied)}") from exc
            if not executor.connection_lost(exc):
                raise
            err = Interrupted(phase, None, exc)
            self._record(phase, "interrupted", "interrupted", {"error": str(err)})
            raise err from exc

    def _stopped(self, signal_name: str) -> Stopped:
        """Mark the phase a signal stopped ``interrupted`` (not ``applying``, which would look
        live), record who and where, and say the command that resumes it."""
        try:
            moving = [st for st in (self.store.get(p) for p in PHASE_ORDER)
                      if st.status in (APPLYING, APPLIED, ROLLING_BACK)]
        except (SQLAlchemyError, psycopg.Error):
            moving = []
        if not moving:
            return Stopped("rollout", None, signal_name, "nothing was in progress; run the command again")
        st = moving[-1]
        if st.direction == "rollback":
            resume = f"invoke rollout --env {self.target.name} --rollback --to {_previous(st.phase)}"
        else:
            resume = f"invoke rollout --env {self.target.name} --phase {st.phase}"
        action = st.current_action
        try:
            st.status = INTERRUPTED
            self.store.save(st)
        except (SQLAlchemyError, psycopg.Error):
            log.info("could not mark %s interrupted: the database is unreachable", st.phase)
        self._record(st.phase, "interrupted", "interrupted",
                     {"signal": signal_name, "action_id": action, "direction": st.direction,
                      "resume": resume})
        return Stopped(st.phase, action, signal_name, resume)

    def _record(self, phase: str, event: str, outcome: str, detail: dict[str, Any]) -> None:
        """Audit an outcome that happened outside the lock; skipped if the database is gone."""
        try:
            if self.store.installed():
                rollout_id = self.store.get(phase).rollout_id or "-"
                self.store.event(rollout_id, phase, event, self.actor, outcome=outcome,
                                 detail=detail)
        except (SQLAlchemyError, psycopg.Error):
            # Info, not warning: the CLI's one line already says what happened.
            log.info("could not record %s of %s: the database is unreachable", event, phase)

    def _check_reachable(self) -> None:
        try:
            with self.engine.connect() as conn:
                sqlfiles.execute(conn, REACHABLE_SQL)
        except OperationalError as exc:
            raise Unreachable(f"cannot reach the database of {self.target.name}: "
                              f"{first_line(exc.orig or exc)}") from exc

    def ensure_kit(self) -> None:
        """Adopt the application's baseline and install phasegate's own tables (additive)."""
        rev = migrations_api.current(self.target.db_url)
        if rev is None:
            with self.engine.connect() as conn:
                has_jobs = sqlfiles.execute(conn, HAS_JOBS_SQL).scalar()
            if not has_jobs:
                raise RolloutError(
                    f"{self.target.name} has no background_job table and no migration state: "
                    "not the application's database? (for a demo: invoke demo)")
            migrations_api.stamp(self.target.db_url, BASELINE)
            rev = BASELINE
        if rev == BASELINE:
            migrations_api.upgrade(self.target.db_url, KIT)
            self.store.event("bootstrap", "kit", "kit_installed", self.actor, outcome="ok",
                             detail={"revision": KIT})

    def _order_check(self, phase: Phase) -> None:
        idx = PHASE_ORDER.index(phase.name)
        for earlier in PHASE_ORDER[:idx]:
            st = self.store.get(earlier)
            if st.status not in DONE:
                raise OutOfOrder(
                    phase.name, f"{earlier} is {st.status}, not complete with its gate passed",
                    f"invoke rollout --env {self.target.name} --phase {earlier}")
        for later in PHASE_ORDER[idx + 1:]:
            st = self.store.get(later)
            if st.status not in INACTIVE:
                raise OutOfOrder(
                    phase.name, f"{later} is {st.status}; roll it back first",
                    f"invoke rollout --env {self.target.name} --rollback --to {phase.name}")
        st = self.store.get(phase.name)
        if st.status == ROLLING_BACK or (st.status == INTERRUPTED and st.direction == "rollback"):
            raise OutOfOrder(phase.name, "its rollback was interrupted",
                             f"invoke rollout --env {self.target.name} --rollback --to {_previous(phase.name)}")

    def _confirm_irreversible(self, phase: Phase, yes: bool, confirm_env: str | None) -> None:
        irreversible = [a.id for a in phase.plan() if a.irreversible]
        if irreversible:
            consent.require(self.target, phase.name, ", ".join(irreversible),
                            Consent(yes=yes, confirm_env=confirm_env),
                            "read the plan first: "
                            f"invoke plan --env {self.target.name} --phase {phase.name}")

    # ------------------------------------------------------------------ public

    def dry_run(self, phase_name: str) -> dict[str, Any]:
        """What ``apply`` would do; reads only, changes nothing (not even the event log)."""
        phase = phase_named(phase_name)
        self._check_reachable()
        refusal = None
        if self.store.installed():
            try:
                self._order_check(phase)
            except OutOfOrder as exc:
                refusal = str(exc)
        st = self.store.get(phase.name)
        return {
            "phase": phase.name, "target": self.target.name, "status": st.status,
            "would_refuse": refusal,
            "actions": [{"id": a.id, "title": a.title, "done": a.id in st.completed_actions,
                         "irreversible": a.irreversible} for a in phase.plan()],
            "gate": gates.gate_text(phase, self.target.settings),
        }

    def apply(self, phase_name: str, *, yes: bool = False, confirm_env: str | None = None,
              auto_rollback: bool = True) -> PhaseReport:
        """Apply one phase through its gate (resuming an interrupted run of it)."""
        phase = phase_named(phase_name)
        self._check_reachable()
        return self._guarded(phase.name, lambda: self._apply(phase, yes, confirm_env, auto_rollback))  # type: ignore[no-any-return]

    def _apply(self, phase: Phase, yes: bool, confirm_env: str | None,
               auto_rollback: bool) -> PhaseReport:
        t0 = time.monotonic()
        with TargetLock(self.target.dsn, self.target.name, self.actor) as lock:
            self.ensure_kit()
            st = self.store.get(phase.name)
            if st.status == GATED:
                return PhaseReport(phase.name, "forward", "already_done", 0.0, st.gate_results,
                                   message=f"{phase.name} is already complete; next: {_next(phase.name)}")
            self._order_check(phase)
            self._confirm_irreversible(phase, yes, confirm_env)
            resuming = st.status in (APPLYING, APPLIED, FAILED, INTERRUPTED) and st.rollout_id
            rollout_id: str = st.rollout_id if resuming and st.rollout_id else uuid.uuid4().hex[:12]
            if not resuming:
                st.completed_actions, st.checkpoint, st.gate_results = [], {}, []
                st.started_at = datetime.now(UTC)
            st.rollout_id, st.actor = rollout_id, self.actor
            ctx = self._context(phase, rollout_id, st, lock)
            reasons = phase.preflight(ctx)
            if reasons:
                self.store.event(rollout_id, phase.name, "preflight_refused", self.actor,
                                 outcome="refused", detail={"reasons": reasons})
                raise PreflightFailed(phase.name, reasons)
            written = plan.write(self.target, self.plans_dir, phase.name, self.engine)
            self.store.event(rollout_id, phase.name, "resumed" if resuming else "started", self.actor,
                             detail={"plan": [str(p) for p in written]})
            actions = phase.plan()
            try:
                executor.run_forward(ctx, actions)
            except ActionFailed as exc:
                raise self._after_failure(ctx, phase, actions, exc, auto_rollback) from exc.cause
            return self._gate(ctx, phase, actions, auto_rollback, t0)

    def _gate(self, ctx: PhaseContext, phase: Phase, actions: list[Any], auto_rollback: bool,
              t0: float) -> PhaseReport:
        st = ctx.state
        st.status = APPLIED
        self.store.save(st)
        results = phase.gate(ctx)
        st.gate_results = [r.to_dict() for r in results]
        failed = [r.check_id for r in results if r.verdict.value == "fail"]
        self.store.event(ctx.rollout_id, phase.name, "gate", self.actor,
                         outcome="fail" if failed else "pass",
                         detail={"results": [{"check": r.check_id, "verdict": r.verdict.value,
                                              "summary": r.summary} for r in results]})
        if failed:
            st.status = FAILED
            self.store.save(st)
            why = gates.reasons(results, self.target.settings)
            if not auto_rollback:
                raise GateFailed(phase.name, failed, "left applied (--no-auto-rollback); "
                                 f"roll back with: invoke rollout --env {self.target.name} --rollback",
                                 why)
            outcome = self._auto_rollback(ctx, actions, f"gate failed: {', '.join(failed)}")
            raise GateFailed(phase.name, failed, outcome, why)
        st.status = GATED
        self.store.save(st)
        self.store.event(ctx.rollout_id, phase.name, "completed", self.actor, outcome="gated")
        warnings = gates.reasons(results, self.target.settings)
        return PhaseReport(phase.name, "forward", "gated", round(time.monotonic() - t0, 3),
                           st.gate_results, list(st.completed_actions),
                           f"{phase.name}: gate passed with warnings: {'; '.join(warnings)}"
                           if warnings else "")

    def _after_failure(self, ctx: PhaseContext, phase: Phase, actions: list[Any], exc: ActionFailed,
                       auto_rollback: bool) -> RolloutError:
        ctx.state.status = FAILED
        self.store.save(ctx.state)
        if not auto_rollback:
            return ActionFailed(phase.name, exc.action_id, exc.cause,
                                "left as is (--no-auto-rollback); re-run to resume or --rollback")
        return ActionFailed(phase.name, exc.action_id, exc.cause,
                            self._auto_rollback(ctx, actions, f"action {exc.action_id} failed"))

    def _auto_rollback(self, ctx: PhaseContext, actions: list[Any], why: str) -> str:
        self.store.event(ctx.rollout_id, ctx.state.phase, "auto_rollback", self.actor, detail={"why": why})
        try:
            executor.run_backward(ctx, actions)
        except IrreversibleStep as err:  # past a key expiry, or rows to drop: a person decides
            return f"automatic rollback stopped: {err}"
        except RollbackFailed as err:
            return f"automatic rollback failed too: {err}"
        self.store.event(ctx.rollout_id, ctx.state.phase, "rolled_back", self.actor, outcome="ok")
        return "rolled back automatically to the previous phase's state"

    def rollback(self, to: str | None = None, *, yes: bool = False,
                 confirm_env: str | None = None, export: Path | None = None) -> list[PhaseReport]:
        """Undo phases newest first: all after ``to`` (a phase name, or 'baseline'),
        or only the newest active phase when ``to`` is None. An undo that drops rows (expand's
        revisions, once the ledger holds history) needs ``yes``, ``confirm_env`` in production
        and, while OPEN dead letters exist, ``export`` (rollout/drops.py)."""
        self._check_reachable()
        if to is not None and to != "baseline":
            phase_named(to)
        agreed = Consent(yes=yes, confirm_env=confirm_env, export=export)
        return self._guarded(to or "rollback", lambda: self._rollback(to, agreed))  # type: ignore[no-any-return]

    def _rollback(self, to: str | None, agreed: Consent) -> list[PhaseReport]:
        reports: list[PhaseReport] = []
        with TargetLock(self.target.dsn, self.target.name, self.actor) as lock:
            migrations_api.current(self.target.db_url)  # refuses a foreign migration state
            if not self.store.installed():
                raise RolloutError(f"nothing to roll back on {self.target.name}: no rollout has run")
            active = [p for p in PHASE_ORDER if self.store.get(p).status not in INACTIVE]
            if to is None:
                targets = active[-1:]
            else:
                keep = 0 if to == "baseline" else PHASE_ORDER.index(to.replace("-", "_")) + 1
                targets = [p for p in active if PHASE_ORDER.index(p) >= keep]
            if not targets:
                raise RolloutError(f"nothing to roll back on {self.target.name}"
                                   + (f" after {to}" if to else ""))
            # Every phase's drops are judged before the first undo: a refusal changes nothing.
            contexts = {name: self._rollback_context(PHASES[name], lock, agreed) for name in targets}
            for name in reversed(targets):
                executor.refuse_lossy_undo(contexts[name], PHASES[name].plan())
            for name in reversed(targets):
                reports.append(self._rollback_phase(PHASES[name], contexts[name]))
        return reports

    def _rollback_context(self, phase: Phase, lock: TargetLock, agreed: Consent) -> PhaseContext:
        st = self.store.get(phase.name)
        return self._context(phase, st.rollout_id or uuid.uuid4().hex[:12], st, lock, agreed)

    def _rollback_phase(self, phase: Phase, ctx: PhaseContext) -> PhaseReport:
        t0 = time.monotonic()
        rollout_id = ctx.rollout_id
        reasons = phase.rollback_preflight(ctx)
        if reasons:
            self.store.event(rollout_id, phase.name, "preflight_refused", self.actor,
                             outcome="refused", detail={"reasons": reasons, "direction": "rollback"})
            raise PreflightFailed(phase.name, reasons)
        self.store.event(rollout_id, phase.name, "rollback_started", self.actor)
        ctx.state.actor = self.actor  # the state row names who rolled it back, not who applied it
        executor.run_backward(ctx, phase.plan())
        self.store.event(rollout_id, phase.name, "rolled_back", self.actor, outcome="ok")
        return PhaseReport(phase.name, "rollback", "rolled_back", round(time.monotonic() - t0, 3))

    def migrate(self, to: str, *, against: str | None = None, yes: bool = False,
                confirm_env: str | None = None, export: Path | None = None) -> MoveReport:
        """``invoke migrate``: move the schema under the rollout's lock, audit and drop rule,
        refusing a move that contradicts the rollout state (rollout/schema_move.py)."""
        goal, move = self._mover(to)
        agreed = Consent(yes=yes, confirm_env=confirm_env, export=export)
        return self._guarded("migrate", lambda: move.run(goal, against, agreed))  # type: ignore[no-any-return]

    def migrate_plan(self, to: str, *, against: str | None = None, yes: bool = False,
                     confirm_env: str | None = None, export: Path | None = None) -> MovePlan:
        """What ``migrate`` would cross, drop and refuse; reads only (``--dry-run``)."""
        goal, move = self._mover(to)
        agreed = Consent(yes=yes, confirm_env=confirm_env, export=export)
        return self._guarded("migrate", lambda: move.plan(goal, against, agreed))  # type: ignore[no-any-return]

    def _mover(self, to: str) -> tuple[str, SchemaMove]:
        goal = resolve_goal(to)  # 'base' and unknown points: refused before any connection
        self._check_reachable()
        return goal, SchemaMove(self.target, self.engine, self.store, self.actor)

    def status(self) -> dict[str, Any]:
        self._check_reachable()
        rev = migrations_api.current(self.target.db_url)
        phases = []
        for name in PHASE_ORDER:
            st = self.store.get(name)
            phases.append({
                "phase": name, "status": st.status, "step": st.current_action,
                "done": len(st.completed_actions), "of": len(PHASES[name].plan()),
                "actor": st.actor, "updated_at": st.updated_at, "rollout_id": st.rollout_id,
                "gate": gates.status_gate(PHASES[name], st.gate_results),
            })
        return {"target": self.target.name, "revision": rev,
                "point": migrations_api.point_of(rev), "phases": phases,
                "events": self.store.events(limit=15)}


def _next(name: str) -> str:
    idx = PHASE_ORDER.index(name)
    return PHASE_ORDER[idx + 1] if idx + 1 < len(PHASE_ORDER) else "nothing: the rollout is complete"


def _previous(name: str) -> str:
    idx = PHASE_ORDER.index(name)
    return PHASE_ORDER[idx - 1] if idx > 0 else "baseline"


__all__ = ["PhaseReport", "Rollout", "phase_named", "PhasegateError"]
