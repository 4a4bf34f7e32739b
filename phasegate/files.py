"""Files the kit writes (plans, reports, JUnit XML): whole or not at all, never through a link.

A plan read at 3 am must be the one the engine wrote: it is written to a temporary file in
the same folder and renamed over the target, so a reader never sees half of it and a crash
leaves the previous one. A symlink at the target is refused, not followed: someone planted
it, and writing through it would overwrite whatever it points at.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from phasegate.errors import ConfigError


def check_output_path(path: Path, what: str = "output") -> Path:
    """Refuse, before any work starts, a path the kit cannot write a regular file to."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        st = None
    except OSError as exc:  # a path *under* a file: NotADirectoryError, or EACCES
        raise ConfigError(f"{what} {path}: cannot be written ({exc.strerror})") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise ConfigError(f"{what} {path} is a symbolic link; refusing to write through it")
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{what} {path} is a directory; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{what} {path} is not a regular file (a device or a pipe)")
    parent = path.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"{what} {path}: {folder} is a file, not a folder")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(f"{what} {path}: {folder} is not writable")
            break
    return path


def write_text_atomic(path: Path, text: str, what: str = "output") -> Path:
    """Write ``text`` to ``path`` via a temporary file and a rename; refuses links and
    special files (see :func:`check_output_path`). Creates missing parent folders."""
    check_output_path(path, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        # Checked again just before the rename: a link planted meanwhile is refused too.
        check_output_path(path, what)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
