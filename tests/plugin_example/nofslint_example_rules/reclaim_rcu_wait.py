"""example-reclaim-rcu-wait: reclaim waits for an RCU grace period (a whole-tree rule)."""

from __future__ import annotations

from collections.abc import Iterator

from nofslint.api import (
    CallRef,
    EntryPoint,
    Finding,
    Ref,
    Rule,
    TraceStep,
    TreeIndex,
    reclaim_entries,
)

WAITS = ("synchronize_rcu", "synchronize_rcu_expedited", "synchronize_srcu", "rcu_barrier")
MAX_CALLS = 6  # from the entry point's function to the wait


class ReclaimRcuWait(Rule):
    """A memory-reclaim entry point waits for an RCU grace period.

    What it does
        Starts from the functions that reclaim calls through ops tables (the
        inode and dentry shrinkers' super_operations and dentry_operations,
        shrinker .scan_objects/.count_objects, address_space_operations that
        release folios), written as initializers or as ``s->field = fn``
        assignments, and follows the whole-tree call graph up to six calls
        deep to synchronize_rcu(), synchronize_rcu_expedited(),
        synchronize_srcu() or rcu_barrier(). The finding sits on the wait; the
        trace runs from the ops table to it.

    Why is this bad
        A grace period lasts milliseconds or more. Reclaim calls these
        callbacks once per object, from every task that is short of memory:
        a wait in each of them stalls direct reclaim and kswapd, and an
        allocation that triggered reclaim waits behind it.

    Example
        static void foo_evict_inode(struct inode *inode)
        {
                list_del_rcu(&FOO_I(inode)->node);
                synchronize_rcu();
                kfree(FOO_I(inode)->cache);
        }

    Fix
        Free through call_rcu() or kfree_rcu() instead of waiting, or batch
        the objects and wait once outside the reclaim path.

    References
        Documentation/RCU/checklist.rst (call_rcu() instead of
        synchronize_rcu() when the latency of the update matters);
        Documentation/filesystems/vfs.rst (super_operations, evict_inode).
    """

    id = "example-reclaim-rcu-wait"
    severity = "warning"
    scope = "tree"

    def check_tree(self, index: TreeIndex) -> Iterator[Finding]:
        waits = {site for name in WAITS for site in index.sites_calling(name)}
        starts = {(fi, index.call((fi, ci)).function): 0 for fi, ci in waits
                  if index.call((fi, ci)).function >= 0}
        if not starts:
            return
        dist = index.distances(starts, MAX_CALLS)
        best: dict[CallRef, Finding] = {}
        for fi, op, entry in reclaim_entries(index):
            for ref in index.resolve(fi, op.target):
                chain = _chain(index, ref, dist, waits) if ref in dist else None
                if chain is None:
                    continue
                finding = self._finding(index, entry, fi, op.line, chain)
                site = chain[-1][1]
                if site not in best or len(finding.trace) < len(best[site].trace):
                    best[site] = finding
        yield from best.values()

    def _finding(self, index: TreeIndex, entry: EntryPoint, op_file: int, op_line: int,
                 chain: list[tuple[Ref, CallRef]]) -> Finding:
        owner, site = chain[-1]
        call = index.call(site)
        names = " → ".join(index.function(ref).name for ref, _ in chain)
        trace = [TraceStep(f"{entry.struct}.{entry.field}", index.path(op_file), op_line)]
        trace += [TraceStep(index.function(ref).name, index.path(ref[0]), index.call(s).line)
                  for ref, s in chain]
        return Finding(
            rule=self.id, severity=self.severity, path=index.path(site[0]), line=call.line,
            column=call.column, end_line=call.end_line, end_column=call.end_column,
            function=index.function(owner).name,
            message=f"{call.callee}() waits for an RCU grace period in reclaim: "
                    f"{entry.struct}.{entry.field} ({entry.why}) via {names}; free with "
                    "call_rcu() or kfree_rcu() instead",
            trace=trace, file=index.files[site[0]].file)


def _chain(index: TreeIndex, start: Ref, dist: dict[Ref, int],
           waits: set[CallRef]) -> list[tuple[Ref, CallRef]] | None:
    """The calls from ``start`` down to a wait, each step one call closer to it."""
    chain: list[tuple[Ref, CallRef]] = []
    ref = start
    while True:
        here = dist[ref]
        step = None
        for ci in index.calls_in(ref):
            site = (ref[0], ci)
            if here == 0 and site in waits:
                return [*chain, (ref, site)]
            if here > 0:
                nearer = [c for c in index.callees(site) if dist.get(c) == here - 1]
                if nearer:
                    step = (site, nearer[0])
                    break
        if step is None:
            return None
        chain.append((ref, step[0]))
        ref = step[1]
