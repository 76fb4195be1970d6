"""The rule API: what a rule is, what it reports, how it proposes a fix.

A rule is a class in its own module (Fixit/ruff style) with an ``id``, a
default ``severity`` and a docstring in fixed sections. Local rules implement
``check_file`` and see one file's facts; whole-tree rules implement
``check_tree`` and see the linked index of every file. Both report the same
``Finding``. A fix is a ``FixBuilder``: it runs later, in the fix stage, with
the file's source and syntax tree, and returns byte edits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from nofslint.fixing.fixes import FixSource
from nofslint.kernel.tree import KernelTree
from nofslint.link.index import TreeIndex
from nofslint.model.facts import Call, FileFacts
from nofslint.model.findings import Edit, Finding

SEVERITIES = ("error", "warning", "info")
DOC_SECTIONS = ("What it does", "Why is this bad", "Example", "Fix", "References")


class FixBuilder(Protocol):
    def build(self, source: FixSource) -> list[Edit] | None:
        """Edits for this fix, or None when no safe rewrite exists."""


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
    # Words (identifiers, or identifier prefixes) at least one of which a file's raw
    # bytes must contain for this rule to report there: a run whose rules all declare
    # them parses only such files (frontend.triggers). None: every file may matter.
    # Declare them only when it is true of every finding; a wrapper macro spelled
    # another way must be among them if the rule resolves it (docs/plugins.md).
    triggers: ClassVar[tuple[str, ...] | None] = None

    def check_file(self, ctx: FileContext) -> Iterable[Finding]:
        return ()

    def check_tree(self, index: TreeIndex) -> Iterable[Finding]:
        return ()

    # -- helpers for subclasses -------------------------------------------------
    def finding_at_call(self, ctx: FileContext, call: Call, message: str,
                        fix: FixBuilder | None = None, key: str = "") -> Finding:
        """A finding on ``call``; ``key`` is what identifies it besides rule, path
        and function (Finding.key), so rewording ``message`` keeps baselines valid."""
        return Finding(
            rule=self.id, severity=self.severity, path=ctx.facts.path, line=call.line,
            column=call.column, end_line=call.end_line, end_column=call.end_column,
            function=ctx.function_name(call), message=message, file=ctx.file,
            fix_builder=fix, key=key)

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
