"""phasegate's one error root. Every package's errors derive from :class:`PhasegateError`,
so the CLI turns any of them into one clear line in one place; the docstring of each class is
its default message."""

from __future__ import annotations


class PhasegateError(Exception):
    """phasegate failed; the message says what happened and what to do."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(PhasegateError):
    """The configuration is invalid."""


class Refused(PhasegateError):
    """The request is valid but the target's state does not allow it now (exit code 1)."""


class Unreachable(PhasegateError):
    """A server the command needs did not answer (down, wrong port, wrong password)."""


class ServerUnavailable(PhasegateError):
    """No provider could start the server; the message says what is missing and how to get it."""


class IrreversibleMigration(PhasegateError):
    """This revision cannot be downgraded automatically; the rollout plan gives the manual path."""
