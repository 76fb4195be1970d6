"""Kernel allocation APIs: which argument is the gfp mask, and which family.

``mask_arg`` is the index of the gfp argument, counted from the end when
negative (``kvrealloc`` lost its old-size argument in v6.12 but kept the mask
last). ``None`` means the API takes no mask and allocates with ``implicit``.
The ``_noprof`` spellings are the v6.10+ alloc-tagging internals.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Allocator:
    family: str
    mask_arg: int | None
    implicit: str | None = None
    order_arg: int | None = None  # page allocators: which argument is the order


def _table() -> dict[str, Allocator]:
    table: dict[str, Allocator] = {}

    def add(family: str, mask_arg: int | None, *names: str, implicit: str | None = None,
            order_arg: int | None = None) -> None:
        for name in names:
            table[name] = Allocator(family, mask_arg, implicit, order_arg)
            table[name + "_noprof"] = Allocator(family, mask_arg, implicit, order_arg)

    # vmalloc: page tables were GFP_KERNEL until v5.17.
    add("vmalloc", 1, "__vmalloc")
    add("vmalloc", 2, "__vmalloc_node", "__vmalloc_array")
    add("vmalloc", 4, "__vmalloc_node_range")
    add("vmalloc", None, "vmalloc", "vzalloc", "vmalloc_node", "vzalloc_node", "vmalloc_user",
        "vmalloc_32", "vmalloc_32_user", "vmalloc_huge", "vmalloc_array", "vcalloc",
        implicit="GFP_KERNEL")
    # kvmalloc: before v5.17 a non-GFP_KERNEL mask silently meant kmalloc only.
    add("kvmalloc", 1, "kvmalloc", "kvzalloc", "kvmalloc_node", "kvzalloc_node")
    add("kvmalloc", 2, "kvcalloc", "kvmalloc_array", "kvcalloc_node", "kvmalloc_array_node")
    add("kvmalloc", -1, "kvrealloc")
    # vmap/vm_map_ram take no mask and allocate GFP_KERNEL on every version.
    add("vmap", None, "vmap", "vm_map_ram", implicit="GFP_KERNEL")
    # Slab and page allocators: honour the mask they are given.
    add("slab", 1, "kmalloc", "kzalloc", "kmalloc_node", "kzalloc_node", "kmem_cache_alloc",
        "kmem_cache_zalloc", "kstrdup", "kstrndup", "kstrdup_const", "mempool_alloc",
        "kmalloc_track_caller")
    add("slab", 2, "kcalloc", "kmalloc_array", "krealloc", "kmemdup", "kcalloc_node",
        "kmalloc_array_node", "kmem_cache_alloc_node", "krealloc_array", "kmemdup_nul",
        "kmem_cache_alloc_lru", "alloc_inode_sb")
    add("page", 0, "alloc_page", "__get_free_page", "get_zeroed_page")
    add("page", 0, "alloc_pages", "__get_free_pages", "folio_alloc", "__folio_alloc",
        "__alloc_pages", "folio_alloc_node", order_arg=1)
    add("page", 1, "alloc_pages_node", "__alloc_pages_node", order_arg=2)
    return table


ALLOCATORS: dict[str, Allocator] = _table()


def allocator_names(*families: str, with_mask: bool = False,
                    with_order: bool = False) -> tuple[str, ...]:
    """The API names of ``families`` (all when none is given), for a rule's triggers;
    ``with_mask``: only those that take a gfp argument, ``with_order``: an order."""
    return tuple(sorted(
        name for name, spec in ALLOCATORS.items()
        if (not families or spec.family in families)
        and (spec.mask_arg is not None or not with_mask)
        and (spec.order_arg is not None or not with_order)))

# Scope API: name -> (operation, kind). 'flags' saves take the PF_* in their argument.
SCOPE_CALLS: dict[str, tuple[str, str]] = {
    "memalloc_nofs_save": ("save", "nofs"),
    "memalloc_noio_save": ("save", "noio"),
    "memalloc_flags_save": ("save", "flags"),
    "memalloc_nofs_restore": ("restore", "nofs"),
    "memalloc_noio_restore": ("restore", "noio"),
    "memalloc_flags_restore": ("restore", "flags"),
}


def scope_call_names(op: str) -> tuple[str, ...]:
    """The scope API's ``save`` or ``restore`` names, for a rule's triggers."""
    return tuple(sorted(name for name, (o, _) in SCOPE_CALLS.items() if o == op))

# The allocator's own implementation: page allocator, slab, vmalloc, per-cpu,
# reclaim and compaction, and the debugging hooks they call. An allocation
# *goes* there; it is not a path through which a caller allocates (reclaim
# recursing into itself is what PF_MEMALLOC prevents). Whole-tree analyses do
# not follow calls into these files; the API call site is the allocation.
ALLOCATOR_INTERNALS: tuple[str, ...] = (
    "mm/page_alloc.c", "mm/slub.c", "mm/slab.c", "mm/slob.c", "mm/slab_common.c",
    "mm/vmalloc.c", "mm/percpu.c", "mm/mempolicy.c", "mm/vmscan.c", "mm/compaction.c",
    "mm/page_owner.c", "mm/page_ext.c", "mm/kmemleak.c", "mm/kasan/", "mm/kfence/",
    "mm/kmsan/", "mm/failslab.c", "mm/fail_page_alloc.c", "lib/alloc_tag.c",
)


def is_allocator_internal(path: str) -> bool:
    return path.startswith(ALLOCATOR_INTERNALS)
