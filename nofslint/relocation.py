"""Where an edit moved one file's facts, when it changed nothing else about them.

After a one-file edit, a run can keep the previous run's whole-tree findings
when the file's old and new facts differ only in position: the same
functions, calls, masks, ops entries, scope calls and flows, in the same order
relative to each other. Rules only compare positions (before, after, inside,
same line), never do arithmetic on them, so every finding holds again at the
moved positions. Anything else (a new call, a changed mask, a line a finding
names that no fact carries) is a change the caller must relink for.

The layout below follows ``FileFacts.to_data()``; tests/test_relocation.py
checks it on every fixture by moving all of its code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from nofslint.rule import Finding

Pair = tuple[int, int]  # (line, column)


class _Positions:
    """Every position of one file's facts, in a fixed order, by kind."""

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.pairs: list[Pair] = []
        self.offsets: list[int] = []

    def spot(self, line: int, column: int) -> None:
        self.lines.append(line)
        self.pairs.append((line, column))

    def ranks(self) -> tuple[list[int], list[int], list[int]]:
        """Each position as its rank among the file's positions of that kind: equal
        ranks mean the same order, whatever the edit moved."""
        return _ranks(self.lines), _ranks(self.pairs), _ranks(self.offsets)


def _ranks(values: list) -> list[int]:
    rank = {v: i for i, v in enumerate(sorted(set(values)))}
    return [rank[v] for v in values]


def _apart(data: tuple) -> tuple[tuple, _Positions]:
    """The facts without their positions, and the positions."""
    (path, _sha, bad, macros, funcs, calls, allocs, scopes, ops, queues, uses, wq_macros,
     flows) = data
    at = _Positions()
    offsets = at.offsets
    bare_funcs = []
    for name, static, start, end, line, end_line, body_start, has_error in funcs:
        offsets += (start, end, body_start)
        at.lines += (line, end_line)
        bare_funcs.append((name, static, has_error))
    bare_calls = []
    for callee, function, start, end, line, column, end_line, end_column, args, gfp in calls:
        offsets += (start, end)
        at.spot(line, column)
        at.spot(end_line, end_column)
        if args is not None:
            for a_start, a_end in args:
                offsets += (a_start, a_end)
        bare_calls.append((callee, function, None if args is None else len(args), gfp))
    bare_scopes = []
    for function, start, line, *rest in scopes:
        offsets.append(start)
        at.lines.append(line)
        bare_scopes.append((function, *rest))
    bare_ops = []
    for struct, fld, target, function, line, column in ops:
        at.spot(line, column)
        bare_ops.append((struct, fld, target, function))
    bare_queues = []
    for *head, flags_start, flags_end, line in queues:
        offsets += (flags_start, flags_end)
        at.lines.append(line)
        bare_queues.append(tuple(head))
    bare_uses = []
    for api, role, call, function, line, *rest in uses:
        at.lines.append(line)
        bare_uses.append((api, role, call, function, *rest))
    bare_flows = []
    for function, blocks, results in flows:
        bare_blocks = []
        for spans, succs, exit_line, writes, sets in blocks:
            for s_start, s_end in spans:
                offsets += (s_start, s_end)
            if exit_line:  # 0: the block does not return
                at.lines.append(exit_line)
            bare_blocks.append((len(spans), succs, bool(exit_line), writes, sets))
        keys = sorted(results)
        offsets += keys
        bare_flows.append((function, bare_blocks, [results[k] for k in keys]))
    bare = (path, bad, macros, bare_funcs, bare_calls, allocs, bare_scopes, bare_ops,
            bare_queues, bare_uses, wq_macros, bare_flows)
    return bare, at


class Moves:
    """Old position -> new position, for the lines and (line, column) pairs of a file's facts."""

    def __init__(self, lines: dict[int, int], pairs: dict[Pair, Pair]) -> None:
        self.lines = lines
        self.pairs = pairs

    @classmethod
    def between(cls, old: tuple, new: tuple) -> Moves | None:
        """How the edit from ``old`` to ``new`` facts data moved them; None when it did
        more than move them."""
        old_bare, old_at = _apart(old)
        new_bare, new_at = _apart(new)
        if old_bare != new_bare or old_at.ranks() != new_at.ranks():
            return None
        return cls(dict(zip(old_at.lines, new_at.lines, strict=True)),
                   dict(zip(old_at.pairs, new_at.pairs, strict=True)))


_BARE_LINE = re.compile(r"\bline (\d+)\b")


def relocate(finding: Finding, moves: dict[str, Moves]) -> bool:
    """Move a finding (its span, trace and ``path:line`` references in its message)
    to where the edits of the files in ``moves`` (by path) put them.

    A bare "line N" in the message is a line of the finding's own file. False
    when the new place cannot be known: a position no fact carries, or a fix
    diff of an edited file (its context has changed). The finding may then be
    half moved: the caller drops the whole saved result.
    """
    if not moves:
        return True
    if finding.fix and _diff_path(finding.fix) in moves:
        return False
    own = moves.get(finding.path)
    if own is not None:
        start = own.pairs.get((finding.line, finding.column))
        end = own.pairs.get((finding.end_line, finding.end_column))
        message = _moved_numbers(_BARE_LINE, finding.message, own.lines)
        if start is None or end is None or message is None:
            return False
        finding.line, finding.column = start
        finding.end_line, finding.end_column = end
        finding.message = message
    for step in finding.trace:
        step_moves = moves.get(step.path)
        if step_moves is not None:
            line = step_moves.lines.get(step.line)
            if line is None:
                return False
            step.line = line
    message = _moved_references(finding.message, moves.items())
    if message is None:
        return False
    finding.message = message
    return True


def _moved_numbers(pattern: re.Pattern[str] | str, message: str,
                   lines: dict[int, int]) -> str | None:
    """``message`` with the line number (the pattern's one group) of each match
    moved; None when one of them has no known new place."""
    lost = False

    def moved(m: re.Match[str]) -> str:
        nonlocal lost
        line = lines.get(int(m.group(1)))
        lost = lost or line is None
        whole, at = m.group(0), m.start(1) - m.start(0)
        return f"{whole[:at]}{line}{whole[at + len(m.group(1)):]}"

    message = re.sub(pattern, moved, message)
    return None if lost else message


def _moved_references(message: str, moves: Iterable[tuple[str, Moves]]) -> str | None:
    for path, file_moves in moves:
        if path in message:
            pattern = r"(?<![\w/.-])" + re.escape(path) + r":(\d+)\b"
            moved = _moved_numbers(pattern, message, file_moves.lines)
            if moved is None:
                return None
            message = moved
    return message


def _diff_path(diff: str) -> str | None:
    first = diff.split("\n", 1)[0]
    return first[len("--- a/"):] if first.startswith("--- a/") else None
