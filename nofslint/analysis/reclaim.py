"""Where the tree stores functions into reclaim entry slots (kernel.reclaim's table).

Reclaim reaches filesystems through function pointers: the inode and dentry
shrinkers evict inodes (super_operations), shrinkers scan their caches, and
page reclaim releases, invalidates and writes back folios. A function stored
in one of these slots can run with PF_MEMALLOC set, from any allocation.
"""

from __future__ import annotations

from nofslint.kernel.reclaim import EntryPoint, entry_points
from nofslint.link.index import TreeIndex
from nofslint.model.facts import OpsEntry


def reclaim_entries(index: TreeIndex) -> list[tuple[int, OpsEntry, EntryPoint]]:
    """Ops-table stores of the tree that put a function in a reclaim entry slot, in tree order.

    A typed initializer names its table; an assignment (``shrinker->scan_objects =
    fn``) is matched by field name when no other struct has that field.
    """
    return index.memo("reclaim-entries", lambda: _reclaim_entries(index))


def _reclaim_entries(index: TreeIndex) -> list[tuple[int, OpsEntry, EntryPoint]]:
    tables = {(str(tree.root), tree.extras.reclaim): entry_points(tree.root, tree.extras.reclaim)
              for tree in index.trees()}
    fields = sorted({fld for entries in tables.values() for _, fld in entries})
    found: list[tuple[tuple[int, int, int], int, OpsEntry, EntryPoint]] = []
    for fld in fields:
        for fi, op in index.ops_with_field(fld):
            tree = index.tree(fi)
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
