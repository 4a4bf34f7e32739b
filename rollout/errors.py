"""The rollout's errors: each carries the fields a release manager needs to act."""

from __future__ import annotations

from phasegate.errors import ConfigError, PhasegateError

__all__ = [
    "ConfigError",
    "GateFailed",
    "IrreversibleStep",
    "LockHeld",
    "MoveRefused",
    "OpenDeadLetters",
    "OutOfOrder",
    "PhasegateError",
    "PreflightFailed",
    "RollbackFailed",
    "RolloutError",
    "ActionFailed",
    "Interrupted",
    "LockLost",
]


class RolloutError(PhasegateError):
    """The rollout stopped."""


class PreflightFailed(RolloutError):
    """A preflight check refused to start the phase."""

    def __init__(self, phase: str, reasons: list[str]) -> None:
        self.phase, self.reasons = phase, reasons
        super().__init__(f"preflight refused {phase}: {'; '.join(reasons)}")


class OutOfOrder(RolloutError):
    """The requested phase cannot run now."""

    def __init__(self, phase: str, reason: str, instead: str) -> None:
        self.phase, self.reason, self.instead = phase, reason, instead
        super().__init__(f"{phase} refused: {reason}; run instead: {instead}")


class LockHeld(RolloutError):
    """Another session holds this target's rollout lock: a rollout of the kit's own role, or
    a foreign session (another role, or a label that is not the kit's)."""

    def __init__(self, target: str, holder: str, *, role: str | None = None,
                 pid: int | None = None, label: str | None = None, foreign: bool = False) -> None:
        self.target, self.holder = target, holder  # holder: the description, as recorded
        self.role, self.pid, self.label, self.foreign = role, pid, label, foreign
        super().__init__(f"target {target} is locked by {holder}")


class MoveRefused(RolloutError):
    """A schema move contradicts the rollout state (or cannot be made at all)."""

    def __init__(self, goal: str, reason: str, instead: str | None = None) -> None:
        self.goal, self.reason, self.instead = goal, reason, instead
        tail = f"; run instead: {instead}" if instead else ""
        super().__init__(f"migrate to {goal} refused: {reason}{tail}")


class ActionFailed(RolloutError):
    """An action failed (and what the automatic rollback did about it)."""

    def __init__(self, phase: str, action_id: str, cause: BaseException, rollback: str) -> None:
        self.phase, self.action_id, self.cause, self.rollback = phase, action_id, cause, rollback
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        super().__init__(f"{phase}: action {action_id} failed: {first}; {rollback}")


class GateFailed(RolloutError):
    """The gate after apply did not pass."""

    def __init__(self, phase: str, failed: list[str], rollback: str,
                 reasons: list[str] | None = None) -> None:
        self.phase, self.failed, self.rollback = phase, failed, rollback
        self.reasons = list(reasons or [])
        # One line, as every CLI error is: each failed (then warning) check with its summary
        # and the thresholds it compared, then what happened to the phase.
        why = "; ".join(self.reasons) or ", ".join(failed)
        super().__init__(f"{phase}: gate failed: {why}; {rollback}")


class RollbackFailed(RolloutError):
    """The rollback itself failed; both errors are reported."""

    def __init__(self, phase: str, action_id: str, cause: BaseException, original: str = "") -> None:
        self.phase, self.action_id, self.cause = phase, action_id, cause
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        extra = f" (after: {original})" if original else ""
        super().__init__(
            f"{phase}: rollback of {action_id} failed: {first}{extra}; "
            f"follow the manual steps in the plan (invoke plan --phase {phase})")


class IrreversibleStep(RolloutError):
    """An irreversible step blocks the request."""

    def __init__(self, phase: str, action_id: str, message: str) -> None:
        self.phase, self.action_id = phase, action_id
        super().__init__(f"{phase}: {action_id} is irreversible: {message}")


class Interrupted(RolloutError):
    """A server went away under the rollout (restart, failover, network): it stopped where it
    was, without rolling back; every action is idempotent and checkpointed, so the same
    command run again resumes."""

    lost = "the connection to a server"

    def __init__(self, phase: str, action_id: str | None, cause: BaseException) -> None:
        self.phase, self.action_id, self.cause = phase, action_id, cause
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        where = f" at {action_id}" if action_id else ""
        super().__init__(
            f"{phase}: interrupted{where}: lost {self.lost} ({first}); nothing was rolled "
            "back and the step is idempotent: run the same command again to resume")


class Stopped(RolloutError):
    """A signal (Ctrl-C, SIGTERM) stopped the rollout where it was: the phase is marked
    ``interrupted``, nothing was rolled back, and ``resume`` is the command that goes on."""

    def __init__(self, phase: str, action_id: str | None, signal_name: str, resume: str) -> None:
        self.phase, self.action_id, self.signal_name, self.resume = phase, action_id, signal_name, resume
        where = f" at {action_id}" if action_id else ""
        super().__init__(f"{phase}: stopped by {signal_name}{where}; nothing was rolled back; "
                         f"resume with: {resume}")


class LockLost(Interrupted):
    """The session holding the rollout lock died (the server restarted): another rollout
    could start now, so this one stops at its next step."""

    lost = "the rollout lock with its session"


class OpenDeadLetters(IrreversibleStep):
    """A drop would lose OPEN dead letters nobody has exported or resolved."""

    def __init__(self, phase: str, action_id: str, count: int) -> None:
        self.count = count
        super().__init__(
            phase, action_id,
            f"it drops {count} OPEN dead letter(s): export them first with --export PATH "
            "(JSON lines), or resolve them (invoke dlq list)")
