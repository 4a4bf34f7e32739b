"""Gate results for machines (JSON) and for CI (JUnit XML).

The table for people is the CLI's (``cli/check_render.py``): this package returns strings and
never draws.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from checks.base import CheckResult, Verdict
from phasegate.errors import ConfigError
from phasegate.junit import Case
from phasegate.junit import render as render_junit

FORMATS = ("json", "junit")


def render(results: Sequence[CheckResult], fmt: str = "json", *, suite: str = "phasegate.checks") -> str:
    """``results`` as ``json`` | ``junit``."""
    if fmt == "json":
        return json.dumps({"passed": all(r.verdict is not Verdict.FAIL for r in results),
                           "results": [r.to_dict() for r in results]}, indent=2)
    if fmt == "junit":
        return junit(results, suite)
    raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def junit(results: Sequence[CheckResult], suite: str = "phasegate.checks") -> str:
    """One <testcase> per check; FAIL is a <failure> with the evidence as its body, WARN and
    PASS pass with the verdict and summary in system-out."""
    return render_junit(suite, [
        Case(suite, r.check_id, r.duration_ms / 1000.0,
             failure=r.summary if r.verdict is Verdict.FAIL else None, failure_type=r.severity,
             details=(json.dumps([dict(e) for e in r.evidence], indent=2, default=str)
                      if r.verdict is Verdict.FAIL else f"{r.verdict.value}: {r.summary}"))
        for r in results])
