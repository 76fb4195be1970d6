"""What an edit changed in one file's facts, and where it moved the rest.

After an edit, a run keeps the previous run's findings of every whole-tree
rule that read nothing the edit changed (reads.py). Delta splits the file's
old and new facts by function: a function whose facts are the same apart
from position (the same calls, masks, ops entries, scope calls and flows, in
the same order relative to each other) was only moved; the others were
changed, added or removed, and Delta says what that touches in the rest of
the tree. Rules only compare positions (before, after, inside, same line),
never do arithmetic on them, so a finding that involves only unchanged
functions holds again at their moved positions. Anything else (a change
outside functions, unchanged parts in another order, a line a finding names
that no unchanged fact carries) is a change the caller must relink for.

The layout below follows ``FileFacts.to_data()``; tests/test_relocation.py
checks it on every fixture by moving all of its code, and by adding calls
and functions to every file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from nofslint.model.facts import FactsData
from nofslint.model.findings import Finding

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


Key = tuple[str, bool, int] | None  # a function: name, static, which one of that name


class _Unit:
    """One function's facts (None: the file's facts outside functions), apart from
    their positions, with call indexes counted within the function."""

    __slots__ = ("bare", "at", "calls", "callees", "fields")

    def __init__(self) -> None:
        self.bare: list[tuple] = []
        self.at = _Positions()
        self.calls = 0
        self.callees: set[str] = set()
        self.fields: set[str] = set()  # ops fields it stores into or calls through


def _units(data: tuple) -> tuple[dict[Key, _Unit], dict[str, list[tuple]]]:
    """The file's facts by function, and per kind of fact the file's records in
    order with their functions named by key (what a scan of every file reads)."""
    # Records unpack in their stored layout (model.facts.fields_of; a test holds
    # the two together): relocation is the one reader that takes every field apart.
    d = FactsData._make(data)
    path, bad, macros, funcs, calls, allocs, scopes, ops, queues, uses, wq_macros, flows = (
        d.path, d.functions_with_errors, d.gfp_macros, d.functions, d.calls, d.allocations,
        d.scopes, d.ops, d.wq_queues, d.wq_uses, d.wq_macros, d.flows)
    accessors = d.wq_accessors
    keys: list[Key] = []
    count: dict[tuple[str, bool], int] = {}
    for name, static, *_ in funcs:
        n = count.get((name, static), 0)
        count[(name, static)] = n + 1
        keys.append((name, static, n))
    units: dict[Key, _Unit] = {None: _Unit(), **{k: _Unit() for k in keys}}
    kinds: dict[str, list[tuple]] = {}

    def unit(function: int) -> tuple[Key, _Unit]:
        key = keys[function] if 0 <= function < len(keys) else None
        return key, units[key]

    def add(kind: str, key: Key, u: _Unit, record: tuple, local: tuple) -> None:
        u.bare.append((kind, *local, *record))
        kinds.setdefault(kind, []).append((key, *record))

    units[None].bare.append(("file", path, bad, macros, wq_macros, accessors))
    for i, (_, _, start, end, line, end_line, body_start, has_error) in enumerate(funcs):
        key, u = unit(i)
        u.at.offsets += (start, end, body_start)
        u.at.lines += (line, end_line)
        add("functions", key, u, (has_error,), ())
    call_at: list[tuple[Key, int]] = []
    for callee, function, start, end, line, column, end_line, end_column, args, gfp in calls:
        key, u = unit(function)
        call_at.append((key, u.calls))
        u.calls += 1
        u.at.offsets += (start, end)
        u.at.spot(line, column)
        u.at.spot(end_line, end_column)
        if args is not None:
            for a_start, a_end in args:
                u.at.offsets += (a_start, a_end)
        u.callees.add(callee)
        if callee.startswith("->"):
            u.fields.add(callee[2:])
        add("calls", key, u, (callee, None if args is None else len(args), gfp), ())

    def of_call(call: int) -> tuple[Key, _Unit, int]:
        key, rank = call_at[call] if 0 <= call < len(call_at) else (None, -1)
        return key, units[key], rank

    for call, *rest in allocs:
        key, u, rank = of_call(call)
        add("allocations", key, u, tuple(rest), (rank,))
    for function, start, line, *rest in scopes:
        key, u = unit(function)
        u.at.offsets.append(start)
        u.at.lines.append(line)
        add("scopes", key, u, tuple(rest), ())
    for struct, fld, target, function, line, column in ops:
        key, u = unit(function)
        u.at.spot(line, column)
        u.fields.add(fld)
        add("ops", key, u, (struct, fld, target), ())
    for api, call, store, name, flags_text, flags_start, flags_end, line in queues:
        key, u, rank = of_call(call)
        u.at.offsets += (flags_start, flags_end)
        u.at.lines.append(line)
        add("wq_queues", key, u, (api, store, name, flags_text), (rank,))
    for api, role, call, function, line, *rest in uses:
        key, u = unit(function)
        u.at.lines.append(line)
        add("wq_uses", key, u, (api, role, *rest), (of_call(call)[2],))
    for function, blocks, results in flows:
        key, u = unit(function)
        bare_blocks = []
        for spans, succs, exit_line, writes, sets in blocks:
            for s_start, s_end in spans:
                u.at.offsets += (s_start, s_end)
            if exit_line:  # 0: the block does not return
                u.at.lines.append(exit_line)
            bare_blocks.append((len(spans), succs, bool(exit_line), writes, sets))
        keys_at = sorted(results)
        u.at.offsets += keys_at
        add("flows", key, u, (bare_blocks, [results[k] for k in keys_at]), ())
    return units, kinds


@dataclass
class Delta:
    """What an edit changed in one file's facts, and where it moved the rest.

    ``moves`` places the positions of the functions the edit left alone (and
    of the facts outside functions); ``functions`` names the functions it
    changed, added or removed. The rest is what those changes touch in the
    rest of the tree (reads.py): ``defs``, the names of functions added or
    removed (or made static or not); ``callers``, the names the changed
    functions call (before or after the edit); ``fields``, the ops fields
    they store into or call through; ``records``, per kind of facts that
    differs, its old and new records in file order. ``whole`` is set when
    the facts outside functions changed, or the unchanged parts changed
    order: nothing can be kept.
    """

    moves: Moves
    functions: set[str]
    defs: set[str]
    callers: set[str]
    fields: set[str]
    records: dict[str, tuple[list[tuple], list[tuple]]]
    whole: bool

    @property
    def kinds(self) -> set[str]:
        """The kinds of facts that differ."""
        return set(self.records)

    @property
    def moved_only(self) -> bool:
        return not (self.whole or self.functions)

    @classmethod
    def between(cls, old: tuple, new: tuple) -> Delta:
        old_units, old_kinds = _units(old)
        new_units, new_kinds = _units(new)
        kept = [k for k, u in old_units.items() if k in new_units
                and u.bare == new_units[k].bare
                and u.at.ranks() == new_units[k].at.ranks()]
        changed = (set(old_units) | set(new_units)) - set(kept)
        old_at, new_at = _Positions(), _Positions()
        for key in kept:
            for at, u in ((old_at, old_units[key]), (new_at, new_units[key])):
                at.lines += u.at.lines
                at.pairs += u.at.pairs
                at.offsets += u.at.offsets
        # Positions a changed function also had are not known to be where a kept one went.
        lost_lines = {line for k in changed if k in old_units for line in old_units[k].at.lines}
        lost_pairs = {pair for k in changed if k in old_units for pair in old_units[k].at.pairs}
        moves = Moves({a: b for a, b in zip(old_at.lines, new_at.lines, strict=True)
                       if a not in lost_lines},
                      {a: b for a, b in zip(old_at.pairs, new_at.pairs, strict=True)
                       if a not in lost_pairs})
        functions: set[str] = set()
        defs: set[str] = set()
        callers: set[str] = set()
        fields: set[str] = set()
        for key in changed:
            if key is not None:
                functions.add(key[0])
                if (key in old_units) != (key in new_units):
                    defs.add(key[0])
            for u in (old_units.get(key), new_units.get(key)):
                if u is not None:
                    callers |= u.callees
                    fields |= u.fields
        records = {k: (old_kinds.get(k, []), new_kinds.get(k, []))
                   for k in sorted(set(old_kinds) | set(new_kinds))
                   if old_kinds.get(k) != new_kinds.get(k)}
        whole = None in changed or old_at.ranks() != new_at.ranks()
        return cls(moves, functions, defs, callers, fields, records, whole)


class Moves:
    """Old position -> new position, for the lines and (line, column) pairs of a file's facts."""

    def __init__(self, lines: dict[int, int], pairs: dict[Pair, Pair]) -> None:
        self.lines = lines
        self.pairs = pairs


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
