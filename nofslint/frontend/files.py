"""Writing files: the one writer for fixes, reports, baselines and the cache.

Users run nofslint as root on trees they were sent, so a write never
destroys what nofslint did not create:

- a regular file or a new path is replaced by the rename of a temporary file
  written (and fsynced) beside it, keeping the old file's mode and owner, or
  refused when its owner cannot be kept;
- a named pipe or a character device (``/dev/null``, ``/dev/stdout`` into a
  pipe) is written in place: a rename would replace the node itself;
- anything else (a directory, a socket, a block device) is refused;
- no temporary file survives an error, SIGINT, SIGTERM or SIGHUP.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

TEMP_SUFFIX = ".nofslint"
# A temporary file: ``.<target name (at most 64 bytes)>.<12 hex digits>.nofslint``.
TEMP_TAIL = r"\.[0-9a-f]{12}\.nofslint"
TEMP_NAME = re.compile(r"\..*" + TEMP_TAIL, re.DOTALL)

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_KINDS = ((stat.S_ISDIR, "is a directory"), (stat.S_ISSOCK, "is a socket"),
          (stat.S_ISBLK, "is a block device"), (stat.S_ISFIFO, "is a named pipe"),
          (stat.S_ISCHR, "is a character device"))


class WriteRefused(OSError):
    """A target nofslint must not write; the message says why."""


class FileChanged(Exception):
    """The file on disk is no longer the one a fix was computed from."""


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block ends, then act on them.

    A write is a temporary file and a rename; a signal in between would leave
    the temporary file behind. Held here, Ctrl-C or a CI timeout stops the
    run between two files, each either old or new. Outside the main thread
    (where handlers cannot be set) the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.getsignal(sig)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(sig) != signal.SIG_IGN}  # ignored stays ignored
    for sig in previous:
        signal.signal(sig, lambda s, _f: pending.append(s))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            # None: a handler installed outside Python, which the default stands in for.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if pending:  # delivered again, now with the caller's own handlers
            os.kill(os.getpid(), pending[0])


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_dev, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_dev, b.st_size,
                                                              b.st_mtime_ns)


def write_atomic(path: Path, data: bytes, *, expect: os.stat_result | None = None,
                 expect_data: bytes | None = None, keep_links: bool = False,
                 durable: bool = True, devices: bool = True) -> None:
    """Write ``data`` to ``path`` by the rules of the module docstring.

    A symlink is followed (the link stays, its target changes). With ``expect``
    the file must still be that one when it is replaced, else FileChanged and
    nothing is written. With ``keep_links`` a file with several hard links is
    rewritten in place, after checking it still holds ``expect_data``, so
    every link sees the new text. ``durable=False`` skips the fsync: only for
    writes checked when read back (cache entries, written by the thousand).
    ``devices=False`` refuses a pipe or a device too: opening a pipe nobody
    reads would wait for ever.
    """
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if not devices:
            raise WriteRefused(refusal(st.st_mode))
        _write_special(path, data, st.st_mode)
        return
    real = Path(os.path.realpath(path))
    with deferred_signals():
        if st is not None and keep_links and st.st_nlink > 1:
            _rewrite_in_place(real, data, expect, expect_data)
        else:
            _replace(real, data, st, expect, durable)


def refusal(mode: int) -> str:
    """Why a node of this type is not written."""
    kind = next((reason for test, reason in _KINDS if test(mode)), "is not a regular file")
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return f"{kind}, not a regular file"
    return (f"{kind}; nofslint writes only a regular file, a new file, a named pipe "
            "or a character device")


def _write_special(path: Path, data: bytes, mode: int) -> None:
    """A named pipe or a character device: written in place, never replaced."""
    if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        raise WriteRefused(refusal(mode))
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | _CLOEXEC)
    try:
        now = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(now) or stat.S_ISCHR(now)):  # swapped since the stat
            raise WriteRefused(refusal(now) if not stat.S_ISREG(now)
                               else "was replaced by a regular file while being opened")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _replace(path: Path, data: bytes, st: os.stat_result | None,
             expect: os.stat_result | None, durable: bool) -> None:
    if st is not None:
        mode = st.st_mode & 0o7777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
            if st is not None:
                _keep_owner(fh.fileno(), st)
            os.fchmod(fh.fileno(), mode)  # after fchown, which clears set-id bits
        if expect is not None and not same_file(os.stat(path), expect):
            raise FileChanged(str(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _keep_owner(fd: int, st: os.stat_result) -> None:
    """Give the temporary file the old file's owner, or refuse: the renamed file
    must never end up belonging to someone else."""
    now = os.fstat(fd)
    if (now.st_uid, now.st_gid) == (st.st_uid, st.st_gid):
        return
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
    except OSError:
        raise WriteRefused(f"cannot keep its owner {st.st_uid}:{st.st_gid} (a rename "
                           "would give the file to the caller)") from None


def _temporary(path: Path) -> tuple[int, str]:
    """A new file beside ``path``, named by TEMP_NAME, created exclusively."""
    stem = os.fsdecode(os.fsencode(path.name)[:64])  # room for the rest within NAME_MAX
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    while True:
        tmp = os.path.join(path.parent, f".{stem}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
        with contextlib.suppress(FileExistsError):
            return os.open(tmp, flags, 0o600), tmp


def _rewrite_in_place(path: Path, data: bytes, expect: os.stat_result | None,
                      expect_data: bytes | None) -> None:
    """Rewrite a hard-linked file through one descriptor: a rename would split
    the links (the others keeping the old text)."""
    fd = os.open(path, os.O_RDWR | _NOFOLLOW | _CLOEXEC)
    with os.fdopen(fd, "r+b") as fh:
        if expect is not None and not same_file(os.fstat(fd), expect):
            raise FileChanged(str(path))
        if expect_data is not None and fh.read() != expect_data:
            raise FileChanged(str(path))
        fh.seek(0)
        fh.write(data)
        fh.truncate()
        fh.flush()
        os.fsync(fd)
