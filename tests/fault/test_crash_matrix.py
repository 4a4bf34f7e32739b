"""The crash matrix: every action of every phase, forward and rollback, SIGKILLed before it,
while it runs (after its effect, before its checkpoint; and mid-way for long actions) and
just after it; the same command run again must reach the end state of an uninterrupted run
(schema, flags, rollout state, row counts, Redis keys).

Generated from the phases' own action lists: a new action is covered without a new test.
Each starting state is prepared once and cloned per cell (CREATE DATABASE ... TEMPLATE,
Redis DUMP/RESTORE), so a cell costs two short child processes.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis as redis_lib
from psycopg import sql

from rollout.phase import PHASE_ORDER
from rollout.phases import PHASES
from tests.integration.rollout.harness import apply_through, make_target, snapshot
from tests.integration.rollout.test_crash_resume import comparable, run_child

FORWARD_POINTS = ("before", "applied", "after")
ROLLBACK_POINTS = ("before_undo", "undone", "after_undo")


@dataclass(frozen=True)
class Cell:
    phase: str
    direction: str  # forward | rollback
    action_id: str
    point: str

    @property
    def id(self) -> str:
        return f"{self.direction}-{self.point}-{self.action_id}"

    @property
    def command(self) -> str:
        if self.direction == "forward":
            return self.phase
        idx = PHASE_ORDER.index(self.phase)
        return f"rollback:{PHASE_ORDER[idx - 1] if idx else 'baseline'}"

    @property
    def start(self) -> str:
        """The phase the target is gated through before the command runs."""
        idx = PHASE_ORDER.index(self.phase)
        if self.direction == "rollback":
            return self.phase
        return PHASE_ORDER[idx - 1] if idx else ""


def cells() -> list[Cell]:
    out: list[Cell] = []
    for name, phase in PHASES.items():
        actions = phase.plan()
        for a in actions:
            # Long actions (backfill, first prune, key expiry) are also killed after a batch.
            for point in FORWARD_POINTS + (("during",) if a.long_running else ()):
                out.append(Cell(name, "forward", a.id, point))
        rollback_stops = any(a.rollback_stops for a in actions)
        if rollback_stops:
            continue  # contract: rollback is refused before any undo runs (tested elsewhere)
        for a in actions:
            for point in ROLLBACK_POINTS:
                out.append(Cell(name, "rollback", a.id, point))
    return out


CELLS = cells()

# The default run's representative subset (every cell runs under `-m slow`): a DDL revision
# killed between two concurrent index builds, and a flag undo killed after the flip, before
# its checkpoint (the backfill's kill runs by default in tests/integration/rollout/).
DEFAULT_CELLS = (
    "forward-during-expand.migrate.p0008_expand_job_indexes",
    "rollback-undone-cutover.flag.read_source",
)


def _param(cell: Cell):  # type: ignore[no-untyped-def]
    marks = () if cell.id in DEFAULT_CELLS else (pytest.mark.slow,)
    return pytest.param(cell, id=cell.id, marks=marks)


class Prepared:
    """Starting states as template databases plus a Redis snapshot, built once each."""

    def __init__(self, pg_server, redis_server, make_db, tmp_path_factory) -> None:
        self.pg, self.redis_base = pg_server, redis_server.url.rsplit("/", 1)[0]
        self.make_db, self.tmp = make_db, tmp_path_factory
        self.states: dict[str, tuple[str, dict]] = {}
        self.references: dict[tuple[str, str], object] = {}

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.pg.dsn(), autocommit=True)

    def state(self, start: str) -> tuple[str, dict]:
        if start not in self.states:
            url = f"{self.redis_base}/6"
            r = redis_lib.Redis.from_url(url)
            r.flushdb()
            target = make_target(self.make_db("baseline"), url, jobs=1200)
            if start:
                apply_through(target, start, self.tmp.mktemp("prep"))
            keys = {k: (r.dump(k), r.pttl(k)) for k in r.scan_iter(count=1000)}
            r.close()
            tpl = f"crash_tpl_{start or 'baseline'}"
            src = target.db_url.rsplit("/", 1)[1]
            with self._admin() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(tpl)))
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(tpl), sql.Identifier(src)))
            self.states[start] = (tpl, keys)
        return self.states[start]

    def clone(self, start: str, name: str, redis_db: int):
        tpl, keys = self.state(start)
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(tpl)))
        url = f"{self.redis_base}/{redis_db}"
        r = redis_lib.Redis.from_url(url)
        r.flushdb()
        pipe = r.pipeline(transaction=False)
        for key, (payload, pttl) in keys.items():
            pipe.restore(key, max(pttl, 0), payload, replace=True)
        pipe.execute()
        r.close()
        from rollout.environments import Target
        from tests.integration.rollout.harness import FAST

        return Target("test", self.pg.sqlalchemy_url(name), url, False, FAST)

    def reference(self, cell: Cell, plans: Path):
        key = (cell.start, cell.command)
        if key not in self.references:
            target = self.clone(cell.start, "crash_ref", 7)
            assert run_child(target, cell.command, plans) == 0
            self.references[key] = comparable(snapshot(target))
        return self.references[key]


@pytest.fixture(scope="module")
def prepared(pg_server, redis_server, db_templates, tmp_path_factory):
    return Prepared(pg_server, redis_server, db_templates.create, tmp_path_factory)


@pytest.mark.parametrize("cell", [_param(c) for c in CELLS])
def test_crash_cell_reaches_the_uninterrupted_end_state(cell: Cell, prepared, tmp_path) -> None:
    expected = prepared.reference(cell, tmp_path / "ref")
    target = prepared.clone(cell.start, "crash_cell", 8)
    rc = run_child(target, cell.command, tmp_path / "plans", fault=f"{cell.point}:{cell.action_id}")
    assert rc == -signal.SIGKILL, f"the fault point {cell.point}:{cell.action_id} was not reached (rc {rc})"
    assert run_child(target, cell.command, tmp_path / "plans") == 0
    assert comparable(snapshot(target)) == expected


def test_the_matrix_covers_every_action_both_ways() -> None:
    """Cheap guard (default run): the generated matrix names every action of every phase."""
    forward = {c.action_id for c in CELLS if c.direction == "forward"}
    backward = {c.action_id for c in CELLS if c.direction == "rollback"}
    for phase in PHASES.values():
        ids = {a.id for a in phase.plan()}
        assert ids <= forward
        if not any(a.rollback_stops for a in phase.plan()):
            assert ids <= backward
    assert len(CELLS) >= 3 * sum(len(p.plan()) for p in PHASES.values())
    during = {c.action_id for c in CELLS if c.point == "during"}
    assert during == {a.id for p in PHASES.values() for a in p.plan() if a.long_running}
    assert set(DEFAULT_CELLS) <= {c.id for c in CELLS}


def test_every_revision_that_builds_an_index_is_killed_mid_way() -> None:
    """A new revision with a concurrent index build must declare ``long_running`` so the
    matrix kills it between builds (its 'during' cell); this keeps that from being forgotten."""
    import inspect

    from alembic.script import ScriptDirectory

    from migrations.config import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    builders = {s.revision for s in script.walk_revisions()
                if "create_index_concurrently(" in inspect.getsource(s.module.upgrade)}
    assert builders, "no revision builds an index: this guard would prove nothing"
    declared = {s.revision for s in script.walk_revisions() if getattr(s.module, "long_running", False)}
    assert builders <= declared
    during = {c.action_id.rsplit(".", 1)[1] for c in CELLS if c.point == "during" and ".migrate." in c.action_id}
    # Revisions the phases apply forward (contract's p0090 only drops an index going forward).
    assert builders <= during
