"""Runs a phase's actions in order, checkpointing each id; undoes them in reverse on failure.

Every start, outcome and undo goes to the append-only event log and to the log, tagged
with the rollout id, phase and action id. If an undo fails too, both errors are reported.
"""

from __future__ import annotations

import time

import psycopg
import redis

from infra.fault_injection import fault_point, running
from rollout import drops
from rollout.actions import rollback_hint
from rollout.errors import ActionFailed, Interrupted, IrreversibleStep, RollbackFailed
from rollout.phase import Action, PhaseContext
from rollout.state import APPLYING, ROLLED_BACK, ROLLING_BACK


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# SQLSTATEs of a server going away: admin/crash shutdown, cannot connect now (class 08 too).
_GONE = ("57P01", "57P02", "57P03")


def connection_lost(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what it wraps or was caused by) is a lost connection to
    PostgreSQL or Redis rather than a step that failed: the rollout then stops where it is
    instead of rolling back against a server that is not there."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, redis.ConnectionError):
            return True
        if isinstance(exc, psycopg.OperationalError):
            state = exc.sqlstate
            return state is None or state.startswith("08") or state in _GONE
        orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
        exc = orig if isinstance(orig, BaseException) else (exc.__cause__ or exc.__context__)
    return False


def permission_denied(exc: BaseException | None) -> psycopg.Error | None:
    """The server's "permission denied" (SQLSTATE 42501) that ``exc`` is or wraps: the target's
    role may not do what was asked, which is the environment's to fix, not a bug."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, psycopg.Error) and exc.sqlstate == "42501":
            return exc
        orig = getattr(exc, "orig", None)
        exc = orig if isinstance(orig, BaseException) else (exc.__cause__ or exc.__context__)
    return None


def run_forward(ctx: PhaseContext, actions: list[Action]) -> None:
    """Apply every action not yet checkpointed, in order. Raises ActionFailed."""
    st = ctx.state
    for action in actions:
        if action.id in st.completed_actions:
            continue
        ctx.guard()
        fault_point("before", action.id)
        st.status, st.direction, st.current_action = APPLYING, "forward", action.id
        ctx.store.save(st)
        ctx.store.event(ctx.rollout_id, st.phase, "action_started", ctx.actor, action_id=action.id)
        ctx.log.info("apply: %s", action.title, extra={"action_id": action.id})
        t0 = time.monotonic()
        try:
            with running(action.id):  # a revision's index builds name only the point
                action.apply(ctx)
        except Interrupted:
            raise
        except Exception as exc:
            if connection_lost(exc):
                raise Interrupted(st.phase, action.id, exc) from exc
            ctx.store.event(ctx.rollout_id, st.phase, "action_failed", ctx.actor,
                            action_id=action.id, outcome="failed",
                            detail={"error": _first_line(exc)})
            ctx.log.error("apply %s failed: %s", action.id, _first_line(exc),
                          extra={"action_id": action.id})
            raise ActionFailed(st.phase, action.id, exc, "") from exc
        fault_point("applied", action.id)  # done but not yet checkpointed
        st.completed_actions.append(action.id)
        st.current_action = None
        ctx.store.save(st)
        ctx.store.event(ctx.rollout_id, st.phase, "action_succeeded", ctx.actor,
                        action_id=action.id, outcome="ok",
                        detail={"seconds": round(time.monotonic() - t0, 3)})
        fault_point("after", action.id)


def refuse_lossy_undo(ctx: PhaseContext, actions: list[Action]) -> None:
    """Refuse, before any undo runs, to roll back past undos that would drop rows without the
    consent the drop rule asks for (rollout/drops.py); the refusal is recorded."""
    st = ctx.state
    steps = [(a.id, a.undo_drops) for a in reversed(actions)
             if a.id in st.completed_actions and a.undo_drops]
    try:
        drops.require(ctx.engine, ctx.target, st.phase, steps, ctx.consent,
                      rollback_hint(ctx.target.name, st.phase))
    except IrreversibleStep as exc:
        ctx.store.event(ctx.rollout_id, st.phase, "rollback_refused", ctx.actor,
                        action_id=exc.action_id, outcome="irreversible",
                        detail={"error": str(exc)})
        raise


def run_backward(ctx: PhaseContext, actions: list[Action]) -> None:
    """Undo the completed actions in reverse. Stops at an irreversible one that ran, and
    before any undo when one would drop rows without consent."""
    st = ctx.state
    done = [a for a in actions if a.id in st.completed_actions]
    for action in reversed(done):
        if action.rollback_stops:
            ctx.store.event(ctx.rollout_id, st.phase, "rollback_refused", ctx.actor,
                            action_id=action.id, outcome="irreversible")
            raise IrreversibleStep(
                st.phase, action.id,
                f"it already ran, so rollback stops here; see the manual path in "
                f"plans/{ctx.target.name}/{st.phase}.md (invoke plan --env {ctx.target.name} --phase {st.phase})")
    refuse_lossy_undo(ctx, actions)
    for action in reversed(done):
        ctx.guard()
        st.status, st.direction, st.current_action = ROLLING_BACK, "rollback", action.id
        ctx.store.save(st)
        fault_point("before_undo", action.id)
        ctx.store.event(ctx.rollout_id, st.phase, "undo_started", ctx.actor, action_id=action.id)
        ctx.log.info("undo: %s", action.title, extra={"action_id": action.id})
        if action.irreversible and action.undo is None:
            ctx.store.event(ctx.rollout_id, st.phase, "undo_not_possible", ctx.actor,
                            action_id=action.id, outcome="irreversible",
                            detail={"note": "its effect stands; see the plan's manual path"})
        try:
            if action.undo is not None:
                action.undo(ctx)
        except (Interrupted, IrreversibleStep):
            raise  # a lost server, or rows that came since the check: the undo did not run
        except Exception as exc:
            if connection_lost(exc):
                raise Interrupted(st.phase, action.id, exc) from exc
            ctx.store.event(ctx.rollout_id, st.phase, "undo_failed", ctx.actor, action_id=action.id,
                            outcome="failed", detail={"error": _first_line(exc)})
            raise RollbackFailed(st.phase, action.id, exc) from exc
        fault_point("undone", action.id)  # undone but not yet checkpointed
        st.completed_actions.remove(action.id)
        st.current_action = None
        ctx.store.save(st)
        ctx.store.event(ctx.rollout_id, st.phase, "undo_succeeded", ctx.actor,
                        action_id=action.id, outcome="ok")
        fault_point("after_undo", action.id)
    st.status, st.direction, st.current_action = ROLLED_BACK, "rollback", None
    st.checkpoint = {}
    ctx.store.save(st)
