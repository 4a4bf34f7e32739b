"""Reading what the linter is given: regular files only, UTF-8 only, never blocking.

A FIFO named ``x.sql`` would block ``open()`` forever, ``/dev/zero`` would fill memory, a
directory or a symlink loop would raise: each is refused before anything is read, with one
line saying what it is (``invoke lint`` exits 2, "could not lint"). The file is opened
non-blocking and checked with ``fstat`` on the open descriptor, so a FIFO swapped in after a
check cannot block either. A UTF-8 byte-order mark is dropped (editors on Windows write one);
other encodings (but a Python file's PEP 263 coding cookie), and NUL bytes (PostgreSQL's parser stops reading at one, so what follows
would go unread), are refused with the line they are on.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tokenize
from pathlib import Path

from phasegate.errors import ConfigError

BOM = b"\xef\xbb\xbf"


class CouldNotLint(ConfigError):
    """The linter could not read an input; nothing was linted."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_text(path: Path) -> str:
    """The text of a migration file, or :class:`CouldNotLint` saying why not."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CouldNotLint(f"{path}: a symbolic link loop") from None
        if exc.errno == errno.ENOENT:
            raise CouldNotLint(f"{path}: no such file") from None
        raise CouldNotLint(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CouldNotLint(f"{path}: {_kind(mode)}, not a migration file; refused")
        # A regular file: one read sized by fstat (one copy of the bytes, not two).
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    except OSError as exc:  # EIO on a vanishing mount, EACCES on a FUSE file
        raise CouldNotLint(f"{path}: cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    return decode(data, path)


def _encoding(data: bytes, path: Path) -> str:
    """UTF-8, or for a Python file the encoding its PEP 263 cookie declares."""
    if path.suffix != ".py":
        return "utf-8"
    try:
        return tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    except SyntaxError as exc:  # an unknown encoding in the cookie
        raise CouldNotLint(f"{path}: {exc.msg}") from None


def decode(data: bytes, path: Path) -> str:
    if data.startswith(BOM):
        data = data[len(BOM):]
    encoding = _encoding(data, path)
    if encoding not in ("utf-8", "utf-8-sig"):
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise CouldNotLint(f"{path}: not {encoding} text as its coding cookie says ({exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CouldNotLint(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                           "save it as UTF-8") from None
    nul = text.find("\0")
    if nul >= 0:
        raise CouldNotLint(f"{path}: contains a NUL byte on line {text.count(chr(10), 0, nul) + 1}; "
                           "PostgreSQL would not read past it") from None
    return text


def describe(path: Path) -> str | None:
    """Why ``path`` (found in a folder) is not something to lint, or None when it is a
    regular file (following symlinks); never blocks."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        return f"cannot be read ({exc.strerror})"
    return None if stat.S_ISREG(mode) else _kind(mode)
