"""A rollout killed with SIGKILL in the middle of each phase, re-run, reaches the same end
state as an uninterrupted run (schema, flags, rollout state, row counts, Redis keys)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from infra.fault_injection import FAULT_ENV
from rollout.phase import PHASE_ORDER
from rollout.phases import PHASES
from tests.integration.rollout.harness import apply_through, make_target, snapshot

ROOT = Path(__file__).resolve().parents[3]


def run_child(target, what: str, plans: Path, fault: str | None = None) -> int:
    env = dict(os.environ)
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integration.rollout.crashrun", target.db_url,
         target.redis_url, what, str(plans)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode


def comparable(s):
    # Everything but the Redis TTL split, which depends on wall-clock time of expiry.
    return (s.revision, s.tables, s.indexes, s.columns, s.enums, s.flags, s.phases, s.counts, s.redis_keys)


def middle_action(phase: str) -> str:
    actions = PHASES[phase].plan()
    return actions[len(actions) // 2].id


# dual_write (flags, a wait and the long backfill) runs in the default suite; the rest with
# `-m slow` (CI runs them when its budget allows; the full crash matrix is tests/fault/).
@pytest.mark.parametrize(
    "phase", [p if p == "dual_write" else pytest.param(p, marks=pytest.mark.slow) for p in PHASE_ORDER])
def test_killed_mid_phase_resumes_to_the_same_end_state(phase, make_db, redis_server, tmp_path) -> None:
    import redis as redis_lib

    # Two targets on separate Redis databases of the same server: killed vs uninterrupted.
    base = redis_server.url.rsplit("/", 1)[0]
    urls = (f"{base}/1", f"{base}/2")
    for url in urls:
        redis_lib.Redis.from_url(url).flushdb()
    killed = make_target(make_db("baseline"), urls[0], jobs=1500)
    clean = make_target(make_db("baseline"), urls[1], jobs=1500)
    idx = PHASE_ORDER.index(phase)
    for t in (killed, clean):
        if idx:
            apply_through(t, PHASE_ORDER[idx - 1], tmp_path)

    assert run_child(clean, phase, tmp_path / "clean") == 0
    fault = f"after:{middle_action(phase)}"
    assert run_child(killed, phase, tmp_path / "killed", fault) == -signal.SIGKILL
    mid = snapshot(killed)
    assert dict(mid.phases)[phase] == "applying", "killed mid-phase"
    assert run_child(killed, phase, tmp_path / "killed") == 0
    assert comparable(snapshot(killed)) == comparable(snapshot(clean))
