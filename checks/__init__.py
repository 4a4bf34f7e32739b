"""Gate checks and the migration safety linter.

The rollout calls :func:`run_checks` with the ids a phase declares (``rollout.gates``);
``invoke check`` and ``invoke lint`` call the same functions. See ``checks/README.md``.
"""

from __future__ import annotations

from checks.base import (
    CheckContext,
    CheckResult,
    MissingSetting,
    Verdict,
    all_checks,
    passed,
    run_checks,
)
from checks.render import render

__all__ = [
    "CheckContext",
    "CheckResult",
    "MissingSetting",
    "Verdict",
    "all_checks",
    "passed",
    "render",
    "run_checks",
]
