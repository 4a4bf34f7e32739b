"""Lint findings for machines (JSON, SARIF) and CI (JUnit XML); the table for people is the
CLI's (``cli/check_render.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

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


def render_findings(findings: Sequence[Finding], fmt: str = "json", files: int = 0) -> str:
    """``findings`` as ``json`` | ``junit`` | ``sarif``."""
    if fmt == "json":
        return json.dumps({"passed": not failed(findings), "files": files,
                           "findings": [f.to_dict() for f in findings]}, indent=2)
    if fmt == "junit":
        return _junit(findings)
    if fmt == "sarif":
        return sarif.render(findings)
    raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS[1:])} "
                      "(the table is drawn by the CLI)")


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
