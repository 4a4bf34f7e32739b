"""The legacy Redis layout of function-run status, shared by the ledger, checks and rollout.

One hash per function run, holding the status of its latest attempt, with a TTL:

    key    ``jobstatus:{function_name}:{run_id}``
    fields ``status``        RUNNING | SUCCEEDED | FAILED
           ``attempt``       attempt number (int, from 1)
           ``run_key``       the run ledger's key for that attempt
           ``updated_at``    ISO-8601 UTC
           ``correlation_id``, ``dispatch_key``, ``error_class``, ``error`` (when known)
    TTL    ``STATUS_TTL_SECONDS`` (7 days), refreshed on every write

A sorted set ``jobstatus:index`` scores each key by its last write time (epoch seconds), so
the parity check and reconcile can walk a time range without ``SCAN`` over the keyspace.
"""

from __future__ import annotations

KEY_PREFIX = "jobstatus:"
INDEX_KEY = "jobstatus:index"
STATUS_TTL_SECONDS = 7 * 24 * 3600


def status_key(function_name: str, run_id: str) -> str:
    return f"{KEY_PREFIX}{function_name}:{run_id}"


def run_key(function_name: str, run_id: str, attempt: int) -> str:
    """The run ledger's unique key of one attempt."""
    return f"{function_name}:{run_id}:{attempt}"
