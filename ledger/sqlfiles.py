"""Named SQL blocks kept in ``.sql`` files: ``-- name: <id>`` then a one-line description."""

from __future__ import annotations

import functools
import re
from pathlib import Path

_NAME = re.compile(r"^--\s*name:\s*(\S+)\s*$")


@functools.cache
def load(path: str) -> dict[str, str]:
    """Parse a .sql file into {name: sql}; loaded once per process."""
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        m = _NAME.match(line)
        if m:
            current = m.group(1)
            blocks[current] = []
        elif current is not None and not line.startswith("--"):
            blocks[current].append(line)
    return {name: "\n".join(lines).strip().rstrip(";") for name, lines in blocks.items()}


def query(module_file: str, sql_name: str, name: str) -> str:
    """The block ``name`` of the .sql file ``sql_name`` next to ``module_file``."""
    return load(str(Path(module_file).with_name(sql_name)))[name]
