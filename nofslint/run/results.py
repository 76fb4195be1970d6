"""A run's result: findings, files that could not be linted, fixes, and saved reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from nofslint.fixing.fixes import FileFix
from nofslint.kernel.tree import KernelTree
from nofslint.model.findings import Finding


@dataclass
class FileError:
    path: str
    reason: str
    internal: bool = False  # a bug in nofslint rather than bad input

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "reason": self.reason, "internal": self.internal}


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    trees: list[KernelTree] = field(default_factory=list)
    files: int = 0
    # C files the kernel config does not build: not linked, not reported.
    not_built: list[str] = field(default_factory=list)
    fixes: list[FileFix] = field(default_factory=list)
    fix_problems: list[str] = field(default_factory=list)
    # What each whole-tree rule read (reads.py), kept with a saved run.
    reads: dict[str, dict] = field(default_factory=dict)
    # Each linted file's content key (tree-relative path -> facts cache key), with a
    # cache: a saved whole-tree run keeps them, so kbuild can tell a file changed since.
    content: dict[str, str] = field(default_factory=dict)
    # The saved blob of those reads (incremental.cache.ResultCache), when the run was saved.
    reads_blob: str | None = None
    # The report scope when it is narrower than what was analysed: the tree-relative
    # paths findings were kept in ("fs/ext4"). Empty: everything analysed is reported.
    reported_in: list[str] = field(default_factory=list)

    @property
    def internal_errors(self) -> bool:
        return any(e.internal for e in self.errors)
