"""``invoke rollout``, ``invoke plan`` and ``invoke migrate``: the release manager's commands."""

from __future__ import annotations

import json
import sys
from typing import Any

from invoke import Exit, task

from cli.base import clean_errors, project_dir
from phasegate.actor import resolve_actor
from phasegate.files import check_output_path


def _actor(actor: str | None) -> str:
    return resolve_actor(actor) or "unknown"


def _print_reports(reports: list[Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps([r.__dict__ for r in reports], indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="rollout")
    for col in ("phase", "direction", "outcome", "seconds", "gate"):
        table.add_column(col)
    for r in reports:
        gate = ", ".join(f"{g.get('check_id')}={g.get('verdict')}" for g in r.gate) or "-"
        table.add_row(r.phase, r.direction, r.outcome, f"{r.seconds:.1f}", gate)
    Console().print(table)
    for r in reports:
        if r.message:
            print(r.message)


def _print_status(st: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(st, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"target [bold]{st['target']}[/]  schema: {st['point'] or st['revision'] or 'unmigrated'}")
    table = Table()
    for col in ("phase", "status", "step", "actions", "last gate", "by", "when"):
        table.add_column(col)
    for p in st["phases"]:
        gate = ", ".join(f"{g['check']}={g['verdict']}" for g in p["gate"]) or "-"
        table.add_row(p["phase"], p["status"], p["step"] or "-", f"{p['done']}/{p['of']}", gate,
                      p["actor"] or "-", str(p["updated_at"] or "-")[:19])
    console.print(table)
    if st["events"]:
        ev = Table(title="recent events")
        for col in ("at", "phase", "event", "action", "outcome", "by"):
            ev.add_column(col)
        for e in st["events"]:
            ev.add_row(str(e["at"])[:19], e["phase"], e["event"], e["action_id"] or "-",
                       e["outcome"] or "-", e["actor"])
        console.print(ev)


@task(
    help={
        "phase": "phase to apply: expand | dual_write | cutover | retention | contract",
        "env": "target environment: local (default, embedded), ci (throwaway) or one from phasegate.toml",
        "rollback": "undo instead of apply: the newest active phase, or all after --to",
        "to": "with --rollback: the phase to return to (phases after it are undone), or 'baseline'",
        "status": "show phase, step, last gate results, who and when",
        "dry_run": "print what would run; changes nothing",
        "yes": "allow irreversible steps (retention's prune, contract's key expiry, a rollback "
               "of expand that drops rows)",
        "confirm": "production environments: type the environment's name back",
        "export": "with --rollback: a new file the OPEN dead letters are written to before "
                  "expand's rollback drops them (JSON lines)",
        "auto_rollback": "roll back automatically when an action or the gate fails (default on)",
        "actor": "who is running this (default: $PHASEGATE_ACTOR or the login name)",
        "format": "table (default) or json",
        "progress": "show progress bars (default: when stdout is a terminal)",
    }
)
def rollout(c, phase=None, env="local", rollback=False, to=None, status=False, dry_run=False,
            yes=False, confirm=None, export=None, auto_rollback=True, actor=None, format="table",
            progress=None):
    """Apply one phase, roll back, or show status. One phase at a time, gated."""
    from rollout.engine import Rollout
    from rollout.environments import open_target

    if format not in ("table", "json"):
        raise Exit("phasegate: --format must be table or json", code=1)
    modes = sum(bool(x) for x in (phase, rollback, status))
    if modes != 1:
        raise Exit("phasegate: give exactly one of --phase P, --rollback [--to P], --status", code=1)
    if to and not rollback:
        raise Exit("phasegate: --to goes with --rollback", code=1)
    if export and not rollback:
        raise Exit("phasegate: --export goes with --rollback", code=1)
    from cli.progress import progress_bars

    show = sys.stdout.isatty() if progress is None else bool(progress)
    with clean_errors(), open_target(env, project_dir()) as target, progress_bars(show) as bars:
        engine = Rollout(target, _actor(actor), project=project_dir(), on_progress=bars)
        try:
            if status:
                _print_status(engine.status(), format)
            elif dry_run and phase:
                out = engine.dry_run(phase)
                if format == "json":
                    print(json.dumps(out, indent=2))
                else:
                    print(f"dry run of {out['phase']} on {out['target']} (status {out['status']}); nothing changes")
                    if out["would_refuse"]:
                        print(f"  would refuse: {out['would_refuse']}")
                    for a in out["actions"]:
                        mark = "done" if a["done"] else "todo"
                        irr = "  [irreversible]" if a["irreversible"] else ""
                        print(f"  [{mark}] {a['id']}: {a['title']}{irr}")
                    print(f"  gate: {out['gate']}")
            elif rollback:
                if dry_run:
                    raise Exit("phasegate: --dry-run goes with --phase", code=1)
                _print_reports(engine.rollback(to, yes=yes, confirm_env=confirm,
                                               export=_export_path(export)), format)
            else:
                _print_reports([engine.apply(phase, yes=yes, confirm_env=confirm,
                                             auto_rollback=auto_rollback)], format)
        finally:
            engine.close()


def _export_path(export: str | None) -> Any:
    from pathlib import Path

    return check_output_path(Path(export).expanduser(), "--export") if export else None


@task(
    help={
        "env": "environment to plan for (default local)",
        "phase": "one phase (default: every phase)",
        "format": "md (default), json, or both",
        "out": "directory to write to (default plans/<env>/); '-' prints to stdout",
    }
)
def plan(c, env="local", phase=None, format="md", out=None):
    """Generate the rollback plan (runbook) of each phase from the actions the engine runs."""
    from pathlib import Path

    from sqlalchemy import create_engine

    from rollout import plan as plans
    from rollout.engine import phase_named
    from rollout.environments import open_target
    from rollout.phase import PHASE_ORDER

    if format not in ("md", "json", "both"):
        raise Exit("phasegate: --format must be md, json or both", code=1)
    with clean_errors(), open_target(env, project_dir()) as target:
        names = [phase_named(phase).name] if phase else list(PHASE_ORDER)
        engine = create_engine(target.db_url, pool_pre_ping=True)
        try:
            sizes = plans.table_sizes(engine)
            if out == "-":
                for name in names:
                    p = plans.build(target, name, sizes)
                    print(json.dumps(p, indent=2, default=str) if format == "json" else plans.render_markdown(p))
                return
            directory = Path(out) if out else project_dir() / "plans" / target.name
            written = plans.write_all(target, directory, engine, names)
        finally:
            engine.dispose()
    for path in written:
        if format == "both" or path.suffix == (".json" if format == "json" else ".md"):
            print(path)


@task(help={"env": "environment (default local)", "to": "point or revision: baseline | kit | expand | contract | head | <revision id>"})
def migrate(c, env="local", to="head"):
    """Move the schema to a migration point by hand (the manual path of the plans)."""
    from migrations import api
    from rollout.environments import open_target

    with clean_errors(), open_target(env, project_dir()) as target:
        current = api.current(target.db_url)
        chain = [None, *api.revision_chain()]
        goal = api.resolve(to)
        goal = chain[-1] if goal == "head" else goal
        if goal in chain and chain.index(goal) >= chain.index(current):
            api.upgrade(target.db_url, goal)
        else:
            api.downgrade(target.db_url, goal)
        print(f"{target.name}: {current} -> {api.current(target.db_url)}")
