"""phasegate's Invoke entry point: the whole command namespace, built explicitly.

``invoke --list`` in the repository and ``phasegate --list`` anywhere show the same tasks,
because the console command (``cli/program.py``) serves this very collection. Each task
lives in a thin module under ``cli/``; ``invoke --help TASK`` shows its flags.
"""

from __future__ import annotations

from invoke import Collection

from cli import checks, demo, dlq, local, provision, reconcile, rollout, verify
from cli.base import install_signal_handlers
from cli.logs import configure_logging

# Rollout, dead-letter and write-path log lines reach the terminal (stderr), as text or as
# JSON lines: PHASEGATE_LOG_FORMAT=text|json, PHASEGATE_LOG_LEVEL (default INFO);
# `phasegate --log-format json ...` sets the same.
configure_logging()
# SIGTERM (a CI job cancelled, a pod stopped) stops a command the way Ctrl-C does: one line,
# the phase marked interrupted, the command that resumes it.
install_signal_handlers()

ns = Collection()
# The release manager's commands.
ns.add_task(rollout.rollout)
ns.add_task(rollout.plan)
ns.add_task(rollout.migrate)
ns.add_task(reconcile.reconcile)
# CI and the gate checks.
ns.add_task(verify.verify)
ns.add_task(checks.check)
ns.add_task(checks.lint)
# The platform engineer's and the new user's.
ns.add_task(provision.provision)
ns.add_task(demo.demo)
# The on-call operator's dead letters, and the embedded local servers.
ns.add_collection(Collection.from_module(dlq, name="dlq"))
ns.add_collection(Collection.from_module(local, name="local"))
