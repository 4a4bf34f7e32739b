"""What every task shares: the project root and turning errors into one clear line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from invoke import Exit

from infra.ephemeral import ServerUnavailable
from ledger.errors import PhasegateError, mask_secrets, printable

PROJECT = Path(__file__).resolve().parent.parent

# Errors a user can cause or fix; anything else is a bug and keeps its traceback.
EXPECTED = (PhasegateError, ServerUnavailable)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"phasegate: {printable(mask_secrets(first))}"


@contextlib.contextmanager
def clean_errors(*extra: type[BaseException]) -> Iterator[None]:
    """Turn expected errors into ``Exit(one line, code=1)``: no traceback, no secret."""
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, (*EXPECTED, *extra)):
            raise
        raise Exit(one_line(exc), code=1) from None
