"""Which files ``invoke lint`` lints: ``--paths``, else the project's ``lint_paths`` from
``phasegate.toml``, else the kit's own revisions; and, with ``--since REF``, which of them
changed since a git ref (the others are still read, for what they say about the schema).

    # phasegate.toml
    lint_paths = ["db/migrations/versions", "sql/hotfixes"]   # relative to the file
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from checks.lint.inputs import CouldNotLint

GIT_TIMEOUT_S = 60


def configured_paths(config: Mapping[str, Any], project: Path) -> list[Path] | None:
    """``lint_paths`` from a loaded ``phasegate.toml`` (None when it has none)."""
    raw = config.get("lint_paths")
    if raw is None:
        return None
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(p, str) and p.strip()
                                                          for p in items):
        raise CouldNotLint("phasegate.toml: lint_paths must be a folder or file name, or a "
                           "non-empty list of them")
    return [(project / p.strip()).resolve() if not Path(p.strip()).is_absolute()
            else Path(p.strip()) for p in items]


def _git(args: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise CouldNotLint("--since needs git, which is not installed") from None
    except subprocess.TimeoutExpired:
        raise CouldNotLint(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
        raise CouldNotLint(f"git {args[0]}: {first}")
    return done.stdout


def changed_since(ref: str, cwd: Path) -> set[Path]:
    """Files added or changed since ``ref``'s merge base with HEAD: committed, staged,
    unstaged and untracked (what a pull request would add), resolved to absolute paths."""
    if not ref.strip() or ref.startswith("-"):
        raise CouldNotLint(f"--since takes a git ref (a branch, tag or commit), not {ref!r}")
    root = Path(_git(["rev-parse", "--show-toplevel"], cwd).strip())
    _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root)
    try:
        base = _git(["merge-base", ref, "HEAD"], root).strip()
    except CouldNotLint:
        base = ref  # unrelated histories: compare with the ref itself
    names = _git(["diff", "--name-only", "-z", "--diff-filter=d", base, "--"], root).split("\0")
    names += _git(["ls-files", "-z", "--others", "--exclude-standard"], root).split("\0")
    return {(root / n).resolve() for n in names if n}
