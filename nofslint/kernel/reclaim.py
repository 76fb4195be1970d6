"""Reclaim entry points: ops-table slots that memory reclaim calls into.

Reclaim reaches filesystems through function pointers: the inode and dentry
shrinkers evict inodes (super_operations), shrinkers scan their caches, and
page reclaim releases, invalidates and writes back folios. A function stored
in one of these slots can run with PF_MEMALLOC set, from any allocation.
analysis.reclaim finds the tree's stores into these slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class EntryPoint:
    struct: str
    field: str
    why: str
    # What reclaim's call always passes: (parameter index, field, value), e.g.
    # pageout() hands ->writepage a writeback_control with for_reclaim = 1.
    knows: tuple[tuple[int, str, int | str], ...] = ()


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

WRITEPAGE = EntryPoint("address_space_operations", "writepage", "pageout() writes dirty folios",
                       ((1, "for_reclaim", 1), (1, "sync_mode", "WB_SYNC_NONE")))


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
