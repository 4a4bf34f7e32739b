"""What every task shares: the project folder and turning errors into one clear line."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from invoke import Exit

from phasegate.errors import PhasegateError
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


def one_line(exc: BaseException) -> str:
    """``phasegate: <the error's first line>``, printable and with secrets masked."""
    return f"phasegate: {printable(mask_secrets(first_line(exc)))}"


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


# Exit code of a command stopped by a signal (the shell's convention: 128 + SIGINT).
STOPPED_EXIT = 130


@contextlib.contextmanager
def clean_errors(*extra: type[BaseException]) -> Iterator[None]:
    """Turn expected errors into ``Exit(one line, code=1)``: no traceback, no secret. A
    command stopped by Ctrl-C or SIGTERM ends with one line and exit code 130."""
    try:
        yield
    except KeyboardInterrupt as exc:
        name = getattr(exc, "signal_name", "Ctrl-C")
        raise Exit(f"phasegate: stopped by {name}; nothing more was done", code=STOPPED_EXIT) from None
    except BaseException as exc:
        if not isinstance(exc, (*EXPECTED, *extra)):
            raise
        code = STOPPED_EXIT if isinstance(exc, Stopped) else 1
        raise Exit(one_line(exc), code=code) from None
