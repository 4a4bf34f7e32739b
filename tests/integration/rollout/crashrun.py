"""A rollout in a child process, for crash tests: ``python -m tests.integration.rollout.crashrun
DB_URL REDIS_URL PHASE|rollback[:TO] PLANS_DIR``. Exit 0 on success, 3 on a rollout error."""

from __future__ import annotations

import sys
from pathlib import Path

from rollout.engine import Rollout
from rollout.environments import Target
from rollout.errors import RolloutError
from tests.integration.rollout.harness import FAST


def main(argv: list[str]) -> int:
    db_url, redis_url, what, plans = argv
    ro = Rollout(Target("test", db_url, redis_url, False, FAST), "crash-test", plans_dir=Path(plans))
    try:
        if what.startswith("rollback"):
            _, _, to = what.partition(":")
            # The consent a rollback that drops rows asks for, given explicitly (rollout/drops.py);
            # the export file is the same on a resumed run, which keeps it when unchanged.
            ro.rollback(to or None, yes=True, export=Path(plans) / "dead-letters.jsonl")
        else:
            ro.apply(what, yes=True)
    except RolloutError as exc:
        print(exc, file=sys.stderr)
        return 3
    finally:
        ro.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
