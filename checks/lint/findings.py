"""A finding, and the per-file collector that applies suppressions and caps repeats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from checks.lint.py_loader import Suppression
from checks.lint.rules import RULES
from phasegate.text import printable

# Past this many findings of one rule in one file, the rest are counted, not listed: a
# generated 50 MB file with one hazard per statement must not produce a 2 GB report.
MAX_PER_RULE = 1000


@dataclass(frozen=True)
class Finding:
    """One rule broken at one place."""

    rule_id: str
    path: str
    line: int
    function: str
    message: str
    statement: str
    severity: str

    def to_dict(self) -> dict[str, Any]:
        rule = RULES[self.rule_id]
        return {"rule": self.rule_id, "title": rule.title, "kind": rule.kind, "path": self.path,
                "line": self.line, "function": self.function, "message": self.message,
                "statement": self.statement, "severity": self.severity, "why": rule.why,
                "instead": rule.instead}


class Collector:
    """Findings of one file: suppressed where a valid suppression covers them, capped per
    rule, each (rule, line, message) once (an unrolled loop repeats a line)."""

    def __init__(self, path: str, sups: Sequence[Suppression]) -> None:
        self.path = path
        self.findings: list[Finding] = []
        self.counts: Counter[str] = Counter()
        self.seen: set[tuple[str, int, str]] = set()
        self.by_line: dict[int, list[Suppression]] = {}
        for sup in sups:
            if sup.reason and sup.rule_ids and all(r in RULES for r in sup.rule_ids):
                self.by_line.setdefault(sup.line, []).append(sup)
            else:
                unknown = [r for r in sup.rule_ids if r not in RULES]
                what = f"unknown rule {', '.join(unknown)}" if unknown else "no reason given"
                self.findings.append(Finding("PG000", path, sup.line, "-",
                                             f"suppression ignored: {what}", "", "error"))

    def suppressed(self, rule_id: str, line: int, end_line: int) -> bool:
        if not self.by_line:
            return False
        for at in range(line - 1, max(line, end_line) + 1):
            if any(rule_id in s.rule_ids for s in self.by_line.get(at, ())):
                return True
        return False

    def add(self, rule_id: str, line: int, end_line: int, function: str, message: str,
            text: str, first: int | None = None) -> None:
        """``first``: where the statement begins (a DO block's first line, for a finding on a
        statement inside it): a suppression on the line above it covers the finding too."""
        if self.suppressed(rule_id, line if first is None else first, end_line):
            return
        key = (rule_id, line, message)
        if key in self.seen:
            return
        self.seen.add(key)
        self.counts[rule_id] += 1
        if self.counts[rule_id] > MAX_PER_RULE:
            return
        # printable(): names from the SQL reach terminals, XML and JSON; no control characters.
        excerpt = printable(" ".join(text[:400].split()), 200)
        self.findings.append(Finding(rule_id, self.path, line, function, printable(message, 1000),
                                     excerpt, RULES[rule_id].severity))

    def done(self) -> list[Finding]:
        for rule_id, count in sorted(self.counts.items()):
            if count > MAX_PER_RULE:
                first = next(f for f in self.findings if f.rule_id == rule_id)
                self.findings.append(Finding(
                    rule_id, self.path, first.line, first.function,
                    f"... and {count - MAX_PER_RULE} more {rule_id} finding(s) in this file "
                    "(only the first {MAX_PER_RULE} are listed)".replace("{MAX_PER_RULE}",
                                                                         str(MAX_PER_RULE)),
                    "", RULES[rule_id].severity))
        return self.findings
