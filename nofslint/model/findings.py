"""What a run reports: findings, their trace steps, and the byte edits of a fix.

Plain data, the leaf of the package: every stage may import it, it imports no
other stage.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LINE_REF = re.compile(r":\d+\b|\bline \d+")


@dataclass(frozen=True)
class Edit:
    """Replace raw bytes [start, end) of a file with ``text``.

    Several insertions (start == end) may share a point: they land in
    ``order``, then in the order the fixes were merged.
    """

    start: int
    end: int
    text: str
    order: int = 0


@dataclass
class TraceStep:
    """One step of a finding's chain: where, in which function (or the ops-table slot,
    the queueing call that starts it), and what happens there (``note``: "calls
    foo()", "kmalloc() with __GFP_NOFAIL"). Column 0: not known."""

    function: str | None
    path: str
    line: int
    column: int = 0
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function, "path": self.path, "line": self.line,
                "column": self.column, "note": self.note}


@dataclass
class Finding:
    rule: str
    severity: str
    path: str  # relative to the tree root (or the working directory for loose files)
    line: int
    column: int
    end_line: int
    end_column: int
    function: str | None
    message: str
    trace: list[TraceStep] = field(default_factory=list)
    # The message without the call chain it spells out, for one-line text output
    # where the chain follows as notes. Empty: the message is short already.
    brief: str = field(default="", compare=False)
    fix: str | None = None  # unified diff, filled in by the fix stage
    # What the rule says makes this finding this finding (the allocator and its
    # mask, the flushed queue...): with rule, path and function, its identity in
    # baselines. Empty: the message, without line numbers, stands in for it.
    key: str = field(default="", compare=False)
    # Not reported: where the file is and how to build its fix.
    file: Path | None = field(default=None, repr=False, compare=False)
    fix_builder: Any = field(default=None, repr=False, compare=False)  # an api.FixBuilder
    edits: list[Edit] = field(default_factory=list, repr=False, compare=False)
    # A fix may belong in another file (the flushed queue's creation): where, and its
    # path relative to the tree root for the diff. None: the finding's own file.
    fix_file: Path | None = field(default=None, repr=False, compare=False)
    fix_path: str | None = field(default=None, repr=False, compare=False)
    # The text that was analysed when it is not ``file``: a scratch copy holding a
    # patch's or the index's version of it (reporters quote lines from here).
    source: Path | None = field(default=None, repr=False, compare=False)

    def text_file(self) -> Path | None:
        """Where to read the analysed lines of this finding."""
        return self.source or self.file

    def fingerprint(self) -> str:
        """Identity that survives unrelated edits and reworded messages: rule, path,
        function and the rule's key; no line or column, so moving code does not make
        a known finding new (baselines, SARIF ``partialFingerprints``)."""
        if not self.key:
            return self.legacy_fingerprint()
        text = "\0".join(("key", self.rule, self.path, self.function or "", self.key))
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]

    def legacy_fingerprint(self) -> str:
        """The 0.1.0 identity, from the message with line numbers (``file.c:123``)
        dropped: what baselines written by 0.1.0 hold."""
        message = _LINE_REF.sub(lambda m: re.sub(r"\d+", "N", m.group()), self.message)
        text = "\0".join((self.rule, self.path, self.function or "", message))
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]

    def sort_key(self) -> tuple:
        where = self.file.as_posix() if self.file is not None else self.path
        return (where, self.line, self.column, self.rule, self.message)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "severity": self.severity, "path": self.path,
            "line": self.line, "column": self.column, "end_line": self.end_line,
            "end_column": self.end_column, "function": self.function,
            "message": self.message, "brief": self.brief or self.message,
            "trace": [t.to_json() for t in self.trace], "fix": self.fix,
        }


def chain_text(names: list[str]) -> str:
    """A call chain as messages show it: ``a → b → c``, the middle of a long one elided
    (``a → b → c → … → y → z``), so a message stays one readable line."""
    shown = names if len(names) <= 6 else names[:3] + ["…"] + names[-2:]
    return " → ".join(shown)
