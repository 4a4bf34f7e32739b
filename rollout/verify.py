"""``invoke verify``: every phase forward and back, with all gates, on throwaway servers.

The CI job. On a throwaway Postgres + Redis (testcontainers by default) that ``invoke verify``
has seeded with a baseline (:mod:`demo.seed`), walks:

1. forward:  expand -> dual_write -> cutover -> retention (each gated);
2. back:     retention -> cutover -> dual_write -> expand -> baseline (one rollback each;
   expand's drops the ledger the walk filled, so it says --yes and exports the OPEN dead
   letters to ``<plans_dir>/dead-letters-<id>.jsonl``: rollout/drops.py);
3. forward:  every phase again, through contract;
4. contract: its rollback must be refused (its legacy-key expiry is irreversible).

Each step is a JUnit test case (``forward.expand``, ``rollback.cutover``, ...) with its gate
checks as nested cases, so a red build names the phase and the check.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phasegate.junit import Case
from phasegate.junit import render as render_junit
from rollout.engine import Rollout
from rollout.environments import Target
from rollout.errors import IrreversibleStep, RolloutError
from rollout.phase import PHASE_ORDER

SUITE = "phasegate.verify"  # the JUnit suite a red build names


@dataclass
class Step:
    name: str  # forward.<phase> | rollback.<phase> | refused.<phase>
    ok: bool
    seconds: float
    message: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)


def _step(name: str, fn: Callable[[], Any]) -> Step:  # fn: apply() or rollback()[0]
    t0 = time.monotonic()
    try:
        out = fn()
    except RolloutError as exc:
        return Step(name, False, time.monotonic() - t0, str(exc))
    gate = out.gate if hasattr(out, "gate") else []
    return Step(name, True, time.monotonic() - t0, "", list(gate))


def _rollback_one(ro: Rollout, to: str, export: Path) -> Any:
    # CI is never production: --yes alone is the consent, given here explicitly.
    return ro.rollback(to, yes=True, export=export)[0]


def walk(target: Target, plans_dir: Path,
         report: Callable[[Step], None] | None = None) -> list[Step]:
    """Run the whole walk; stops at the first failed step (later steps would be noise)."""
    ro = Rollout(target, "verify", plans_dir=plans_dir)
    steps: list[Step] = []

    def record(step: Step) -> bool:
        steps.append(step)
        if report:
            report(step)
        return step.ok

    try:
        forward_once = PHASE_ORDER[:-1]
        for name in forward_once:
            if not record(_step(f"forward.{name}", functools.partial(ro.apply, name, yes=True))):
                return steps
        for name in reversed(forward_once):
            prev = PHASE_ORDER[PHASE_ORDER.index(name) - 1] if name != "expand" else "baseline"
            export = plans_dir / f"dead-letters-{uuid.uuid4().hex[:8]}.jsonl"
            if not record(_step(f"rollback.{name}", functools.partial(_rollback_one, ro, prev, export))):
                return steps
        for name in PHASE_ORDER:
            if not record(_step(f"forward.{name}", functools.partial(ro.apply, name, yes=True))):
                return steps
        t0 = time.monotonic()
        try:
            ro.rollback("retention")
            record(Step("refused.contract", False, time.monotonic() - t0,
                        "contract rolled back past its irreversible key expiry"))
        except IrreversibleStep as exc:
            record(Step("refused.contract", True, time.monotonic() - t0, str(exc)))
    finally:
        ro.close()
    return steps


def junit(steps: list[Step]) -> str:
    """JUnit XML: one case per step, one per gate check under it."""
    cases: list[Case] = []
    for step in steps:
        cases.append(Case(SUITE, step.name, step.seconds,
                          failure=None if step.ok else step.message, details=step.message or None))
        for check in step.checks:
            failed = check.get("verdict") == "fail"
            summary = str(check.get("summary", ""))
            cases.append(Case(f"{SUITE}.{step.name}", str(check.get("check_id")),
                              float(check.get("duration_ms", 0)) / 1000,
                              failure=summary if failed else None,
                              details=None if failed else f"{check.get('verdict')}: {summary}"))
    return render_junit(SUITE, cases)

