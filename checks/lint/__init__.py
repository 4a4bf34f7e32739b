"""The migration safety linter (`invoke lint`): Alembic revisions and raw SQL, parsed with
``ast`` and pglast (PostgreSQL's own parser), never with regular expressions."""

from __future__ import annotations

from checks.lint.engine import LintResult, default_paths, expand, lint, lint_paths
from checks.lint.findings import Finding
from checks.lint.inputs import CouldNotLint
from checks.lint.report import failed, render_findings
from checks.lint.rules import RULES, Rule

__all__ = ["RULES", "CouldNotLint", "Finding", "LintResult", "Rule", "default_paths", "expand",
           "failed", "lint", "lint_paths", "render_findings"]
