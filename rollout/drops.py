"""What a downgrade drops, whether rows would be lost, and OPEN dead letters saved first.

**The rule.** A step *drops data* when it drops a table that holds a row, or a column that
holds a non-NULL value, at the moment it runs. Such a step is irreversible: it needs
``--yes`` (and in production the target's name typed back: :mod:`rollout.consent`), and
while OPEN dead letters would go with it, it runs only if they are exported first
(``--export PATH``: JSON lines, one letter each). A drop of empty tables loses nothing and
asks nothing, so the automated rollback after a failed expand gate (its tables are new and
empty) still runs unattended. The same rule guards ``invoke rollout --rollback`` (the undo
of expand's revisions) and ``invoke migrate`` (rollout/schema_move.py): both call
:func:`require` before anything runs and :func:`before_drop` right before each drop.

What each revision's downgrade drops is declared (a revision may carry ``drops_data``
itself; the shipped ones are listed in :data:`DECLARED`, revision files being another
change's), and a test on a real database keeps every declaration equal to what the
downgrade really drops (``tests/integration/rollout/test_drops_declared.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import ProgrammingError

from ledger import sqlfiles
from migrations import api as migrations_api
from migrations.points import KIT
from phasegate.errors import ConfigError
from phasegate.files import check_output_path, write_text_atomic
from phasegate.text import first_line
from rollout import consent as consent_rule
from rollout.consent import Consent
from rollout.errors import OpenDeadLetters, RolloutError

if TYPE_CHECKING:
    from rollout.environments import Target

DEAD_LETTERS = "background_dead_letter"

# revision -> the tables ('t') and columns ('t.c') its downgrade drops. Every shipped
# revision that drops one is here; a revision not named here (and without ``drops_data``)
# drops none: enums, indexes, constraints and grants hold no rows.
DECLARED: dict[str, tuple[str, ...]] = {
    KIT: ("phasegate_flag", "phasegate_rollout_event", "phasegate_rollout_state"),
    "p0004_expand_dispatch_window": ("background_dispatch_window",),
    "p0005_expand_function_run": ("background_function_run",),
    "p0006_expand_dead_letter_audit": ("background_dead_letter", "background_job_effect",
                                       "background_operator_audit"),
    "p0007_expand_job_columns": ("background_job.correlation_id", "background_job.dispatch_key"),
}

HOLDING_SQL = sqlfiles.query(__file__, "drops", "objects_holding_rows")
OPEN_COUNT_SQL = sqlfiles.query(__file__, "drops", "count_open_dead_letters")
OPEN_SQL = sqlfiles.query(__file__, "drops", "open_dead_letters")

# Called with (event, detail) to put an export in the event log of whoever runs the drop.
Record = Callable[[str, dict[str, Any]], None]


def drops_of(revision: str) -> tuple[str, ...]:
    """The tables and columns the downgrade of ``revision`` drops."""
    declared = getattr(migrations_api.revision_module(revision), "drops_data", None)
    return tuple(declared) if declared is not None else DECLARED.get(revision, ())


@dataclass(frozen=True)
class DropCheck:
    """What a drop of ``objects`` would lose right now."""

    holding: tuple[str, ...]  # the objects that hold rows (or non-NULL values)
    open_dead_letters: int


def inspect(engine: Engine, objects: Iterable[str]) -> DropCheck:
    """Which of ``objects`` hold rows now, and how many dead letters are OPEN if they go."""
    names = sorted(set(objects))
    if not names:
        return DropCheck((), 0)
    try:
        with engine.connect() as conn:
            holding = tuple(r[0] for r in sqlfiles.execute(conn, HOLDING_SQL, {"objects": names}))
            open_count = (int(sqlfiles.execute(conn, OPEN_COUNT_SQL).scalar() or 0)
                          if DEAD_LETTERS in holding else 0)
    except ProgrammingError as exc:  # e.g. a role that may not read them: never guess "empty"
        raise RolloutError(f"cannot tell whether {', '.join(names)} hold rows, so nothing is "
                           f"dropped: {first_line(exc.orig or exc)}") from exc
    return DropCheck(holding, open_count)


def require(engine: Engine, target: Target, phase: str, steps: list[tuple[str, tuple[str, ...]]],
            consent: Consent, hint: str) -> DropCheck:
    """Refuse, before anything runs, a set of ``steps`` (id, what it drops) that would lose
    rows without the consent the rule asks for. Returns what would be lost."""
    check = inspect(engine, (o for _, objects in steps for o in objects))
    if not check.holding:
        return check
    losing = [step for step, objects in steps if set(objects) & set(check.holding)]
    what = f"{', '.join(losing)} (it drops rows in {', '.join(check.holding)})"
    consent_rule.require(target, phase, what, consent, hint)
    if check.open_dead_letters:
        if consent.export is None:
            raise OpenDeadLetters(phase, ", ".join(losing), check.open_dead_letters)
        _writable(consent.export, _export_text(engine))
    return check


def before_drop(engine: Engine, target: Target, phase: str, step: str, objects: tuple[str, ...],
                consent: Consent, hint: str, record: Record) -> Path | None:
    """Right before one drop: the rule again (rows may have come since :func:`require`), then
    the OPEN dead letters written to ``consent.export``. Returns the file written, if any."""
    check = require(engine, target, phase, [(step, objects)], consent, hint)
    if not check.open_dead_letters or consent.export is None:
        return None
    count = export_open(engine, consent.export)
    record("dead_letters_exported", {"file": str(consent.export), "count": count, "step": step})
    return consent.export


def export_open(engine: Engine, path: Path) -> int:
    """Write every OPEN dead letter to ``path`` as JSON lines (whole or not at all); returns
    how many. An existing file is never overwritten (:func:`_writable`)."""
    text = _export_text(engine)
    if _writable(path, text):
        write_text_atomic(path, text, "--export")
    return text.count("\n")


def _export_text(engine: Engine) -> str:
    with engine.connect() as conn:
        rows = [r[0] for r in sqlfiles.execute(conn, OPEN_SQL)]
    return "".join(json.dumps(row, sort_keys=True, default=str) + "\n" for row in rows)


def _writable(path: Path, text: str) -> bool:
    """Whether ``path`` still needs writing: a link or a special file is refused, an existing
    file holding exactly ``text`` is a run that stopped after its export (already written),
    any other existing file is refused."""
    check_output_path(path, "--export")
    if not path.exists():
        return True
    if path.read_text(encoding="utf-8", errors="replace") == text:
        return False
    raise ConfigError(f"--export {path} already exists; refusing to overwrite it: "
                      "give a new file name")
