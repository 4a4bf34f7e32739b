"""What every task shares: the project folder and turning errors into one clear line."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from invoke import Exit

from phasegate.errors import PhasegateError
from phasegate.text import first_line, mask_secrets, printable

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


@contextlib.contextmanager
def clean_errors(*extra: type[BaseException]) -> Iterator[None]:
    """Turn expected errors into ``Exit(one line, code=1)``: no traceback, no secret."""
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, (*EXPECTED, *extra)):
            raise
        raise Exit(one_line(exc), code=1) from None
