"""The crash tests' kill switch: named points where a rollout may be SIGKILLed on purpose.

**Inert unless the test environment variable is set.** ``PHASEGATE_FAULT_INJECT`` is unset in
every normal run, and then :func:`fault_point` only reads it and returns. The crash matrix
(``tests/fault/test_crash_matrix.py``) sets it for one child process at a time to
``<point>:<action id>`` (e.g. ``after:expand.migrate.p0005_expand_function_run``), and that
process kills itself when it reaches that point: the test then checks that running the same
command again reaches the state an uninterrupted run reaches.

Here, not in the engine, so that ``migrations/`` (a revision killed between two index builds)
can call it without importing the rollout or the ledger: this module needs only the standard
library.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from contextvars import ContextVar

FAULT_ENV = "PHASEGATE_FAULT_INJECT"

# The action the executor is running, for code that does not know which action called it (a
# revision's index builds name only the point).
_running_action: ContextVar[str | None] = ContextVar("phasegate_running_action", default=None)


def fault_point(where: str, action_id: str | None = None) -> None:
    """SIGKILL this process when ``PHASEGATE_FAULT_INJECT`` is ``where:action_id``; otherwise
    do nothing. ``action_id`` defaults to the action :func:`running` marks."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    action_id = action_id or _running_action.get()
    if action_id is not None and wanted == f"{where}:{action_id}":
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def running(action_id: str) -> Iterator[None]:
    """Mark ``action_id`` as the running action while the block runs."""
    token = _running_action.set(action_id)
    try:
        yield
    finally:
        _running_action.reset(token)
