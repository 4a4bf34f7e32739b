"""Error classification and retry policy (pure logic)."""

from __future__ import annotations

import json
import random

import psycopg
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.classify import (
    ErrorClassifier,
    Retriable,
    RetryPolicies,
    RetryPolicy,
    Terminal,
    describe,
)
from ledger.errors import LedgerWriteFailed
from ledger.models import ErrorClass

R, T = ErrorClass.RETRIABLE, ErrorClass.TERMINAL


class FakeSqlState(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize("exc, expected", [
    (TimeoutError("t"), R),
    (ConnectionResetError("reset"), R),
    (redis.ConnectionError("down"), R),
    (psycopg.errors.SerializationFailure("40001"), R),
    (psycopg.errors.DeadlockDetected("40P01"), R),
    (FakeSqlState("40001"), R),
    (FakeSqlState("40P01"), R),
    (FakeSqlState("08006"), R),
    (FakeSqlState("23505"), T),  # unique violation
    (FakeSqlState("22P02"), T),  # invalid text representation
    (psycopg.errors.UniqueViolation("dup"), T),
    (json.JSONDecodeError("bad", "{", 0), T),
    (ValueError("bad"), T),
    (KeyError("to"), T),
    (Retriable("later"), R),
    (Terminal("never"), T),
    (RuntimeError("unknown"), R),  # unknown: retriable, bounded by max_attempts
])
def test_default_classification(exc: BaseException, expected: ErrorClass) -> None:
    assert ErrorClassifier().classify(exc) is expected


def test_classification_follows_the_cause_chain() -> None:
    try:
        try:
            raise psycopg.errors.DeadlockDetected("deadlock")
        except psycopg.Error as inner:
            raise LedgerWriteFailed("run start", "k", inner) from inner
    except LedgerWriteFailed as outer:
        assert ErrorClassifier().classify(outer) is R


def test_classifier_is_extensible() -> None:
    class QuotaExceeded(Exception):
        pass

    c = ErrorClassifier()
    assert c.classify(QuotaExceeded()) is R
    c.register(QuotaExceeded, T)
    assert c.classify(QuotaExceeded()) is T
    c.register_predicate(lambda e: R if "try again" in str(e) else None)
    assert c.classify(ValueError("please try again")) is R
    assert ErrorClassifier(default=T).classify(RuntimeError()) is T


def test_describe_is_one_bounded_line() -> None:
    text = describe(ValueError("a\nb" + "x" * 5000))
    assert text.startswith("ValueError: a b") and "\n" not in text and len(text) == 2000


@settings(max_examples=50, deadline=None)
@given(attempt=st.integers(1, 40), seed=st.integers(0, 2**32))
def test_backoff_is_jittered_exponential_and_capped(attempt: int, seed: int) -> None:
    p = RetryPolicy(base_seconds=0.5, factor=2, cap_seconds=60)
    delay = p.delay(attempt, random.Random(seed))
    assert 0 <= delay <= min(60, 0.5 * 2 ** (attempt - 1))


def test_backoff_jitter_spreads() -> None:
    rng = random.Random(7)
    delays = {round(RetryPolicy(base_seconds=10).delay(4, rng), 3) for _ in range(20)}
    assert len(delays) > 15  # full jitter: not a fixed schedule


def test_retry_decision_and_per_type_policies() -> None:
    p = RetryPolicy(max_attempts=3)
    assert p.should_retry(1, R) and p.should_retry(2, R)
    assert not p.should_retry(3, R) and not p.should_retry(1, T)
    policies = RetryPolicies(by_type={"sms": RetryPolicy(max_attempts=9)})
    assert policies.for_job("sms", 5).max_attempts == 9
    assert policies.for_job("email", 5).max_attempts == 5  # the row's max_attempts
    assert RetryPolicies(default=p).for_job("email", 5).max_attempts == 3
