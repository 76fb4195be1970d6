"""Control flow of one function as plain data, and the condition keys its edges carry.

Blocks hold byte spans executed in order. An edge out of an ``if`` carries its
condition (normalised by ``condition_key``) and the value it has on that edge.
extract.flow builds these records from the syntax tree; analysis.paths walks them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_IDENT = re.compile(r"[A-Za-z_]\w*")


@dataclass(slots=True)
class Block:
    spans: list[tuple[int, int]] = field(default_factory=list)  # bytes run, in order
    succs: list[tuple[int, str | None, bool]] = field(default_factory=list)
    exit: int = 0  # line where the function returns from this block; 0: it does not
    writes: list[str] = field(default_factory=list)  # identifiers assigned here
    sets: list[tuple[str, bool]] = field(default_factory=list)  # ``x = true;`` known values


@dataclass(slots=True)
class Flow:
    function: int  # index into FileFacts.functions
    blocks: list[Block]  # blocks[0] is the entry
    # Where some calls' results go (``trans = btrfs_start_transaction(...)``):
    # call start offset -> the variable, for branches that test it.
    results: dict[int, str] = field(default_factory=dict)

    def to_data(self) -> tuple:
        return (self.function,
                [(b.spans, b.succs, b.exit, b.writes, b.sets) for b in self.blocks],
                self.results)

    @classmethod
    def from_data(cls, data: tuple) -> Flow:
        function, blocks, results = data
        return cls(function, [Block([tuple(s) for s in spans],  # type: ignore[misc]
                                    [tuple(e) for e in succs],  # type: ignore[misc]
                                    exit_, list(writes),
                                    [tuple(v) for v in sets])  # type: ignore[misc]
                              for spans, succs, exit_, writes, sets in blocks], dict(results))


def condition_key(text: str) -> tuple[str, bool]:
    """Normalised condition and its polarity: ``(!(x))`` is ("x", False)."""
    value = True
    text = " ".join(text.split())
    while True:
        changed = False
        while text.startswith("(") and balanced_outer(text):
            text, changed = text[1:-1].strip(), True
        for wrap in ("likely(", "unlikely(", "!!"):
            if text.startswith(wrap) and (wrap == "!!" or balanced_outer(text[len(wrap) - 1:])):
                text = text[len(wrap):-1].strip() if wrap != "!!" else text[2:].strip()
                changed = True
        if text.startswith("!") and not text.startswith("!="):
            rest = text[1:].strip()
            call = re.match(r"[A-Za-z_]\w*(?=\()", rest)
            if rest.startswith("(") and balanced_outer(rest) or _IDENT.fullmatch(rest) or \
                    re.fullmatch(r"[\w\->.]+", rest) or \
                    call is not None and balanced_outer(rest[call.end():]):
                text, value, changed = rest, not value, True
        if not changed:
            return text, value


def split_top(text: str, op: str) -> list[str]:
    """``a && (b || c) && d`` split on the top-level ``op``: [a, (b || c), d] (C
    conditions here, preprocessor conditions in kernel.kconfig)."""
    parts, depth, last, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(op, i):
            parts.append(text[last:i].strip())
            last = i + len(op)
            i += len(op)
            continue
        i += 1
    parts.append(text[last:].strip())
    return parts


def implied(cond: str, value: bool) -> list[tuple[str, bool]]:
    """What a branch implies about its parts: ``a && b`` true means a and b are true."""
    parts = split_top(cond, "&&" if value else "||")
    if len(parts) < 2:
        return []
    out = []
    for part in parts:
        key, polarity = condition_key(part)
        out.append((key, polarity if value else not polarity))
    return out


def balanced_outer(text: str) -> bool:
    """True when the first '(' closes at the very end: "(a) && (b)" is not wrapped."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i == len(text) - 1
    return False


def words(text: str) -> list[str]:
    """The identifiers in a condition: what a block must write to change it."""
    return _IDENT.findall(text)
