"""The bridge from phases to the checks package: gates and the health preflight."""

from __future__ import annotations

from typing import Any

from rollout.phase import PhaseContext


def check_context(ctx: PhaseContext, **extra: Any) -> Any:
    from checks import CheckContext

    params = {**ctx.settings.gate_params(), **extra}
    return CheckContext(db_url=ctx.target.db_url, redis_url=ctx.target.redis_url, params=params)


def run_gate(phase: str, ctx: PhaseContext, **extra: Any) -> list[Any]:
    """The checks that gate ``phase``, with the settings' thresholds."""
    import checks

    return checks.run_gate(phase, check_context(ctx, **extra))


def run(check_ids: list[str], ctx: PhaseContext, **extra: Any) -> list[Any]:
    import checks

    return checks.run_checks(check_ids, check_context(ctx, **extra))


def failures(results: list[Any]) -> list[str]:
    return [f"{r.check_id}: {r.summary}" for r in results if r.verdict.value == "fail"]


def health_preflight(ctx: PhaseContext) -> list[str]:
    """Refuse DDL while long transactions or lock waiters would make it block the app."""
    import checks

    ids = checks.gate_checks("preflight")
    return failures(run(ids, ctx)) if ids else []
