"""backing-io-noio: a worker does file IO on a backing file without a NOIO scope."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from nofslint.api import (
    CallRef,
    Finding,
    Ref,
    Registry,
    Rule,
    ScopeWrap,
    TraceStep,
    TreeIndex,
    WqUse,
    chain_text,
    serves_io,
)

# File IO entry points a stacked-IO backend uses on its backing file.
SINKS = frozenset({
    "vfs_iter_write", "vfs_iter_read", "vfs_iocb_iter_write", "vfs_iocb_iter_read",
    "kernel_write", "kernel_read", "__kernel_write", "call_write_iter", "call_read_iter",
    "->write_iter", "->read_iter",
})
MAX_DEPTH = 6  # calls from the worker to the file IO



class BackingIoNoio(Rule):
    """A work item or kthread reaches backing-file IO without PF_MEMALLOC_NOIO.

    What it does
        Starts from every function run by a kworker (``INIT_WORK()``,
        ``DECLARE_WORK()``, ``kthread_init_work()`` and friends) or a kthread
        (``kthread_run()``, ``kthread_create*()``) defined where IO is served
        to something above: block drivers (``drivers/block``, ``md``,
        ``nvme``, ``target``, ``scsi``, ``mtd``) and filesystems' own
        directories (not the VFS core in ``fs/*.c``); not the USB storage
        gadget, which serves another machine's host. It
        follows calls that are not made inside a NOIO scope, up to 6 deep,
        through ops tables and through function pointers stored only by
        assignment (a target's ``cmd->execute_cmd``), and reports the first
        call that does file IO: ``vfs_iter_write()``/``vfs_iter_read()``,
        ``vfs_iocb_iter_*()``, ``kernel_write()``/``kernel_read()``, or a
        file's ``->write_iter``/``->read_iter``. A scope is
        ``memalloc_noio_save()`` or ``current->flags |= PF_MEMALLOC_NOIO``
        (the loop driver's worker: the clean example).

    Why is this bad
        A block driver or network filesystem that services IO by doing file IO
        on a backing file (loop, userspace-backed targets, NFS localio) is
        below the filesystem it serves. Without ``PF_MEMALLOC_NOIO`` (and
        ``PF_LOCAL_THROTTLE``), the lower filesystem's allocations reclaim by
        writing back the upper filesystem, whose IO waits on this very worker:
        a deadlock under memory pressure (seeds 000 and 004).

    Example
        static void foo_rw_work(struct work_struct *work)
        {
                ...
                ret = vfs_iter_write(backing, &iter, &pos, 0);

    Fix
        Run the worker's processing inside ``memalloc_noio_save()`` /
        ``memalloc_noio_restore()`` (the proposed diff wraps the worker's
        outermost loop, or the statement that leads to the IO), and set
        ``PF_LOCAL_THROTTLE`` as loop does if dirty throttling matters.

    References
        drivers/block/loop.c (loop_process_work: PF_LOCAL_THROTTLE | PF_MEMALLOC_NOIO);
        Documentation/core-api/gfp_mask-from-fs-io.rst; linux-fsdevel, "nfs: add
        PF_MEMALLOC_NOIO to localio" discussion (Dave Chinner, 2024).
    """

    id = "backing-io-noio"
    severity = "warning"
    scope = "tree"
    fixable = True

    def check_tree(self, index: TreeIndex) -> Iterator[Finding]:
        sinks = [site for name in sorted(SINKS) for site in index.sites_calling(name)
                 if not _in_noio(index, site)]
        if not sinks:
            return
        reach = index.distances({index.enclosing(s): 1 for s in sinks}, MAX_DEPTH,
                                untyped=True, follow=lambda site: not _in_noio(index, site))
        registry = index.memo("workqueues", lambda: Registry.build(index))
        best: dict[CallRef, Finding] = {}
        seen_workers: set[Ref] = set()
        for ref, fi, use in sorted(registry.workers(), key=lambda w: (w[0], w[1], w[2].line)):
            if ref in seen_workers or not serves_io(index.path(ref[0])):
                continue
            seen_workers.add(ref)
            if ref not in reach:
                continue
            for site, chain in _reach(index, ref, reach):
                finding = self._finding(index, ref, fi, use, site, chain)
                known = best.get(site)
                if known is None or len(finding.trace) < len(known.trace):
                    best[site] = finding
        yield from best.values()

    def _finding(self, index: TreeIndex, worker: Ref, fi: int, use: WqUse, site: CallRef,
                 chain: list[CallRef]) -> Finding:
        call = index.call(site)
        owner = (site[0], call.function)
        name = index.function(worker).name
        kind = "kthread" if use.role == "thread" else "work function"
        names = [index.function((s[0], index.call(s).function)).name for s in chain]
        via = chain_text(names)
        head = (f"{kind} {name}() ({use.api}() at {index.path(fi)}:{use.line}) does file IO "
                f"with {call.callee}()")
        why = (" without a NOIO scope: reclaim in the backing filesystem can wait on IO this "
               "worker serves; use memalloc_noio_save() (and PF_LOCAL_THROTTLE) as loop does")
        trace = [TraceStep(kind, index.path(fi), use.line,
                           note=f"{use.api}() starts {name}() as a {kind}")]
        trace += [index.step(s) for s in chain[:-1]]
        trace.append(index.step(chain[-1], f"{call.callee}() does file IO with no NOIO scope"))
        first = index.call(chain[0])
        fix = ScopeWrap(first.start, first.end, "noio", around_loop=True,
                        comment="backing-file IO: reclaim must not recurse into the IO we serve")
        return Finding(
            rule=self.id, severity=self.severity, path=index.path(site[0]), line=call.line,
            column=call.column, end_line=call.end_line, end_column=call.end_column,
            function=index.function(owner).name, message=f"{head} via {via}{why}",
            brief=head + why, trace=trace, file=index.file(site[0]), fix_builder=fix,
            key=f"{use.api}|{name}|{call.callee}",
            fix_file=index.file(chain[0][0]) if chain[0][0] != site[0] else None,
            fix_path=index.path(chain[0][0]) if chain[0][0] != site[0] else None)


def _in_noio(index: TreeIndex, site: CallRef) -> bool:
    return index.scope_at(site) == "noio"


def _reach(index: TreeIndex, worker: Ref,
           reach: dict[Ref, int]) -> Iterator[tuple[CallRef, list[CallRef]]]:
    """Each file-IO call the worker reaches outside a NOIO scope, by the shortest chain."""
    paths: dict[Ref, list[CallRef]] = {worker: []}
    queue = deque([worker])
    while queue:
        ref = queue.popleft()
        path = paths[ref]
        if len(path) >= MAX_DEPTH:
            continue
        for ci in index.calls_in(ref):
            site = (ref[0], ci)
            if index.scope_at(site) == "noio":
                continue
            call = index.call(site)
            if call.callee in SINKS:
                yield site, [*path, site]
                continue
            for callee in index.callees(site, untyped=True):
                if callee not in paths and len(path) + 1 + reach.get(callee, MAX_DEPTH) \
                        <= MAX_DEPTH:
                    paths[callee] = [*path, site]
                    queue.append(callee)
