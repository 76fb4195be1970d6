"""Reading source files: every way a file can be unusable becomes a clear reason."""

from __future__ import annotations

import os
from pathlib import Path

# Larger than any hand-written kernel file (the biggest generated register
# headers in v6.12 are 16 MB); beyond this a file is reported, not parsed.
MAX_FILE_BYTES = 24 * 1024 * 1024


class SourceError(Exception):
    """A file that cannot be linted; the message says why."""


def read_source(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise SourceError("is a directory")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            mib = 1024 * 1024
            raise SourceError(f"file too large ({size // mib} MiB > {MAX_FILE_BYTES // mib} MiB)")
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except SourceError:
        raise
    except FileNotFoundError:
        raise SourceError("file disappeared while linting") from None
    except PermissionError:
        raise SourceError("permission denied") from None
    except OSError as exc:
        raise SourceError(f"cannot read: {os.strerror(exc.errno) if exc.errno else exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SourceError("file too large")
    if b"\0" in data:
        raise SourceError("binary file (contains NUL bytes)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceError(f"not valid UTF-8 (first bad byte on line {line})") from None
    return data
