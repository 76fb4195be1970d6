"""vmalloc-nofs: vmalloc-family allocations with NOFS/NOIO masks on pre-5.17 kernels."""

from __future__ import annotations

import re
from collections.abc import Iterator

from nofslint.api import (
    FS,
    IO,
    Allocation,
    FileContext,
    Finding,
    GfpTable,
    Mask,
    Rule,
    ScopeWrap,
    allocator_names,
)

FIXED_IN = (5, 17)


class VmallocNofs(Rule):
    """vmalloc/kvmalloc called with a GFP_NOFS or GFP_NOIO mask on a kernel older than 5.17.

    What it does
        Reports calls to ``__vmalloc()``, ``__vmalloc_node*()``, ``kvmalloc()``,
        ``kvzalloc()``, ``kvcalloc()``, ``kvmalloc_array()``, ``kvrealloc()`` and
        their ``_node``/``_noprof`` variants whose gfp mask, evaluated as a flag set
        (macros, ``|`` chains, ``& ~``, local ``gfp_t`` variables), can block but
        lacks ``__GFP_FS`` (NOFS) or ``__GFP_IO`` (NOIO), when the tree is older than
        v5.17 and the call is not already inside a ``memalloc_*_save()`` scope.
        On v5.17+ trees nothing is reported: vmalloc handles those masks itself.

    Why is this bad
        Before v5.17, vmalloc allocated its page tables with a hard-coded
        GFP_KERNEL, so a GFP_NOFS caller could still recurse into the filesystem
        through reclaim and deadlock on locks it holds. kvmalloc with a mask that
        is not GFP_KERNEL-compatible silently never fell back to vmalloc, so large
        allocations failed instead. Non-blocking masks (GFP_ATOMIC, GFP_NOWAIT)
        are a different problem and are not reported here.

    Example
        buf = __vmalloc(size, GFP_NOFS | __GFP_ZERO);

    Fix
        Mark the section with the scope API and pass GFP_KERNEL, keeping the
        modifiers:

            nofs_flag = memalloc_nofs_save();
            buf = __vmalloc(size, GFP_KERNEL | __GFP_ZERO);
            memalloc_nofs_restore(nofs_flag);

        Better still, move the scope out to where the critical section really
        starts (the lock or transaction that reclaim must not re-enter). The fix
        is offered when the mask is a constant expression and the call sits in a
        statement that can be wrapped without leaving a path out of the scope.

    References
        Documentation/core-api/gfp_mask-from-fs-io.rst;
        commit 451769ebb7e7 ("mm/vmalloc: alloc GFP_NO{FS,IO} for vmalloc", v5.17);
        commit a421ef303008 ("mm: allow !GFP_KERNEL allocations for kvmalloc", v5.17);
        "vmalloc with GFP_NOFS", linux-mm, April 2018 (Michal Hocko).
    """

    id = "vmalloc-nofs"
    severity = "error"
    fixable = True
    # A finding is a call of one of these by name (extraction records no other
    # allocation), with a mask argument: the names that take one.
    triggers = allocator_names("vmalloc", "kvmalloc", with_mask=True)

    def check_file(self, ctx: FileContext) -> Iterator[Finding]:
        if ctx.version >= FIXED_IN:
            return
        facts = ctx.facts
        for alloc in facts.allocations:
            if alloc.family not in ("vmalloc", "kvmalloc") or alloc.mask_text is None:
                continue
            if alloc.scope is not None:
                continue
            kinds = {m.kind for m in alloc.masks}
            kind = "noio" if "noio" in kinds else "nofs" if "nofs" in kinds else None
            if kind is None:
                continue
            call = facts.calls[alloc.call]
            label = "GFP_NOIO" if kind == "noio" else "GFP_NOFS"
            if len(alloc.masks) > 1:  # a variable or conditional that only may be NOFS/NOIO
                label = f"{label} (its mask '{' '.join(alloc.mask_text.split())}' can be)"
            if alloc.family == "vmalloc":
                why = (f"{alloc.allocator}() ignores {label} before v5.17: its page tables are "
                       "allocated with GFP_KERNEL, so reclaim can recurse into the filesystem")
            else:
                why = (f"{alloc.allocator}() with {label} never falls back to vmalloc "
                       "before v5.17: large allocations fail")
            message = (f"{why}; use memalloc_{kind}_save() around a GFP_KERNEL allocation "
                       f"(tree is v{ctx.tree.version_text})")
            mask = " ".join((alloc.mask_text or "").split())
            yield self.finding_at_call(ctx, call, message, self._fix(ctx, alloc, kind),
                                       key=f"{alloc.allocator}|{kind}|{mask}")

    @staticmethod
    def _fix(ctx: FileContext, alloc: Allocation, kind: str) -> ScopeWrap | None:
        if len(alloc.masks) != 1 or alloc.masks[0].unknown:
            return None  # a variable or conditional mask: no safe mechanical rewrite
        call = ctx.facts.calls[alloc.call]
        if call.args is None or alloc.mask_arg is None or alloc.mask_text is None:
            return None
        table = ctx.tree.gfp_table()
        macros = ctx.facts.gfp_macros
        wanted = Mask(alloc.masks[0].flags | {IO, FS})
        new_mask = _replace_base(alloc.mask_text, wanted, table, macros) or table.spell(wanted)
        if new_mask is None:
            return None
        label = "GFP_NOIO" if kind == "noio" else "GFP_NOFS"
        if alloc.family == "vmalloc":
            comment = f"vmalloc ignores {label} before v5.17: use a {kind.upper()} scope"
        else:
            comment = f"kvmalloc needs GFP_KERNEL to use vmalloc before v5.17: {kind.upper()} scope"
        return ScopeWrap(
            call.start, call.end, kind, comment=comment,
            mask=call.args[alloc.mask_arg], new_mask=new_mask)


def _replace_base(text: str, wanted: Mask, table: GfpTable, macros: dict[str, str]) -> str | None:
    """The mask as written with its one GFP_NOFS/GFP_NOIO swapped for GFP_KERNEL."""
    bases = re.findall(r"\bGFP_NO(?:FS|IO)\b", text)
    if len(bases) != 1:
        return None
    new = re.sub(r"\bGFP_NO(?:FS|IO)\b", "GFP_KERNEL", text)
    return new if table.eval(new, extra=macros) == (wanted,) else None
