"""``invoke dlq.list|show|requeue|discard``: the operator's dead-letter actions.

The target database comes from ``--db-url`` (or ``PHASEGATE_DB_URL``), else from the
environment named by ``--env`` (default ``local``) via ``rollout.environments``. Flags are
parsed here; what ``list`` and ``show`` print is ``cli/dlq_render.py``.
"""

from __future__ import annotations

import os
from datetime import timedelta

from invoke import task

from cli.base import clean_errors, project_dir
from phasegate.actor import resolve_actor
from phasegate.durations import parse_duration
from phasegate.errors import ConfigError

ENV_HELP = "environment to act on (default local)"
URL_HELP = "database URL (overrides --env; or PHASEGATE_DB_URL)"
FORMATS = ("table", "json")


def parse_age(text: str) -> timedelta:
    """'90s', '15m', '1h', '2d', '1w' -> timedelta; anything else is a ConfigError."""
    return parse_duration(text, "--older-than")


def parse_id(text: object) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise ConfigError(f"--id must be a dead letter's number, not {text!r}") from None
    if value <= 0:
        raise ConfigError(f"--id must be a positive number, not {value}")
    return value


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def _db_errors() -> tuple[type[BaseException], ...]:
    """Connection failures are the operator's to fix (wrong URL, server down): one line.
    Imported lazily: ``invoke --list`` should not pay for SQLAlchemy."""
    import psycopg
    from sqlalchemy.exc import SQLAlchemyError

    return (psycopg.OperationalError, SQLAlchemyError)


def _dead_letters(env: str, db_url: str | None):  # type: ignore[no-untyped-def]
    from ledger.db import Database
    from ledger.deadletter import DeadLetters

    url = db_url or os.environ.get("PHASEGATE_DB_URL")
    if not url:
        from rollout.environments import resolve_target

        url = resolve_target(env, project_dir()).db_url
    return DeadLetters(Database(url, pool_size=1, max_overflow=0))


def _operator(operator: str | None) -> str:
    """The display name recorded beside the database role (the audit's ``db_role`` is the
    role that logged in, which the database records itself): --operator, else
    $PHASEGATE_ACTOR, else the login name (the one rule every command follows,
    phasegate.actor); refused only when none of them names anyone."""
    who = resolve_actor(operator)
    if not who:
        raise ConfigError("say who you are: --operator NAME (no $PHASEGATE_ACTOR, no login name)")
    return who


@task(name="list", help={
    "function": "only this function (job type)", "error_class": "retriable | terminal",
    "older_than": "only dead letters older than this (30m, 1h, 2d)",
    "status": "OPEN (default), REQUEUED, DISCARDED or all", "limit": "at most this many",
    "format": "table | json", "env": ENV_HELP, "db_url": URL_HELP})
def list_(c, function=None, error_class=None, older_than=None, status="OPEN", limit=100,
          format="table", env="local", db_url=None):
    """List dead letters (newest first)."""
    from cli import dlq_render

    with clean_errors(*_db_errors()):
        fmt = check_format(format)
        age = parse_age(older_than) if older_than else None
        klass = error_class.upper() if error_class else None
        if klass not in (None, "RETRIABLE", "TERMINAL"):
            raise ConfigError(f"--error-class must be retriable or terminal, not {error_class!r}")
        wanted = None if status.lower() == "all" else status.upper()
        if wanted not in (None, "OPEN", "REQUEUED", "DISCARDED"):
            raise ConfigError(f"--status must be OPEN, REQUEUED, DISCARDED or all, not {status!r}")
        letters = _dead_letters(env, db_url).list(function=function, error_class=klass,
                                                  older_than=age, status=wanted,
                                                  limit=int(limit))
        if fmt == "json":
            print(dlq_render.to_json(letters))
        else:
            dlq_render.print_letters(letters)


@task(help={"id": "dead letter id", "format": "table | json",
            "operator": "your display name in the audit, beside the database role (default $PHASEGATE_ACTOR, else the login name; the inspection is audited)",
            "env": ENV_HELP, "db_url": URL_HELP})
def show(c, id=None, format="table", operator=None, env="local", db_url=None):
    """Show one dead letter with its full attempt history and audit trail."""
    from cli import dlq_render

    with clean_errors(*_db_errors()):
        fmt = check_format(format)
        who = _operator(operator)
        detail = _dead_letters(env, db_url).show(parse_id(id), operator=who)
        if fmt == "json":
            print(dlq_render.to_json(detail))
        else:
            dlq_render.print_detail(detail)


@task(help={"id": "dead letter id", "operator": "your display name in the audit, beside the database role (default $PHASEGATE_ACTOR, else the login name)",
            "reason": "why (recorded in the audit)", "env": ENV_HELP, "db_url": URL_HELP})
def requeue(c, id=None, operator=None, reason=None, env="local", db_url=None):
    """Send an OPEN dead letter back to the queue as a fresh job from its own snapshot (audited)."""
    with clean_errors(*_db_errors()):
        dl_id, who = parse_id(id), _operator(operator)
        res = _dead_letters(env, db_url).requeue(dl_id, who, reason)
    print(f"dead letter {res.dead_letter_id} requeued as job {res.new_job_id} "
          f"(correlation {res.correlation_id})")


@task(help={"id": "dead letter id", "reason": "why (required)",
            "operator": "your display name in the audit, beside the database role (default $PHASEGATE_ACTOR, else the login name)", "env": ENV_HELP, "db_url": URL_HELP})
def discard(c, id=None, reason=None, operator=None, env="local", db_url=None):
    """Close an OPEN dead letter with a reason; history is kept (audited)."""
    with clean_errors(*_db_errors()):
        dl_id, who = parse_id(id), _operator(operator)
        done = _dead_letters(env, db_url).discard(dl_id, who, reason or "")
    print(f"dead letter {done.id} discarded by {done.resolved_by}: {done.resolution_reason}")
