"""phasegate's reliability write path: what applications call (see ledger/README.md).

Import the pieces from their modules (``from ledger.app import LedgerApp``); this package
module stays import-light so ``ledger.models`` and ``ledger.flags`` load without Redis.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> module; resolved on first use (PEP 562), so importing ``ledger`` is cheap.
_EXPORTS = {
    "LedgerApp": "ledger.app",
    "DispatchLedger": "ledger.dispatch",
    "RedisStreamSender": "ledger.dispatch",
    "RunLedger": "ledger.runs",
    "JobStatusStore": "ledger.status",
    "JobRunner": "ledger.runner",
    "JobContext": "ledger.runner",
    "EffectLedger": "ledger.effects",
    "DeadLetters": "ledger.deadletter",
    "ErrorClassifier": "ledger.classify",
    "RetryPolicy": "ledger.classify",
    "RetryPolicies": "ledger.classify",
    "Retriable": "ledger.classify",
    "Terminal": "ledger.classify",
    "Database": "ledger.db",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ledger' has no attribute {name!r}")
