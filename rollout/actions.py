"""Action builders shared by the phases: migrations to a revision, flag flips, waits."""

from __future__ import annotations

import os
import time

from ledger import flags, sqlfiles
from migrations import api as migrations_api
from rollout import drops
from rollout.phase import Action, PhaseContext, Sizes
from rollout.settings import Settings


def revisions_between(after: str, upto: str) -> list[str]:
    """Revisions after ``after`` up to and including ``upto``, oldest first."""
    chain = migrations_api.revision_chain()
    return chain[chain.index(after) + 1: chain.index(upto) + 1]


def is_long_running(revision: str) -> bool:
    """Whether the revision declares ``long_running = True`` (it builds indexes CONCURRENTLY)."""
    return bool(getattr(migrations_api.revision_module(revision), "long_running", False))


def _position(revision: str | None) -> int:
    return -1 if revision is None else migrations_api.revision_chain().index(revision)


def export_ddl_settings(s: Settings) -> None:
    # migrations/safe_ddl.py reads these; the rollout's settings are the source of truth.
    os.environ["PHASEGATE_LOCK_TIMEOUT_MS"] = str(s.lock_timeout_ms)
    os.environ["PHASEGATE_DDL_RETRIES"] = str(s.ddl_retries)


# Runbook placeholders filled by rollout/plan.py: the typed-back name (production only) and
# the file OPEN dead letters are exported to before a drop.
CONFIRM = "<confirm>"
DEAD_LETTERS_FILE = "<dead_letters_file>"


def manual_migrate(phase: str, to: str, dropped: tuple[str, ...] = ()) -> str:
    """``invoke migrate`` as a runbook prints it: by hand, a move contradicts the phase's
    recorded state, so it names the phase (``--against-state``); a move that drops tables
    or columns carries the flags a drop with rows asks for (rollout/drops.py)."""
    cmd = f"invoke migrate --env <env> --to {to} --against-state {phase}"
    if dropped:
        cmd += f" --yes {CONFIRM}"
    if drops.DEAD_LETTERS in dropped:
        cmd += f" --export {DEAD_LETTERS_FILE}"
    return cmd


def migrate_action(phase: str, revision: str, previous: str, description: str) -> Action:
    """Upgrade to ``revision``; undo downgrades to ``previous``. Idempotent both ways. An undo
    that drops rows follows the drop rule (``rollout/drops.py``) right before it drops."""

    action_id = f"{phase}.migrate.{revision}"
    dropped = drops.drops_of(revision)

    def apply(ctx: PhaseContext) -> None:
        export_ddl_settings(ctx.settings)
        if _position(migrations_api.current(ctx.target.db_url)) < _position(revision):
            migrations_api.upgrade(ctx.target.db_url, revision)

    def undo(ctx: PhaseContext) -> None:
        export_ddl_settings(ctx.settings)
        if _position(migrations_api.current(ctx.target.db_url)) < _position(revision):
            return
        if dropped:
            def record(event: str, detail: dict[str, object]) -> None:
                ctx.store.event(ctx.rollout_id, phase, event, ctx.actor, action_id=action_id,
                                outcome="ok", detail=detail)

            drops.before_drop(ctx.engine, ctx.target, phase, action_id, dropped, ctx.consent,
                              rollback_hint(ctx.target.name, phase), record)
        migrations_api.downgrade(ctx.target.db_url, previous)

    return Action(
        id=action_id,
        title=f"migrate to {revision}",
        changes=description,
        apply=apply,
        undo=undo,
        undo_drops=dropped,
        manual_apply=(manual_migrate(phase, revision),),
        manual_undo=(manual_migrate(phase, previous, dropped),),
        long_running=is_long_running(revision),
        verify_undo=("SELECT version_num FROM alembic_version;  -- expect " + previous,),  # noqa: S608 (runbook text, never executed)
        estimate=_ddl_estimate,
    )


def rollback_hint(env: str, phase: str) -> str:
    """Where a refused rollback sends the reader before they say --yes."""
    return f"read the plan first: invoke plan --env {env} --phase {phase}"


def _ddl_estimate(sizes: Sizes, settings: Settings) -> float:
    # CREATE INDEX CONCURRENTLY reads the table twice; ~1M rows/s per pass on modest hardware.
    return 1.0 + 2 * sizes.of("background_job") / 1_000_000


def flag_action(phase: str, name: str, value: str, undo_value: str) -> Action:
    """Set a flag; undo sets it back. Readers see it within the flag TTL (waited separately)."""

    def setter(v: str, wait: bool):  # type: ignore[no-untyped-def]
        def run(ctx: PhaseContext) -> None:
            with ctx.engine.begin() as conn:
                flags.set_flag(conn, name, v, ctx.actor)
            if wait:
                # On the way back nothing after this undo may run before every process has
                # left the mode (the expand rollback drops what dual mode writes to).
                time.sleep(flags.propagation_wait(ctx.settings.flag_ttl_seconds))

        return run

    return Action(
        id=f"{phase}.flag.{name}",
        title=f"set flag {name}={value}",
        changes=f"application flag {name}: {undo_value} -> {value}",
        apply=setter(value, wait=False),  # the phase's wait action follows it
        undo=setter(undo_value, wait=True),
        manual_apply=(manual_flag(name, value),),
        manual_undo=(manual_flag(name, undo_value), "sleep <flag_wait>"),
        verify_undo=(f"SELECT value FROM phasegate_flag WHERE name = '{name}';  -- expect {undo_value}",),  # noqa: S608 (runbook text, never executed)
        estimate=lambda sizes, s: 0.01,
    )


def manual_flag(name: str, value: str) -> str:
    """A flag write as a runbook prints it: the statement ``flags.set_flag`` runs, with its
    values written in (one statement for the code and the person, so they cannot differ)."""
    return sqlfiles.render(flags.SET_SQL, {"name": name, "value": value, "actor": "manual"})


def wait_action(phase: str, after: str) -> Action:
    """Wait out the application's flag cache so every process runs in the new mode."""

    def wait(ctx: PhaseContext) -> None:
        time.sleep(flags.propagation_wait(ctx.settings.flag_ttl_seconds))

    # No undo: undoing the flag waits itself, *after* flipping it back (reverse order would
    # otherwise wait before the flip and let the next undo race the application).
    return Action(
        id=f"{phase}.wait_flags.{after}",
        title="wait for flag propagation",
        changes="nothing; waits the application's flag cache TTL (+ margin)",
        apply=wait,
        manual_apply=("sleep <flag_wait>",),
        estimate=lambda sizes, s: flags.propagation_wait(s.flag_ttl_seconds),
    )
