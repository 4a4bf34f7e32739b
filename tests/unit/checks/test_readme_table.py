"""checks/README.md's check table against the truths it repeats: the registry (ids, titles,
the settings each check reads), the phases' ``gate_checks`` tuples (the gates column) and
``Settings`` (the defaults). Edit one without the other and this fails."""

from __future__ import annotations

import re
from pathlib import Path

import checks
from rollout import gates
from rollout.settings import Settings

README = Path(__file__).resolve().parents[3] / "checks" / "README.md"
HEADER = "| id | gates | title | settings read (default) |"
SETTING = re.compile(r"^`(?P<name>[a-z_]+)` \((?P<default>[0-9.]+)\)$")


def _rows() -> dict[str, tuple[list[str], str, list[tuple[str, float]]]]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADER))
    rows: dict[str, tuple[list[str], str, list[tuple[str, float]]]] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        check_id = cells[0].strip("`")
        settings: list[tuple[str, float]] = []
        if cells[3] != "–":
            for item in cells[3].split(", "):
                m = SETTING.match(item)
                assert m, f"{check_id}: cannot read {item!r} (write `name` (default))"
                settings.append((m["name"], float(m["default"])))
        rows[check_id] = ([g.strip() for g in cells[1].split(",")], cells[2], settings)
    return rows


def test_readme_table_matches_the_registry_the_phases_and_settings() -> None:
    rows, registry = _rows(), checks.all_checks()
    assert list(rows) == list(registry), "same checks, in registration order"
    gated_by, defaults = gates.gated_by(), Settings().gate_params()
    for cid, spec in registry.items():
        phases, title, settings = rows[cid]
        assert phases == gated_by[cid], cid
        assert title == spec.title, cid
        assert [name for name, _ in settings] == list(spec.reads), cid
        for name, default in settings:
            assert default == float(defaults[name]), (cid, name)
