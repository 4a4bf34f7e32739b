"""phasegate's one error root and the error classes shared by every package."""

from __future__ import annotations

import re


class PhasegateError(Exception):
    """phasegate failed; the message says what happened and what to do."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(PhasegateError):
    """The configuration is invalid."""


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@", re.I)
_KV_PASSWORD = re.compile(r"(?P<key>password\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)


def mask_secrets(text: str, *secrets: str) -> str:
    """Replace passwords in URLs and DSNs (and any given secret strings) with '***'."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    masked = _KV_PASSWORD.sub(lambda m: f"{m['key']}***", masked)
    for secret in secrets:
        if secret:
            masked = masked.replace(secret, "***")
    return masked
