"""Lint findings for machines (JSON) and CI (JUnit XML); the table for people is the CLI's
(``cli/check_render.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from xml.etree import ElementTree as ET

from checks.lint.engine import Finding
from checks.lint.rules import RULES
from ledger.errors import ConfigError


def failed(findings: Sequence[Finding]) -> bool:
    """True when any finding is an error (warnings do not fail `invoke lint`)."""
    return any(f.severity == "error" for f in findings)


def render_findings(findings: Sequence[Finding], fmt: str = "json", files: int = 0) -> str:
    """``findings`` as ``json`` | ``junit``."""
    if fmt == "json":
        return json.dumps({"passed": not failed(findings), "files": files,
                           "findings": [f.to_dict() for f in findings]}, indent=2)
    if fmt == "junit":
        return _junit(findings)
    raise ConfigError(f"unknown format {fmt!r}; choose one of json, junit")


def _junit(findings: Sequence[Finding]) -> str:
    """One <testcase> per rule: failing with every error finding of that rule."""
    root = ET.Element("testsuites")
    errors = [f for f in findings if f.severity == "error"]
    suite = ET.SubElement(root, "testsuite", name="phasegate.lint", tests=str(len(RULES)),
                          failures=str(len({f.rule_id for f in errors})), errors="0")
    for rule in RULES.values():
        case = ET.SubElement(suite, "testcase", classname="phasegate.lint",
                             name=f"{rule.rule_id} {rule.title}")
        mine = [f for f in findings if f.rule_id == rule.rule_id]
        bad = [f for f in mine if f.severity == "error"]
        if bad:
            fail = ET.SubElement(case, "failure", message=f"{len(bad)} finding(s)", type=rule.rule_id)
            fail.text = "\n".join(f"{f.path}:{f.line}: {f.message}" for f in bad) + \
                f"\ninstead: {rule.instead}"
        elif mine:
            ET.SubElement(case, "system-out").text = "\n".join(
                f"warning {f.path}:{f.line}: {f.message}" for f in mine)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
