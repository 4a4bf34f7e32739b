"""SARIF 2.1.0 for GitHub code scanning (``github/codeql-action/upload-sarif``).

Every rule is listed in the driver (so code scanning shows its why and instead), each
finding is a result at its file and line. Paths are relative to the working directory
(the repository root in a CI checkout) under ``%SRCROOT%``, as code scanning expects;
a file outside it keeps an absolute ``file://`` URI.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from checks.lint.findings import Finding
from checks.lint.rules import RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _location(path: str, base: Path) -> dict[str, Any]:
    p = Path(path).resolve()
    try:
        rel = p.relative_to(base)
    except ValueError:
        return {"uri": p.as_uri()}
    return {"uri": quote(rel.as_posix()), "uriBaseId": "%SRCROOT%"}


def render(findings: Sequence[Finding], base: Path | None = None) -> str:
    base = (base or Path.cwd()).resolve()
    ids = list(RULES)
    rules = [{
        "id": r.rule_id,
        "name": "".join(w.capitalize() for w in r.title.replace("-", " ").split()
                        if w.isalnum())[:80] or r.rule_id,
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.why},
        "help": {"text": f"{r.why}\n\ninstead: {r.instead}",
                 "markdown": f"**Why:** {r.why}\n\n**Instead:** {r.instead}"},
        "defaultConfiguration": {"level": "error" if r.severity == "error" else "warning"},
        "properties": {"tags": ["postgresql", "migration", r.kind]},
    } for r in RULES.values()]
    results = [{
        "ruleId": f.rule_id,
        "ruleIndex": ids.index(f.rule_id),
        "level": "error" if f.severity == "error" else "warning",
        "message": {"text": f"{RULES[f.rule_id].title}: {f.message}"},
        "locations": [{"physicalLocation": {
            "artifactLocation": _location(f.path, base),
            "region": {"startLine": max(1, f.line)},
        }}],
    } for f in findings]
    doc = {"$schema": SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "phasegate-lint", "rules": rules}},
        "originalUriBaseIds": {"%SRCROOT%": {"uri": base.as_uri() + "/"}},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }]}
    return json.dumps(doc, indent=2)
