"""The fix stage: fix builders -> byte edits -> unified diffs -> safe writes.

Fixes are built after the rules ran, one parse per file that has fixable
findings. Edits of several findings in one file are merged (identical edits,
such as a shared flag declaration, once); a finding whose edits overlap an
earlier one keeps its own diff but stays out of the combined one.
"""

from __future__ import annotations

import bisect
import difflib
import os
import re
import stat
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from tree_sitter import Tree

from nofslint.frontend.files import FileChanged, write_atomic
from nofslint.frontend.files import deferred_signals as deferred_signals  # 0.1.0 path
from nofslint.frontend.parse import captures, parse_source
from nofslint.frontend.source import SourceError, read_source
from nofslint.kernel.kconfig import Kconfig
from nofslint.kernel.tree import find_root
from nofslint.model.findings import Edit, Finding


@dataclass
class FixSource:
    """One file's raw bytes and (lazily) its syntax tree, for fix builders: parsed with the
    kernel config the facts were extracted with, so the nodes are where the facts say."""

    raw: bytes
    config: Kconfig | None = None

    @cached_property
    def tree(self) -> Tree:
        return parse_source(self.raw, self.config)[1]

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
    """Edits for a file written with CRLF (Windows) or CR alone (old Mac) line
    endings use them too: fix builders write ``\\n``, and a fix must not leave a
    file with mixed line endings."""
    lf = raw.count(b"\n")
    if lf and raw.count(b"\r\n") == lf:
        ending = "\r\n"
    elif not lf and b"\r" in raw:
        ending = "\r"
    else:
        return edits
    return [replace(e, text=e.text.replace("\r\n", "\n").replace("\n", ending)) for e in edits]


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
    findings: list[Finding] = field(default_factory=list)  # whose edits are in ``new``
    # Every finding of the file whose fix was built, conflicting ones included: after
    # filtering, the file is merged again from these, never built again.
    built: list[Finding] = field(default_factory=list, repr=False)

    @property
    def diff(self) -> str:
        return unified_diff(self.rel, self.old, self.new)


def build_fixes(findings: list[Finding], config: Kconfig | None = None
                ) -> tuple[list[FileFix], list[str]]:
    """Fill ``finding.fix`` and return the merged per-file fixes and any problems
    (``config``: the kernel config the run linted with)."""
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
        source = FixSource(raw, config)
        usable: list[Finding] = []
        for f in group:
            edits = f.fix_builder.build(source) if f.fix_builder else None
            if not edits:
                continue
            edits = match_line_endings(raw, edits)
            f.edits = edits
            f.fix = edits_diff(rel, raw, edits)
            usable.append(f)
        merged = _merged(path, rel, raw, usable)
        if merged is not None:
            file_fixes.append(merged)
    return file_fixes, problems


def _merged(path: Path, rel: str, raw: bytes, usable: list[Finding]) -> FileFix | None:
    """One file's fix from the findings whose edits were built (None: there are none)."""
    if not usable:
        return None
    edits, dropped = merge(f.edits for f in usable)
    kept = [f for i, f in enumerate(usable) if i not in dropped]
    return FileFix(path, rel, raw, apply_edits(raw, edits), kept, usable)


def remerged(fixes: list[FileFix], findings: list[Finding]) -> list[FileFix]:
    """The per-file fixes of ``findings`` (what is left after filtering): each finding's
    edits were built once, with the run; only the merge of each file runs again, so a
    silenced finding's edits never reach --diff or --fix, and a fix it conflicted with
    comes back. Findings are matched by place, rule and message: the filter stage may
    have replaced one (a severity override) with a copy that carries the same edits."""
    left = {f.sort_key(): f for f in findings}
    out = []
    for fix in fixes:
        usable = [f for f in (left.get(b.sort_key()) for b in fix.built) if f is not None]
        merged = _merged(fix.path, fix.rel, fix.old, usable)
        if merged is not None:
            out.append(merged)
    return out


def apply_fix(fix: FileFix, follow_symlinks: bool = False,
              tops: Sequence[str] | None = None) -> str | None:
    """Write one file's fix; returns why it was not written, or None when it was.

    ``tops`` are the directories (realpaths) fixes may write in: the linted
    trees (see fix_tops); by default the tree ``fix.rel`` is relative to.
    """
    changed = f"{fix.rel}: not fixed: the file changed while nofslint was running"
    if tops is None:
        tops = [os.path.realpath(_tree_root(os.path.abspath(fix.path), fix.rel))]
    refused = write_refusal(fix.path, tops, follow_symlinks)
    if refused:
        return f"{fix.rel}: not fixed: {refused}"
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
        write_atomic(fix.path, fix.new, expect=seen, expect_data=fix.old, keep_links=True)
    except FileChanged:
        return changed
    except OSError as exc:
        return f"{fix.rel}: not fixed: {exc.strerror or exc}"
    return None


def write_refusal(path: Path, tops: Sequence[str], follow_symlinks: bool = False) -> str | None:
    """Why --fix must not write this file (None: it may). The tree may be hostile
    and the caller root, so the kernel's permission checks are not enough."""
    real = os.path.realpath(path)
    if not follow_symlinks and not any(os.path.commonpath([real, top]) == top for top in tops):
        return (f"a symbolic link leads to {real}, outside the linted tree; "
                "--fix-follow-symlinks writes there")
    try:
        st = os.stat(real)
    except OSError:
        return None  # reading it says why
    if not st.st_mode & 0o222:
        # Root writes any file, but in a tree someone sent a read-only file is
        # the sender's (or the user's own) word that it must not change, and
        # for root nothing else enforces it.
        return f"it is read-only (mode {stat.S_IMODE(st.st_mode):04o})"
    if not _may_write(real):
        return "permission denied (no write access to the file)"
    euid = os.geteuid()
    if euid != 0 and st.st_uid != euid:
        # Replacing it needs a new file, which would be the caller's.
        return f"it belongs to uid {st.st_uid}, not to you; only its owner or root may fix it"
    if st.st_nlink == 1 and not _may_write(os.path.dirname(real), os.W_OK | os.X_OK):
        return f"permission denied (no write access to its directory {os.path.dirname(real)})"
    return None


def fix_tops(targets: Iterable[Path], roots: Iterable[Path | None]) -> list[str]:
    """Where --fix may write without --fix-follow-symlinks, as realpaths: the
    kernel trees of the run, and the directories of linted paths outside any."""
    tops = {os.path.realpath(root) for root in roots if root is not None}
    for target in targets:
        here = target.absolute() if target.is_dir() else target.absolute().parent
        if find_root(here) is None:
            tops.add(os.path.realpath(here))
    return sorted(tops)


def _tree_root(absolute: str, rel: str) -> str:
    """The directory ``rel`` is relative to (the tree root), else the file's own."""
    if not os.path.isabs(rel) and absolute.endswith(os.sep + rel):
        return absolute[:-len(rel) - 1] or os.sep
    return os.path.dirname(absolute)


def _may_write(path: str, mode: int = os.W_OK) -> bool:
    """As the kernel decides it for the effective user (not the real one, as in
    plain access(2))."""
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)
