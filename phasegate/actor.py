"""Who is acting, resolved one way for every command: the option given, else
``$PHASEGATE_ACTOR``, else the login name. Stored in events and audits, so it is made one
printable line of bounded length."""

from __future__ import annotations

import getpass
import os

from phasegate.text import printable

MAX_ACTOR = 64


def resolve_actor(given: str | None = None) -> str | None:
    """The acting name, or None when nothing names anyone (no option, no variable, and the
    login name cannot be read: a container with no passwd entry and no $USER)."""
    name = given or os.environ.get("PHASEGATE_ACTOR")
    if not name:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):  # no $USER/$LOGNAME and no passwd entry for the uid
            name = None
    if not name:
        return None
    # Escaped, not dropped: the audit shows exactly what was typed (a name that is not UTF-8
    # arrives from argv as surrogates, a control character as itself).
    clean = printable(name).strip()[:MAX_ACTOR]
    return clean or None
