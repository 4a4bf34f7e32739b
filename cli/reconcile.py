"""``invoke reconcile``: repair Redis job status from the run ledger.

In ``write_mode=dual`` the database is written first and is the truth; a Redis write that
failed (an outage, a restart that lost data) is counted and left for this command, which
rewrites the status hash of every run requested in ``[--since, --until)`` whose status,
attempt, run key or error class differ from the ledger's. In any other mode it refuses:
in ``redis_only`` the database is not the truth, in ``db_only`` Redis is being retired.
"""

from __future__ import annotations

from datetime import UTC, datetime

from invoke import task

from cli.base import clean_errors, project_dir
from phasegate.durations import is_duration, parse_duration
from phasegate.errors import ConfigError, Refused
from phasegate.text import printable

SHOWN_KEYS = 20  # repaired run keys printed; the count is always exact


def parse_time(flag: str, value: str, now: datetime) -> datetime:
    """``2h`` / ``30m`` / ``7d`` (that long before ``now``) or an ISO-8601 time (naive = UTC)."""
    if is_duration(value):
        return now - parse_duration(value, flag)
    try:
        at = datetime.fromisoformat((value or "").strip())
    except ValueError:
        raise ConfigError(f"{flag} must be a duration like 2h or 7d, or an ISO-8601 time, "
                          f"not {printable(str(value), 60)!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _errors() -> tuple[type[BaseException], ...]:
    """Connection failures are the operator's to fix: one line (imported lazily)."""
    import psycopg
    import redis
    from sqlalchemy.exc import SQLAlchemyError

    return (psycopg.OperationalError, SQLAlchemyError, redis.RedisError)


@task(help={
    "env": "environment to repair (default local)",
    "since": "start of the range: a duration before now (2h, 7d) or an ISO-8601 time (required)",
    "until": "end of the range (default now): same forms as --since",
})
def reconcile(c, env="local", since=None, until=None):
    """Rewrite Redis job status from the run ledger for runs requested in a time range."""
    from ledger.app import LedgerApp
    from rollout.environments import open_target

    with clean_errors(*_errors()):
        if not since:
            raise ConfigError("--since is required (e.g. --since 2h or --since 2026-01-01T00:00)")
        now = datetime.now(UTC)
        start = parse_time("--since", since, now)
        end = parse_time("--until", until, now) if until else now
        if start >= end:
            raise ConfigError(f"--since ({start:%Y-%m-%dT%H:%M:%SZ}) must be before --until "
                              f"({end:%Y-%m-%dT%H:%M:%SZ})")
        with open_target(env, project_dir()) as target:
            app = LedgerApp(target.db_url, target.redis_url, flag_ttl=0, pool_size=2)
            try:
                # Read the flags first, uncached: an unreachable database must stop here, not
                # be papered over by the ledger's last-known-modes fallback.
                app.flags.modes()
                report = app.reconcile(start, end)
            finally:
                app.close()
        if report.skipped_reason:
            raise Refused(
                f"reconcile refused on {target.name}: {report.skipped_reason}; it repairs Redis "
                "only while write_mode=dual (the database is the truth and Redis is still read)")
    print(f"{target.name}: checked {report.checked} run(s) requested "
          f"{start:%Y-%m-%dT%H:%M:%SZ} .. {end:%Y-%m-%dT%H:%M:%SZ}; repaired {report.repaired}")
    if report.legacy_moved:
        print(f"  moved {report.legacy_moved} status hash(es) from pre-encoding keys to their "
              "runs' keys (see ledger/README.md, \"Run keys\")")
    for key in report.repaired_keys[:SHOWN_KEYS]:
        print(f"  repaired {printable(key)}")
    if report.repaired > SHOWN_KEYS:
        print(f"  ... and {report.repaired - SHOWN_KEYS} more")
