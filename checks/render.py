"""Gate results for machines (JSON) and for CI (JUnit XML).

The table for people is the CLI's (``cli/check_render.py``): this package returns strings and
never draws.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from xml.etree import ElementTree as ET

from checks.base import CheckResult, Verdict
from ledger.errors import ConfigError

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
    """One <testcase> per check; FAIL is a <failure>, WARN passes with its summary in system-out."""
    failures = sum(1 for r in results if r.verdict is Verdict.FAIL)
    total_s = sum(r.duration_ms for r in results) / 1000.0
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)),
                       failures=str(failures), errors="0", skipped="0", time=f"{total_s:.3f}")
    for r in results:
        tc = ET.SubElement(ts, "testcase", classname=suite, name=r.check_id,
                           time=f"{r.duration_ms / 1000.0:.3f}")
        if r.verdict is Verdict.FAIL:
            f = ET.SubElement(tc, "failure", message=r.summary, type=r.severity)
            f.text = json.dumps([dict(e) for e in r.evidence], indent=2, default=str)
        out = ET.SubElement(tc, "system-out")
        out.text = f"{r.verdict.value}: {r.summary}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
