"""The rule API: what a rule is, what it reports, how it proposes a fix.

A rule is a class in its own module (Fixit/ruff style) with an ``id``, a
default ``severity`` and a docstring in fixed sections. Local rules implement
``check_file`` and see one file's facts; whole-tree rules implement
``check_tree`` and see the linked index of every file. Both report the same
``Finding``. A fix is a ``FixBuilder``: it runs later, in the fix stage, with
the file's source and syntax tree, and returns byte edits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from nofslint.facts import Call, FileFacts
from nofslint.tree import KernelTree

if TYPE_CHECKING:
    from nofslint.fixes import FixSource
    from nofslint.index import TreeIndex

_LINE_REF = re.compile(r":\d+\b|\bline \d+")
SEVERITIES = ("error", "warning", "info")
DOC_SECTIONS = ("What it does", "Why is this bad", "Example", "Fix", "References")


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


class FixBuilder(Protocol):
    def build(self, source: FixSource) -> list[Edit] | None:
        """Edits for this fix, or None when no safe rewrite exists."""


@dataclass
class TraceStep:
    function: str | None
    path: str
    line: int

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function, "path": self.path, "line": self.line}


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
    fix: str | None = None  # unified diff, filled in by the fix stage
    # Not reported: where the file is and how to build its fix.
    file: Path | None = field(default=None, repr=False, compare=False)
    fix_builder: FixBuilder | None = field(default=None, repr=False, compare=False)
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
        """Identity that survives unrelated edits: no line or column, and line numbers
        quoted in the message (``file.c:123``) are dropped, so moving code does not
        make a known finding new (baselines, SARIF ``partialFingerprints``)."""
        message = _LINE_REF.sub(lambda m: re.sub(r"\d+", "N", m.group()), self.message)
        text = "\0".join((self.rule, self.path, self.function or "", message))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def sort_key(self) -> tuple:
        where = self.file.as_posix() if self.file is not None else self.path
        return (where, self.line, self.column, self.rule, self.message)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "severity": self.severity, "path": self.path,
            "line": self.line, "column": self.column, "end_line": self.end_line,
            "end_column": self.end_column, "function": self.function,
            "message": self.message, "trace": [t.to_json() for t in self.trace],
            "fix": self.fix,
        }


@dataclass
class FileContext:
    """What a local rule may know about the file it checks."""

    facts: FileFacts
    tree: KernelTree
    file: Path

    @property
    def version(self) -> tuple[int, int]:
        return self.tree.version

    def function_name(self, call: Call) -> str | None:
        func = self.facts.function_at(call.function)
        return func.name if func is not None else None


class Rule:
    """Base class; subclasses set ``id`` and write the docstring sections."""

    id: ClassVar[str] = ""
    severity: ClassVar[str] = "error"
    scope: ClassVar[str] = "local"  # 'local' or 'tree'
    enabled_by_default: ClassVar[bool] = True
    fixable: ClassVar[bool] = False

    def check_file(self, ctx: FileContext) -> Iterable[Finding]:
        return ()

    def check_tree(self, index: TreeIndex) -> Iterable[Finding]:
        return ()

    # -- helpers for subclasses -------------------------------------------------
    def finding_at_call(self, ctx: FileContext, call: Call, message: str,
                        fix: FixBuilder | None = None) -> Finding:
        return Finding(
            rule=self.id, severity=self.severity, path=ctx.facts.path, line=call.line,
            column=call.column, end_line=call.end_line, end_column=call.end_column,
            function=ctx.function_name(call), message=message, file=ctx.file,
            fix_builder=fix)

    # -- documentation -----------------------------------------------------------
    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else ""

    @classmethod
    def docs(cls) -> dict[str, str]:
        """The docstring's fixed sections ('What it does', ...), by title."""
        return parse_doc_sections(cls.__doc__ or "")


_HEADING = re.compile(r"^({}):?\s*$".format("|".join(re.escape(s) for s in DOC_SECTIONS)), re.M)


def parse_doc_sections(doc: str) -> dict[str, str]:
    lines = doc.expandtabs().splitlines()
    # Dedent everything after the summary line.
    body = lines[1:]
    indents = [len(s) - len(s.lstrip()) for s in body if s.strip()]
    cut = min(indents) if indents else 0
    text = "\n".join(s[cut:] for s in body)
    parts = _HEADING.split(text)
    return {parts[i]: parts[i + 1].strip("\n").rstrip() for i in range(1, len(parts) - 1, 2)}


def iter_rule_classes(namespace: dict[str, Any], module: str) -> Iterator[type[Rule]]:
    for value in namespace.values():
        if (isinstance(value, type) and issubclass(value, Rule) and value is not Rule
                and value.__module__ == module and value.id):
            yield value
