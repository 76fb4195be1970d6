"""nofail-in-reclaim: __GFP_NOFAIL allocations reachable from memory-reclaim entry points."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from nofslint.api import (
    ALWAYS,
    IN_RECLAIM,
    MAX_CHAIN,
    NOFAIL,
    Call,
    CallRef,
    EntryPoint,
    Finding,
    NofailSummary,
    OpsEntry,
    PathCheck,
    Ref,
    Rule,
    TraceStep,
    TreeIndex,
    chain_text,
    nofail_states,
    reclaim_entries,
)


class NofailInReclaim(Rule):
    """A __GFP_NOFAIL allocation is reachable from a memory-reclaim entry point.

    What it does
        Resolves the ops tables reclaim calls through (super_operations
        .evict_inode/.destroy_inode/.free_inode/.drop_inode, shrinker
        .scan_objects/.count_objects, dentry_operations .d_release/.d_iput,
        address_space_operations .release_folio/.invalidate_folio/.free_folio,
        and .writepage where the tree's pageout() still calls it), both as
        designated initializers and as ``x->field = fn`` assignments, then follows
        the whole-tree call graph to allocations whose mask has __GFP_NOFAIL:
        written directly, through a macro or a gfp_t variable (one that gains the
        flag on a retry, ``goto retry``, or a later loop iteration counts at the
        allocation control comes back to), or added by a helper
        that ORs the flag into the mask it passes down. Clearing the flag
        (``gfp & ~__GFP_NOFAIL``) stops the chain; testing it is not an allocation.
        The finding sits on the last call the entry point's own subsystem makes on
        the way (or on the allocation when the chain stays inside it); the trace runs
        from the ops-table initializer to the allocation, shortest chain first.
        Chains go through the path check (docs/path-check.md): a chain whose
        conditions cannot all hold under PF_MEMALLOC (a helper that returns first
        for the constant its caller passes, a size the caller just set to zero, a
        ``current->flags & PF_MEMALLOC`` test that defers the work, a verdict that
        is always "defer" in reclaim) is dropped, and another feasible chain to
        the same site is looked for.
        Like a build, the call graph links one architecture (x86) and no userspace
        code (tools/, scripts/, samples/), and chains longer than 20 calls are not
        reported: over the whole kernel, generic code connects almost anything
        within 50 calls.

    Why is this bad
        Reclaim runs these callbacks from inside an allocation that is already
        short of memory, with PF_MEMALLOC set. A __GFP_NOFAIL allocation there
        cannot fail and cannot make progress by reclaiming: it loops, and if the
        memory it waits for is held by the reclaim it runs under, it deadlocks.
        The page allocator warns about it. "Anything that does IO or blocking memory
        allocation from evict() context is a deadlock vector."

    Example
        static const struct super_operations foo_sops = {
                .evict_inode = foo_evict_inode,
        };
        static void foo_evict_inode(struct inode *inode)
        {
                struct buffer_head *bh = sb_bread(inode->i_sb, FOO_I(inode)->blk);
                ...

    Fix
        Defer the work out of the reclaim path (to a workqueue or to the next
        transaction), preallocate outside it, or allocate without __GFP_NOFAIL and
        handle failure. There is no mechanical rewrite.

    References
        include/linux/gfp_types.h (__GFP_NOFAIL: "new users should be evaluated
        carefully"); mm/page_alloc.c (warning on __GFP_NOFAIL from PF_MEMALLOC);
        Documentation/core-api/memory-allocation.rst;
        "Filesystem reclaim & memory allocation BOF", LSF/MM/BPF 2025, linux-fsdevel
        (Dave Chinner, Matthew Wilcox).
    """

    id = "nofail-in-reclaim"
    severity = "warning"
    scope = "tree"

    def check_tree(self, index: TreeIndex) -> Iterator[Finding]:
        summary = index.memo("nofail", lambda: NofailSummary(index))
        check = PathCheck(index, IN_RECLAIM)
        best: dict[CallRef, Finding] = {}
        for fi, op, entry in reclaim_entries(index):
            for ref in index.resolve(fi, op.target):
                if summary.always(ref) is None:
                    continue
                start = check.entry(ref, entry.knows)
                for site, chain in _sites(index, summary, check, ref, start):
                    finding = self._finding(index, entry, fi, op, site, chain)
                    known = best.get(site)
                    if known is None or len(finding.trace) < len(known.trace):
                        best[site] = finding
        yield from best.values()

    def _finding(self, index: TreeIndex, entry: EntryPoint, op_file: int, op: OpsEntry,
                 site: CallRef, chain: list[tuple[Ref, CallRef]]) -> Finding:
        names = [index.function(ref).name for ref, _ in chain]
        alloc = index.call(chain[-1][1])
        brief = (f"__GFP_NOFAIL allocation {alloc.callee}() reachable from "
                 f"{entry.struct}.{entry.field} ({entry.why})")
        message = f"{brief} via {chain_text(names)}"
        slot = f"{entry.struct}.{entry.field}"
        trace = [TraceStep(slot, index.path(op_file), op.line, op.column,
                           note=f"{names[0]}() is stored in {slot}: {entry.why}")]
        trace += [index.step(call_site) for _, call_site in chain[:-1]]
        trace.append(index.step(chain[-1][1], f"{alloc.callee}() allocates with __GFP_NOFAIL"))
        call = index.call(site)
        owner = next(ref for ref, call_site in chain if call_site == site)
        return Finding(
            rule=self.id, severity=self.severity, path=index.path(site[0]), line=call.line,
            column=call.column, end_line=call.end_line, end_column=call.end_column,
            function=index.function(owner).name, message=message, trace=trace, brief=brief,
            file=index.file(site[0]),
            key=f"{entry.struct}.{entry.field}|{call.callee}|{alloc.callee}")


Chain = list[tuple[Ref, CallRef]]
_BUDGET = 1500  # (function, state, knowledge) nodes one search may visit


def _sites(index: TreeIndex, summary: NofailSummary, check: PathCheck,
           entry: Ref, env: dict) -> Iterator[tuple[CallRef, Chain]]:
    """Every call in the entry's own directory that leads to a NOFAIL allocation.

    Breadth-first over (function, state) inside the directory, so each site
    comes with the shortest way there; a call that leaves the directory is the
    finding, and the summary's chain says how it reaches the allocation. Only
    the chains found go through the path check (it reads guards, built from
    the files on demand): a site whose shortest chain cannot happen is
    searched again, with knowledge, for one that can.
    """
    home = index.home(entry[0])
    start = (entry, ALWAYS)
    paths: dict[tuple[Ref, int], Chain] = {start: []}
    queue = deque([start])
    reported: set[CallRef] = set()
    again: set[CallRef] = set()
    while queue:
        ref, state = queue.popleft()
        path = paths[(ref, state)]
        if len(path) >= MAX_CHAIN:
            continue
        for ci in index.calls_in(ref):
            site = (ref[0], ci)
            alloc = index.allocation(site)
            if alloc is not None:
                if state in nofail_states(alloc.masks) and site not in reported:
                    reported.add(site)
                    chain = [*path, (ref, site)]
                    if _holds(index, summary, check, chain, env):
                        yield site, chain
                    else:
                        again.add(site)
                continue
            call = index.call(site)
            for callee in index.callees(site):
                for new in _callee_states(summary, call, callee, state):
                    if index.home(callee[0]) == home:
                        key = (callee, new)
                        if key not in paths:
                            paths[key] = [*path, (ref, site)]
                            queue.append(key)
                    elif site not in reported:
                        tail = summary.chain(callee, new)
                        if len(path) + 1 + len(tail) <= MAX_CHAIN:
                            reported.add(site)
                            chain = [*path, (ref, site), *tail]
                            if _holds(index, summary, check, chain, env):
                                yield site, chain
                            else:
                                again.add(site)
    if again:
        yield from _searched_sites(index, summary, check, entry, env, again)


def _holds(index: TreeIndex, summary: NofailSummary, check: PathCheck, chain: Chain,
           env: dict | None = None) -> bool:
    """The path check on a whole chain, and on the flag itself: at the allocation
    (``_flag_set``), and at each call that passes the flag down in a variable that
    has it only on some paths (``if (!head) gfp |= __GFP_NOFAIL; f(gfp);``)."""
    entries = check.entries(chain, env)
    if entries is None:
        return False
    for i, ((ref, site), entry) in enumerate(zip(chain[:-1], entries, strict=False)):
        if summary.always(chain[i + 1][0]) is not None:
            continue  # the callee allocates with the flag whatever it is passed
        if not all(_passes_flag(index, check, ref, site, j, entry)
                   for j, _ in index.call(site).gfp_args or []):
            return False
    ref, site = chain[-1]
    return _flag_set(index, check, ref, site, entries[-1])


def _passes_flag(index: TreeIndex, check: PathCheck, ref: Ref, site: CallRef, j: int,
                 entry: dict) -> bool:
    """Whether the call's ``j``-th (gfp) argument can carry __GFP_NOFAIL here: not
    when the variable passed gains it only by writes this path cannot reach."""
    masks = next((m for i, m in index.call(site).gfp_args or [] if i == j), [])
    if not any(m.has(NOFAIL) is True for m in masks) or all(
            m.has(NOFAIL) is True for m in masks):
        return True
    var = check.argument(ref, site, j)
    return var is None or check.writes_nofail(ref, site, var, entry) is not False


def _flag_set(index: TreeIndex, check: PathCheck, ref: Ref, site: CallRef, entry: dict) -> bool:
    """When the allocation's mask has __GFP_NOFAIL only on some paths
    (``if (x) gfp |= __GFP_NOFAIL;``), a write that puts it there must be able to
    run, for ``ref`` entered knowing ``entry``."""
    alloc = index.allocation(site)
    if alloc is None or alloc.mask_text is None or all(
            m.has(NOFAIL) is True for m in alloc.masks):
        return True
    var = "".join(alloc.mask_text.split())
    return check.writes_nofail(ref, site, var, entry) is not False


def _searched_sites(index: TreeIndex, summary: NofailSummary, check: PathCheck,
                    entry: Ref, env: dict, again: set[CallRef]
                    ) -> Iterator[tuple[CallRef, Chain]]:
    """The sites ``_sites`` found only infeasible chains to, searched again
    with knowledge: breadth-first over (function, state, what the path knows)
    inside the directory, so each site comes with its shortest feasible way
    there; past the directory, the summary's chain if the path check keeps it,
    else the shortest feasible one (``_feasible_tail``). Only through the
    functions of the directory that lead to one of those sites.
    """
    home = index.home(entry[0])
    toward = _leading_to(index, home, {index.enclosing(site) for site in again})
    start = (entry, ALWAYS, frozenset(env.items()))
    paths: dict[tuple, tuple[Chain, dict]] = {start: ([], env)}
    queue = deque([start])
    reported: set[CallRef] = set()
    while queue and len(paths) < _BUDGET:
        key = queue.popleft()
        ref, state, _ = key
        path, known = paths[key]
        if len(path) >= MAX_CHAIN:
            continue
        for ci in index.calls_in(ref):
            site = (ref[0], ci)
            alloc = index.allocation(site)
            if alloc is not None:
                if site in again and state in nofail_states(alloc.masks) \
                        and site not in reported and _allocates(index, check, ref, site, known):
                    reported.add(site)
                    yield site, [*path, (ref, site)]
                continue
            call = index.call(site)
            for callee in index.callees(site):
                for new in _callee_states(summary, call, callee, state):
                    if new != ALWAYS and not _passes_flag(index, check, ref, site, new, known):
                        continue
                    if index.home(callee[0]) == home:
                        if callee in toward:
                            _follow(check, paths, queue, path, ref, site, known, callee, new)
                    elif site in again and site not in reported:
                        after = check.follow(ref, site, known, callee)
                        if after is None:
                            continue
                        room = MAX_CHAIN - len(path) - 1
                        tail = summary.chain(callee, new)
                        if len(tail) > room or not _holds(index, summary, check, tail, after):
                            tail = _feasible_tail(index, summary, check, callee, new, after,
                                                  room)
                        if tail:
                            reported.add(site)
                            yield site, [*path, (ref, site), *tail]


def _leading_to(index: TreeIndex, home: str, targets: set[Ref]) -> set[Ref]:
    """The functions of directory ``home`` from which one of ``targets`` can be
    reached by calls inside the directory (the targets included)."""
    found = set(targets)
    todo = list(targets)
    while todo:
        ref = todo.pop()
        for site in index.callers(ref):
            caller = index.enclosing(site)
            if caller not in found and index.home(caller[0]) == home:
                found.add(caller)
                todo.append(caller)
    return found


def _feasible_tail(index: TreeIndex, summary: NofailSummary, check: PathCheck, start: Ref,
                   state: int, env: dict, room: int) -> Chain | None:
    """The shortest chain from ``start`` to a NOFAIL allocation the path check keeps.

    Follows only calls the summary says lead to one in time, so the search
    stays within the functions that matter; gives up past a budget.
    """
    first = (start, state, frozenset(env.items()))
    paths: dict[tuple, tuple[Chain, dict]] = {first: ([], env)}
    queue = deque([first])
    while queue and len(paths) < _BUDGET:
        key = queue.popleft()
        ref, st, _ = key
        path, known = paths[key]
        for ci in index.calls_in(ref):
            site = (ref[0], ci)
            alloc = index.allocation(site)
            if alloc is not None:
                if st in nofail_states(alloc.masks) and _allocates(index, check, ref, site, known):
                    return [*path, (ref, site)]
                continue
            call = index.call(site)
            for callee in index.callees(site):
                for new in _callee_states(summary, call, callee, st):
                    if len(path) + 1 + summary.proofs[(callee, new)].length + 1 > room:
                        continue
                    if new == ALWAYS or _passes_flag(index, check, ref, site, new, known):
                        _follow(check, paths, queue, path, ref, site, known, callee, new)
    return None


def _allocates(index: TreeIndex, check: PathCheck, ref: Ref, site: CallRef, known: dict) -> bool:
    """Whether the allocation at ``site`` is reached, with the flag, for ``ref``
    entered knowing ``known``."""
    return check.step(ref, site, known) is not None and \
        _flag_set(index, check, ref, site, known)


def _follow(check: PathCheck, paths: dict, queue: deque, path: Chain, ref: Ref,
            site: CallRef, known: dict, callee: Ref, state: int) -> None:
    """Queue (callee, state, what it knows) when the call can happen and it is new."""
    after = check.follow(ref, site, known, callee)
    if after is None:
        return
    key = (callee, state, frozenset(after.items()))
    if key not in paths:
        paths[key] = ([*path, (ref, site)], after)
        queue.append(key)


def _callee_states(summary: NofailSummary, call: Call, callee: Ref, state: int) -> set[int]:
    """States the callee runs in: NOFAIL always, or via its parameter J."""
    out: set[int] = set()
    if state == ALWAYS and summary.proofs.get((callee, ALWAYS)) is not None:
        out.add(ALWAYS)
    for j, masks in call.gfp_args or []:
        if state in nofail_states(masks) and (callee, j) in summary.proofs:
            out.add(j)
    return out
