"""prefer-nofs-scope: GFP_NOFS sprinkled over a section, or inside a scope that makes it moot."""

from __future__ import annotations

import re
from collections.abc import Iterator

from nofslint.api import (
    Allocation,
    FileContext,
    Finding,
    Flow,
    NofsToKernel,
    Rule,
    SectionWrap,
    active,
    scope_walk,
)

MIN_ALLOCATIONS = 3  # "several": fewer is a call-site choice, not a section
_NOFS = re.compile(r"\bGFP_NOFS\b")


class PreferNofsScope(Rule):
    """Several GFP_NOFS allocations in one function; GFP_NOFS inside an active NOFS scope.

    What it does
        Advice, off unless selected (``--select prefer-nofs-scope``). Reports a
        function that passes ``GFP_NOFS`` explicitly to three or more
        allocations outside any scope, and offers one
        ``memalloc_nofs_save()``/``restore()`` scope over the statements from
        the first to the last of them, with ``GFP_KERNEL`` inside. Also reports
        ``GFP_NOFS`` passed inside a NOFS or NOIO scope that is open on every
        path to the call (the flag is redundant there), with ``GFP_KERNEL`` as
        the fix.

    Why is this bad
        ``GFP_NOFS`` at call sites says "this allocation" when the constraint
        belongs to a section of code (a transaction, a lock that reclaim can
        take). Helpers called from the section still allocate with
        ``GFP_KERNEL`` and recurse; new allocations added later forget the
        flag. The kernel's guidance is to mark the critical section with the
        scope API and use ``GFP_KERNEL`` inside it.

    Example
        a = kmalloc(sizeof(*a), GFP_NOFS);
        b = kmalloc(sizeof(*b), GFP_NOFS);
        c = kcalloc(n, sizeof(*c), GFP_NOFS);

    Fix
        ``nofs_flag = memalloc_nofs_save();`` before the first, GFP_KERNEL in
        each, ``memalloc_nofs_restore(nofs_flag);`` after the last statement.
        No fix is offered when the section declares variables or can be left
        early (return, goto, break): the scope must close on every path.

    References
        Documentation/core-api/gfp_mask-from-fs-io.rst ("The recommended way ...
        is to use the scope API"); include/linux/sched/mm.h.
    """

    id = "prefer-nofs-scope"
    severity = "info"
    # Both kinds of finding are an allocation whose mask, as written, says GFP_NOFS.
    triggers = ("GFP_NOFS",)
    enabled_by_default = False
    fixable = True

    def check_file(self, ctx: FileContext) -> Iterator[Finding]:
        facts = ctx.facts
        explicit: dict[int, list[Allocation]] = {}
        for alloc in facts.allocations:
            if alloc.mask_text is None or not _NOFS.search(alloc.mask_text):
                continue
            if not alloc.masks or any(m.kind != "nofs" for m in alloc.masks):
                continue
            explicit.setdefault(facts.calls[alloc.call].function, []).append(alloc)
        flows = {f.function: f for f in facts.flows}
        for fidx, allocs in sorted(explicit.items()):
            if fidx < 0:
                continue
            scoped = self._scoped(ctx, fidx, allocs, flows)
            for alloc, kind in scoped:
                yield self._redundant(ctx, alloc, kind)
            covered = {alloc.call for alloc, _ in scoped}
            loose = [a for a in allocs if a.scope is None and a.call not in covered]
            if len(loose) >= MIN_ALLOCATIONS:
                yield self._section(ctx, loose)

    @staticmethod
    def _scoped(ctx: FileContext, fidx: int, allocs: list[Allocation],
                flows: dict[int, Flow]) -> list[tuple[Allocation, str]]:
        """Allocations every path reaches with a NOFS/NOIO scope open."""
        flow = flows.get(fidx)
        if flow is None:
            return []
        walk = scope_walk(ctx.facts, flow, [ctx.facts.calls[a.call].start for a in allocs])
        if walk is None:
            return []
        out = []
        for alloc in allocs:
            call = ctx.facts.calls[alloc.call]
            kinds = {active(s) for s in walk.at.get(call.start, ())}
            if kinds and None not in kinds:
                out.append((alloc, "noio" if "noio" in kinds else "nofs"))
        return out

    def _redundant(self, ctx: FileContext, alloc: Allocation, kind: str) -> Finding:
        call = ctx.facts.calls[alloc.call]
        mask = call.args[alloc.mask_arg] if call.args and alloc.mask_arg is not None else None
        return self.finding_at_call(
            ctx, call, f"GFP_NOFS in {alloc.allocator}() is redundant: a memalloc_{kind}_save() "
            "scope is open on every path here; use GFP_KERNEL",
            NofsToKernel(*mask) if mask is not None else None, key=f"{alloc.allocator}|{kind}")

    def _section(self, ctx: FileContext, allocs: list[Allocation]) -> Finding:
        calls = [ctx.facts.calls[a.call] for a in allocs]
        lines = ", ".join(str(c.line) for c in calls)
        masks = [c.args[a.mask_arg] for a, c in zip(allocs, calls, strict=True)
                 if c.args and a.mask_arg is not None]
        fix = SectionWrap(calls[0].start, calls[0].end, "nofs",
                          comment="allocations below must not recurse into the filesystem",
                          calls=[(c.start, c.end) for c in calls], nofs_masks=masks)
        return self.finding_at_call(
            ctx, calls[0], f"{len(calls)} allocations in {ctx.function_name(calls[0])}() pass "
            f"GFP_NOFS (lines {lines}): mark the section with memalloc_nofs_save() and use "
            "GFP_KERNEL inside", fix if len(masks) == len(calls) else None,
            key="section|" + ",".join(a.allocator for a in allocs))
