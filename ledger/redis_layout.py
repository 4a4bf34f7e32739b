"""The Redis layout of run status, and the run key: shared by the ledger, checks and rollout.

One hash per function run, holding the status of its latest attempt, with a TTL:

    key    ``jobstatus:{function_name}:{run_id}``   (each name escaped, see below)
    fields ``status``        RUNNING | SUCCEEDED | FAILED
           ``attempt``       attempt number (int, from 1)
           ``run_key``       the run ledger's key for that attempt
           ``updated_at``    ISO-8601 UTC
           ``correlation_id``, ``dispatch_key``, ``error_class``, ``error`` (when known)
           ``key_encoding``  ``escaped``, only on the hash of a run whose names needed escaping
    TTL    ``STATUS_TTL_SECONDS`` (7 days), refreshed on every write

A sorted set ``jobstatus:index`` scores each key by its last write time (epoch seconds), so
the parity check and reconcile can walk a time range without ``SCAN`` over the keyspace.

**Escaping** (issue 13). Keys join their parts with ``:``; in each name ``%`` becomes
``%25`` and then ``:`` becomes ``%3A``, so no name can carry the separator and every key
decodes to exactly one ``(function_name, run_id[, attempt])``. A name without ``:`` or
``%`` (all data in practice) is unchanged, so its keys are the ones the pre-encoding code
wrote (:func:`legacy_status_key`, :func:`legacy_run_key`): nothing is rewritten for it. A run
whose names do change (an *escaped* run, :func:`is_escaped`) had different keys before; the
ledger README's "Run keys" section says what happens to rows and hashes written under them.
The SQL side escapes with the same table, fed as parameters (:data:`SQL_ESCAPE_PARAMS`).
"""

from __future__ import annotations

import re

KEY_PREFIX = "jobstatus:"
INDEX_KEY = "jobstatus:index"
STATUS_TTL_SECONDS = 7 * 24 * 3600
SEPARATOR = ":"
# Applied in this order ('%' first, so the '%' of '%3A' is not escaped again); undone in one
# pass. The SQL blocks receive the same pairs as SQL_ESCAPE_PARAMS.
ESCAPES = (("%", "%25"), (":", "%3A"))
SQL_ESCAPE_PARAMS = {"pct": "%", "pct_escaped": "%25", "colon": ":", "colon_escaped": "%3A"}
# Marks the hash of an escaped run as written with escaped keys: a hash at an escaped run's
# key without it was written by the pre-encoding code for another name (see is_escaped).
KEY_ENCODING_FIELD = "key_encoding"
KEY_ENCODING = "escaped"

_UNESCAPES = {escaped: raw for raw, escaped in ESCAPES}
_ESCAPED_NAME = re.compile(r"(?:[^%:]|%25|%3A)*")
_ESCAPE_SEQUENCE = re.compile("|".join(re.escape(e) for _, e in ESCAPES))
_ATTEMPT = re.compile(r"-?[1-9][0-9]*|0")


def escape(name: str) -> str:
    """``name`` with ``%`` -> ``%25`` and ``:`` -> ``%3A``: it never holds the separator."""
    for raw, escaped in ESCAPES:
        name = name.replace(raw, escaped)
    return name


def unescape(escaped: str) -> str:
    """The inverse of :func:`escape`; ``ValueError`` for text :func:`escape` cannot produce."""
    if not _ESCAPED_NAME.fullmatch(escaped):
        raise ValueError(f"not an escaped key part: {escaped!r}")
    return _ESCAPE_SEQUENCE.sub(lambda m: _UNESCAPES[m.group()], escaped)


def is_escaped(function_name: str, run_id: str) -> bool:
    """True when escaping changes a name: the run's keys differ from its legacy keys."""
    return escape(function_name) != function_name or escape(run_id) != run_id


def status_key(function_name: str, run_id: str) -> str:
    """The key of a run's status hash."""
    return f"{KEY_PREFIX}{escape(function_name)}{SEPARATOR}{escape(run_id)}"


def run_key(function_name: str, run_id: str, attempt: int) -> str:
    """The run ledger's unique key of one attempt."""
    return f"{escape(function_name)}{SEPARATOR}{escape(run_id)}{SEPARATOR}{int(attempt)}"


def parse_status_key(key: str) -> tuple[str, str] | None:
    """``(function_name, run_id)`` of a status key, or None when no run has it as its key
    (another key, or a legacy key whose names held ``:`` or a bare ``%``)."""
    if not key.startswith(KEY_PREFIX):
        return None
    parts = key[len(KEY_PREFIX):].split(SEPARATOR)
    names = _unescape_all(parts) if len(parts) == 2 else None
    return None if names is None else (names[0], names[1])


def parse_run_key(key: str) -> tuple[str, str, int] | None:
    """``(function_name, run_id, attempt)`` of a run key, or None when no attempt has it."""
    parts = key.split(SEPARATOR)
    if len(parts) != 3 or not _ATTEMPT.fullmatch(parts[2]):
        return None
    names = _unescape_all(parts[:2])
    return None if names is None else (names[0], names[1], int(parts[2]))


def _unescape_all(parts: list[str]) -> tuple[str, ...] | None:
    try:
        return tuple(unescape(p) for p in parts)
    except ValueError:
        return None


# --------------------------------------------------------------- the pre-encoding layout

def legacy_status_key(function_name: str, run_id: str) -> str:
    """The status key the pre-encoding code wrote (ambiguous once a name holds ``:``)."""
    return f"{KEY_PREFIX}{function_name}{SEPARATOR}{run_id}"


def legacy_run_key(function_name: str, run_id: str, attempt: int) -> str:
    """The run key the pre-encoding code wrote (ambiguous once a name holds ``:``)."""
    return f"{function_name}{SEPARATOR}{run_id}{SEPARATOR}{attempt}"


def legacy_owners(key: str) -> list[tuple[str, str]]:
    """Every ``(function_name, run_id)`` whose legacy status key is ``key``: one per ``:``
    after the prefix (the pre-encoding code could not say where the function name ended)."""
    if not key.startswith(KEY_PREFIX):
        return []
    rest = key[len(KEY_PREFIX):]
    return [(rest[:i], rest[i + 1:]) for i, c in enumerate(rest) if c == SEPARATOR]


def is_legacy_hash(key: str, fields: dict[str, str]) -> bool:
    """True when the hash at ``key`` was written under a pre-encoding key for a run that is
    not (or not provably) the one ``key`` decodes to. Such a hash is never read as a run's:
    reconcile moves it to its run's key, parity counts it."""
    names = parse_status_key(key)
    if names is None:
        return key.startswith(KEY_PREFIX) and key != INDEX_KEY
    return is_escaped(*names) and fields.get(KEY_ENCODING_FIELD) != KEY_ENCODING
