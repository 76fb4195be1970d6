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

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nofslint.index import Ref, TreeIndex
    from nofslint.relocation import Delta


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

    def to_json(self, index: TreeIndex) -> dict[str, object]:
        """Plain data for the saved run: functions by path and name (indexes move)."""
        by_path: dict[str, set[str]] = {}
        for ref in self.functions:
            by_path.setdefault(index.path(ref[0]), set()).add(index.function_name(ref))
        return {"functions": {p: sorted(n) for p, n in sorted(by_path.items())},
                "defs": sorted(self.defs), "callers": sorted(self.callers),
                "fields": sorted(self.fields), "kinds": sorted(self.kinds)}


_LISTS = ("defs", "callers", "fields", "kinds")


def valid(data: object) -> bool:
    """Saved reads of the shape to_json() makes (anything else: relink)."""
    if not isinstance(data, dict) or set(data) != {"functions", *_LISTS}:
        return False
    functions = data["functions"]
    return (isinstance(functions, dict)
            and all(isinstance(v, list) and all(isinstance(n, str) for n in v)
                    for v in functions.values())
            and all(isinstance(data[k], list) and all(isinstance(n, str) for n in data[k])
                    for k in _LISTS))


def touched(saved: dict, deltas: dict[str, Delta],
            seeds: dict[str, tuple[str, Callable[[tuple], bool]]]) -> bool:
    """Whether the edits (path -> what changed there) touch anything the rule read;
    ``seeds`` names the seed kinds (kind -> the kind it filters, and the filter)."""
    read = {k: set(saved[k]) for k in _LISTS}
    for path, delta in deltas.items():
        if (not delta.functions.isdisjoint(saved["functions"].get(path, ()))
                or not delta.defs.isdisjoint(read["defs"])
                or not delta.callers.isdisjoint(read["callers"])
                or not delta.fields.isdisjoint(read["fields"])):
            return True
        for kind in read["kinds"]:
            kind, _, where = kind.partition("@")
            if where and posixpath.dirname(path) not in where.split(","):
                continue
            base, seeds_of = seeds.get(kind, (kind, None))
            if base not in delta.kinds:
                continue
            if seeds_of is None:
                return True
            old, new = delta.records[base]
            if list(filter(seeds_of, old)) != list(filter(seeds_of, new)):
                return True
    return False
