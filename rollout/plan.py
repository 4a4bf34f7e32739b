"""Rollback plans (runbooks) for release managers, generated from the phases' own actions.

For each phase: what it changes, the automated rollback command, the manual steps if
automation fails (exact SQL and Redis commands), the queries that prove the rollback worked,
the gate's go/no-go thresholds, the irreversible points, and time estimates from the real
table sizes. Markdown for people, JSON for machines. Written to disk before every apply.
Never contains a URL or a password: only the environment's name.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ledger import flags, sqlfiles
from phasegate.files import check_output_path, write_text_atomic
from rollout import gates
from rollout.actions import CONFIRM, DEAD_LETTERS_FILE
from rollout.drops import DEAD_LETTERS
from rollout.environments import Target
from rollout.phase import PHASE_ORDER, Action, Sizes
from rollout.phases import PHASES

ROW_ESTIMATE_SQL = sqlfiles.query(__file__, "plan", "table_row_estimate")
SIZED_TABLES = ("background_job", "background_function_run", "background_dispatch_window",
                "background_dead_letter")


def table_sizes(engine: Engine | None) -> Sizes:
    """Row estimates from the catalog (cheap: no count(*) on a big table)."""
    if engine is None:
        return Sizes()
    rows: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            for table in SIZED_TABLES:
                n = sqlfiles.execute(conn, ROW_ESTIMATE_SQL, {"table": table}).scalar()
                rows[table] = int(n or 0)
    except SQLAlchemyError:
        return Sizes()
    return Sizes(rows)


def _previous(phase: str) -> str:
    idx = PHASE_ORDER.index(phase)
    return PHASE_ORDER[idx - 1] if idx else "baseline"


def build(target: Target, phase_name: str, sizes: Sizes) -> dict[str, Any]:
    """The plan of one phase as a JSON-ready dict."""
    phase = PHASES[phase_name]
    actions = phase.plan()
    s = target.settings
    fill = {
        # The typed-back name only where the rule asks for it (rollout/consent.py).
        f" {CONFIRM}": f" --confirm {target.name}" if target.production else "",
        DEAD_LETTERS_FILE: dead_letters_file(target.name, phase_name),
        "<env>": target.name, "<flag_wait>": f"{flags.propagation_wait(s.flag_ttl_seconds):g}",
    }

    def filled(commands: tuple[str, ...]) -> list[str]:
        out = []
        for cmd in commands:
            for placeholder, value in fill.items():
                cmd = cmd.replace(placeholder, value)
            out.append(cmd)
        return out

    steps: list[dict[str, Any]] = []
    for a in actions:
        est = a.estimate(sizes, s) if a.estimate else 0.0
        steps.append({
            "id": a.id, "title": a.title, "changes": a.changes, "irreversible": a.irreversible,
            "rollback_stops_here": a.rollback_stops, "estimate_seconds": round(est, 2),
            "manual_apply": filled(a.manual_apply), "manual_undo": filled(a.manual_undo),
            "verify_undo": list(a.verify_undo),
        })
    env = target.name
    return {
        "phase": phase_name,
        "environment": env,
        "production": target.production,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "apply_command": f"invoke rollout --env {env} --phase {phase_name}"
                         + (" --yes" if any(a.irreversible for a in actions) else "")
                         + (f" --confirm {env}" if target.production and any(a.irreversible for a in actions) else ""),
        "rollback_command": rollback_command(target, phase_name, actions),
        "status_command": f"invoke rollout --env {env} --status",
        # Rendered from the checks the phase declares, each with only the settings it reads.
        "gate": {"description": gates.gate_text(phase, s),
                 "checks": [{"id": c.check_id, "title": c.title, "thresholds": c.thresholds}
                            for c in gates.describe(phase, s)]},
        "table_sizes": dict(sizes.rows),
        "estimate_seconds": round(sum(x["estimate_seconds"] for x in steps), 2),
        "steps": steps,
        "irreversible_points": [x["id"] for x in steps if x["irreversible"]],
        "manual_rollback": [
            {"id": x["id"], "commands": x["manual_undo"], "verify": x["verify_undo"]}
            for x in reversed(steps) if x["manual_undo"]
        ],
        "verify_rollback": [
            "SELECT phase, status, current_action FROM phasegate_rollout_state ORDER BY phase;",
            "SELECT name, value FROM phasegate_flag ORDER BY name;",
            "SELECT version_num FROM alembic_version;",
        ],
    }


def dead_letters_file(env: str, phase: str) -> str:
    """Where a runbook's drop writes the OPEN dead letters it would lose (``--export``)."""
    return f"dead-letters-{env}-{phase}.jsonl"


def rollback_command(target: Target, phase: str, actions: list[Action]) -> str:
    """The automated rollback, with the flags a drop with rows asks for when its undo drops
    tables (rollout/drops.py: without rows to lose they are not needed, and harmless)."""
    cmd = f"invoke rollout --env {target.name} --rollback --to {_previous(phase)}"
    dropped = {o for a in actions for o in a.undo_drops}
    if dropped:
        cmd += " --yes" + (f" --confirm {target.name}" if target.production else "")
    if DEAD_LETTERS in dropped:
        cmd += f" --export {dead_letters_file(target.name, phase)}"
    return cmd


def render_markdown(p: dict[str, Any]) -> str:
    lines = [
        f"# Rollback plan: {p['phase']} on {p['environment']}"
        + (" (PRODUCTION)" if p["production"] else ""),
        "",
        f"Generated {p['generated_at']} from the same action list the engine runs.",
        "",
        f"- Apply: `{p['apply_command']}`",
        f"- **Automated rollback:** `{p['rollback_command']}`",
        f"- Status: `{p['status_command']}`",
        f"- Estimated time: {p['estimate_seconds']} s (table sizes: "
        + (", ".join(f"{k} ~{v:,}" for k, v in p["table_sizes"].items()) or "unknown") + ")",
        "",
        "## What this phase changes",
        "",
        "| # | action | changes | irreversible | estimate |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, s in enumerate(p["steps"], 1):
        irr = "**yes**" + (" (rollback stops here)" if s["rollback_stops_here"] else "") if s["irreversible"] else "no"
        lines.append(f"| {i} | `{s['id']}` {s['title']} | {s['changes']} | {irr} | {s['estimate_seconds']} s |")
    lines += ["", "## Go / no-go (the gate)", "",
              "The phase is done when none of these checks fails (a warning does not block):", "",
              "| check | what it proves | thresholds |", "| --- | --- | --- |"]
    lines += [f"| `{c['id']}` | {c['title']} | "
              + (", ".join(f"`{k}` = {gates.number(v)}" for k, v in c["thresholds"].items()) or "–") + " |"
              for c in p["gate"]["checks"]]
    lines += ["", "## Irreversible points", ""]
    lines += [f"- `{x}`" for x in p["irreversible_points"]] or ["- none: every step has an automated undo"]
    lines += ["", "## Manual rollback (if the automated rollback fails)", "",
              "Run these in order (newest step first), against the environment's database "
              "(`psql`) or Redis (`redis-cli`):", ""]
    for step in p["manual_rollback"]:
        lines.append(f"### undo `{step['id']}`")
        lines.append("")
        lines.append("```")
        lines += step["commands"]
        lines.append("```")
        if step["verify"]:
            lines.append("")
            lines.append("Proof it worked:")
            lines.append("")
            lines.append("```sql")
            lines += step["verify"]
            lines.append("```")
        lines.append("")
    lines += ["## Proof the rollback worked", "", "```sql", *p["verify_rollback"], "```", ""]
    return "\n".join(lines)


def write(target: Target, directory: Path, phase_name: str, engine: Engine | None) -> list[Path]:
    """Write ``<phase>.md`` and ``<phase>.json`` into ``directory``; returns the paths. Each is
    written whole (a temporary file renamed over it) and never through a planted symlink: a
    link at ``plans/<env>/<phase>.md`` is refused, its target left as it was."""
    p = build(target, phase_name, table_sizes(engine))
    md, js = directory / f"{phase_name}.md", directory / f"{phase_name}.json"
    for path in (md, js):  # both checked before either is written
        check_output_path(path, "plan")
    write_text_atomic(md, render_markdown(p), "plan")
    write_text_atomic(js, json.dumps(p, indent=2, default=str), "plan")
    return [md, js]


def write_all(target: Target, directory: Path, engine: Engine | None,
              phases: list[str] | None = None) -> list[Path]:
    out: list[Path] = []
    for name in phases or list(PHASE_ORDER):
        out += write(target, directory, name, engine)
    return out
