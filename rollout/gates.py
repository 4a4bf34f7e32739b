"""The bridge from phases to the checks package: gates, their text, and the health preflight.

Which checks gate a phase is written once, as the phase's own ``gate_checks`` tuple
(``rollout/phases/*.py``). Everything that asks (the gate runner, ``invoke check --phase``,
``--status``, the plans) asks through here, so changing a tuple changes all of them. The
thresholds a check uses are the settings it declares (``reads=``), valued from ``Settings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from phasegate.errors import ConfigError
from rollout.phase import Phase, PhaseContext
from rollout.settings import Settings

if TYPE_CHECKING:
    from checks import CheckContext, CheckResult

PREFLIGHT = "preflight"
# Not a phase: the health checks run before lock-taking DDL (expand, contract and their
# rollbacks), so DDL never queues the application behind a long transaction or a lock.
PREFLIGHT_CHECKS = ("health_long_transactions", "health_idle_in_transaction",
                    "health_lock_waiters", "health_replication_lag")


def context(db_url: str, redis_url: str | None, settings: Settings | None = None,
            **extra: Any) -> CheckContext:
    """A ``checks.CheckContext`` whose params are every setting (``Settings()`` unless given),
    with ``extra`` (the rollout's inputs such as ``parity_since``, or overrides) on top."""
    from checks import CheckContext

    params = {**(settings or Settings()).gate_params(), **extra}
    return CheckContext(db_url=db_url, redis_url=redis_url, params=params)


def check_context(ctx: PhaseContext, **extra: Any) -> CheckContext:
    return context(ctx.target.db_url, ctx.target.redis_url, ctx.settings, **extra)


def run_gate(phase: Phase, ctx: PhaseContext, **extra: Any) -> list[CheckResult]:
    """The checks ``phase`` declares, with the settings' thresholds."""
    import checks

    return checks.run_checks(list(phase.gate_checks), check_context(ctx, **extra))


def run(check_ids: list[str], ctx: PhaseContext, **extra: Any) -> list[CheckResult]:
    import checks

    return checks.run_checks(check_ids, check_context(ctx, **extra))


def failures(results: list[Any]) -> list[str]:
    return [f"{r.check_id}: {r.summary}" for r in results if r.verdict.value == "fail"]


def health_preflight(ctx: PhaseContext) -> list[str]:
    """Refuse DDL while long transactions or lock waiters would make it block the app."""
    return failures(run(list(PREFLIGHT_CHECKS), ctx))


def gate_sets() -> dict[str, tuple[str, ...]]:
    """Every named set of checks: the preflight set, then each phase's tuple, in rollout order."""
    from rollout.phases import PHASES  # the phase modules import this one

    return {PREFLIGHT: PREFLIGHT_CHECKS, **{name: p.gate_checks for name, p in PHASES.items()}}


def checks_for(name: str) -> tuple[str, ...]:
    """The ids of the checks gating phase ``name`` (or the preflight set)."""
    sets = gate_sets()
    key = name.replace("-", "_")
    if key not in sets:
        raise ConfigError(f"unknown phase {name!r}; choose one of {', '.join(sets)}")
    return sets[key]


def gated_by() -> dict[str, list[str]]:
    """For each check id, the names of the sets (phases, preflight) it gates."""
    out: dict[str, list[str]] = {}
    for name, ids in gate_sets().items():
        for cid in ids:
            out.setdefault(cid, []).append(name)
    return out


@dataclass(frozen=True)
class GateCheck:
    """One line of a gate as people read it: the check, what it proves, its thresholds."""

    check_id: str
    title: str
    thresholds: dict[str, Any]  # only the settings this check reads, with their values


def describe(phase: Phase, settings: Settings) -> list[GateCheck]:
    """The gate of ``phase``, rendered from its checks (unknown ids are an error)."""
    import checks
    from checks.base import UnknownCheck

    registry, values = checks.all_checks(), settings.gate_params()
    out = []
    for cid in phase.gate_checks:
        if cid not in registry:
            raise UnknownCheck(cid)
        spec = registry[cid]
        out.append(GateCheck(cid, spec.title, {k: values[k] for k in spec.reads}))
    return out


def number(value: Any) -> str:
    """A threshold as people write it: 60, not 60.0; 268435456, not 2.68435e+08."""
    if isinstance(value, int | float) and float(value).is_integer():
        return str(int(value))
    return str(value)


def gate_text(phase: Phase, settings: Settings) -> str:
    """One line: every gating check's title, with the thresholds it reads."""
    parts = []
    for c in describe(phase, settings):
        limits = ", ".join(f"{k}={number(v)}" for k, v in c.thresholds.items())
        parts.append(f"{c.title} ({limits})" if limits else c.title)
    return "; ".join(parts)


def status_gate(phase: Phase, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``--status``'s gate column: each check the phase declares, with its verdict in the last
    recorded gate (``pending`` when it has not run there) and, when it did not pass, the
    one-line summary that says why."""
    last = {r.get("check_id"): r for r in results}
    out = []
    for cid in phase.gate_checks:
        row = last.get(cid, {})
        verdict = row.get("verdict", "pending")
        entry = {"check": cid, "verdict": verdict}
        if verdict in ("fail", "warn"):
            entry["summary"] = str(row.get("summary", ""))
        out.append(entry)
    return out


def reasons(results: list[Any], settings: Settings) -> list[str]:
    """Why a gate did not simply pass: ``check (fail): summary [threshold=value, ...]`` for
    each failed check, then each warning, with only the settings that check compared."""
    import checks

    registry, values = checks.all_checks(), settings.gate_params()
    lines = []
    for wanted in ("fail", "warn"):
        for r in results:
            if r.verdict.value != wanted:
                continue
            spec = registry.get(r.check_id)
            limits = ", ".join(f"{k}={number(values[k])}" for k in (spec.reads if spec else ())
                               if k in values)
            lines.append(f"{r.check_id} ({wanted}): {r.summary}" + (f" [{limits}]" if limits else ""))
    return lines
