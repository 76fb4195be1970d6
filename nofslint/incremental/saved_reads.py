"""Saved reads (link.reads, as saved with a run): their shape, and whether an edit touches them."""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from nofslint.incremental.relocation import Delta

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
