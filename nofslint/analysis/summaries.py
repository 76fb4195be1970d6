"""Per-function summaries computed over the whole tree.

``FsReclaimSummary`` answers "may this function allocate with a mask that
enters filesystem reclaim (GFP_KERNEL-class), outside a NOFS/NOIO scope?",
following callers within one directory (one filesystem).

``NofailSummary`` answers "may this function allocate with __GFP_NOFAIL?"
with the allocation site that proves it. It is computed backwards from the
allocation sites in breadth-first order, so each function keeps its shortest
chain. A function either always reaches a NOFAIL allocation, or does so when
its N-th (gfp_t) parameter carries __GFP_NOFAIL: helpers that OR the flag in
and pass it down (buffer-head readers) are followed through every call. The
allocator's own implementation is not followed (see ALLOCATOR_INTERNALS).
"""

from __future__ import annotations

import posixpath
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from nofslint.kernel.allocators import is_allocator_internal
from nofslint.kernel.areas import GENERIC_DIRS
from nofslint.link.index import CallRef, Ref, TreeIndex
from nofslint.model.facts import Allocation, at, masks_from
from nofslint.model.gfp import NOFAIL, Mask

ALWAYS = -1  # the state "always allocates with NOFAIL"; >= 0 means "when parameter N has it"

# Longest chain (calls from a function down to the allocation) a summary keeps.
# Over the whole kernel, generic functions (locking, printk, refcount tracking)
# connect almost anything to anything within ~50 calls; on v6.1/v6.12 the chains
# worth a reviewer's time are under 20 calls, and past 20 the count explodes.
MAX_CHAIN = 20


@dataclass(frozen=True)
class Proof:
    """One step of a chain: the call in this function that leads on."""

    site: CallRef  # the allocation, or the call to ``next``
    next: Ref | None  # the callee that carries on (None: site is the allocation)
    next_state: int  # ALWAYS or the callee's parameter index
    length: int


def nofail_states(masks: list[Mask]) -> set[int]:
    """States a mask argument puts its receiver in: NOFAIL always, or via parameters."""
    out: set[int] = set()
    for m in masks:
        if m.has(NOFAIL) is True:
            out.add(ALWAYS)
        elif NOFAIL not in m.cleared:
            out.update(int(a[2:]) for a in m.flags if a.startswith("$p"))
    return out


# The allocations each summary starts from, as scan kinds (TreeIndex.scan): the
# kind of facts they filter, and the filter, over relocation's per-kind records
# ``(function key, allocator, family, mask_arg, mask_text, masks, scope, order)``.
# An edit that adds or changes other allocations leaves the summary as it was.
# Relocation's allocation records keep the stored layout, the enclosing function's
# key standing where the call index was: the masks and the scope sit where they do.
_MASKS, _SCOPE = at(Allocation, "masks"), at(Allocation, "scope")
SEED_KINDS: dict[str, tuple[str, Callable[[tuple], bool]]] = {
    "nofail-allocations": ("allocations", lambda r: bool(nofail_states(masks_from(r[_MASKS])))),
    "kernel-allocations": ("allocations", lambda r: r[_SCOPE] is None and any(
        m.kind == "kernel" for m in masks_from(r[_MASKS]))),
}


class _Summary:
    """Proofs by (function, state), each the first step of the shortest chain."""

    def __init__(self, index: TreeIndex) -> None:
        self.index = index
        self.proofs: dict[tuple[Ref, int], Proof] = {}
        self._compute()

    def _compute(self) -> None:
        raise NotImplementedError

    def always(self, ref: Ref) -> Proof | None:
        return self.proofs.get((ref, ALWAYS))

    def chain(self, ref: Ref, state: int = ALWAYS) -> list[tuple[Ref, CallRef]]:
        """(function, call site) steps from ``ref`` down to the allocation."""
        steps: list[tuple[Ref, CallRef]] = []
        seen: set[tuple[Ref, int]] = set()
        key: tuple[Ref, int] | None = (ref, state)
        while key is not None and key not in seen and key in self.proofs:
            seen.add(key)
            proof = self.proofs[key]
            steps.append((key[0], proof.site))
            key = (proof.next, proof.next_state) if proof.next is not None else None
        return steps


class NofailSummary(_Summary):
    def _compute(self) -> None:
        queue: deque[tuple[Ref, int]] = deque()
        index = self.index
        internal = [is_allocator_internal(path) for path in index.paths()]
        for fi, entry in index.scan("nofail-allocations"):
            facts = entry.facts
            if internal[fi]:
                continue
            for alloc in facts.allocations:
                call = facts.calls[alloc.call]
                if call.function < 0:
                    continue
                ref = (fi, call.function)
                for state in sorted(nofail_states(alloc.masks)):
                    key = (ref, state)
                    if key not in self.proofs:
                        self.proofs[key] = Proof((fi, alloc.call), None, ALWAYS, 0)
                        queue.append(key)
        while queue:
            ref, state = queue.popleft()
            length = self.proofs[(ref, state)].length
            if length >= MAX_CHAIN:
                continue
            for site in index.callers(ref):
                if internal[site[0]]:
                    continue
                caller = index.enclosing(site)
                if state == ALWAYS:
                    new_states = {ALWAYS}
                else:
                    masks = next((m for i, m in (index.call(site).gfp_args or [])
                                  if i == state), None)
                    if masks is None:
                        continue
                    new_states = nofail_states(masks)
                for new in new_states:
                    key = (caller, new)
                    if key not in self.proofs:
                        self.proofs[key] = Proof(site, ref, state, length + 1)
                        queue.append(key)


FS_CHAIN = 6  # calls from a function down to its GFP_KERNEL allocation, within one directory
GENERIC_HOPS = 3  # generic functions a chain may pass through on its way back into the filesystem


class FsReclaimSummary(_Summary):
    """Functions that may allocate with a GFP_KERNEL-class mask outside any scope.

    Seeds are allocations whose mask can block with __GFP_FS and __GFP_IO set
    (``kmalloc(GFP_KERNEL)``, ``vmalloc()``) that no NOFS/NOIO scope opened
    in their function covers; a caller inherits the property through a call
    made outside a scope, when caller and callee live in the same directory
    (``dirs``: the filesystems under review). Generic kernel code is followed
    only on the way back into the filesystem: an inode lookup in btrfs that
    reaches the VFS's alloc_inode(), which calls btrfs's own ->alloc_inode
    (up to GENERIC_HOPS generic functions). Generic code's own allocations are
    not seeds: a filesystem's review is about its own calls.
    """

    def __init__(self, index: TreeIndex, dirs: set[str]) -> None:
        self.dirs = dirs
        super().__init__(index)

    def _compute(self) -> None:
        index = self.index
        queue: deque[tuple[Ref, int]] = deque()
        home = [posixpath.dirname(path) for path in index.paths()]
        # A generic function on a chain back into directory D is kept under the
        # state -2 - (D's number): chain() follows it like any other step.
        origin_state = {d: -2 - i for i, d in enumerate(sorted(self.dirs))}
        state_dir = {v: k for k, v in origin_state.items()}
        hops: dict[tuple[Ref, int], int] = {}
        for fi, entry in index.scan("kernel-allocations@" + ",".join(sorted(self.dirs))):
            if home[fi] not in self.dirs:
                continue
            facts = entry.facts
            for alloc in facts.allocations:
                call = facts.calls[alloc.call]
                if call.function < 0 or alloc.scope is not None:
                    continue
                if any(m.kind == "kernel" for m in alloc.masks):
                    ref = (fi, call.function)
                    if (ref, ALWAYS) not in self.proofs:
                        self.proofs[(ref, ALWAYS)] = Proof((fi, alloc.call), None, ALWAYS, 0)
                        hops[(ref, ALWAYS)] = 0
                        queue.append((ref, ALWAYS))
        while queue:
            ref, state = queue.popleft()
            length = self.proofs[(ref, state)].length
            if length >= FS_CHAIN:
                continue
            fs = home[ref[0]] if state == ALWAYS else state_dir[state]
            for site in index.callers(ref, generic=state == ALWAYS):
                where = home[site[0]]
                call = index.call(site)
                if call.function < 0 or index.scope_at(site):
                    continue
                if where == fs:
                    new, gone = ALWAYS, 0
                elif where in GENERIC_DIRS and (state != ALWAYS or call.callee.startswith("->")):
                    new, gone = origin_state[fs], hops[(ref, state)] + 1
                    if gone > GENERIC_HOPS:
                        continue
                else:
                    continue
                key = ((site[0], call.function), new)
                if key not in self.proofs:
                    self.proofs[key] = Proof(site, ref, state, length + 1)
                    hops[key] = gone
                    queue.append(key)
