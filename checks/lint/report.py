"""Lint findings for people (rich table), machines (JSON) and CI (JUnit XML, SARIF)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from checks.lint import sarif
from checks.lint.findings import Finding
from checks.lint.rules import RULES
from phasegate.errors import ConfigError
from phasegate.junit import Case
from phasegate.junit import render as render_junit
from phasegate.text import printable

FORMATS = ("table", "json", "junit", "sarif")
TABLE_ROWS = 200  # a table is for people; past this, the machine formats list everything


def failed(findings: Sequence[Finding]) -> bool:
    """True when any finding is an error (warnings do not fail `invoke lint`)."""
    return any(f.severity == "error" for f in findings)


def render_findings(findings: Sequence[Finding], fmt: str = "table", files: int = 0) -> str:
    if fmt == "json":
        return json.dumps({"passed": not failed(findings), "files": files,
                           "findings": [f.to_dict() for f in findings]}, indent=2)
    if fmt == "junit":
        return _junit(findings)
    if fmt == "sarif":
        return sarif.render(findings)
    if fmt != "table":
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    buf = io.StringIO()
    console = Console(file=buf, width=160, force_terminal=False, color_system=None)
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


def _junit(findings: Sequence[Finding]) -> str:
    """One <testcase> per rule: failing with every error finding of that rule."""
    cases = []
    for rule in RULES.values():
        mine = [f for f in findings if f.rule_id == rule.rule_id]
        bad = [f for f in mine if f.severity == "error"]
        name = f"{rule.rule_id} {rule.title}"
        if bad:
            body = "\n".join(f"{printable(f.path)}:{f.line}: {f.message}" for f in bad)
            cases.append(Case("phasegate.lint", name, failure=f"{len(bad)} finding(s)",
                              failure_type=rule.rule_id, details=f"{body}\ninstead: {rule.instead}"))
        else:
            cases.append(Case("phasegate.lint", name, details="\n".join(
                f"warning {printable(f.path)}:{f.line}: {f.message}" for f in mine) or None))
    return render_junit("phasegate.lint", cases)
