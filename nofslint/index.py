"""The whole-tree index: every file's facts, linked by symbol.

Built only when a whole-tree rule runs. Static functions resolve within
their own file; other definitions are global by name.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from nofslint.facts import FileFacts, Function
from nofslint.tree import KernelTree


@dataclass
class IndexedFile:
    facts: FileFacts
    tree: KernelTree
    file: Path


@dataclass
class TreeIndex:
    files: list[IndexedFile] = field(default_factory=list)
    # name -> [(file index, function index)] for non-static definitions
    globals: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    # (file index, name) -> function index for static definitions
    statics: dict[tuple[int, str], int] = field(default_factory=dict)

    def add(self, facts: FileFacts, tree: KernelTree, file: Path) -> None:
        fidx = len(self.files)
        self.files.append(IndexedFile(facts, tree, file))
        for i, func in enumerate(facts.functions):
            if func.static:
                self.statics.setdefault((fidx, func.name), i)
            else:
                self.globals[func.name].append((fidx, i))

    def resolve(self, file_index: int, name: str) -> list[tuple[int, int]]:
        """Definitions a call to ``name`` from the given file may reach."""
        local = self.statics.get((file_index, name))
        if local is not None:
            return [(file_index, local)]
        return list(self.globals.get(name, ()))

    def function(self, ref: tuple[int, int]) -> Function:
        return self.files[ref[0]].facts.functions[ref[1]]
