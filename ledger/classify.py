"""Retriable or terminal? The error classifier and the retry (backoff) policy.

Retriable: the same attempt could succeed later (timeouts, lost connections, serialization
failures, deadlocks). Terminal: retrying cannot help (validation errors, constraint
violations, malformed payloads). The classifier walks an exception's cause chain, so a
ledger error raised ``from`` a deadlock is still retriable. Applications extend it with
:meth:`ErrorClassifier.register` or by raising :class:`Retriable` / :class:`Terminal`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psycopg
import redis

from ledger.errors import printable
from ledger.models import ErrorClass

RETRIABLE, TERMINAL = ErrorClass.RETRIABLE, ErrorClass.TERMINAL


class Retriable(Exception):
    """Raise (or subclass) in a handler to say: try this attempt again later."""


class Terminal(Exception):
    """Raise (or subclass) in a handler to say: retrying cannot help; dead-letter it."""


# SQLSTATE classes/codes: 08 connection, 40 transaction rollback (40001 serialization,
# 40P01 deadlock), 53 insufficient resources, 57 operator intervention (query canceled,
# admin shutdown), 55P03 lock not available -> retriable; 22 data exception, 23 integrity
# constraint violation, 42 syntax/access -> terminal.
_SQLSTATE_RETRIABLE = ("08", "40", "53", "57", "55P03")
_SQLSTATE_TERMINAL = ("22", "23", "42")

DEFAULT_RULES: tuple[tuple[type[BaseException], ErrorClass], ...] = (
    (Retriable, RETRIABLE),
    (Terminal, TERMINAL),
    (TimeoutError, RETRIABLE),
    (ConnectionError, RETRIABLE),
    (redis.ConnectionError, RETRIABLE),
    (redis.TimeoutError, RETRIABLE),
    (psycopg.OperationalError, RETRIABLE),
    (json.JSONDecodeError, TERMINAL),  # before ValueError: a malformed payload
    (psycopg.IntegrityError, TERMINAL),
    (psycopg.DataError, TERMINAL),
    (ValueError, TERMINAL),
    (TypeError, TERMINAL),
    (KeyError, TERMINAL),
)


def _sqlstate_class(exc: BaseException) -> ErrorClass | None:
    state = getattr(exc, "sqlstate", None)
    if not isinstance(state, str):
        return None
    if state.startswith(_SQLSTATE_RETRIABLE):
        return RETRIABLE
    if state.startswith(_SQLSTATE_TERMINAL):
        return TERMINAL
    return None


@dataclass
class ErrorClassifier:
    """Maps an exception to RETRIABLE or TERMINAL; unknown errors get ``default``.

    The default for unknown errors is RETRIABLE: ``max_attempts`` bounds the cost of a
    wrong guess, while a wrong TERMINAL would dead-letter work that would have succeeded."""

    rules: list[tuple[type[BaseException], ErrorClass]] = field(
        default_factory=lambda: list(DEFAULT_RULES))
    predicates: list[Callable[[BaseException], ErrorClass | None]] = field(default_factory=list)
    default: ErrorClass = RETRIABLE

    def register(self, exc_type: type[BaseException], error_class: ErrorClass) -> None:
        """Classify ``exc_type`` (and subclasses) ahead of the built-in rules."""
        self.rules.insert(0, (exc_type, error_class))

    def register_predicate(self, fn: Callable[[BaseException], ErrorClass | None]) -> None:
        """A function consulted before the type rules; return None to pass."""
        self.predicates.append(fn)

    def classify(self, exc: BaseException) -> ErrorClass:
        for link in _chain(exc):
            for fn in self.predicates:
                verdict = fn(link)
                if verdict is not None:
                    return verdict
            verdict = _sqlstate_class(link)
            if verdict is not None:
                return verdict
            for exc_type, error_class in self.rules:
                if isinstance(link, exc_type):
                    return error_class
        return self.default


def _chain(exc: BaseException) -> list[BaseException]:
    """exc, then its causes/contexts (SQLAlchemy's ``.orig`` too), without cycles."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        orig = getattr(cur, "orig", None)
        cur = orig if isinstance(orig, BaseException) else (cur.__cause__ or cur.__context__)
    return seen


def describe(exc: BaseException, limit: int = 2000) -> str:
    """``Type: message``, one printable line, bounded: what is stored with a failed attempt."""
    return printable(f"{type(exc).__name__}: {exc}").strip()[:limit]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, and how many attempts a job type gets."""

    max_attempts: int = 5
    base_seconds: float = 1.0
    factor: float = 2.0
    cap_seconds: float = 300.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): U(0, min(cap, b*f^(n-1)))."""
        ceiling = min(self.cap_seconds, self.base_seconds * self.factor ** max(attempt - 1, 0))
        return (rng or random).uniform(0.0, ceiling)

    def should_retry(self, attempt: int, error_class: ErrorClass) -> bool:
        return error_class is RETRIABLE and attempt < self.max_attempts


@dataclass(frozen=True)
class RetryPolicies:
    """A policy per job type; ``default`` for the rest. ``None`` max_attempts = the row's."""

    by_type: Mapping[str, RetryPolicy] = field(default_factory=dict)
    default: RetryPolicy | None = None

    def for_job(self, job_type: str, row_max_attempts: int) -> RetryPolicy:
        if job_type in self.by_type:
            return self.by_type[job_type]
        if self.default is not None:
            return self.default
        return RetryPolicy(max_attempts=row_max_attempts)
