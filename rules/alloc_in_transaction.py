"""alloc-in-transaction: a GFP_KERNEL-class allocation while a filesystem transaction is open."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from nofslint.api import (
    ALWAYS,
    NONZERO,
    Allocation,
    Call,
    CallRef,
    Finding,
    Flow,
    FsReclaimSummary,
    KernelToNofs,
    PathCheck,
    Ref,
    Rule,
    ScopeEvent,
    ScopeWrap,
    Stack,
    Table,
    TraceStep,
    TreeIndex,
    Walk,
    active,
    apply,
    failed,
    table,
)


@dataclass(frozen=True)
class _State:
    opened: int  # offset of the call that opened the transaction; -1: none open
    scopes: Stack  # open NOFS/NOIO scopes

    @property
    def exposed(self) -> bool:
        return self.opened >= 0 and active(self.scopes) is None


_CLOSED = _State(-1, ())


class AllocInTransaction(Rule):
    """GFP_KERNEL-class allocation inside an open btrfs/gfs2/nilfs2/reiserfs transaction.

    What it does
        Follows every path from a transaction start (``btrfs_start_transaction()``,
        ``btrfs_join_transaction()``, ``gfs2_trans_begin()``,
        ``nilfs_transaction_begin()``, reiserfs ``journal_begin()``) to its end
        (``btrfs_end_transaction()``, ``btrfs_commit_transaction()``,
        ``gfs2_trans_end()``, ``nilfs_transaction_commit()``/``_abort()``,
        ``journal_end()``) and reports, on a path where no NOFS/NOIO scope is
        active, an allocation whose mask can enter filesystem reclaim
        (blocking, with ``__GFP_FS``: ``GFP_KERNEL``, ``GFP_USER``, the implicit
        mask of ``vmalloc()``/``vzalloc()``), or a call to a function of the same
        filesystem that makes such an allocation (whole-tree summary, up to 6
        calls deep, including a way out through generic code and back in
        through the filesystem's own ops: an inode lookup whose VFS side calls
        ->alloc_inode). An allocation after the commit is outside the window, and
        so is the branch where the start failed (``IS_ERR(trans)``, a non-zero
        error from ``gfs2_trans_begin()``). A function that receives a live
        handle (``struct btrfs_trans_handle *``, ``struct
        reiserfs_transaction_handle *``: the table's handle types) runs inside
        the transaction until it gives the handle back: its allocations and
        calls are checked the same way, on the paths where the handle is not
        NULL (the path check, docs/path-check.md), unless every caller calls it
        inside a NOFS/NOIO scope; a caller's call to such a function is left to
        the function, so the finding and its fix sit where the allocation is.

    Why is this bad
        Direct reclaim can call back into the filesystem (inode eviction,
        writeback of dirty pages, the filesystem's shrinkers) and wait for the
        transaction the task itself holds open: a deadlock under memory
        pressure. These transaction starts do not enter a NOFS scope
        themselves; jbd2 (ext4, ocfs2), XFS and bcachefs ones do and are not
        checked.

    Example
        trans = btrfs_start_transaction(root, 1);
        ...
        buf = kmalloc(len, GFP_KERNEL);   /* reclaim may wait on trans */
        ...
        btrfs_end_transaction(trans);

    Fix
        Two options, and the proposed diff picks by the calling context:

        - **At each caller**: put the call that leads to the allocation in a
          ``memalloc_nofs_save()``/``memalloc_nofs_restore()`` scope, around
          the smallest statement that covers it (or allocate before the
          transaction starts). The diff does this when the helper that
          allocates is also called outside any transaction: there its
          ``GFP_KERNEL`` is right, and the callers differ.
        - **At the allocation**: when several transaction paths reach the same
          allocation and every call of every function on the way is one of
          them (the helper only ever runs inside a transaction), the diff
          makes the one change every path needs, where the mask is written:
          ``GFP_KERNEL`` becomes ``GFP_NOFS`` (or, for a mask it cannot
          rewrite, a NOFS scope around the allocation inside the helper).

        The scope API is what new code should prefer at a transaction
        boundary; a helper that runs only inside transactions may as well
        say ``GFP_NOFS`` itself.

    References
        Documentation/core-api/gfp_mask-from-fs-io.rst; include/linux/sched/mm.h;
        fs/jbd2/transaction.c (start_this_handle() saving a NOFS scope into the
        handle: the pattern the other filesystems lack).
    """

    id = "alloc-in-transaction"
    severity = "warning"
    scope = "tree"
    fixable = True

    def check_tree(self, index: TreeIndex) -> Iterator[Finding]:
        opens = sorted({name for tree in index.trees()
                        for name in table(tree.extras.transactions).opens})
        opening = {index.enclosing(site)
                   for name in opens for site in index.sites_calling(name)}
        # The functions that open a transaction and have a flow, in file order.
        work = [(ref, flow) for ref in sorted(opening)
                if ref[1] >= 0 and (flow := index.flow(ref)) is not None]
        if not work:
            return
        dirs = {index.home(ref[0]) for ref, _ in work}
        summary = index.memo("fs-reclaim:" + ",".join(sorted(dirs)),
                             lambda: FsReclaimSummary(index, dirs))
        found = [found for ref, flow in work
                 for found in self._check_flow(index, summary, ref, flow)]
        found += self._held(index, summary, opening)
        _fix_at_depth(index, found)
        yield from (finding for finding, _, _ in found)

    def _held(self, index: TreeIndex, summary: FsReclaimSummary,
              opening: set[Ref]) -> Iterator[_Found]:
        """Functions that receive a live transaction handle run inside the transaction.

        Only functions that can reach a GFP_KERNEL-class allocation (the summary)
        are looked at. The finding sits in the deepest function that holds the
        handle: a call to a callee that takes the handle itself is that callee's.
        """
        check = PathCheck(index)
        for ref in sorted(r for r, state in summary.proofs if state == ALWAYS):
            if ref in opening or ref[1] < 0:
                continue
            fi = ref[0]
            trans = table(index.tree(fi).extras.transactions)
            held = _held_handles(index, ref, trans)
            if not held or _every_caller_scoped(index, ref, {}):
                continue
            env = {name: NONZERO for name, _ in held}  # the handle is live here
            home = index.home(fi)
            for ci in index.calls_in(ref):
                site = (fi, ci)
                call = index.call(site)
                if call.callee in trans.closes:
                    break  # the handle is given back: what follows is not inside
                if index.scope_at(site) is not None or check.step(ref, site, env) is None:
                    continue
                alloc = index.allocation(site)
                if alloc is not None:
                    if alloc.scope is None and any(m.kind == "kernel" for m in alloc.masks):
                        yield (self._held_finding(index, ref, ci, held[0], [], alloc),
                               site, [])
                    continue
                for callee in index.callees(site):
                    if index.home(callee[0]) != home or summary.always(callee) is None \
                            or _held_handles(index, callee, trans):
                        continue
                    chain = summary.chain(callee)
                    yield self._held_finding(index, ref, ci, held[0], chain, None), site, chain
                    break

    def _held_finding(self, index: TreeIndex, ref: Ref, ci: int, held: tuple[str, str],
                      chain: list, alloc: Allocation | None) -> Finding:
        fi = ref[0]
        call = index.call((fi, ci))
        func = index.function(ref)
        path = index.path(fi)
        name, fs = held
        what, brief = _what(index, call, chain, alloc)
        why = (f"while {func.name}() holds the live {fs} transaction handle '{name}' and no "
               f"NOFS scope is active: reclaim can recurse into {fs} and wait on this "
               "transaction")
        trace = [TraceStep(func.name, path, func.line,
                           note=f"{func.name}() receives the live {fs} transaction handle "
                                f"'{name}'"),
                 *_steps(index, (fi, ci), chain, alloc)]
        return Finding(
            rule=self.id, severity=self.severity, path=path, line=call.line,
            column=call.column, end_line=call.end_line, end_column=call.end_column,
            function=func.name, message=f"{what} {why}", brief=f"{brief} {why}", trace=trace,
            file=index.file(fi), key=f"{fs}|handle|{call.callee}|{what.partition(' (')[0]}",
            fix_builder=ScopeWrap(call.start, call.end, "nofs",
                                  comment=f"no reclaim into {fs} while its transaction is open"))

    def _check_flow(self, index: TreeIndex, summary: FsReclaimSummary, ref: Ref,
                    flow: Flow) -> Iterator[_Found]:
        fi, fidx = ref
        trans = table(index.tree(fi).extras.transactions)
        calls = index.calls_in(ref)
        made = {ci: index.call((fi, ci)) for ci in calls}
        scopes = {e.start: e for e in index.scopes_in(ref)}
        events: list[tuple[int, object]] = sorted(
            [(made[ci].start, ci) for ci in calls]
            + [(s, e) for s, e in scopes.items() if e.op in ("set", "clear")],
            key=lambda x: x[0])
        checks = {c.start: (trans.returns[c.callee], flow.results[c.start])
                  for c in made.values()
                  if c.callee in trans.opens and c.start in flow.results}

        def branch(state: _State, cond: str, value: bool) -> _State:
            check = checks.get(state.opened)
            if check is not None and failed(check[0], check[1], cond, value):
                return _State(-1, state.scopes)  # the start failed: nothing is open here
            return state

        walk: Walk[_State, object] = Walk(
            flow, events, functools.partial(_step, calls=made, scopes=scopes, trans=trans),
            branch=branch)
        walk.run(_CLOSED)
        if not walk.complete:
            return
        home = index.home(fi)
        for ci in calls:
            call = made[ci]
            states = [s for s in walk.at.get(call.start, ()) if s.exposed]
            if not states:
                continue
            opened = min(s.opened for s in states)
            alloc = index.allocation((fi, ci))
            if alloc is not None:
                if any(m.kind == "kernel" for m in alloc.masks):
                    yield self._finding(index, fi, ci, opened, [], alloc, trans), (fi, ci), []
                continue
            if call.callee in trans.opens or call.callee in trans.closes:
                continue
            for callee in index.callees((fi, ci)):
                if index.home(callee[0]) != home or _held_handles(index, callee, trans):
                    continue  # a callee that takes the handle reports where it allocates
                if summary.always(callee) is not None:
                    chain = summary.chain(callee)
                    yield (self._finding(index, fi, ci, opened, chain, None, trans), (fi, ci),
                           chain)
                    break

    def _finding(self, index: TreeIndex, fi: int, ci: int, opened: int,
                 chain: list, alloc: Allocation | None, trans: Table) -> Finding:
        call = index.call((fi, ci))
        same_function = (index.call((fi, i)) for i in index.calls_in((fi, call.function)))
        opener = next(c for c in same_function if c.start == opened)
        name = index.function((fi, call.function)).name if call.function >= 0 else None
        path = index.path(fi)
        fs = trans.opens[opener.callee]
        what, brief = _what(index, call, chain, alloc)
        why = (f"while the {fs} transaction opened by {opener.callee}() at line {opener.line} "
               f"is open and no NOFS scope is active: reclaim can recurse into {fs} and wait "
               "on this transaction")
        trace = [TraceStep(name, path, opener.line, opener.column,
                           note=f"{opener.callee}() opens a {fs} transaction"),
                 *_steps(index, (fi, ci), chain, alloc)]
        return Finding(
            rule=self.id, severity=self.severity, path=path, line=call.line,
            column=call.column, end_line=call.end_line, end_column=call.end_column,
            function=name, message=f"{what} {why}", brief=f"{brief} {why}", trace=trace,
            file=index.file(fi),
            key=f"{fs}|{opener.callee}|{call.callee}|{what.partition(' (')[0]}",
            fix_builder=ScopeWrap(call.start, call.end, "nofs",
                                  comment=f"no reclaim into {fs} while its transaction is open"))


def _held_handles(index: TreeIndex, ref: Ref, trans: Table) -> list[tuple[str, str]]:
    """(parameter, filesystem) for each transaction handle the function receives."""
    guards = index.guards(ref)
    if guards is None:
        return []
    return [(name, trans.handles[struct])
            for name, struct in zip(guards.params, guards.param_structs, strict=False)
            if struct in trans.handles and name]


# A finding, the call made inside the transaction, and the chain from it to the allocation.
_Found = tuple[Finding, CallRef, list[tuple[Ref, CallRef]]]


def _fix_at_depth(index: TreeIndex, found: list[_Found]) -> None:
    """One fix where the allocation is, instead of a scope in each caller, when several
    transaction paths reach the same allocation and every path to it is one of them.

    Every call of every function on those chains must be a call the chains make (or
    be made from such a function, or inside a NOFS/NOIO scope already): then the
    allocation never runs but inside a transaction, and changing it is the one change
    every path needs. A caller outside (the helper also serves other code) keeps the
    per-caller scopes: the paths differ.
    """
    groups: dict[CallRef, list[_Found]] = {}
    for item in found:
        if item[2]:
            groups.setdefault(item[2][-1][1], []).append(item)
    for alloc_site, items in groups.items():
        if len(items) < 2:
            continue
        functions = {ref for _, _, chain in items for ref, _ in chain}
        known = {site for _, site, _ in items} | {s for _, _, chain in items for _, s in chain}
        if not all(site in known or index.enclosing(site) in functions
                   or index.scope_at(site) is not None
                   for ref in functions
                   for site in index.callers(ref, dispatch=True, untyped=True)):
            continue
        fix = _fix_at(index, alloc_site)
        owner = index.function(index.enclosing(alloc_site)).name
        for finding, _, _ in items:
            finding.fix_builder = fix
            if finding.file != index.file(alloc_site[0]):
                finding.fix_file = index.file(alloc_site[0])
                finding.fix_path = index.path(alloc_site[0])
            tail = (f"; all {len(items)} transaction paths to it need NOFS, so the fix is "
                    f"at the allocation in {owner}()")
            finding.message += tail
            finding.brief += tail


def _fix_at(index: TreeIndex, site: CallRef) -> KernelToNofs | ScopeWrap:
    """The mask itself when it is written ``GFP_KERNEL`` at the allocation, else a NOFS
    scope around the allocation inside the helper."""
    call = index.call(site)
    alloc = index.allocation(site)
    if (alloc is not None and alloc.mask_arg is not None and call.args
            and alloc.mask_arg < len(call.args) and alloc.mask_text is not None
            and len(re.findall(r"\bGFP_KERNEL\b", alloc.mask_text)) == 1):
        return KernelToNofs(*call.args[alloc.mask_arg])
    return ScopeWrap(call.start, call.end, "nofs",
                     comment="every caller holds a transaction: no reclaim into the fs")


def _every_caller_scoped(index: TreeIndex, ref: Ref, memo: dict[Ref, bool],
                         depth: int = 0) -> bool:
    """Whether every call of the function is made inside a NOFS/NOIO scope, or from
    a function all of whose own calls are (3 callers up): then it never runs
    exposed, whatever it allocates. A function nobody calls by name is not."""
    if ref in memo:
        return memo[ref]
    memo[ref] = False  # recursion: not known to be covered
    sites = list(index.callers(ref))
    covered = bool(sites) and depth < 3 and all(
        index.scope_at(site) is not None
        or _every_caller_scoped(index, index.enclosing(site), memo, depth + 1)
        for site in sites)
    memo[ref] = covered
    return covered


def _what(index: TreeIndex, call: Call, chain: list,
          alloc: Allocation | None) -> tuple[str, str]:
    """What allocates: the allocation itself, or the call and the chain down to it (and
    the same without the chain, which text output shows as notes)."""
    if alloc is not None:
        what = f"{alloc.allocator}() with {_mask_label(alloc)}"
        return what, what
    last = index.call(chain[-1][1])
    names = [index.function(ref).name for ref, _ in chain]
    head = f"{call.callee}() allocates with a GFP_KERNEL-class mask"
    return (f"{head} ({last.callee}() via {' → '.join(names)})",
            f"{head} ({last.callee}() in {names[-1]}())")


def _steps(index: TreeIndex, site: CallRef, chain: list,
           alloc: Allocation | None) -> list[TraceStep]:
    """The call under the transaction, then the chain down to the allocation."""
    if alloc is not None:
        return [index.step(site, f"{alloc.allocator}() allocates with {_mask_label(alloc)}")]
    last = index.call(chain[-1][1])
    return [index.step(site), *(index.step(s) for _, s in chain[:-1]),
            index.step(chain[-1][1], f"{last.callee}() allocates with a GFP_KERNEL-class mask")]


def _mask_label(alloc: Allocation) -> str:
    if alloc.mask_text is None:
        return "its implicit GFP_KERNEL mask"
    return " ".join(alloc.mask_text.split())


def _step(state: _State, event: object, calls: dict[int, Call],
          scopes: dict[int, ScopeEvent], trans: Table) -> _State:
    if isinstance(event, ScopeEvent):
        ev = event
    else:
        call = calls[event]  # type: ignore[index]
        if call.callee in trans.opens:
            return state if state.opened >= 0 else _State(call.start, state.scopes)
        if call.callee in trans.closes:
            return _State(-1, state.scopes)
        found = scopes.get(call.start)
        if found is None:
            return state
        ev = found
    return _State(state.opened, apply(state.scopes, ev))
