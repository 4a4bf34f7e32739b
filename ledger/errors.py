"""The ledger's errors, under the one root in :mod:`phasegate.errors` (re-exported here for
applications that import everything from ``ledger``)."""

from __future__ import annotations

# Re-exported: applications catch phasegate errors from the ledger they import.
from phasegate.errors import ConfigError as ConfigError
from phasegate.errors import PhasegateError as PhasegateError
from phasegate.text import mask_secrets as mask_secrets
from phasegate.text import printable as printable

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


class RunKeyConflict(LedgerError):
    """A run key is held by another run's row written under a pre-encoding key, which could
    not be moved to its own key: nothing was written (see the ledger README, "Run keys")."""

    def __init__(self, run_key: str, holder: tuple[str, str, int]) -> None:
        self.run_key, self.holder = run_key, holder
        super().__init__(f"run {run_key}: the key is held by a legacy row of run {holder!r}; "
                         "move that row to its own key by hand, then retry")


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


class PayloadTooLarge(LedgerError):
    """A job's payload is over the payload limit: nothing was written."""

    def __init__(self, job_type: str, size: int, limit: int) -> None:
        self.job_type, self.size, self.limit = job_type, size, limit
        super().__init__(f"job {printable(job_type, 200)!r}: payload is {size} bytes, over the "
                         f"{limit}-byte limit: pass a reference (an id, a URL), not the document")


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


class TextTooLong(DeadLetterError):
    """An operator's text (a reason, a name) is over its bound: refused, not cut, so the
    audit holds what was meant; nothing was written."""

    def __init__(self, what: str, length: int, limit: int) -> None:
        self.what, self.length, self.limit = what, length, limit
        super().__init__(f"{what} is {length} characters, over the {limit}-character limit: "
                         "nothing done")


class DeadLetterPermissionDenied(DeadLetterError):
    """The database refused the connecting role this dead-letter action (privileges are the
    database's: only the operator role may execute the requeue, discard and inspect functions,
    and only it and readonly read the audit)."""

    def __init__(self, refusal: str) -> None:
        self.refusal = refusal
        super().__init__(f"the database refused this role: {refusal} (dead-letter actions "
                         "run as the operator role)")


class ReasonRequired(DeadLetterError):
    """Discarding a dead letter needs a non-empty reason."""
