"""Migration files: names, ids and chain order say the same thing (no servers needed)."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from migrations.config import SCRIPT_LOCATION, alembic_config
from migrations.points import BASELINE, CONTRACT, EXPAND, HEAD, KIT, RENAMED
from rollout.state import current_action_id

VERSIONS = SCRIPT_LOCATION / "versions"


def _chain() -> list:  # type: ignore[type-arg]
    """Alembic's revisions, base first."""
    return list(reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions())))


def test_sorted_file_order_is_the_chain_order() -> None:
    files = sorted(p.name for p in VERSIONS.glob("p*.py"))
    assert files == [Path(rev.path).name for rev in _chain()]


def test_each_file_is_named_by_its_revision_id_and_fits_alembic_version() -> None:
    for rev in _chain():
        assert Path(rev.path).stem == rev.revision
        assert len(rev.revision) <= 32, rev.revision  # alembic_version.version_num varchar(32)


def test_points_and_phases_follow_the_chain() -> None:
    ids = [rev.revision for rev in _chain()]
    assert ids[-1] == HEAD == CONTRACT
    assert ids.index(BASELINE) < ids.index(KIT) < ids.index(EXPAND) < ids.index(CONTRACT)
    phases = [rev.module.phase for rev in _chain()]
    last_expand = max(i for i, p in enumerate(phases) if p == "expand")
    assert ids[last_expand] == EXPAND
    assert all(p == "contract" for p in phases[last_expand + 1:])


def test_renamed_ids_are_retired_and_point_at_shipped_revisions() -> None:
    ids = {rev.revision for rev in _chain()}
    for old, new in RENAMED.items():
        assert old not in ids and new in ids
        assert len(old) <= 32
    assert set(RENAMED).isdisjoint(RENAMED.values())


def test_rollout_state_reads_an_old_migrate_action_under_its_new_id() -> None:
    assert current_action_id("contract.migrate.p0010_contract_legacy_job_index") == \
        f"contract.migrate.{CONTRACT}"
    assert current_action_id("expand.migrate.p0011_expand_grants") == "expand.migrate.p0011_expand_grants"
    assert current_action_id("contract.expire_legacy_keys") == "contract.expire_legacy_keys"
