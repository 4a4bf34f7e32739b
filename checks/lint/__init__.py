"""The migration safety linter (`invoke lint`): Alembic revisions and raw SQL, parsed with
``ast`` and pglast (PostgreSQL's own parser), never with regular expressions."""

from __future__ import annotations

from checks.lint.engine import Finding, default_paths, lint_paths, lint_source
from checks.lint.report import failed, render_findings
from checks.lint.rules import RULES, Rule

__all__ = ["RULES", "Finding", "Rule", "default_paths", "failed", "lint_paths", "lint_source",
           "render_findings"]
