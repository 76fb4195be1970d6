"""Writing a set of files into an output directory (one mail per MAINTAINERS section).

The rules of files.py, for a directory: nofslint writes only into a directory it
made, or one holding nothing but what an earlier run of it wrote there, listed in
its MANIFEST. So a run never replaces or removes a file it did not create:

- a missing directory is created (its parent must exist);
- an existing one must be a real directory (not a symbolic link) that is empty or
  holds only the MANIFEST and the files it lists; anything else is refused;
- every file is written through the directory's descriptor as a temporary file
  created exclusively (never following a link), then renamed over its name: a
  symbolic link planted under that name is replaced, never written through;
- files the last run listed and this one does not write are removed (a link
  among them is removed, not followed), then the new MANIFEST is written last;
- a temporary file a killed run left (TEMP_NAME) is removed;
- nothing is half-written: all temporary files are written first, and a failure
  removes them before anything was renamed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from nofslint.frontend.files import TEMP_NAME, TEMP_SUFFIX, WriteRefused, deferred_signals

MANIFEST = ".nofslint-manifest"
_HEADER = "# Files nofslint wrote here; a later run replaces and removes only these.\n"
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) \
    | getattr(os, "O_CLOEXEC", 0)
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) \
    | getattr(os, "O_CLOEXEC", 0)


def _valid(name: str) -> bool:
    return (bool(name) and "/" not in name and "\0" not in name and name not in (".", "..")
            and name != MANIFEST and not name.endswith(TEMP_SUFFIX))


def write_directory(directory: Path, files: Mapping[str, bytes]) -> list[str]:
    """Write ``files`` (name -> content) into ``directory`` by the rules above; returns
    the names of the files removed as stale. WriteRefused or OSError: nothing of
    this run's is left behind."""
    bad = [n for n in files if not _valid(n)]
    if bad:
        raise ValueError(f"not a plain file name: {bad[0]!r}")
    created = False
    try:
        os.mkdir(directory, 0o777)
        created = True
    except FileExistsError:
        pass
    try:
        fd = os.open(directory, _DIR_FLAGS)
    except OSError as exc:
        st = _lstat(directory)
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise WriteRefused(f"{directory} is a symbolic link; give the real "
                               "directory") from None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise WriteRefused(f"{directory} exists and is not a directory") from None
        raise exc
    try:
        old = [] if created else _ours(fd, directory)
        _write_all(fd, files, old)
    finally:
        os.close(fd)
    return [n for n in old if n not in files]


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _ours(fd: int, directory: Path) -> list[str]:
    """The names the last run listed; refuses a directory holding anything else."""
    entries = set(os.listdir(fd))
    if not entries:
        return []
    if MANIFEST not in entries:
        raise WriteRefused(f"{directory} is not empty and nofslint did not write it "
                           f"(no {MANIFEST}); give a new or empty directory")
    listed = _read_manifest(fd, directory)
    for leftover in [e for e in entries if TEMP_NAME.fullmatch(e)]:  # a killed run's
        with contextlib.suppress(OSError):
            os.unlink(leftover, dir_fd=fd)
        entries.discard(leftover)
    foreign = sorted(entries - set(listed) - {MANIFEST})
    if foreign:
        raise WriteRefused(f"{directory} holds {foreign[0]!r}, which nofslint did not "
                           "write there; give a new or empty directory")
    return listed


def _read_manifest(fd: int, directory: Path) -> list[str]:
    st = os.stat(MANIFEST, dir_fd=fd, follow_symlinks=False)
    if not stat.S_ISREG(st.st_mode) or st.st_size > 1 << 20:
        raise WriteRefused(f"{directory}/{MANIFEST} is not a manifest nofslint wrote")
    mfd = os.open(MANIFEST, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=fd)
    with os.fdopen(mfd, "rb") as fh:
        text = fh.read().decode("utf-8", "surrogateescape")
    if not text.startswith(_HEADER):
        raise WriteRefused(f"{directory}/{MANIFEST} is not a manifest nofslint wrote")
    return [n for n in text[len(_HEADER):].split("\n") if _valid(n)]


def _write_all(fd: int, files: Mapping[str, bytes], old: list[str]) -> None:
    """Temporary files first; then a MANIFEST naming old and new files (so a failure
    part-way leaves a directory the next run still recognises), the renames, the
    removal of stale files, and the final MANIFEST."""
    temps: dict[str, str] = {}
    with deferred_signals():
        try:
            for name, data in files.items():
                temps[name] = _temporary(fd, name, data)
            both = _temporary(fd, MANIFEST, _manifest([*files, *old]))
            os.replace(both, MANIFEST, src_dir_fd=fd, dst_dir_fd=fd)
            for name, tmp in list(temps.items()):
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
                del temps[name]
            for name in old:
                if name not in files:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(name, dir_fd=fd)
            final = _temporary(fd, MANIFEST, _manifest(list(files)))
            os.replace(final, MANIFEST, src_dir_fd=fd, dst_dir_fd=fd)
            os.fsync(fd)
        finally:
            for tmp in temps.values():
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)


def _manifest(names: list[str]) -> bytes:
    return (_HEADER + "".join(f"{n}\n" for n in sorted(set(names)))).encode(
        "utf-8", "surrogateescape")


def _temporary(fd: int, name: str, data: bytes) -> str:
    mode = 0o666 & ~_umask()
    while True:
        tmp = f".{name[:64]}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        try:
            tfd = os.open(tmp, _NEW, mode, dir_fd=fd)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(tfd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=fd)
        raise
    return tmp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
