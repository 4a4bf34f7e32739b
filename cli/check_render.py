"""The tables ``invoke check`` and ``invoke lint`` print for people (``--format table``).

JSON and JUnit XML are the libraries' (``checks.render``, ``checks.lint.render_findings``):
machines read those from anywhere; only the CLI draws tables. Plain text, no colour, at a
fixed width, so a report written with ``--output`` reads the same as the terminal.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from checks import CheckResult, Verdict
from checks.lint import RULES, Finding
from checks.lint.report import TABLE_ROWS

_STYLE = {Verdict.PASS: "green", Verdict.WARN: "yellow", Verdict.FAIL: "bold red"}


def _text_console(buf: io.StringIO, width: int) -> Console:
    return Console(file=buf, width=width, force_terminal=False, color_system=None)


def results_table(results: Sequence[CheckResult]) -> str:
    """Gate check results: one row per check, then the counts."""
    table = Table(title="phasegate checks", show_lines=False)
    for col in ("check", "verdict", "ms", "summary"):
        table.add_column(col, overflow="fold", justify="right" if col == "ms" else "left")
    for r in results:
        table.add_row(r.check_id, f"[{_STYLE[r.verdict]}]{r.verdict.value.upper()}[/]",
                      f"{r.duration_ms:.1f}", r.summary)
    buf = io.StringIO()
    console = _text_console(buf, 140)
    console.print(table)
    counts = {v: sum(1 for r in results if r.verdict is v) for v in Verdict}
    console.print(f"{counts[Verdict.PASS]} passed, {counts[Verdict.WARN]} warned, "
                  f"{counts[Verdict.FAIL]} failed")
    return buf.getvalue()


def findings_table(findings: Sequence[Finding], files: int = 0) -> str:
    """Lint findings (none: only the count line), each with the rule's advice."""
    buf = io.StringIO()
    console = _text_console(buf, 160)
    if findings:
        table = Table(title="migration lint", show_lines=True)
        for col in ("rule", "where", "problem", "instead"):
            table.add_column(col, overflow="fold")
        # Text(), not str: names from the linted SQL must never be read as Rich markup.
        for f in findings[:TABLE_ROWS]:
            table.add_row(Text(f"{f.rule_id} {f.severity}"), Text(f"{f.path}:{f.line} ({f.function})"),
                          Text(f"{RULES[f.rule_id].title}: {f.message}"),
                          Text(RULES[f.rule_id].instead))
        console.print(table)
        if len(findings) > TABLE_ROWS:
            console.print(Text(f"... and {len(findings) - TABLE_ROWS} more finding(s): "
                               "--format json (or sarif, junit) lists them all"))
    errors = sum(1 for f in findings if f.severity == "error")
    console.print(Text(f"{files} file(s) linted: {errors} error(s), "
                       f"{len(findings) - errors} warning(s)"))
    return buf.getvalue()
