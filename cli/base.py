"""What every task shares: the project folder and turning errors into one clear line."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from invoke import Exit

from phasegate.errors import ConfigError, PhasegateError, ServerUnavailable, Unreachable
from phasegate.text import first_line, mask_secrets, printable
from rollout.errors import Stopped

# What marks a project folder: its configuration, or the local servers a command started.
MARKERS = ("phasegate.toml", ".phasegate")


def project_dir(cwd: Path | None = None) -> Path:
    """The folder the kit reads ``phasegate.toml`` from and writes ``plans/``, ``reports/`` and
    ``.phasegate/local/`` into: the folder of ``$PHASEGATE_CONFIG`` when set; else the nearest
    folder at or above the working directory that holds ``phasegate.toml`` or ``.phasegate/``
    (as git finds ``.git``); else the working directory. Never the installed package's folder,
    which may be read-only or shared by every user of a machine."""
    config = os.environ.get("PHASEGATE_CONFIG")
    if config:
        return Path(config).expanduser().resolve().parent
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in MARKERS):
            return folder
    return start

# Errors a user can cause or fix; anything else is a bug and keeps its traceback.
EXPECTED = (PhasegateError,)  # ServerUnavailable and IrreversibleMigration included

# Exit codes that mean one thing each, for every command (README "Exit codes"):
EXIT_REFUSED = 1  # refused (a precondition, a lock, a confirmation) or a check failed
EXIT_COULD_NOT_RUN = 2  # bad input, or a server that could not be reached
EXIT_STOPPED = 130  # stopped by Ctrl-C or SIGTERM (the shell's 128 + SIGINT)


def one_line(exc: BaseException) -> str:
    """``phasegate: <the error's first line>``, printable and with secrets masked. For a
    driver error wrapped by SQLAlchemy, the driver's own line (not the wrapper's class name)."""
    inner = getattr(exc, "orig", None) or exc
    return f"phasegate: {printable(mask_secrets(first_line(inner)))}"


def connection_errors() -> tuple[type[BaseException], ...]:
    """The drivers' errors for a server that did not answer or refused the login: the
    operator's to fix, so one line (imported lazily: ``--list`` should not load drivers)."""
    import psycopg
    import redis
    from sqlalchemy.exc import DBAPIError

    return (psycopg.OperationalError, psycopg.ProgrammingError, DBAPIError, redis.RedisError)


def require_reachable(name: str, db_url: str) -> None:
    """Unreachable (exit 2) unless the target's database answers a login within 10 s."""
    import psycopg

    from phasegate.text import first_line
    from phasegate.urls import libpq_dsn

    try:
        psycopg.connect(libpq_dsn(db_url), connect_timeout=10).close()
    except psycopg.Error as exc:
        raise Unreachable(f"cannot reach the database of {name}: {first_line(exc)}") from None


def exit_code(exc: BaseException) -> int:
    """The exit code of an expected error (see the constants above)."""
    from rollout.errors import Interrupted

    if isinstance(exc, Stopped):
        return EXIT_STOPPED
    if isinstance(exc, ConfigError | ServerUnavailable | Unreachable | Interrupted):
        return EXIT_COULD_NOT_RUN
    if not isinstance(exc, PhasegateError):  # a driver's connection error
        return EXIT_COULD_NOT_RUN
    return EXIT_REFUSED


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interruption so every command stops the way Ctrl-C stops it
    (the engine marks the phase ``interrupted`` and says how to resume)."""

    signal_name = "SIGTERM"


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def install_signal_handlers() -> None:
    """SIGTERM behaves like Ctrl-C (a KeyboardInterrupt the engine records); idempotent."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


@contextlib.contextmanager
def clean_errors(*extra: type[BaseException]) -> Iterator[None]:
    """Turn expected errors (and the drivers' connection errors) into ``Exit(one line,
    code)``: no traceback, no secret; the code says refused (1), could not run (2) or
    stopped (130). Output piped into ``head`` that stopped reading ends quietly.
    ``PHASEGATE_DEBUG=1`` keeps the traceback, for a bug report."""
    try:
        yield
    except KeyboardInterrupt as exc:
        name = getattr(exc, "signal_name", "Ctrl-C")
        raise Exit(f"phasegate: stopped by {name}; nothing more was done", code=EXIT_STOPPED) from None
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # the final flush must not raise again
        raise Exit(code=0) from None
    except BaseException as exc:
        if os.environ.get("PHASEGATE_DEBUG") == "1":
            raise
        if not isinstance(exc, (*EXPECTED, *connection_errors(), *extra)):
            raise
        raise Exit(one_line(exc), code=exit_code(exc)) from None
