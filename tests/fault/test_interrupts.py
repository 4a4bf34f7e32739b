"""Ctrl-C and SIGTERM are first-class: a signal at a random moment in each phase stops the
command with one line that says where it stopped and the exact command that resumes; the
phase is marked ``interrupted`` (not ``applying``, which would look live) with an
``interrupted`` event naming the actor; and the printed command, run as printed, reaches
the same end state as an uninterrupted run. The demo stops the same way, with no traceback
from its workload processes."""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from rollout.phase import PHASE_ORDER
from tests.integration.rollout.harness import (
    apply_through,
    flags_of,
    make_target,
    phases_of,
    snapshot,
)

PROJECT = Path(__file__).resolve().parents[2]
# Slow enough that a signal lands inside the phase: a throttled backfill and prune, and a
# flag cache worth waiting out.
SLOW_TOML = """
[settings]
flag_ttl_seconds = 1.5
backfill_batch_size = 200
backfill_rows_per_second = 400
prune_batch_size = 200
lock_timeout_ms = 500
soak_seconds = 0
parity_grace_seconds = 2.0
triage_budget_ms = 2000
lease_seconds = 3600
"""


def _env(target, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "phasegate.toml").write_text(SLOW_TOML)
    return {**os.environ, "PHASEGATE_CONFIG": str(tmp_path / "phasegate.toml"),
            "PHASEGATE_SIG_DB_URL": target.db_url, "PHASEGATE_SIG_REDIS_URL": target.redis_url,
            "PHASEGATE_ACTOR": "night-shift", "PHASEGATE_LOG_LEVEL": "WARNING"}


def _status(target, phase: str) -> str | None:
    with psycopg.connect(target.dsn) as conn:
        if not conn.execute("SELECT to_regclass('phasegate_rollout_state')").fetchone()[0]:
            return None
        row = conn.execute("SELECT status FROM phasegate_rollout_state WHERE phase = %s",
                           (phase,)).fetchone()
    return row[0] if row else None


# Two representative cells in the default run; every phase under both signals with -m slow.
DEFAULT_CELLS = {("dual_write", signal.SIGINT), ("cutover", signal.SIGTERM)}
CELLS = [pytest.param(phase, sig, id=f"{phase}-{sig.name}",
                      marks=() if (phase, sig) in DEFAULT_CELLS else (pytest.mark.slow,))
         for phase in PHASE_ORDER for sig in (signal.SIGINT, signal.SIGTERM)]


@pytest.mark.parametrize("phase, sig", CELLS)
def test_a_signal_mid_phase_is_recorded_and_the_printed_command_resumes(
        phase, sig, make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=3000, name="sig")
    if phase != "expand":
        apply_through(target, PHASE_ORDER[PHASE_ORDER.index(phase) - 1], tmp_path)
    env = _env(target, tmp_path)
    cmd = [sys.executable, "-m", "invoke", "-r", str(PROJECT), "rollout", "--phase", phase,
           "--env", "sig", "--yes"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while _status(target, phase) != "applying" and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    # A random moment inside the phase (expand and retention take a fraction of a second).
    time.sleep(random.uniform(0.0, 0.05 if phase in ("expand", "retention") else 0.4))
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    if proc.returncode != 130 and _status(target, phase) == "gated":
        # The phase was quicker than the signal, which then met the interpreter on its way
        # out (finished, not interrupted): nothing to resume.
        pytest.skip(f"{phase} finished before the signal landed")
    name = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
    lines = err.strip().splitlines()
    assert proc.returncode == 130, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"phasegate: {phase}: stopped by {name}"), lines[0]
    assert _status(target, phase) == "interrupted"
    with psycopg.connect(target.dsn) as conn:
        event = conn.execute(
            "SELECT actor, detail FROM phasegate_rollout_event WHERE phase = %s AND "
            "event = 'interrupted' ORDER BY id DESC LIMIT 1", (phase,)).fetchone()
    assert event is not None and event[0] == "night-shift" and event[1]["signal"] == name

    resume = lines[0].split("resume with: ", 1)[1]
    assert resume == f"invoke rollout --env sig --phase {phase}"
    again = subprocess.run([*shlex.split(resume), "--yes"], cwd=PROJECT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    after = snapshot(target)
    assert phases_of(after)[phase] == "gated"
    # The same end state as an uninterrupted run of the phase.
    reference = make_target(make_db("baseline"), redis_url, jobs=3000, name="ref")
    apply_through(reference, phase, tmp_path / "ref")
    ref = snapshot(reference)
    assert phases_of(after) == phases_of(ref)
    assert flags_of(after) == flags_of(ref)
    for part in ("revision", "tables", "indexes", "columns", "enums", "counts"):
        assert getattr(after, part) == getattr(ref, part), part


@pytest.mark.slow
def test_ctrl_c_in_the_demo_is_one_line_and_no_worker_traceback(tmp_path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "-r", str(PROJECT), "demo", "--env",
                             "ci", "--jobs", "3000"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(8)  # seeded, workload running, a phase under way
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole process group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out[-500:], err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "crashed" not in out
    final = err.strip().splitlines()[-1]
    assert final.startswith("phasegate:") and "stopped by Ctrl-C" in final, err
