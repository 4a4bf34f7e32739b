"""A stack's outputs for the rollout: ``rollout --env <env>`` with ``pulumi_stack = "<stack>"``.

The Pulumi program exports one DSN per role and the Redis URL, all secrets. This module reads
them through the Automation API (which needs the Pulumi CLI) and maps them onto the names the
rollout uses. The values are credentials: never log them unmasked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.automation import PulumiCommandFailed, PulumiError, first_error_line, open_stack

# program export -> name the rollout reads. ``db_url`` is the migrator: the rollout runs DDL.
OUTPUT_NAMES: dict[str, str] = {
    "migrator_dsn": "db_url",
    "app_dsn": "app_db_url",
    "operator_dsn": "operator_db_url",
    "readonly_dsn": "readonly_db_url",
    "redis_url": "redis_url",
}


class StackOutputsMissing(PulumiError):
    """The stack exists but lacks outputs the rollout needs (it was never provisioned)."""

    def __init__(self, stack: str, missing: list[str]) -> None:
        self.stack, self.missing = stack, missing
        super().__init__(
            f"Pulumi stack {stack!r} has no {', '.join(missing)} output(s); "
            f"run `invoke provision --stack {stack}` first")


def map_outputs(stack: str, raw: Mapping[str, Any]) -> dict[str, str]:
    """Program exports (plain values or Automation API ``OutputValue``s) -> rollout names."""
    values = {key: getattr(value, "value", value) for key, value in raw.items()}
    missing = [key for key in OUTPUT_NAMES if not isinstance(values.get(key), str) or not values[key]]
    if missing:
        raise StackOutputsMissing(stack, missing)
    return {name: values[key] for key, name in OUTPUT_NAMES.items()}


def stack_outputs(stack: str) -> dict[str, str]:
    """``{db_url, app_db_url, operator_db_url, readonly_db_url, redis_url}`` of ``stack``.

    Raises PulumiCliMissing (one line, how to install) without the CLI, StackNotFound,
    StackOutputsMissing, or PulumiCommandFailed; all are PhasegateErrors.
    """
    from pulumi import automation as auto

    target = open_stack(stack, create=False, needed_for="reading Pulumi stack outputs")
    try:
        raw = target.outputs()
    except auto.CommandError as exc:
        raise PulumiCommandFailed(stack, "stack output", first_error_line(exc)) from exc
    except ValueError as exc:  # the CLI printed something that is not JSON
        raise PulumiCommandFailed(stack, "stack output", "its output is not JSON") from exc
    return map_outputs(stack, raw)
