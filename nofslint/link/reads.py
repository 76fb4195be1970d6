"""What a whole-tree rule read of the index, so an edit it never read keeps its findings.

While a whole-tree rule runs, the index notes each thing the rule's answer
can depend on:

- ``functions``: functions whose facts it read (their calls, allocations,
  scope calls, flows), by path and name;
- ``defs``: names whose definitions it looked up (where a call goes); for
  an ops field it asked about, every function the field's tables store;
- ``callers``: names whose call sites it looked up (``->field`` for calls
  through a field);
- ``fields``: ops-table fields it asked about (their struct types, stores,
  calls through them);
- ``kinds``: kinds of facts it scanned in every file (``wq_uses``...):
  the seeds of its walks; a seed kind (``nofail-allocations``) is a kind
  filtered to the records that can seed (summaries.SEED_KINDS), and
  ``kind@dir,dir`` a scan of the files of those directories only.

An edit changes some functions of a file; relocation.Delta says which, and
what that touches: names defined or removed, names called, fields, kinds.
A rule that read none of them computes the same answer on the edited tree,
with positions moved: the engine keeps its findings. Everything a rule reaches goes through these
reads: facts of a function only after asking for that function (calls_in,
function, enclosing, call), call sites only by callee name or from a read
function, and files only through TreeIndex.scan(). A summary built for one
rule (TreeIndex.memo) hands its reads to every rule that uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Ref = tuple[int, int]  # (file index, function index)


@dataclass
class Reads:
    """One whole-tree rule's reads (see above); functions as index refs until saved."""

    functions: set[Ref] = field(default_factory=set)
    defs: set[str] = field(default_factory=set)
    callers: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)

    def merge(self, other: Reads) -> None:
        self.functions |= other.functions
        self.defs |= other.defs
        self.callers |= other.callers
        self.fields |= other.fields
        self.kinds |= other.kinds

    def to_json(self, path: Callable[[int], str], name: Callable[[Ref], str]
                ) -> dict[str, object]:
        """Plain data for the saved run: functions by path and name (indexes move);
        ``path`` and ``name`` are the index's names for a file and a function."""
        by_path: dict[str, set[str]] = {}
        for ref in self.functions:
            by_path.setdefault(path(ref[0]), set()).add(name(ref))
        return {"functions": {p: sorted(n) for p, n in sorted(by_path.items())},
                "defs": sorted(self.defs), "callers": sorted(self.callers),
                "fields": sorted(self.fields), "kinds": sorted(self.kinds)}
