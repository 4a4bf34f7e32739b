"""Gate results for people (a rich table), for machines (JSON) and for CI (JUnit XML)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from checks.base import CheckResult, Verdict
from ledger.errors import ConfigError
from phasegate.junit import Case
from phasegate.junit import render as render_junit

FORMATS = ("table", "json", "junit")
_STYLE = {Verdict.PASS: "green", Verdict.WARN: "yellow", Verdict.FAIL: "bold red"}


def render(results: Sequence[CheckResult], fmt: str = "table", *, suite: str = "phasegate.checks") -> str:
    """``results`` as ``table`` | ``json`` | ``junit``."""
    if fmt == "table":
        return _table(results)
    if fmt == "json":
        return json.dumps({"passed": all(r.verdict is not Verdict.FAIL for r in results),
                           "results": [r.to_dict() for r in results]}, indent=2)
    if fmt == "junit":
        return junit(results, suite)
    raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _table(results: Sequence[CheckResult]) -> str:
    table = Table(title="phasegate checks", show_lines=False)
    for col in ("check", "verdict", "ms", "summary"):
        table.add_column(col, overflow="fold", justify="right" if col == "ms" else "left")
    for r in results:
        table.add_row(r.check_id, f"[{_STYLE[r.verdict]}]{r.verdict.value.upper()}[/]",
                      f"{r.duration_ms:.1f}", r.summary)
    buf = io.StringIO()
    console = Console(file=buf, width=140, force_terminal=False, color_system=None)
    console.print(table)
    counts = {v: sum(1 for r in results if r.verdict is v) for v in Verdict}
    console.print(f"{counts[Verdict.PASS]} passed, {counts[Verdict.WARN]} warned, "
                  f"{counts[Verdict.FAIL]} failed")
    return buf.getvalue()


def junit(results: Sequence[CheckResult], suite: str = "phasegate.checks") -> str:
    """One <testcase> per check; FAIL is a <failure> with the evidence as its body, WARN and
    PASS pass with the verdict and summary in system-out."""
    return render_junit(suite, [
        Case(suite, r.check_id, r.duration_ms / 1000.0,
             failure=r.summary if r.verdict is Verdict.FAIL else None, failure_type=r.severity,
             details=(json.dumps([dict(e) for e in r.evidence], indent=2, default=str)
                      if r.verdict is Verdict.FAIL else f"{r.verdict.value}: {r.summary}"))
        for r in results])
