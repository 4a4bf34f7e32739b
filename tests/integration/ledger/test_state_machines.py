"""Property-based tests (hypothesis) of the dispatch and dead-letter state machines:
no sequence of calls reaches an illegal state. Real Postgres; one database per test,
fresh keys per example."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from ledger.classify import RetryPolicies, RetryPolicy
from ledger.errors import DeadLetterNotOpen, IllegalDispatchTransition, ReasonRequired
from tests.conftest import to_dsn

SETTINGS = settings(max_examples=30, stateful_step_count=12, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
STATUSES = ["DISPATCHING", "ENQUEUED", "ENQUEUE_FAILED", "INLINE_EMERGENCY"]
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _query(conn: psycopg.Connection) -> Callable[..., list[tuple[Any, ...]]]:
    """One connection for all of a machine's checks (a connect per check is the cost)."""
    def q(query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    return q


def test_dispatch_state_machine(make_app) -> None:
    app = make_app("db_only", flag_ttl=60)  # modes are fixed here: skip re-reading flags
    conn = psycopg.connect(to_dsn(app.test_db_url), autocommit=True)
    q = _query(conn)

    class Dispatch(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.prefix = uuid.uuid4().hex[:8]
            self.model: dict[str, str] = {}

        @rule(source=st.sampled_from(["a", "b"]), window=st.integers(0, 2),
              offset=st.integers(0, 59))
        def register(self, source: str, window: int, offset: int) -> None:
            at = T0 + timedelta(minutes=window, seconds=offset)
            reg = app.dispatcher.register(f"{self.prefix}.{source}", at)
            if reg.dispatch_key in self.model:
                assert not reg.won and reg.status == self.model[reg.dispatch_key]
            else:
                assert reg.won and reg.status == "DISPATCHING"
                self.model[reg.dispatch_key] = "DISPATCHING"

        @rule(data=st.data(), wanted=st.sampled_from(STATUSES))
        def mark(self, data: st.DataObject, wanted: str) -> None:
            keys = sorted(self.model) + [f"{self.prefix}.missing@x"]
            key = data.draw(st.sampled_from(keys))
            legal = self.model.get(key) == "DISPATCHING" and wanted != "DISPATCHING"
            try:
                reg = app.dispatcher.mark(key, wanted, event_id="e")
            except IllegalDispatchTransition:
                repeat = self.model.get(key) == wanted and wanted != "DISPATCHING"
                assert not legal and not repeat
            else:
                assert legal or self.model.get(key) == wanted  # a repeat is idempotent
                assert reg.status == wanted
                self.model[key] = wanted

        @invariant()
        def database_matches_model(self) -> None:
            rows = dict(q("SELECT dispatch_key, status::text FROM background_dispatch_window "
                          "WHERE dispatch_key LIKE %s", (self.prefix + ".%",)))
            assert rows == self.model
            assert set(rows.values()) <= set(STATUSES)

    with conn:
        run_state_machine_as_test(Dispatch, settings=SETTINGS)


def test_dead_letter_state_machine(make_app) -> None:
    app = make_app("dual", flag_ttl=60,
                   policies=RetryPolicies(default=RetryPolicy(max_attempts=1)))
    conn = psycopg.connect(to_dsn(app.test_db_url), autocommit=True)
    q = _query(conn)

    class DeadLetterMachine(RuleBasedStateMachine):
        letters = Bundle("letters")

        def __init__(self) -> None:
            super().__init__()
            self.job_type = f"t{uuid.uuid4().hex[:8]}"
            app.runner.handlers.clear()
            app.runner.register(self.job_type, self._fail)
            self.model: dict[int, str] = {}
            self.actions = 0
            self.audit_before = q("SELECT count(*) FROM background_operator_audit")[0][0]

        @staticmethod
        def _fail(ctx) -> None:
            raise ValueError("always bad")

        @rule(target=letters)
        def job_dies(self) -> int:
            job = app.enqueue_job(self.job_type, {})
            while (out := app.run_one()) is not None and out.job_id != job:
                self._died(out.job_id)  # a requeued copy was due first: it died too
            dl = q("SELECT id FROM background_dead_letter WHERE job_id = %s", (job,))[0][0]
            self.model[dl] = "OPEN"
            return dl

        def _died(self, job: int) -> None:
            again = q("SELECT id FROM background_dead_letter WHERE job_id = %s", (job,))
            self.model[again[0][0]] = "OPEN"

        @rule(dl=letters, who=st.sampled_from(["alice", "bob"]))
        def requeue(self, dl: int, who: str) -> None:
            self.actions += 1
            try:
                app.dead_letters.requeue(dl, who)
            except DeadLetterNotOpen:
                assert self.model[dl] != "OPEN"
            else:
                assert self.model[dl] == "OPEN"
                self.model[dl] = "REQUEUED"

        @rule(dl=letters, reason=st.sampled_from(["", " ", "duplicate order"]))
        def discard(self, dl: int, reason: str) -> None:
            try:
                app.dead_letters.discard(dl, "carol", reason)
            except ReasonRequired:
                assert not reason.strip()
                return  # refused before touching the database: nothing audited
            except DeadLetterNotOpen:
                assert self.model[dl] != "OPEN"
            else:
                assert self.model[dl] == "OPEN"
                self.model[dl] = "DISCARDED"
            self.actions += 1

        @rule(dl=consumes(letters))
        def run_requeued(self, dl: int) -> None:
            new_job = q("SELECT requeued_job_id FROM background_dead_letter WHERE id = %s",
                        (dl,))[0][0]
            if new_job is None or q("SELECT status FROM background_job WHERE id = %s",
                                    (new_job,))[0][0] != "PENDING":
                return
            out = app.run_one()
            assert out is not None and out.outcome == "dead"
            self._died(out.job_id)

        @invariant()
        def states_are_legal(self) -> None:
            rows = q("SELECT d.id, d.status::text, d.requeued_job_id, j.status::text "
                     "FROM background_dead_letter d JOIN background_job j ON j.id = d.job_id "
                     "WHERE d.job_type = %s", (self.job_type,))
            assert {r[0]: r[1] for r in rows} == self.model
            for _, status, requeued, job_status in rows:
                assert job_status == "FAILED"  # a dead-lettered job is never live
                assert (status == "REQUEUED") == (requeued is not None)
            requeued_ids = [r[2] for r in rows if r[2] is not None]
            assert len(requeued_ids) == len(set(requeued_ids))
            # Live jobs are exactly the requeued copies not yet run: never a second copy.
            live = q("SELECT count(*) FROM background_job WHERE type = %s AND status IN "
                     "('PENDING', 'RUNNING')", (self.job_type,))[0][0]
            pending_copies = q("SELECT count(*) FROM background_dead_letter d JOIN "
                               "background_job j ON j.id = d.requeued_job_id WHERE d.job_type = %s"
                               " AND j.status = 'PENDING'", (self.job_type,))[0][0]
            assert live == pending_copies
            audited = q("SELECT count(*) FROM background_operator_audit")[0][0]
            assert audited - self.audit_before == self.actions

    with conn:
        run_state_machine_as_test(DeadLetterMachine, settings=SETTINGS)
