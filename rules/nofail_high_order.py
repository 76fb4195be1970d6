"""nofail-high-order: a constant page order above 1 requested with __GFP_NOFAIL."""

from __future__ import annotations

from collections.abc import Iterator

from nofslint.api import NOFAIL, FileContext, Finding, Rule, allocator_names


class NofailHighOrder(Rule):
    """__GFP_NOFAIL page allocation with a constant order greater than 1.

    What it does
        Reports page-allocator calls (``alloc_pages()``, ``__get_free_pages()``,
        ``folio_alloc()``, ``alloc_pages_node()`` and their variants) whose order
        is a constant (a literal or a file-local #define) greater than 1 and whose
        mask, evaluated as a flag set, has __GFP_NOFAIL.

    Why is this bad
        The page allocator warns when __GFP_NOFAIL is used with order > 1
        (mm/page_alloc.c): it cannot promise to find contiguous high-order
        memory, so the caller may loop forever under fragmentation. In reclaim
        paths this is the worst case of nofail-in-reclaim (seed thread on bs > PS
        filesystems: "high order GFP_NOFAIL allocations in the memory reclaim path").

    Example
        page = alloc_pages(GFP_NOFS | __GFP_NOFAIL, 2);

    Fix
        Allocate order-0 pages (or use kvmalloc()) and handle failure, or keep
        __GFP_NOFAIL only for order 0/1 requests. There is no mechanical rewrite.

    References
        mm/page_alloc.c (WARN_ON_ONCE for __GFP_NOFAIL with order > 1);
        include/linux/gfp_types.h (__GFP_NOFAIL);
        "Filesystem reclaim & memory allocation BOF", LSF/MM/BPF 2025.
    """

    id = "nofail-high-order"
    severity = "warning"
    # Only a page allocator called by name has an order.
    triggers = allocator_names("page", with_order=True)

    def check_file(self, ctx: FileContext) -> Iterator[Finding]:
        facts = ctx.facts
        for alloc in facts.allocations:
            if alloc.order is None or alloc.order <= 1:
                continue
            if not any(m.has(NOFAIL) is True for m in alloc.masks):
                continue
            call = facts.calls[alloc.call]
            yield self.finding_at_call(
                ctx, call, f"{alloc.allocator}() with __GFP_NOFAIL and order {alloc.order}: "
                "the page allocator cannot guarantee order > 1 and warns; allocate order-0 "
                "pages or handle failure", key=f"{alloc.allocator}|{alloc.order}")
