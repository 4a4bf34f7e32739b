"""``invoke dlq.list|show|requeue|discard``: the operator's dead-letter actions.

The target database comes from ``--db-url`` (or ``PHASEGATE_DB_URL``), else from the
environment named by ``--env`` (default ``local``) via ``rollout.environments``. Flags are
parsed here; what ``list`` and ``show`` print is ``cli/dlq_render.py``.
"""

from __future__ import annotations

import os
import shlex
from datetime import timedelta

from invoke import task

from cli.base import clean_errors, project_dir
from phasegate.actor import resolve_actor
from phasegate.durations import parse_duration
from phasegate.errors import ConfigError
from phasegate.text import mask_secrets, printable

ENV_HELP = "environment to act on (default local)"
URL_HELP = ("database URL, overriding --env; prefer PHASEGATE_DB_URL or a URL without the password "
            "plus PGPASSFILE: a password on the command line is visible to every user in /proc")
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


def parse_limit(text: object) -> int:
    """--limit: a page size from 1 to 1000 (ledger.deadletter.MAX_PAGE), 100 when not given;
    else a ConfigError."""
    from ledger.deadletter import DEFAULT_PAGE, page_size

    return DEFAULT_PAGE if text is None else page_size(text, "--limit")


def parse_cursor(text: object):  # type: ignore[no-untyped-def]
    """--cursor: the token a previous page printed -> a ``PageCursor``; else a ConfigError."""
    from ledger.deadletter import PageCursor

    return PageCursor.parse(str(text), "--cursor")


def next_page_command(token: str, *, function: str | None = None,
                      error_class: str | None = None, older_than: str | None = None,
                      status: str = "OPEN", limit: int | None = None, fmt: str = "table",
                      env: str = "local", db_url: str | None = None) -> str:
    """The command line that prints the page after this one: the same flags (those not at
    their default), then ``--cursor``. A password in --db-url is masked, never printed."""
    from ledger.deadletter import DEFAULT_PAGE

    args = ["invoke", "dlq.list"]
    for flag, value, default in (("--function", function, None),
                                 ("--error-class", error_class, None),
                                 ("--older-than", older_than, None), ("--status", status, "OPEN"),
                                 ("--limit", limit, DEFAULT_PAGE), ("--format", fmt, "table"),
                                 ("--env", env, "local")):
        if value is not None and value != default:
            args += [flag, str(value)]
    if db_url:
        args += ["--db-url", mask_secrets(db_url)]
    return shlex.join([*args, "--cursor", token])


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def check_text(flag: str, text: str | None, limit: int) -> str | None:
    """An operator's text as the audit would store it, refused (one line, nothing done) when
    over ``limit`` characters: an audit keeps what was typed or nothing, never a cut."""
    if text is not None and len(printable(text)) > limit:
        raise ConfigError(f"{flag} is {len(printable(text))} characters, over the "
                          f"{limit}-character limit: nothing done")
    return text


def _bounds() -> tuple[int, int]:
    """(reason, operator) bounds, from the ledger that enforces them too; imported lazily
    (``invoke --list`` should not pay for psycopg)."""
    from ledger.deadletter import MAX_OPERATOR_CHARS, MAX_REASON_CHARS

    return MAX_REASON_CHARS, MAX_OPERATOR_CHARS


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
    phasegate.actor); refused when none of them names anyone, or when --operator is longer
    than a name may be (resolve_actor would cut it)."""
    check_text("--operator", None if operator is None else operator.strip(), _bounds()[1])
    who = resolve_actor(operator)
    if not who:
        raise ConfigError("say who you are: --operator NAME (no $PHASEGATE_ACTOR, no login name)")
    return who


@task(name="list", help={
    "function": "only this function (job type)", "error_class": "retriable | terminal",
    "older_than": "only dead letters older than this (30m, 1h, 2d)",
    "status": "OPEN (default), REQUEUED, DISCARDED or all",
    "limit": "at most this many on a page, 1 to 1000 (default 100)",
    "cursor": "the page after this token (printed below each page that has a next one)",
    "format": "table | json", "env": ENV_HELP, "db_url": URL_HELP})
def list_(c, function=None, error_class=None, older_than=None, status="OPEN", limit=None,
          cursor=None, format="table", env="local", db_url=None):
    """List dead letters (newest first), a page at a time."""
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
        size = parse_limit(limit)
        after = None if cursor is None else parse_cursor(cursor)
        page = _dead_letters(env, db_url).page(function=function, error_class=klass,
                                               older_than=age, status=wanted, limit=size,
                                               after=after)
        following = None if page.next_cursor is None else next_page_command(
            page.next_cursor.token(), function=function, error_class=error_class,
            older_than=older_than, status=status, limit=size, fmt=fmt, env=env, db_url=db_url)
        if fmt == "json":
            print(dlq_render.page_json(page, following))
        else:
            dlq_render.print_letters(page.letters, following)


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
            "reason": "why (recorded in the audit; at most 4096 characters)", "env": ENV_HELP, "db_url": URL_HELP})
def requeue(c, id=None, operator=None, reason=None, env="local", db_url=None):
    """Send an OPEN dead letter back to the queue as a fresh job from its own snapshot (audited)."""
    with clean_errors(*_db_errors()):
        dl_id, who = parse_id(id), _operator(operator)
        check_text("--reason", reason, _bounds()[0])
        res = _dead_letters(env, db_url).requeue(dl_id, who, reason)
    print(f"dead letter {res.dead_letter_id} requeued as job {res.new_job_id} "
          f"(correlation {res.correlation_id})")


@task(help={"id": "dead letter id", "reason": "why (required; at most 4096 characters)",
            "operator": "your display name in the audit, beside the database role (default $PHASEGATE_ACTOR, else the login name)", "env": ENV_HELP, "db_url": URL_HELP})
def discard(c, id=None, reason=None, operator=None, env="local", db_url=None):
    """Close an OPEN dead letter with a reason; history is kept (audited)."""
    with clean_errors(*_db_errors()):
        dl_id, who = parse_id(id), _operator(operator)
        check_text("--reason", reason, _bounds()[0])
        done = _dead_letters(env, db_url).discard(dl_id, who, reason or "")
    print(f"dead letter {done.id} discarded by {done.resolved_by}: {done.resolution_reason}")
