"""JUnit XML, the one shape CI systems read: a suite of cases, each passed or failed.

The gate checks, the linter and ``invoke verify`` each map their results to :class:`Case`
and render here, so all three reports have the same structure and escaping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from phasegate.text import printable

MESSAGE_LIMIT = 500  # a failure's one-line message attribute; the body holds the rest


@dataclass(frozen=True)
class Case:
    """One test case: ``failure`` (a one-line message) marks it failed; ``details`` is the
    failure's body or, for a passed case, its system-out."""

    classname: str
    name: str
    seconds: float = 0.0
    failure: str | None = None
    failure_type: str | None = None
    details: str | None = None


def render(suite: str, cases: Sequence[Case]) -> str:
    """``<testsuites><testsuite name=suite ...>`` with every case, as one XML document."""
    root = ET.Element("testsuites")
    failures = sum(1 for c in cases if c.failure is not None)
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)),
                       failures=str(failures), errors="0", skipped="0",
                       time=f"{sum(c.seconds for c in cases):.3f}")
    for c in cases:
        tc = ET.SubElement(ts, "testcase", classname=c.classname, name=c.name,
                           time=f"{c.seconds:.3f}")
        if c.failure is not None:
            fail = ET.SubElement(tc, "failure", message=printable(c.failure, MESSAGE_LIMIT))
            if c.failure_type:
                fail.set("type", c.failure_type)
            if c.details:
                fail.text = c.details
        elif c.details:
            ET.SubElement(tc, "system-out").text = c.details
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
