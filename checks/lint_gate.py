"""The expand gate's "migrations lint clean": the linter as a check (reads files, not the DB)."""

from __future__ import annotations

from checks.base import Outcome, Probe, Verdict, check


@check("migrations_lint", "the shipped migrations lint clean")
def migrations_lint(probe: Probe) -> Outcome:
    from checks.lint import default_paths, lint_paths

    paths = default_paths()
    findings = [f for f in lint_paths(paths) if f.severity == "error"]
    if not findings:
        return Outcome(Verdict.PASS, f"{len(paths)} revision(s) lint clean")
    first = findings[0]
    return Outcome(Verdict.FAIL, f"{len(findings)} lint error(s), first: {first.rule_id} "
                   f"{first.path}:{first.line} {first.message}",
                   tuple({"rule": f.rule_id, "path": f.path, "line": f.line, "message": f.message}
                         for f in findings))
