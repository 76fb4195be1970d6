"""Reclaim entry points: ops-table slots that memory reclaim calls into.

Reclaim reaches filesystems through function pointers: the inode and dentry
shrinkers evict inodes (super_operations), shrinkers scan their caches, and
page reclaim releases, invalidates and writes back folios. A function stored
in one of these slots can run with PF_MEMALLOC set, from any allocation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nofslint.facts import OpsEntry
    from nofslint.index import TreeIndex


@dataclass(frozen=True)
class EntryPoint:
    struct: str
    field: str
    why: str


ENTRY_POINTS: tuple[EntryPoint, ...] = (
    EntryPoint("super_operations", "evict_inode", "the inode shrinker evicts inodes"),
    EntryPoint("super_operations", "destroy_inode", "the inode shrinker destroys inodes"),
    EntryPoint("super_operations", "free_inode", "the inode shrinker frees inodes"),
    EntryPoint("super_operations", "drop_inode", "iput() from the dentry shrinker"),
    EntryPoint("shrinker", "scan_objects", "shrinkers run from reclaim"),
    EntryPoint("shrinker", "count_objects", "shrinkers run from reclaim"),
    EntryPoint("dentry_operations", "d_release", "the dentry shrinker kills dentries"),
    EntryPoint("dentry_operations", "d_iput", "the dentry shrinker kills dentries"),
    EntryPoint("address_space_operations", "release_folio", "page reclaim releases folios"),
    EntryPoint("address_space_operations", "invalidate_folio", "page reclaim truncates folios"),
    EntryPoint("address_space_operations", "free_folio", "page reclaim frees folios"),
    # Names before the folio conversion (v5.18/v5.19).
    EntryPoint("address_space_operations", "releasepage", "page reclaim releases pages"),
    EntryPoint("address_space_operations", "invalidatepage", "page reclaim truncates pages"),
    EntryPoint("address_space_operations", "freepage", "page reclaim frees pages"),
)

WRITEPAGE = EntryPoint("address_space_operations", "writepage", "pageout() writes dirty folios")


def reclaim_calls_writepage(root: Path | None) -> bool:
    """Whether this tree's page reclaim still calls ->writepage (pageout() in mm/vmscan.c).

    Read from the tree itself; loose files follow the newest version modelled
    (v6.12), where it still does.
    """
    if root is None:
        return True
    try:
        text = (root / "mm" / "vmscan.c").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True
    return "a_ops->writepage(" in text


@lru_cache(maxsize=16)
def entry_points(root: Path | None, extra: tuple[EntryPoint, ...] = ()
                 ) -> dict[tuple[str, str], EntryPoint]:
    """The built-in entry points, the tree's own (``[[reclaim-entry]]`` in its config)."""
    entries = list(ENTRY_POINTS) + list(extra)
    if reclaim_calls_writepage(root):
        entries.append(WRITEPAGE)
    return {(e.struct, e.field): e for e in entries}


def reclaim_entries(index: TreeIndex) -> list[tuple[int, OpsEntry, EntryPoint]]:
    """Ops-table stores of the tree that put a function in a reclaim entry slot, in tree order.

    A typed initializer names its table; an assignment (``shrinker->scan_objects =
    fn``) is matched by field name when no other struct has that field.
    """
    return index.memo("reclaim-entries", lambda: _reclaim_entries(index))


def _reclaim_entries(index: TreeIndex) -> list[tuple[int, OpsEntry, EntryPoint]]:
    tables = {(str(f.tree.root), f.tree.extras.reclaim): entry_points(f.tree.root,
                                                                      f.tree.extras.reclaim)
              for f in index.files}
    fields = sorted({fld for entries in tables.values() for _, fld in entries})
    found: list[tuple[tuple[int, int, int], int, OpsEntry, EntryPoint]] = []
    for fld in fields:
        for fi, op in index.ops_with_field(fld):
            tree = index.files[fi].tree
            entries = tables[(str(tree.root), tree.extras.reclaim)]
            if op.struct is not None:
                entry = entries.get((op.struct, op.field))
            else:
                entry = next((e for (s, f), e in entries.items()
                              if f == op.field and index.field_struct(op.field) in (None, s)),
                             None)
            if entry is not None:
                found.append(((fi, op.line, op.column), fi, op, entry))
    found.sort(key=lambda x: x[0])
    return [(fi, op, entry) for _, fi, op, entry in found]
