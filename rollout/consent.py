"""What the person running a command agreed to, and the one rule an irreversible step asks.

An irreversible step (retention's first prune, contract's key expiry, and any undo or schema
move that drops rows: ``rollout/drops.py``) runs only with ``--yes``, and on a production
target only with its name typed back (``--confirm NAME``). Phases, rollbacks and
``invoke migrate`` all call :func:`require`, so the rule is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rollout.errors import IrreversibleStep

if TYPE_CHECKING:
    from rollout.environments import Target


@dataclass(frozen=True)
class Consent:
    """The command's answers to an irreversible step; the default agrees to nothing."""

    yes: bool = False  # --yes: run irreversible steps
    confirm_env: str | None = None  # --confirm NAME: the production target's name, typed back
    # --export PATH: where OPEN dead letters are written (JSON lines) before a drop loses them
    export: Path | None = None


NONE = Consent()


def require(target: Target, phase: str, what: str, consent: Consent, hint: str) -> None:
    """Raise :class:`IrreversibleStep` unless ``consent`` allows ``what`` (the step ids, or a
    description of the drop) on ``target``; ``hint`` says where to read what it does."""
    if not consent.yes:
        raise IrreversibleStep(phase, what, f"refusing to run without --yes ({hint})")
    if target.production and consent.confirm_env != target.name:
        raise IrreversibleStep(phase, what, f"{target.name} is production: type its name back "
                                            f"with --confirm {target.name}")
