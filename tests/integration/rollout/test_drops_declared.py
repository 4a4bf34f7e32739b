"""What ``rollout.drops`` says each revision's downgrade drops is what it drops, on a real
database: the drop rule (``--yes``, the typed-back name, the export of OPEN dead letters) is
only as good as these declarations."""

from __future__ import annotations

import psycopg

from migrations import api
from rollout import drops
from tests.conftest import to_dsn


def _objects(conn: psycopg.Connection) -> set[str]:
    tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    columns = {f"{t}.{c}" for t, c in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'")}
    return tables | columns


def test_each_revision_declares_exactly_the_tables_and_columns_its_downgrade_drops(make_db) -> None:
    """Every revision, walked down from head on a real database: what disappears is what
    ``rollout.drops`` says (a column counts when its table stays)."""
    url = make_db("head")
    chain = api.revision_chain()
    walked = []
    with psycopg.connect(to_dsn(url), autocommit=True) as conn:
        for revision in reversed(chain[1:]):  # the baseline is never dropped
            before = _objects(conn)
            api.downgrade(url, chain[chain.index(revision) - 1])
            after = _objects(conn)
            gone_tables = {o for o in before - after if "." not in o}
            gone = gone_tables | {o for o in before - after if o.split(".")[0] not in gone_tables}
            assert gone == set(drops.drops_of(revision)), revision
            walked.append(revision)
    assert walked == chain[:0:-1] and any(drops.drops_of(r) for r in walked)
    # A declaration names a shipped revision (a rename would leave it behind), and once.
    assert set(drops.DECLARED) <= set(chain)
    assert not [r for r in drops.DECLARED if hasattr(api.revision_module(r), "drops_data")]
