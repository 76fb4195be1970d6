"""example-kvmalloc-nowait: kvmalloc() with a mask that cannot sleep (a local rule)."""

from __future__ import annotations

from collections.abc import Iterator

from nofslint.api import FileContext, Finding, Rule


class KvmallocNowait(Rule):
    """kvmalloc() family called with a mask that cannot sleep: it never falls back to vmalloc.

    What it does
        Reports kvmalloc(), kvzalloc(), kvcalloc(), kvmalloc_array() and their
        _node variants whose gfp mask, evaluated as a flag set, lacks
        __GFP_DIRECT_RECLAIM in every value it may have (GFP_ATOMIC,
        GFP_NOWAIT, or a mask with __GFP_RECLAIM cleared). A mask that may
        sleep on some path is not reported.

    Why is this bad
        kvmalloc() tries kmalloc() first and falls back to vmalloc() for large
        sizes, but only when the caller may sleep: with a non-blocking mask it
        returns NULL where vmalloc would have succeeded. The call reads as if
        large sizes were safe, and they fail under fragmentation.

    Example
        table = kvmalloc(nr * sizeof(*table), GFP_NOWAIT);

    Fix
        Allocate where sleeping is allowed (preallocate outside the atomic
        section), or call kmalloc() with the mask so that the size limit is
        visible. There is no mechanical rewrite.

    References
        mm/util.c, kvmalloc_node(): "non-sleeping allocations are not supported
        by vmalloc"; Documentation/core-api/memory-allocation.rst.
    """

    id = "example-kvmalloc-nowait"
    severity = "warning"

    def check_file(self, ctx: FileContext) -> Iterator[Finding]:
        for alloc in ctx.facts.allocations:
            if alloc.family != "kvmalloc" or not alloc.masks:
                continue
            if all(mask.can_block is False for mask in alloc.masks):
                call = ctx.facts.calls[alloc.call]
                yield self.finding_at_call(
                    ctx, call, f"{alloc.allocator}() with '{alloc.mask_text}', which cannot "
                    "sleep: it never falls back to vmalloc, so large sizes fail; use kmalloc() "
                    "or allocate where sleeping is allowed")
