"""Gate checks and the migration safety linter.

The rollout calls :func:`run_gate` / :func:`run_checks`; ``invoke check`` and
``invoke lint`` call the same functions. See ``checks/README.md``.
"""

from __future__ import annotations

from checks.base import (
    PHASES,
    CheckContext,
    CheckResult,
    Verdict,
    all_checks,
    gate_checks,
    passed,
    run_checks,
    run_gate,
)
from checks.render import render

__all__ = [
    "PHASES",
    "CheckContext",
    "CheckResult",
    "Verdict",
    "all_checks",
    "gate_checks",
    "passed",
    "render",
    "run_checks",
    "run_gate",
]
