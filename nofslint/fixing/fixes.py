"""The fix stage: fix builders -> byte edits -> unified diffs -> atomic writes.

Fixes are built after the rules ran, one parse per file that has fixable
findings. Edits of several findings in one file are merged (identical edits,
such as a shared flag declaration, once); a finding whose edits overlap an
earlier one keeps its own diff but stays out of the combined one.
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import os
import re
import signal
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from tree_sitter import Tree

from nofslint.frontend.parse import captures, parse_source
from nofslint.frontend.source import SourceError, read_source
from nofslint.model.findings import Edit, Finding


@dataclass
class FixSource:
    """One file's raw bytes and (lazily) its syntax tree, for fix builders."""

    raw: bytes

    @cached_property
    def tree(self) -> Tree:
        return parse_source(self.raw)[1]

    def text(self, start: int, end: int) -> str:
        return self.raw[start:end].decode("utf-8", "replace")


def error_score(tree: Tree) -> int:
    """How broken a parse is: ERROR nodes plus functions holding MISSING nodes."""
    root = tree.root_node
    errors = len(captures("(ERROR) @e", root).get("e", []))
    funcs = captures("(function_definition) @f", root).get("f", [])
    return errors + sum(1 for f in funcs if f.has_error)


def apply_edits(raw: bytes, edits: Iterable[Edit]) -> bytes:
    """Apply non-overlapping edits; insertions at one point keep their order."""
    ordered = sorted(enumerate(edits), key=lambda ie: (ie[1].start, ie[1].end > ie[1].start,
                                                       ie[1].order, ie[0]))
    out, pos = [], 0
    for _, edit in ordered:
        out.append(raw[pos:edit.start])
        out.append(edit.text.encode())
        pos = max(pos, edit.end)
    out.append(raw[pos:])
    return b"".join(out)


def match_line_endings(raw: bytes, edits: list[Edit]) -> list[Edit]:
    """Edits for a file written with CRLF line endings use CRLF too: fix builders
    write ``\\n``, and a fix must not leave a file with mixed line endings."""
    crlf = raw.count(b"\r\n")
    if not crlf or crlf != raw.count(b"\n"):
        return edits
    return [replace(e, text=e.text.replace("\r\n", "\n").replace("\n", "\r\n")) for e in edits]


def merge(edit_sets: Iterable[list[Edit]]) -> tuple[list[Edit], list[int]]:
    """Union of edit sets; returns (edits, indexes of the sets left out as conflicting).

    A set conflicts when one of its edits replaces bytes a kept edit replaces,
    or an insertion lands strictly inside a kept replacement; an edit identical
    to a kept one (a shared flag declaration) is kept once. Kept replacements
    never overlap, so each check is a bisection (a file may carry thousands).
    """
    merged: list[Edit] = []
    known: set[Edit] = set()
    starts: list[int] = []  # kept replacements, sorted and disjoint
    ends: list[int] = []
    points: list[int] = []  # kept insertion points, sorted
    dropped: list[int] = []
    for i, edits in enumerate(edit_sets):
        fresh = [e for e in edits if e not in known]
        if any(_collides(e, starts, ends, points) for e in fresh):
            dropped.append(i)
            continue
        for e in fresh:
            if e in known:
                continue
            known.add(e)
            merged.append(e)
            if e.start == e.end:
                bisect.insort(points, e.start)
            else:
                at = bisect.bisect_left(starts, e.start)
                starts.insert(at, e.start)
                ends.insert(at, e.end)
    return merged, dropped


def _collides(e: Edit, starts: list[int], ends: list[int], points: list[int]) -> bool:
    if e.start == e.end:  # strictly inside the last replacement starting before it?
        before = bisect.bisect_left(starts, e.start) - 1
        return before >= 0 and ends[before] > e.start
    before = bisect.bisect_left(starts, e.end) - 1
    if before >= 0 and ends[before] > e.start:
        return True
    inside = bisect.bisect_right(points, e.start)
    return inside < len(points) and points[inside] < e.end


def _lines(data: bytes) -> list[str]:
    """Lines as git sees them: split at \\n only (a form feed or a lone \\r is text)."""
    parts = data.decode("utf-8", "replace").split("\n")
    lines = [line + "\n" for line in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def unified_diff(rel: str, old: bytes, new: bytes) -> str:
    """A diff `git apply` accepts at the tree root (a/ and b/ prefixes)."""
    hunks = _hunks(old, new, 0, 0)
    return f"--- a/{rel}\n+++ b/{rel}\n{hunks}" if hunks else ""


def _hunks(old: bytes, new: bytes, old_skip: int, new_skip: int) -> str:
    """The hunks of a diff between two parts of a file that begin after
    ``old_skip`` and ``new_skip`` lines."""
    out = []
    for line in list(difflib.unified_diff(_lines(old), _lines(new), n=3))[2:]:
        if line.startswith("@@ "):
            line = _HUNK.sub(lambda m: f"@@ -{int(m[1]) + old_skip}{m[2] or ''} "
                             f"+{int(m[3]) + new_skip}{m[4] or ''} @@", line)
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


_MARGIN = 4  # lines kept around an edit: the diff's 3 of context, and one more


def edits_diff(rel: str, raw: bytes, edits: list[Edit]) -> str:
    """One fix's diff, computed around each of its edits rather than on the whole
    file: a file may carry thousands of fixes. The text is the whole-file diff's."""
    windows: list[list[int]] = []
    for e in sorted(edits, key=lambda e: (e.start, e.end)):
        lo, hi = e.start, e.end
        for _ in range(_MARGIN + 1):
            lo = raw.rfind(b"\n", 0, lo - 1) + 1 if lo > 0 else 0
        for _ in range(_MARGIN + 1):
            newline = raw.find(b"\n", hi)
            hi = len(raw) if newline < 0 else newline + 1
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], hi)
        else:
            windows.append([lo, hi])
    parts, shift = [], 0
    for lo, hi in windows:
        inside = [replace(e, start=e.start - lo, end=e.end - lo) for e in edits
                  if lo <= e.start and e.end <= hi]
        old = raw[lo:hi]
        new = apply_edits(old, inside)
        skipped = raw.count(b"\n", 0, lo)
        parts.append(_hunks(old, new, skipped, skipped + shift))
        shift += new.count(b"\n") - old.count(b"\n")
    hunks = "".join(parts)
    return f"--- a/{rel}\n+++ b/{rel}\n{hunks}" if hunks else ""


@dataclass
class FileFix:
    """The merged fix of one file."""

    path: Path
    rel: str
    old: bytes
    new: bytes
    findings: list[Finding] = field(default_factory=list)

    @property
    def diff(self) -> str:
        return unified_diff(self.rel, self.old, self.new)


def build_fixes(findings: list[Finding]) -> tuple[list[FileFix], list[str]]:
    """Fill ``finding.fix`` and return the merged per-file fixes and any problems."""
    by_file: dict[Path, list[Finding]] = defaultdict(list)
    for f in findings:
        target = f.fix_file or f.file
        if f.fix_builder is not None and target is not None:
            by_file[target].append(f)
    file_fixes: list[FileFix] = []
    problems: list[str] = []
    for path in sorted(by_file):
        group = sorted(by_file[path], key=Finding.sort_key)
        rel = group[0].fix_path or group[0].path
        try:
            raw = read_source(path)
        except SourceError as exc:
            problems.append(f"{rel}: cannot build fix: {exc}")
            continue
        source = FixSource(raw)
        usable: list[Finding] = []
        for f in group:
            edits = f.fix_builder.build(source) if f.fix_builder else None
            if not edits:
                continue
            edits = match_line_endings(raw, edits)
            f.edits = edits
            f.fix = edits_diff(rel, raw, edits)
            usable.append(f)
        if not usable:
            continue
        edits, dropped = merge(f.edits for f in usable)
        kept = [f for i, f in enumerate(usable) if i not in dropped]
        new = apply_edits(raw, edits)
        file_fixes.append(FileFix(path, rel, raw, new, kept))
    return file_fixes, problems


class FileChanged(Exception):
    """The file on disk is no longer the one a fix was computed from."""


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then act on them.

    A write is a temporary file and a rename; a signal in between would leave
    the temporary file in the tree. Held here, Ctrl-C or a CI timeout stops the
    run between two files, each either old or new. Outside the main thread
    (where handlers cannot be set) the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)
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


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_dev, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_dev, b.st_size,
                                                              b.st_mtime_ns)


def write_atomic(path: Path, data: bytes, expect: os.stat_result | None = None) -> None:
    """Write a file in one rename, keeping an existing file's mode and owner.

    A symlink is followed (the link stays, its target changes). With ``expect``
    the file must still be that one at the rename, else FileChanged and nothing
    is written. Never half-written; no temporary file survives an exception or
    SIGINT/SIGTERM.
    """
    path = Path(os.path.realpath(path))
    with deferred_signals():
        try:
            st: os.stat_result | None = path.stat()
        except FileNotFoundError:
            st = None
        if st is not None:
            mode = st.st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".nofslint", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(OSError):  # only root may give a file away
                    os.chown(tmp, st.st_uid, st.st_gid)
            os.chmod(tmp, mode)
            if expect is not None and not _same_file(os.stat(path), expect):
                raise FileChanged(str(path))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def apply_fix(fix: FileFix) -> str | None:
    """Write one file's fix; returns why it was not written, or None when it was."""
    changed = f"{fix.rel}: not fixed: the file changed while nofslint was running"
    try:
        seen: os.stat_result | None = os.stat(fix.path)  # before reading: see write_atomic
    except OSError:
        seen = None  # reading says why
    try:
        current = read_source(fix.path)
    except SourceError as exc:
        return f"{fix.rel}: not fixed: {exc}"
    if current != fix.old or seen is None:
        return changed
    before = error_score(parse_source(fix.old)[1])
    after = error_score(parse_source(fix.new)[1])
    if after > before:
        return f"{fix.rel}: not fixed: the fixed file would not parse cleanly ({after} > {before})"
    try:
        write_atomic(fix.path, fix.new, expect=seen)
    except FileChanged:
        return changed
    except OSError as exc:
        return f"{fix.rel}: not fixed: {exc.strerror or exc}"
    return None
