"""Drive the Pulumi program in ``infra/`` through Pulumi's Automation API.

The Automation API shells out to the Pulumi CLI. The CLI cannot always be installed (it is
not on the machines this kit is developed on), so every entry point first checks for it and
raises :class:`PulumiCliMissing`, one line that says how to install it, instead of the
``FileNotFoundError`` traceback the SDK would give.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from phasegate.errors import ConfigError, PhasegateError, ServerUnavailable
from phasegate.text import mask_secrets

INFRA_DIR = Path(__file__).resolve().parent
PROJECT_DIR = INFRA_DIR.parent
INSTALL_URL = "https://www.pulumi.com/docs/install/"
# A stack name, optionally qualified as org/stack or org/project/stack.
_STACK = re.compile(r"[A-Za-z0-9_.-]{1,100}(/[A-Za-z0-9_.-]{1,100}){0,2}")  # matched whole


class PulumiError(PhasegateError):
    """Pulumi could not do what was asked."""


class PulumiCliMissing(PulumiError, ServerUnavailable):
    """The Pulumi CLI is not installed."""

    def __init__(self, needed_for: str) -> None:
        self.needed_for = needed_for
        super().__init__(f"the Pulumi CLI is not installed ({INSTALL_URL}); {needed_for} needs it")


class StackNotFound(PulumiError):
    """The stack does not exist in the current Pulumi backend."""

    def __init__(self, stack: str) -> None:
        self.stack = stack
        super().__init__(
            f"Pulumi stack {stack!r} does not exist in the current backend "
            f"(run `invoke provision --stack {stack}` first, or `pulumi login` to the right one)")


class PulumiCommandFailed(PulumiError):
    """A Pulumi command failed; the message carries its first error line, secrets masked."""

    def __init__(self, stack: str, action: str, detail: str) -> None:
        self.stack, self.action, self.detail = stack, action, detail
        super().__init__(f"pulumi {action} on stack {stack!r} failed: {detail}")


class Action(enum.Enum):
    UP = "up"  # create or update the stack's resources
    PREVIEW = "preview"  # show what `up` would change; changes nothing
    DESTROY = "destroy"  # delete the stack's resources (protected ones refuse)


@dataclass(frozen=True)
class ProvisionResult:
    """What one provision run did: resource operation counts, e.g. {"create": 12}."""

    stack: str
    action: Action
    changes: dict[str, int] = field(default_factory=dict)


def validate_stack(stack: str) -> str:
    """The stack name, if well-formed; ConfigError otherwise."""
    if not isinstance(stack, str) or not _STACK.fullmatch(stack):
        shown = stack if isinstance(stack, str) and len(stack) < 60 and stack.isprintable() else "<invalid>"
        raise ConfigError(f"invalid Pulumi stack name {shown!r}")
    return stack


def known_stacks() -> list[str]:
    """Stacks with a settings file in ``infra/`` (Pulumi.<stack>.yaml)."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in INFRA_DIR.glob("Pulumi.*.yaml"))


def require_cli(needed_for: str) -> str:
    """The path of the Pulumi CLI, or PulumiCliMissing."""
    path = shutil.which("pulumi")
    if path is None:
        raise PulumiCliMissing(needed_for)
    return path


def first_error_line(exc: BaseException) -> str:
    """The most telling line of a Pulumi CLI failure (its first 'error:' line), masked."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln[ln.lower().index("error:") + len("error:"):].strip()
              for ln in lines if "error:" in ln.lower()]
    picked = next((e for e in errors if e), None) or (lines[0] if lines else type(exc).__name__)
    return mask_secrets(picked)[:300]


def _workspace_options():  # type: ignore[no-untyped-def]
    from pulumi import automation as auto

    # The program imports ``infra.components``: the project root must be importable by the
    # language host and by the dynamic provider's process, installed or not.
    path = os.pathsep.join(p for p in (str(PROJECT_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return auto.LocalWorkspaceOptions(work_dir=str(INFRA_DIR), env_vars={"PYTHONPATH": path})


def open_stack(stack: str, *, create: bool, needed_for: str):  # type: ignore[no-untyped-def]
    """Select (or create) ``stack`` of the program in ``infra/``: an ``automation.Stack``."""
    from pulumi import automation as auto

    validate_stack(stack)
    require_cli(needed_for)
    opener = auto.create_or_select_stack if create else auto.select_stack
    try:
        return opener(stack_name=stack, work_dir=str(INFRA_DIR), opts=_workspace_options())
    except FileNotFoundError as exc:  # the CLI vanished between the check and the call
        raise PulumiCliMissing(needed_for) from exc
    except auto.StackNotFoundError as exc:
        raise StackNotFound(stack) from exc
    except auto.CommandError as exc:
        raise PulumiCommandFailed(stack, "stack select", first_error_line(exc)) from exc


def provision(
    stack: str, action: Action = Action.UP, on_output: Callable[[str], None] | None = print
) -> ProvisionResult:
    """Run ``pulumi up`` / ``preview`` / ``destroy`` for ``stack``, streaming its output."""
    from pulumi import automation as auto

    validate_stack(stack)
    short = stack.rsplit("/", 1)[-1]
    if short not in known_stacks():
        raise ConfigError(
            f"no settings for stack {short!r} (infra/Pulumi.{short}.yaml); "
            f"known: {', '.join(known_stacks())}")
    # Destroy never creates a stack; up and preview create it on first use.
    target = open_stack(stack, create=action is not Action.DESTROY, needed_for="provision")
    try:
        if action is Action.PREVIEW:
            changes = target.preview(on_output=on_output).change_summary
        elif action is Action.DESTROY:
            changes = target.destroy(on_output=on_output).summary.resource_changes
        else:
            changes = target.up(on_output=on_output).summary.resource_changes
    except auto.CommandError as exc:
        raise PulumiCommandFailed(stack, action.value, first_error_line(exc)) from exc
    summary = {str(getattr(k, "value", k)): int(v) for k, v in (changes or {}).items()}
    return ProvisionResult(stack, action, summary)
