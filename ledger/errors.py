"""phasegate's one error root and the error classes shared by every package."""

from __future__ import annotations

import re


class PhasegateError(Exception):
    """phasegate failed; the message says what happened and what to do."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(PhasegateError):
    """The configuration is invalid."""


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@", re.I)
_KV_PASSWORD = re.compile(r"(?P<key>password\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str, limit: int | None = None) -> str:
    """One storable, printable line: newlines become spaces, other control characters and
    text that is not valid UTF-8 (lone surrogates from undecodable bytes) become escapes.

    Why: PostgreSQL text cannot hold NUL and psycopg cannot encode a lone surrogate, so an
    error text carrying either would fail the very write that records the failure; and an
    operator's terminal must not receive escape sequences from a job's error."""
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)
    return text if limit is None else text[:limit]


def mask_secrets(text: str, *secrets: str) -> str:
    """Replace passwords in URLs and DSNs (and any given secret strings) with '***'."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    masked = _KV_PASSWORD.sub(lambda m: f"{m['key']}***", masked)
    for secret in secrets:
        if secret:
            masked = masked.replace(secret, "***")
    return masked


# --------------------------------------------------------------------------- ledger
# Raised by the reliability write path (ledger/*). Each carries the fields an operator or a
# caller needs; the message is one line.


class LedgerError(PhasegateError):
    """The reliability ledger refused or failed an operation."""


class IllegalTransition(LedgerError):
    """A status change the state machine does not allow."""

    def __init__(self, kind: str, key: str, current: str | None, wanted: str) -> None:
        self.kind, self.key, self.current, self.wanted = kind, key, current, wanted
        where = "no such row" if current is None else f"it is {current}"
        super().__init__(f"{kind} {key}: cannot move to {wanted} ({where})")


class IllegalDispatchTransition(IllegalTransition):
    """A dispatch window may only move DISPATCHING -> ENQUEUED | ENQUEUE_FAILED | INLINE_EMERGENCY."""


class IllegalRunTransition(IllegalTransition):
    """A run attempt may only move RUNNING -> SUCCEEDED | FAILED."""


class DispatchFailed(LedgerError):
    """The dispatch could not be registered or sent."""

    def __init__(self, dispatch_key: str, reason: str) -> None:
        self.dispatch_key, self.reason = dispatch_key, reason
        super().__init__(f"dispatch {dispatch_key}: {reason}")


class LedgerWriteFailed(LedgerError):
    """The authoritative store refused or lost a ledger write: the call failed."""

    def __init__(self, what: str, key: str, cause: BaseException, store: str = "database") -> None:
        self.what, self.key, self.store = what, key, store
        super().__init__(
            f"{what} {key}: {store} write failed: {type(cause).__name__}: {mask_secrets(str(cause))}")


class LedgerNotExpanded(LedgerError):
    """The reliability tables do not exist yet: the database has not been expanded."""


class DeadLetterError(LedgerError):
    """An operator action on a dead letter was refused."""


class DeadLetterNotFound(DeadLetterError):
    def __init__(self, dead_letter_id: int) -> None:
        self.dead_letter_id = dead_letter_id
        super().__init__(f"dead letter {dead_letter_id} does not exist")


class DeadLetterNotOpen(DeadLetterError):
    """Only an OPEN dead letter can be requeued or discarded."""

    def __init__(self, dead_letter_id: int, status: str) -> None:
        self.dead_letter_id, self.status = dead_letter_id, status
        super().__init__(f"dead letter {dead_letter_id} is {status}, not OPEN: nothing done")


class ReasonRequired(DeadLetterError):
    """Discarding a dead letter needs a non-empty reason."""
