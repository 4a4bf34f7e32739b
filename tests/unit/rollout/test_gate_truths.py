"""Each truth once: a phase's own ``gate_checks`` tuple decides what gates it, and every
threshold a check reads has its one default in ``Settings``.

No servers: plans need no connection, and the status column is a pure function of the
phase and its last recorded gate.
"""

from __future__ import annotations

import ast
import copy
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import checks
from checks.base import CONNECTION_READS, REGISTRY, Outcome, Probe, Verdict
from ledger.errors import ConfigError
from rollout import gates
from rollout import plan as plans
from rollout.environments import Target
from rollout.phase import PHASE_ORDER
from rollout.phases import PHASES
from rollout.settings import Settings

PROJECT = Path(__file__).resolve().parents[3]
CHECK_MODULES = PROJECT / "checks"


def _target(settings: Settings | None = None) -> Target:
    return Target("test", "postgresql+psycopg://u:pw@127.0.0.1:1/db", "redis://127.0.0.1:1/0",
                  settings=settings or Settings())


def _variant(phase_name: str, gate_checks: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """The phase object with only its tuple changed, as an edit of its module would."""
    phase = copy.copy(PHASES[phase_name])
    phase.gate_checks = gate_checks
    return phase


def test_every_phase_declares_registered_checks_and_every_check_gates_something() -> None:
    registry = checks.all_checks()
    for name in PHASE_ORDER:
        ids = PHASES[name].gate_checks
        assert ids and len(set(ids)) == len(ids), name
        assert set(ids) <= set(registry), (name, set(ids) - set(registry))
    assert set(gates.PREFLIGHT_CHECKS) <= set(registry)
    assert set(gates.gated_by()) == set(registry), "a registered check gates nothing"
    assert "migrations_lint" in PHASES["expand"].gate_checks
    assert "shadow_read" in PHASES["cutover"].gate_checks  # the cutover apply calls it by id


def test_checks_for_reads_the_phase_tuple_and_rejects_unknown_names() -> None:
    for name in PHASE_ORDER:
        assert gates.checks_for(name) == PHASES[name].gate_checks
    assert gates.checks_for("preflight") == gates.PREFLIGHT_CHECKS
    assert gates.checks_for("dual-write") == PHASES["dual_write"].gate_checks
    with pytest.raises(ConfigError, match="unknown phase 'launch'; choose one of preflight"):
        gates.checks_for("launch")


def test_changing_a_tuple_changes_the_plan_gate_section(monkeypatch: pytest.MonkeyPatch) -> None:
    before = plans.build(_target(), "cutover", plans.table_sizes(None))
    assert "parity" in [c["id"] for c in before["gate"]["checks"]]

    monkeypatch.setitem(PHASES, "cutover", _variant("cutover", ("schema_valid", "triage_budgets")))
    after = plans.build(_target(), "cutover", plans.table_sizes(None))
    assert after["gate"]["checks"] == [
        {"id": "schema_valid", "title": REGISTRY["schema_valid"].title, "thresholds": {}},
        {"id": "triage_budgets", "title": REGISTRY["triage_budgets"].title,
         "thresholds": {"triage_budget_ms": 250.0, "triage_min_rows": 10_000}},
    ]
    md = plans.render_markdown(after)
    section = md.split("## Go / no-go (the gate)")[1].split("## Irreversible points")[0]
    assert "`schema_valid`" in section and "`triage_budget_ms` = 250" in section
    assert "parity" not in section and "lease_seconds" not in section
    assert after["gate"]["description"] == (f"{REGISTRY['schema_valid'].title}; "
                                            f"{REGISTRY['triage_budgets'].title} "
                                            "(triage_budget_ms=250, triage_min_rows=10000)")


def test_changing_a_tuple_changes_the_status_gate_column(monkeypatch: pytest.MonkeyPatch) -> None:
    last_gate = [{"check_id": "schema_valid", "verdict": "pass"},
                 {"check_id": "parity", "verdict": "fail"}]
    shown = gates.status_gate(PHASES["cutover"], last_gate)
    assert [g["check"] for g in shown] == list(PHASES["cutover"].gate_checks)
    assert {"check": "parity", "verdict": "fail", "summary": ""} in shown

    variant = _variant("cutover", ("schema_valid", "triage_budgets"))
    assert gates.status_gate(variant, last_gate) == [
        {"check": "schema_valid", "verdict": "pass"},
        {"check": "triage_budgets", "verdict": "pending"},
    ]


def test_plan_thresholds_are_the_environment_settings_and_only_those_read() -> None:
    p = plans.build(_target(Settings(triage_budget_ms=20.0)), "retention", plans.table_sizes(None))
    by_id = {c["id"]: c["thresholds"] for c in p["gate"]["checks"]}
    assert by_id["triage_budgets"]["triage_budget_ms"] == 20.0
    for cid, thresholds in by_id.items():
        assert list(thresholds) == list(REGISTRY[cid].reads), cid
    assert "lock_timeout_ms" not in str(p["gate"])  # a DDL setting no check reads


def test_every_setting_a_check_reads_is_a_settings_field() -> None:
    names = {f.name for f in fields(Settings)}
    for spec in checks.all_checks().values():
        assert set(spec.reads) <= names, (spec.check_id, set(spec.reads) - names)
    assert set(CONNECTION_READS) <= names
    assert set(Settings().gate_params()) == names


def _setting_reads(path: Path) -> set[str]:
    """Names passed to ``probe.setting("...")`` anywhere in a check module."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "setting" and node.args
                and isinstance(node.args[0], ast.Constant)):
            out.add(node.args[0].value)
    return out


def test_each_check_module_reads_exactly_what_its_checks_declare() -> None:
    declared: dict[str, set[str]] = {}
    for spec in checks.all_checks().values():
        module = spec.fn.__module__.rsplit(".", 1)[-1]
        declared.setdefault(module, set()).update(spec.reads)
    for module, reads in declared.items():
        assert _setting_reads(CHECK_MODULES / f"{module}.py") == reads, module


def test_no_check_keeps_a_default_of_its_own() -> None:
    # The old shape was ``ctx.param("triage_budget_ms", 50)``: a second default that drifted
    # (Settings said 250). No call in checks/ may pair a setting's name with a fallback.
    names = {f.name for f in fields(Settings)}
    for path in CHECK_MODULES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr != "param", f"{path.name}:{node.lineno}"
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and first.value in names:
                    assert len(node.args) == 1 and not node.keywords, \
                        f"{path.name}:{node.lineno}: a default for {first.value}"


def test_an_undeclared_setting_read_fails_the_check() -> None:
    def sneaky(probe: Probe) -> Outcome:
        return Outcome(Verdict.PASS, str(probe.setting("lease_seconds")))

    probe = Probe(conn=None, ctx=gates.context("postgresql+psycopg://x@h/db", None),  # type: ignore[arg-type]
                  reads=())
    with pytest.raises(checks.base.PhasegateError, match="without declaring it"):
        sneaky(probe)
    declared = Probe(conn=None, ctx=probe.ctx, reads=("lease_seconds",))  # type: ignore[arg-type]
    assert sneaky(declared).summary == str(Settings().lease_seconds)


def _invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=PROJECT, text=True,
                          capture_output=True, timeout=120, env={**os.environ})


def test_cli_check_list_shows_the_phases_own_tuples() -> None:
    done = _invoke("check", "--list")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0]: line.split()[2].split(",") for line in done.stdout.splitlines()
              if line.strip()}
    assert listed == gates.gated_by()
