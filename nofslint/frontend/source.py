"""Reading source files: every way a file can be unusable becomes a clear reason."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# Larger than any hand-written kernel file (the biggest generated register
# headers in v6.12 are 16 MB); beyond this a file is reported, not parsed.
MAX_FILE_BYTES = 24 * 1024 * 1024

_KINDS = ((stat.S_ISDIR, "is a directory"), (stat.S_ISFIFO, "is a named pipe"),
          (stat.S_ISSOCK, "is a socket"), (stat.S_ISCHR, "is a character device"),
          (stat.S_ISBLK, "is a block device"))


class SourceError(Exception):
    """A file that cannot be linted; the message says why."""


def _read(path: Path) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes of a regular file.

    Checked before it is opened: opening a device has effects of its own (a tree's
    ``x.c`` linked to ``/dev/watchdog`` would arm it, as root). Then opened
    non-blocking, without becoming a controlling terminal, and checked again on
    the open descriptor: a file swapped in between cannot slip through.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISDIR(mode):  # a directory: the open below says so
        _refuse_special(mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        _refuse_special(st.st_mode)
        if st.st_size > MAX_FILE_BYTES:
            mib = 1024 * 1024
            raise SourceError(
                f"file too large ({st.st_size // mib} MiB > {MAX_FILE_BYTES // mib} MiB)")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)


def _refuse_special(mode: int) -> None:
    for test, reason in _KINDS:
        if test(mode):
            raise SourceError(reason)
    if not stat.S_ISREG(mode):
        raise SourceError("not a regular file")


def read_source(path: Path) -> bytes:
    try:
        data = _read(path)
    except SourceError:
        raise
    except FileNotFoundError:
        raise SourceError("file disappeared while linting") from None
    except IsADirectoryError:
        raise SourceError("is a directory") from None
    except PermissionError:
        raise SourceError("permission denied") from None
    except OSError as exc:
        raise SourceError(f"cannot read: {os.strerror(exc.errno) if exc.errno else exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SourceError("file too large (it grew while being read)")
    if b"\0" in data:
        raise SourceError("binary file (contains NUL bytes)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceError(f"not valid UTF-8 (first bad byte on line {line})") from None
    return data
