"""wq-flush-reclaim: a WQ_MEM_RECLAIM worker or reclaim flushes a queue without WQ_MEM_RECLAIM."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from nofslint.api import (
    IN_RECLAIM,
    MAX_CHAIN,
    RECLAIM,
    CallRef,
    Edit,
    Finding,
    FixSource,
    Key,
    PathCheck,
    Queue,
    Ref,
    Registry,
    Rule,
    TraceStep,
    TreeIndex,
    WqUse,
    chain_origin,
    chain_text,
    next_origin,
    reclaim_entries,
)


@dataclass(frozen=True)
class Flusher:
    """A context check_flush_dependency() warns for, and where it comes from."""

    who: str  # "WQ_MEM_RECLAIM writeback:wb_workfn" / "PF_MEMALLOC task (...)"
    origin: TraceStep  # where the work is queued / the function stored in the ops table


@dataclass(frozen=True)
class BadFlush:
    site: CallRef
    api: str
    target: Queue  # the queue without WQ_MEM_RECLAIM that the flush waits on
    work: Key | None  # the flushed work, for a work flush


@dataclass(frozen=True)
class AddReclaimFlag:
    """Add WQ_MEM_RECLAIM to a queue's flags argument, if it still reads as expected."""

    start: int
    end: int
    expected: str

    def build(self, source: FixSource) -> list[Edit] | None:
        if source.text(self.start, self.end) != self.expected:
            return None
        if self.expected.strip() == "0":
            return [Edit(self.start, self.end, RECLAIM)]
        return [Edit(self.end, self.end, f" | {RECLAIM}")]


class WqFlushReclaim(Rule):
    """A WQ_MEM_RECLAIM work item or a reclaim context flushes a queue without WQ_MEM_RECLAIM.

    What it does
        Finds statically what the kernel's check_flush_dependency() warns about
        at run time. It builds the tree's queue registry (alloc_workqueue(),
        alloc_ordered_workqueue(), the legacy create_*workqueue() and the system
        queues, flags evaluated as sets through macros), binds works to their
        functions (INIT_WORK(), INIT_DELAYED_WORK(), DECLARE_WORK(), ...) and to
        the queues they are queued on (queue_work*(), queue_delayed_work*(),
        mod_delayed_work*(), schedule_work(), ...), keying queues and works by
        where they are stored: a global, or a struct type and field, also
        through accessors (a function-like macro such as
        ``#define foo_wq(h) (((struct foo_attrs *)(h)->data)->wq)``, or a
        static inline that returns the field), when the tree defines the
        accessor one way only. The
        flushers are work functions queued on a WQ_MEM_RECLAIM queue that is not
        legacy, and the memory-reclaim entry points (they run as PF_MEMALLOC).
        It follows the call graph from them to flush_work(),
        flush_delayed_work(), flush_workqueue(), drain_workqueue() and
        destroy_workqueue() whose queue, or the queue the flushed work is queued
        on, lacks WQ_MEM_RECLAIM. The cancel path (cancel_work_sync(),
        cancel_delayed_work_sync()) is exempt, as in the kernel. A work queued on
        several queues counts if any of them lacks WQ_MEM_RECLAIM. The finding
        sits on the flush; the trace runs from where the flusher's work is
        queued to the flush; the message counts the other reclaim contexts with a
        call chain to it (their chains are not each path-checked). Queues
        passed as parameters, and flags the tree
        computes at run time, are not guessed. Chains go through the path check
        (docs/path-check.md): a flush behind a condition that cannot hold on the
        way (a constant argument, PF_MEMALLOC for reclaim entry points) is not
        reached, and a function that flushes or destroys a queue it created
        itself, with nothing queued on it in between (a setup error path), does
        not wait: an empty queue returns before check_flush_dependency().

    Why is this bad
        A WQ_MEM_RECLAIM queue has a rescuer thread so that it makes progress
        when no new worker can be created because memory is short. A work item
        on it that waits for a queue without a rescuer gives that guarantee
        away: under memory pressure the flushed work may never start, and
        reclaim that waits on the flusher deadlocks. The kernel warns
        "workqueue: WQ_MEM_RECLAIM %s:%ps is flushing !WQ_MEM_RECLAIM %s:%ps",
        but only when the flush finds work pending, under load.

    Example
        mp->m_sync_workqueue = alloc_workqueue("xfs-sync/%s", WQ_FREEZABLE, 0, name);
        ...
        /* runs from writeback, on the WQ_MEM_RECLAIM "writeback" queue */
        queue_work(mp->m_sync_workqueue, &mp->m_flush_inodes_work);
        flush_work(&mp->m_flush_inodes_work);

    Fix
        Add WQ_MEM_RECLAIM to the flushed queue's flags (the usual upstream fix):
        the diff edits the queue's alloc_workqueue() call when it is the only
        one and its flags are written as WQ_* names. Work on a system queue, or
        on a WQ_BH queue (alloc_workqueue() refuses WQ_MEM_RECLAIM with WQ_BH),
        cannot be fixed that way: queue it on a WQ_MEM_RECLAIM queue of the
        subsystem's own, or do not wait for it from reclaim.

    References
        kernel/workqueue.c (check_flush_dependency());
        Documentation/core-api/workqueue.rst (WQ_MEM_RECLAIM: "All wq which might
        be used in the memory reclaim paths MUST have this flag set");
        "[PATCH] xfs: enable WQ_MEM_RECLAIM on m_sync_workqueue", linux-xfs,
        July 2024 (Mike Snitzer, Dave Chinner).
    """

    id = "wq-flush-reclaim"
    severity = "warning"
    scope = "tree"
    fixable = True

    def check_tree(self, index: TreeIndex) -> Iterator[Finding]:
        reg = index.memo("workqueues", lambda: Registry.build(index))
        bad = self._bad_flushes(index, reg)
        if not bad:
            return
        flushers = list(self._flushers(index, reg))
        # Backwards from the flushes only as far as the walks from the flushers can
        # come: about a thirtieth of the functions that can reach a flush at all.
        ahead = index.reachable([ref for ref, _ in flushers], MAX_CHAIN)
        reach = index.distances(dict.fromkeys({index.enclosing(s) for s in bad}, 0),
                                MAX_CHAIN, dispatch=True, within=ahead)
        callees: dict[tuple[CallRef, str | None], list[Ref]] = {}  # shared by every walk
        found: dict[CallRef, list[tuple[int, int, Flusher, list[tuple[Ref, CallRef]]]]] = {}
        for n, (start, flusher) in enumerate(flushers):
            if start not in reach:
                continue
            for site, chain in _walk(index, start, bad, reach, callees):
                found.setdefault(site, []).append((len(chain), n, flusher, chain))
        # The path check, per flush, on the shortest chains first; only when none
        # of them can happen, a few flushers' walks again with knowledge.
        checks = {False: PathCheck(index), True: PathCheck(index, IN_RECLAIM)}
        for site, chains in found.items():
            chains.sort(key=lambda c: (c[0], c[1]))
            chosen = next(((f, chain) for _, _, f, chain in chains
                           if checks[f.who.startswith("PF_MEMALLOC")].feasible(chain)), None)
            for _, n, flusher, _ in chains[:_SEARCHES] if chosen is None else ():
                check = checks[flusher.who.startswith("PF_MEMALLOC")]
                chain = next((c for s, c in _walk(index, flushers[n][0], bad, reach, callees,
                                                  check) if s == site), None)
                if chain is not None:
                    chosen = (flusher, chain)
                    break
            if chosen is not None:
                others = len({f.who for _, _, f, _ in chains}) - 1
                yield self._finding(index, reg, bad[site], chosen[0], chosen[1], others)

    @staticmethod
    def _bad_flushes(index: TreeIndex, reg: Registry) -> dict[CallRef, BadFlush]:
        out: dict[CallRef, BadFlush] = {}
        for fi, use, targets, work in reg.flushes:
            for key in targets:
                queue = reg.lacks_reclaim(key)
                if queue is not None and not (work is None and _fresh(index, reg, fi, use, key)):
                    out[(fi, use.call)] = BadFlush((fi, use.call), use.api, queue, work)
                    break
        return out

    @staticmethod
    def _flushers(index: TreeIndex, reg: Registry) -> Iterator[tuple[Ref, Flusher]]:
        seen: set[tuple[Ref, str]] = set()
        for work, uses in sorted(reg.queued.items()):
            for fi, use in uses:
                queue = reg.runs_reclaim(reg.key(fi, use.queue) or ("?",))
                if queue is None:
                    continue
                origin = TraceStep(f"{use.api}({reg.describe(work)}) on {queue.name}",
                                   index.path(fi), use.line,
                                   note=f"{use.api}() queues {reg.describe(work)} on the "
                                        f"WQ_MEM_RECLAIM queue {queue.name}")
                for ref, _, _ in reg.work_functions(work, (fi, use)):
                    who = f"WQ_MEM_RECLAIM {queue.name}:{index.function(ref).name}"
                    if (ref, who) not in seen:
                        seen.add((ref, who))
                        yield ref, Flusher(who, origin)
        for fi, op, entry in reclaim_entries(index):
            label = f"{entry.struct}.{entry.field}"
            for ref in index.resolve(fi, op.target):
                who = f"PF_MEMALLOC task ({label}: {entry.why})"
                if (ref, who) not in seen:
                    seen.add((ref, who))
                    yield ref, Flusher(who, TraceStep(
                        label, index.path(fi), op.line, op.column,
                        note=f"{index.function(ref).name}() is stored in {label}: {entry.why}"))

    def _finding(self, index: TreeIndex, reg: Registry, bad: BadFlush, flusher: Flusher,
                 chain: list[tuple[Ref, CallRef]], others: int) -> Finding:
        target = bad.target
        what = target.name
        if bad.work is not None:
            fns = sorted({u.target for _, u in reg.binds.get(bad.work, ()) if u.target})
            what += f":{fns[0]}" if len(fns) == 1 else f" ({reg.describe(bad.work)})"
        names = [index.function(ref).name for ref, _ in chain]
        head = f"{flusher.who} is flushing !WQ_MEM_RECLAIM {what}: {bad.api}()"
        tail = ""
        if others:
            tail += (f" ({others} other reclaim context{'s' if others > 1 else ''} "
                     f"{'have' if others > 1 else 'has'} a call chain here too)")
        fix, where = self._fix(index, reg, target)
        tail += where
        message = head + (f" via {chain_text(names)}" if len(names) > 1 else "") + tail
        trace = [flusher.origin] + [index.step(s) for _, s in chain[:-1]]
        trace.append(index.step(chain[-1][1], f"{bad.api}() waits on !WQ_MEM_RECLAIM {what}"))
        call = index.call(bad.site)
        fix_in = target.file if fix is not None else None
        return Finding(
            rule=self.id, severity=self.severity, path=index.path(bad.site[0]), line=call.line,
            column=call.column, end_line=call.end_line, end_column=call.end_column,
            function=index.function(chain[-1][0]).name, message=message, trace=trace,
            brief=head + tail, file=index.file(bad.site[0]), fix_builder=fix,
            key=f"{flusher.who}|{what}|{bad.api}",
            fix_file=index.file(fix_in) if fix_in is not None else None,
            fix_path=index.path(fix_in) if fix_in is not None else None)

    @staticmethod
    def _fix(index: TreeIndex, reg: Registry, target: Queue) -> tuple[AddReclaimFlag | None, str]:
        """The fix, or why there is none (said in the message, with where the queue is made)."""
        if target.system:
            return None, (f"; {target.name} is a system workqueue: queue the work on a "
                          f"{RECLAIM} queue of its own")
        if target.bh:
            return None, (f"; {target.name} is a WQ_BH queue, which cannot take {RECLAIM} "
                          "(alloc_workqueue() refuses it): do not wait for its work from here")
        creations = [q for q in reg.queues[target.key] if q.file is not None]
        places = ", ".join(f"{index.path(q.file)}:{q.fact.line}" for q in creations
                           if q.file is not None and q.fact is not None)
        if len(creations) != 1:
            return None, f"; {reg.describe(target.key)} is created in {len(creations)} places " \
                         f"({places}): add {RECLAIM} to the right one"
        q = creations[0]
        if q.fact is None or q.fact.flags_text is None or not q.literal:
            return None, f"; add {RECLAIM} where the queue is created ({places})"
        return AddReclaimFlag(q.fact.flags_start, q.fact.flags_end, q.fact.flags_text), \
            f"; the queue is created at {places} (the fix adds {RECLAIM} there)"


def _fresh(index: TreeIndex, reg: Registry, fi: int, use: WqUse, key: Key) -> bool:
    """Whether the flushed queue was created earlier in the flushing function, with
    nothing queued on it there in between: the error path of a setup function. An
    empty queue returns from flush_workqueue() before check_flush_dependency()."""
    created = [q.fact.line for q in reg.queues.get(key, ())
               if q.file == fi and q.fact is not None and q.fact.line <= use.line
               and index.call((fi, q.fact.call)).function == use.function]
    if not created:
        return False
    since = min(created)
    return not any(qi == fi and q.function == use.function and since <= q.line <= use.line
                   and reg.key(qi, q.queue) == key
                   for uses in reg.queued.values() for qi, q in uses)


_BUDGET = 5000  # (function, knowledge) nodes one search may visit
_SEARCHES = 3  # flushers searched again, per flush all of whose chains were ruled out


def _walk(index: TreeIndex, start: Ref, bad: dict[CallRef, BadFlush], reach: dict[Ref, int],
          callees: dict[tuple[CallRef, str | None], list[Ref]], check: PathCheck | None = None
          ) -> Iterator[tuple[CallRef, list[tuple[Ref, CallRef]]]]:
    """Bad flushes reachable from ``start``, each with its shortest chain.

    Breadth-first, and only through functions that can still reach a bad flush
    within MAX_CHAIN calls, so the walk stays small. ``callees`` memoizes
    call-site resolution across the walks (they share most helpers). Without
    ``check`` the chains go through the path check afterwards (check_tree);
    with it, the walk is over (function, what the path knows) and does not
    follow a call whose conditions cannot hold on the way (bounded: _BUDGET),
    for a flush whose plain chains were all ruled out.
    """
    env = check.entry() if check is not None else {}
    first = (start, frozenset(env.items()))
    paths: dict[tuple, tuple[list[tuple[Ref, CallRef]], dict]] = {first: ([], env)}
    origins = {start: chain_origin(index.path(start[0]))}
    queue = deque([first])
    done: set[CallRef] = set()
    while queue and (check is None or len(paths) < _BUDGET):
        key = queue.popleft()
        ref = key[0]
        path, known = paths[key]
        for ci in index.calls_in(ref):
            site = (ref[0], ci)
            if site in bad:
                if site not in done and (check is None or check.step(ref, site, known)
                                         is not None):
                    done.add(site)
                    yield site, [*path, (ref, site)]
                continue
            memo = (site, origins[ref])
            found = callees.get(memo)
            if found is None:
                found = callees[memo] = [c for c in index.callees(site, memo[1]) if c in reach]
            for callee in found:
                d = reach.get(callee)
                if d is None or len(path) + 1 + d > MAX_CHAIN:
                    continue
                after = check.follow(ref, site, known, callee) if check is not None else {}
                if after is None:
                    continue
                nxt = (callee, frozenset(after.items()))
                if nxt in paths:
                    continue
                paths[nxt] = ([*path, (ref, site)], after)
                origins.setdefault(callee, next_origin(origins[ref], index.path(callee[0])))
                queue.append(nxt)
