"""``invoke rollout``, ``invoke plan`` and ``invoke migrate``: the release manager's commands."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

from invoke import Exit, task

from cli.base import clean_errors, project_dir, require_reachable
from migrations.points import POINTS
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
        table.add_row(r.phase, r.direction, r.outcome, f"{r.seconds:.1f}", gate_cell(r.gate))
    Console().print(table)
    for r in reports:
        if r.message:
            print(r.message)


def gate_cell(gate: list[dict[str, Any]]) -> str:
    """A phase's gate in a few characters (it reads at 80 columns): ``pass 7/7``,
    ``FAIL 1/8``, ``warn 1/8``, ``pending``; the checks behind it are listed below the table."""
    if not gate:
        return "-"
    verdicts = [g["verdict"] for g in gate]
    if all(v == "pending" for v in verdicts):
        return "pending"
    for mark, word in (("fail", "FAIL"), ("warn", "warn")):
        if mark in verdicts:
            return f"{word} {verdicts.count(mark)}/{len(verdicts)}"
    return f"pass {verdicts.count('pass')}/{len(verdicts)}"


def _print_status(st: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(st, indent=2, default=str))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"target [bold]{escape(st['target'])}[/]  schema: "
                  f"{escape(st['point'] or st['revision'] or 'unmigrated')}")
    table = Table()
    for col in ("phase", "status", "step", "actions", "gate", "by", "when"):
        table.add_column(col)
    why: list[str] = []
    for p in st["phases"]:
        table.add_row(p["phase"], p["status"], escape(p["step"] or "-"), f"{p['done']}/{p['of']}",
                      gate_cell(p["gate"]), escape(p["actor"] or "-"), str(p["updated_at"] or "-")[:16])
        why += [f"{p['phase']}: {g['check']} ({g['verdict']}): {g.get('summary', '')}"
                for g in p["gate"] if g["verdict"] in ("fail", "warn")]
    console.print(table)
    for line in why:  # the reason of every failed or warning check; all detail in --format json
        console.print(f"  [red]why[/] {escape(line)}", overflow="fold")
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
        raise Exit("phasegate: --format must be table or json", code=2)
    modes = sum(bool(x) for x in (phase, rollback, status))
    if modes != 1:
        raise Exit("phasegate: give exactly one of --phase P, --rollback [--to P], --status", code=2)
    if to and not rollback:
        raise Exit("phasegate: --to goes with --rollback", code=2)
    if export and not rollback:
        raise Exit("phasegate: --export goes with --rollback", code=2)
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
                    raise Exit("phasegate: --dry-run goes with --phase", code=2)
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
        "offline": "write the plans without reaching the database (time estimates unknown); "
                   "otherwise an unreachable database is an error (exit 2)",
    }
)
def plan(c, env="local", phase=None, format="md", out=None, offline=False):
    """Generate the rollback plan (runbook) of each phase from the actions the engine runs."""
    from pathlib import Path

    from sqlalchemy import create_engine

    from rollout import plan as plans
    from rollout.engine import phase_named
    from rollout.environments import open_target
    from rollout.phase import PHASE_ORDER

    if format not in ("md", "json", "both"):
        raise Exit("phasegate: --format must be md, json or both", code=2)
    with clean_errors(), open_target(env, project_dir()) as target:
        names = [phase_named(phase).name] if phase else list(PHASE_ORDER)
        if not offline:  # the estimates come from the real table sizes: no guessing silently
            require_reachable(target.name, target.db_url)
        engine = None if offline else create_engine(target.db_url, pool_pre_ping=True)
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
            if engine is not None:
                engine.dispose()
    for path in written:
        if format == "both" or path.suffix == (".json" if format == "json" else ".md"):
            print(path)


POINT_NAMES = ", ".join([*POINTS, "head"])


@task(
    help={
        "to": f"required: where the schema goes: {POINT_NAMES} or a shipped revision id",
        "env": "environment (default local)",
        "yes": "allow a move that drops rows (dead letters, audit, events, run history): irreversible",
        "confirm": "production environments: type the environment's name back",
        "export": "a new file: the OPEN dead letters a drop would lose are written to it first (JSON lines)",
        "against_state": "the one phase (expand | contract) whose recorded state this move contradicts "
                         "on purpose: a plan's manual path; without it such a move is refused",
        "dry_run": "show the revisions crossed, what would be dropped and any refusal; changes nothing",
        "actor": "who is running this (default: $PHASEGATE_ACTOR or the login name)",
        "format": "table (default) or json",
    }
)
def migrate(c, to=None, env="local", yes=False, confirm=None, export=None, against_state=None,
            dry_run=False, actor=None, format="table"):
    """Move the schema to a migration point by hand (the manual path of the plans), under the
    rollout lock, recorded, and refused when it contradicts the rollout state."""
    from rollout.engine import Rollout
    from rollout.environments import open_target

    if not to:
        raise Exit(f"phasegate: --to is required: {POINT_NAMES} or a shipped revision id "
                   "(invoke rollout --status shows where the schema is)", code=2)
    if format not in ("table", "json"):
        raise Exit("phasegate: --format must be table or json", code=2)
    with clean_errors(), open_target(env, project_dir()) as target:
        path = _export_path(export)  # a link or a folder: refused before any work, not after
        engine = Rollout(target, _actor(actor), project=project_dir())
        args = {"against": against_state, "yes": yes, "confirm_env": confirm, "export": path}
        try:
            if dry_run:
                _print_move_plan(engine.migrate_plan(to, **args), format)
                return
            report = engine.migrate(to, **args)
        finally:
            engine.close()
    if format == "json":
        print(json.dumps(dataclasses.asdict(report), indent=2, default=str))
        return
    print(report.message)
    if report.exported:
        print(f"OPEN dead letters exported to {report.exported}")
    elif export:
        print(f"--export {export}: no OPEN dead letter was dropped, so nothing was written")


def _print_move_plan(p: Any, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(dataclasses.asdict(p), indent=2, default=str))
        return
    print(f"dry run of migrate on {p.target}: {p.current} -> {p.goal}; nothing changes")
    for step in p.steps:
        lost = [o for o in step.drops if o in p.holding]
        drops = f"  drops {', '.join(step.drops)}" if step.drops else ""
        print(f"  {'up  ' if step.up else 'down'} {step.revision} ({step.owner}){drops}"
              + (f"  [rows: {', '.join(lost)}]" if lost else ""))
    if not p.steps:
        print("  nothing to cross: already there")
    if p.open_dead_letters:
        print(f"  OPEN dead letters that would be dropped: {p.open_dead_letters} (--export PATH)")
    if p.refusal:
        print(f"  would refuse: {p.refusal}")
