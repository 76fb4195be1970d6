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


class NotRegular(SourceError):
    """Not a regular file (the message says what it is): never read."""

    def __init__(self, reason: str, directory: bool) -> None:
        super().__init__(reason)
        self.directory = directory


class TooLarge(SourceError):
    """Larger than the reader's limit: refused before reading, or it grew while read."""

    def __init__(self, size: int | None, limit: int) -> None:
        mib = 1024 * 1024
        super().__init__("file too large (it grew while being read)" if size is None
                         else f"file too large ({size // mib} MiB > {limit // mib} MiB)")
        self.size, self.limit = size, limit


def read_regular(path: Path | str, limit: int | None = None) -> bytes:
    """At most ``limit`` (default MAX_FILE_BYTES) bytes of a regular file (a symlink to
    one too), for every reader of files it was handed (sources, the files a patch
    changes, rule files).

    Checked before it is opened: opening a device has effects of its own (a tree's
    ``x.c`` linked to ``/dev/watchdog`` would arm it, as root). Then opened
    non-blocking, without becoming a controlling terminal, and checked again on
    the open descriptor: a file swapped in between cannot slip through, and a
    named pipe is never waited on. Raises NotRegular, TooLarge, or OSError.
    """
    if limit is None:  # read at call time: tests lower it
        limit = MAX_FILE_BYTES
    mode = os.stat(path).st_mode
    if not stat.S_ISDIR(mode):  # opening a directory acts on nothing: it says why it fails
        _refuse_special(mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        _refuse_special(st.st_mode)
        if st.st_size > limit:
            raise TooLarge(st.st_size, limit)
        data = _read_fd(fd, st.st_size, limit)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise TooLarge(None, limit)
    return data


def _read_fd(fd: int, expected: int, limit: int) -> bytes:
    """Until end of file, at most ``limit + 1`` bytes: the size fstat gave in one read
    (a buffered read of ``limit + 1`` allocates 24 MB per file: 4x slower on a tree),
    then more in case the file grew."""
    parts: list[bytes] = []
    got = 0
    while got <= limit:
        want = expected + 1 - got if got <= expected else 1 << 16
        chunk = os.read(fd, min(want, limit + 1 - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _refuse_special(mode: int) -> None:
    for test, reason in _KINDS:
        if test(mode):
            raise NotRegular(reason, stat.S_ISDIR(mode))
    if not stat.S_ISREG(mode):
        raise NotRegular("not a regular file", False)


def read_source(path: Path | str) -> bytes:
    try:
        data = read_regular(path)
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
    if b"\0" in data:
        raise SourceError("binary file (contains NUL bytes)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceError(f"not valid UTF-8 (first bad byte on line {line})") from None
    return data
