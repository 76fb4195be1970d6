"""Filesystem transactions whose start does not enter a NOFS scope.

Inside these, a GFP_KERNEL allocation can enter direct reclaim, which can
call back into the same filesystem (inode eviction, writeback, a shrinker)
and wait on the transaction the caller holds open. Starts that already enter
a NOFS scope are deliberately absent (DESIGN.md, "Scope API"): jbd2's
``start_this_handle()`` (ext4, ocfs2) saves into ``handle->saved_alloc_context``,
XFS ``xfs_trans_alloc()`` calls ``xfs_trans_set_context()``, bcachefs sets the
task flag while a btree transaction holds locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class Transaction:
    filesystem: str
    opens: frozenset[str]
    closes: frozenset[str]
    # What a start returns: a handle (an ERR_PTR on failure) or an error code
    # (non-zero on failure). On the failure branch no transaction is open.
    returns: str = "handle"
    # The struct a live transaction is passed down as: a function that takes a
    # pointer to one runs inside the transaction. None: the filesystem passes none.
    handle: str | None = None


TRANSACTIONS: tuple[Transaction, ...] = (
    Transaction("btrfs", frozenset({
        "btrfs_start_transaction", "btrfs_start_transaction_fallback_global_rsv",
        "btrfs_join_transaction", "btrfs_join_transaction_spacecache",
        "btrfs_join_transaction_nostart", "btrfs_join_transaction_nolock",
        "btrfs_attach_transaction", "btrfs_attach_transaction_barrier"}),
        frozenset({"btrfs_end_transaction", "btrfs_end_transaction_throttle",
                   "btrfs_end_transaction_nolock", "btrfs_commit_transaction"}),
        handle="btrfs_trans_handle"),
    Transaction("gfs2", frozenset({"gfs2_trans_begin", "__gfs2_trans_begin"}),
                frozenset({"gfs2_trans_end"}), "error"),
    Transaction("nilfs2", frozenset({"nilfs_transaction_begin"}),
                frozenset({"nilfs_transaction_commit", "nilfs_transaction_abort"}), "error"),
    Transaction("reiserfs", frozenset({"journal_begin", "journal_join", "journal_join_abort"}),
                frozenset({"journal_end", "journal_end_sync"}), "error",
                handle="reiserfs_transaction_handle"),
)


def failed(kind: str, var: str, cond: str, value: bool) -> bool:
    """Does taking this branch mean the start that set ``var`` failed?"""
    if kind == "handle":
        return value and cond in (f"IS_ERR({var})", f"IS_ERR_OR_NULL({var})")
    return (value and cond in (var, f"{var} < 0", f"{var} != 0")) or (
        not value and cond == f"{var} == 0")



@dataclass(frozen=True)
class Table:
    """Start and end functions by name: the built-in ones plus a tree's own."""

    opens: dict[str, str]  # name -> filesystem
    closes: dict[str, str]
    returns: dict[str, str]  # start -> "handle" or "error"
    handles: dict[str, str] = field(default_factory=dict)  # handle struct -> filesystem


@lru_cache(maxsize=16)
def table(extra: tuple[Transaction, ...] = ()) -> Table:
    every = TRANSACTIONS + extra
    return Table({name: t.filesystem for t in every for name in t.opens},
                 {name: t.filesystem for t in every for name in t.closes},
                 {name: t.returns for t in every for name in t.opens},
                 {t.handle: t.filesystem for t in every if t.handle})
