"""``invoke lint`` and ``invoke check``: the migration linter and the gate checks.

Exit codes CI can use: 0 passed (warnings allowed), 1 a check failed or the linter found
an error, 2 the command could not run (bad input, unreachable database).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from invoke import Exit, task

from cli.base import EXPECTED, one_line, project_dir, require_reachable
from phasegate.files import check_output_path, write_text_atomic

FORMATS = ("table", "json", "junit")


@contextlib.contextmanager
def _could_not_run() -> Iterator[None]:
    """Expected errors become one line and exit code 2 (never a traceback or a password)."""
    try:
        yield
    except EXPECTED as exc:
        raise Exit(one_line(exc), code=2) from None


def _emit(text: str, output: str | None, summary: str) -> None:
    if output:
        path = write_text_atomic(Path(output), text, "--output")
        print(f"{summary} (written to {path})")
    else:
        print(text, end="" if text.endswith("\n") else "\n")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise Exit(f"phasegate: --format must be one of {', '.join(FORMATS)}, not {fmt!r}", code=2)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` -> typed params, validated exactly as ``phasegate.toml`` settings are
    (``rollout.settings.check_params``): same types and ranges, unknown keys refused."""
    from phasegate.errors import ConfigError
    from rollout.settings import check_params

    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param takes key=value, not {pair!r}")
        raw[key.strip()] = value
    return check_params(raw)


@task(
    help={
        "paths": "comma-separated files or directories (default: lint_paths from "
                 "phasegate.toml, else the kit's migrations/versions)",
        "format": "table (default), json, junit or sarif (GitHub code scanning)",
        "output": "write the report to this file instead of stdout",
        "rules": "list the rules and exit",
        "since": "lint only the files changed since this git ref (e.g. origin/main); the "
                 "others are still read for context",
    }
)
def lint(c, paths=None, format="table", output=None, rules=False, since=None):
    """Lint migrations for lock and compatibility hazards (Alembic revisions and raw SQL)."""
    from checks.lint import RULES, failed, render_findings
    from checks.lint.report import FORMATS as LINT_FORMATS
    from cli.check_render import findings_table

    if rules:
        for r in RULES.values():
            print(f"{r.rule_id} [{r.severity}, {r.kind}] {r.title}\n    why: {r.why}\n"
                  f"    instead: {r.instead}")
        return
    if format not in LINT_FORMATS:
        raise Exit(f"phasegate: --format must be one of {', '.join(LINT_FORMATS)}, not {format!r}",
                   code=2)
    with _could_not_run():
        if output:
            check_output_path(Path(output), "--output")
        result = _lint_run(paths, since)
        findings, files = result.findings, len(result.files)
        errors = sum(1 for f in findings if f.severity == "error")
        text = (findings_table(findings, files) if format == "table"
                else render_findings(findings, format, files))
        _emit(text, output, f"{files} file(s) linted: {errors} error(s)")
    if failed(findings):
        raise Exit(f"phasegate: migration lint found {errors} error(s)", code=1)


def _lint_run(paths: str | None, since: str | None):  # type: ignore[no-untyped-def]
    """Resolve what to lint (--paths, phasegate.toml lint_paths, the kit's revisions) and
    lint it; any failure to read or to lint becomes one CouldNotLint line (exit 2)."""
    from checks.lint import CouldNotLint, default_paths, expand, lint
    from checks.lint.targets import changed_since, configured_paths
    from rollout.environments import load_config

    project = project_dir()
    if paths:
        targets = [Path(p.strip()) for p in paths.split(",") if p.strip()]
        if not targets:
            raise CouldNotLint("--paths names no file or directory")
    else:
        targets = configured_paths(load_config(project), project) or default_paths()
    try:
        files = expand(targets)
        report = changed_since(since, project) if since else None
        return lint(files, report)
    except CouldNotLint:
        raise
    except Exception as exc:  # a linter bug: still one line and "could not lint", never a trace
        raise CouldNotLint(f"could not lint: internal error {type(exc).__name__}: {exc}") from exc


@task(
    iterable=["param"],
    help={
        "env": "environment (default local): local | ci | a name from phasegate.toml",
        "phase": "run the checks gating this phase: preflight | expand | dual_write | cutover | "
                 "retention | contract (default: every check)",
        "check": "comma-separated check ids (instead of --phase)",
        "format": "table (default), json or junit",
        "output": "write the report to this file instead of stdout",
        "param": "key=value (repeatable): a setting, e.g. --param triage_budget_ms=20, or a check "
                 "input: parity_since / dedupe_since / pruned_before (ISO-8601), backfill_until_id",
        "list": "list the checks and the phases they gate, and exit",
    },
)
def check(c, env="local", phase=None, check=None, format="table", output=None, param=None,
          list=False):
    """Run gate checks against an environment (read-only)."""
    import checks
    from cli.check_render import results_table
    from rollout import gates

    if list:
        gated_by = gates.gated_by()  # from the phases' own gate_checks tuples
        for cid, spec in checks.all_checks().items():
            print(f"{cid:<28} {spec.severity:<8} {','.join(gated_by.get(cid, [])):<40} {spec.title}")
        return
    _check_format(format)
    from rollout.environments import open_target

    with _could_not_run():
        if output:  # refused before any connection, not after the checks ran
            check_output_path(Path(output), "--output")
        params = parse_params(param or [])
        if check:
            ids = [i.strip() for i in check.split(",") if i.strip()]
            unknown = [i for i in ids if i not in checks.all_checks()]
            if unknown:
                raise checks.base.UnknownCheck(unknown[0])
        elif phase:
            ids = [*gates.checks_for(phase)]
        else:
            ids = [*checks.all_checks()]
        with open_target(env, project_dir()) as target:
            # A database that does not answer is "could not run" (exit 2), not seven failed
            # checks (exit 1): CI must tell a broken gate from a broken connection.
            require_reachable(target.name, target.db_url)
            ctx = gates.context(target.db_url, target.redis_url, target.settings, **params)
            results = checks.run_checks(ids, ctx)
    fails = sum(1 for r in results if r.verdict is checks.Verdict.FAIL)
    text = results_table(results) if format == "table" else checks.render(results, format)
    _emit(text, output,
          f"{len(results)} check(s): {fails} failed")
    if not checks.passed(results):
        raise Exit(f"phasegate: {fails} check(s) failed", code=1)
