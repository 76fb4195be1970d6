"""One run: files -> facts (parallel) -> rules -> findings -> fixes.

Data flows one way. Workers only read and extract facts; rules and fixes run
in the main process over those facts, so the output order never depends on
the number of jobs. A failure in one file or one rule becomes an error entry
naming it; every other file's findings are still reported.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import marshal
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from nofslint.analysis.summaries import SEED_KINDS
from nofslint.api.rule import FileContext, Rule
from nofslint.extract.facts import extract
from nofslint.fixing.fixes import build_fixes
from nofslint.frontend.parse import function_error_counts, parse_source
from nofslint.frontend.source import SourceError, read_source
from nofslint.incremental.cache import FactsCache, ResultCache
from nofslint.incremental.relocation import Delta, relocate
from nofslint.incremental.saved_reads import touched, valid
from nofslint.kernel.reclaim import reclaim_calls_writepage
from nofslint.kernel.tree import NO_EXTRAS, Extras, KernelTree, discover, tree_for, tree_for_dir
from nofslint.link.index import TreeIndex
from nofslint.link.reads import Reads
from nofslint.model.facts import FileFacts
from nofslint.model.findings import Finding, TraceStep
from nofslint.plugins.loading import rules_fingerprint
from nofslint.plugins.registry import BUILTIN, plugin_of
from nofslint.run.results import FileError, RunResult


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


Task = tuple[str, KernelTree, str | None]  # (file, its tree, cache root or None)


@lru_cache(maxsize=64)
def _cache_for(cache_root: str, tree: KernelTree) -> FactsCache:
    return FactsCache(Path(cache_root), tree.root,
                      tree.gfp_table().fingerprint() + tree.extras.fingerprint())


# A file whose facts take longer than this is reported and skipped, so no one
# file can stall a run (the slowest file of v6.12 takes a few seconds).
FILE_TIME_LIMIT = 60.0


class _FileTimeout(BaseException):
    """Raised by SIGALRM in the middle of one file's analysis.

    A BaseException, so no ``except Exception`` inside extraction swallows it.
    """


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _FileTimeout in the block after ``seconds``; the SIGALRM handler and the
    timer are restored afterwards. Without SIGALRM (not Unix), outside the main
    thread or under a caller's own running timer, the block runs unlimited."""
    if (seconds <= 0 or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()
            or signal.getitimer(signal.ITIMER_REAL)[0] > 0):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _FileTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)


def _file_error(rel: str, exc: BaseException) -> FileError:
    """Why one file produced no facts: bad input, or (internal) a nofslint bug."""
    if isinstance(exc, SourceError):
        return FileError(rel, str(exc))
    if isinstance(exc, RecursionError):
        return FileError(rel, "nesting too deep to analyse")
    if isinstance(exc, _FileTimeout):
        return FileError(rel, f"took longer than {FILE_TIME_LIMIT:g} s to analyse; skipped")
    detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return FileError(rel, f"internal error while extracting facts: {detail}", True)


def _extract(raw: bytes, rel: str, tree: KernelTree) -> FileFacts:
    with _time_limit(FILE_TIME_LIMIT):
        return extract(raw, rel, tree)


def _facts_task(task: Task, trust_cache: bool = True
                ) -> tuple[bytes | None, FileError | None, tuple | None]:
    """Worker: facts of one file as marshal bytes (cheap to send back), from cache or parse.

    Returns (payload, error, manifest entry for the cache). Without
    ``trust_cache`` the file is extracted again and its cache entry rewritten.
    """
    path_text, tree, cache_root = task
    path = Path(path_text)
    rel = tree.relpath(path)
    try:
        if cache_root is None:
            return marshal.dumps(_extract(read_source(path), rel, tree).to_data()), None, None
        cache = _cache_for(cache_root, tree)
        stat = cache.stat_key(path)
        raw = read_source(path)
        key = cache.key(raw, rel)
        data = cache.load_data(key, rel) if trust_cache else None
        if data is None:
            data = cache.store(key, _extract(raw, rel, tree))
        return marshal.dumps(data), None, (rel, stat, key)
    except (Exception, _FileTimeout) as exc:  # noqa: BLE001 - isolate one file, report it
        return None, _file_error(rel, exc), None


def _lost_file(task: Task, why: str) -> tuple[None, FileError, None]:
    """The result for a file whose worker process died on it."""
    rel = task[1].relpath(Path(task[0]))
    return None, FileError(rel, f"internal error: the analysis process {why}", True), None


def _decoded(task: Task, payload: tuple | bytes) -> tuple[FileFacts | None, FileError | None]:
    """Facts from a worker's bytes or a cache hit; a cache entry that does not decode
    (written by another nofslint build) is extracted again, never reported."""
    try:
        data = marshal.loads(payload) if isinstance(payload, bytes) else payload
        return FileFacts.from_data(data), None
    except Exception as exc:  # noqa: BLE001 - checked in the worker; never crash here
        if isinstance(payload, bytes):
            rel = task[1].relpath(Path(task[0]))
            return None, FileError(rel, f"internal error loading facts: {exc}", True)
    fresh, error, _ = _facts_task(task, trust_cache=False)
    return _decoded(task, fresh) if fresh is not None else (None, error)


def load_facts(tasks: list[Task], jobs: int,
               progress: Callable[[int, int], None] | None = None
               ) -> Iterator[tuple[FileFacts | None, FileError | None]]:
    """Facts of every task, in task order: unchanged files straight from the cache
    (by size, mtime and inode, without reading them), the rest from workers."""
    # Facts data (already decoded) for cache hits, marshal bytes from workers.
    payloads: list[tuple[tuple | bytes | None, FileError | None]] = [(None, None)] * len(tasks)
    todo: list[int] = []
    for i, (path_text, tree, cache_root) in enumerate(tasks):
        if cache_root is not None:
            hit = _cache_for(cache_root, tree).lookup(path_text, tree.relpath(path_text))
            if hit is not None:
                payloads[i] = (hit, None)
                continue
        todo.append(i)
    work = [tasks[i] for i in todo]
    results = parallel_map(_facts_task, work, jobs, progress, on_lost=_lost_file)
    for i, (payload, error, seen) in zip(todo, results, strict=True):
        payloads[i] = (payload, error)
        if seen is not None:
            _, tree, cache_root = tasks[i]
            _cache_for(cache_root, tree).remember(*seen)  # type: ignore[arg-type]
    for (_, tree, cache_root) in {(t[1], t[2]): t for t in tasks}.values():
        if cache_root is not None:
            _cache_for(cache_root, tree).save_manifest()
    for i, (payload, error) in enumerate(payloads):
        yield (None, error) if payload is None else _decoded(tasks[i], payload)
        payloads[i] = (None, None)  # let the bytes go


# After this many files whose worker died, the pool itself is suspect: the rest
# run in this process (a crash then ends the run visibly instead of hanging it).
_MAX_LOST = 8
_DIED = "died while analysing this file (a crash in native code, or out of memory)"


def parallel_map(func: Callable[[Task], object], tasks: list[Task], jobs: int,
                 progress: Callable[[int, int], None] | None = None,
                 on_lost: Callable[[Task, str], object] | None = None) -> Iterator[object]:
    """Results in task order whatever the number of jobs.

    A worker process that dies (a crash in native code, the OOM killer) costs
    only the file it was on: ``on_lost(task, why)`` stands in for its result
    (without ``on_lost``: RuntimeError). A dead worker never hangs the run.
    """
    pooled = jobs > 1 and len(tasks) >= 4
    results = _pooled(func, tasks, jobs, on_lost) if pooled else map(func, tasks)
    for done, result in enumerate(results, 1):
        yield result
        if progress:
            progress(done, len(tasks))


class _Broken:
    """Marks where a pool lost a worker: every result before it is good."""


def _run_chunk(func: Callable[[Task], object], chunk: list[Task]) -> list[object]:
    gc.enable()  # forked from a run that paused it (see _gc_paused)
    return [func(task) for task in chunk]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while the whole tree's facts are in memory.

    Facts are millions of small acyclic records; each full collection walks
    them all (a third of a warm run's link time went there). What little
    cyclic garbage a run makes is collected when it ends.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if _retained is not None:
                # The index lives until os._exit(): the first collection after
                # re-enabling would walk all of it (7 s of a v6.12 run under the profiler).
                gc.freeze()
            gc.enable()


def _until_broken(func: Callable[[Task], object], tasks: list[Task], jobs: int,
                  chunk: int) -> Iterator[object]:
    """Results in order on a fresh pool, until a worker dies: then one _Broken."""
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx)
    try:
        futures = [pool.submit(_run_chunk, func, tasks[i:i + chunk])
                   for i in range(0, len(tasks), chunk)]
        for future in futures:
            try:
                results = future.result()
            except BrokenProcessPool:
                yield _Broken()
                return
            yield from results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pooled(func: Callable[[Task], object], tasks: list[Task], jobs: int,
            on_lost: Callable[[Task, str], object] | None) -> Iterator[object]:
    """Chunks of tasks on a process pool, in order, surviving dead workers.

    When a worker dies, the first unfinished chunk and the next ones (jobs + 1
    in all: as many as the pool runs or queues) run again one file at a time
    on a single worker, where the first unfinished file is the one that killed
    it. Should the culprit have been further on, it kills the pool again and is
    found the same way in the next round.
    """
    chunk = max(1, min(64, len(tasks) // (jobs * 8)))
    pos = lost = 0
    while pos < len(tasks):
        if lost >= _MAX_LOST:
            yield from map(func, tasks[pos:])
            return
        for result in _until_broken(func, tasks[pos:], jobs, chunk):
            if isinstance(result, _Broken):
                break
            yield result
            pos += 1
        else:
            return
        end = min(len(tasks), pos + (jobs + 1) * chunk)
        while pos < end:
            for result in _until_broken(func, tasks[pos:end], 1, 1):
                if isinstance(result, _Broken):
                    break
                yield result
                pos += 1
            else:
                break
            lost += 1
            if on_lost is None:
                raise RuntimeError(f"a worker process {_DIED}: {tasks[pos][0]}")
            yield on_lost(tasks[pos], _DIED)
            pos += 1


def plan(paths: Iterable[Path], version: tuple[int, int] | None,
         cache_root: Path | None = None, extras: Extras = NO_EXTRAS) -> list[Task]:
    tasks: list[Task] = []
    root = str(cache_root) if cache_root is not None else None
    trees: dict[str, KernelTree] = {}
    cwd = os.getcwd()
    for path in discover(paths):
        # Strings, not Paths: a tree has 60,000 files. discover() yields files (and
        # unlistable directories, reported when read): the tree is the parent's,
        # without a stat per file. Like Path.absolute(), ".." is left alone.
        absolute = os.path.join(cwd, path)
        parent = os.path.dirname(absolute)
        tree = trees.get(parent)
        if tree is None:
            tree = trees[parent] = tree_for_dir(Path(parent), version, extras)
        tasks.append((absolute, tree, root))
    return tasks


def _content_keys(tasks: list[Task]) -> list[str | None]:
    """Each file's content key from the stat manifests; None where the file changed
    (or was never seen) since the manifest recorded it."""
    return [_cache_for(root, tree).known_key(path_text, tree.relpath(path_text))
            if root is not None else None for path_text, tree, root in tasks]


def _record_signature(tasks: list[Task], rules: list[Rule],
                      version: tuple[int, int] | None) -> str:
    """Names the saved record of runs over the same files with the same rules and
    options (file contents aside: the record holds their keys)."""
    parts = [",".join(sorted(r.id for r in rules)), rules_fingerprint(rules), repr(version)]
    parts += [f"{path_text}\0{tree.version_text}" for path_text, tree, _ in tasks]
    # Each tree's configuration and GFP definitions (the cache salt), and what
    # reclaim reads from mm/vmscan.c itself, not from its facts.
    trees = {(tree, root) for _, tree, root in tasks if root is not None}
    parts += sorted(f"{tree.root}\0{_cache_for(root, tree).salt}\0"
                    f"{reclaim_calls_writepage(tree.root)}" for tree, root in trees)
    return ResultCache.signature(parts)


# More edited files than this and a run relinks: the edits are rarely all moves.
MAX_EDITED = 64


@dataclass
class _Reuse:
    """What a saved run gives the files as they are now."""

    result: RunResult  # its findings, moved, and the edited files' local findings
    keys: list[str]  # every file's content key now
    # Whole-tree rules that read something an edit changed: they run again over
    # the linked tree. The others keep their findings, and their saved reads are
    # in ``result.reads``; the rules that run again note theirs anew.
    rerun: set[str] = field(default_factory=set)


def _reused(tasks: list[Task], rules: list[Rule], saved: dict, jobs: int,
            results: ResultCache) -> _Reuse | None:
    """The saved run's result for the files as they are now; None when the whole run
    must be made again.

    Unchanged files keep their findings. An edited file has its local rules run
    again. A whole-tree rule keeps its findings, moved, when the edits changed
    nothing it read: relocation.Delta says which functions an edit changed and
    what that touches, reads.py what each rule read. An edit that only moves
    code changes nothing. A rule that read something an edit touched is named
    in ``rerun``: the caller links the tree and runs just those rules. Anything
    else starts again: a change outside functions (an ops table, a macro), an
    edited file that now fails, a run over several trees, or a whole-tree rule
    from a plugin (it may read facts the index does not see, or compute with
    positions).
    """
    keys = saved.get("keys")
    if not isinstance(keys, list) or len(keys) != len(tasks) or set(map(type, keys)) != {str}:
        return None  # a record of another shape
    keys = list(keys)  # updated below for the edited files
    try:
        result = _from_saved(saved)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    now = _content_keys(tasks)
    edited = [i for i, key in enumerate(now) if key != keys[i]]
    if not edited:
        return _Reuse(result, keys)
    if (len(edited) > MAX_EDITED or len({tree.root for _, tree, _ in tasks}) > 1
            or any(r.scope == "tree" and plugin_of(r) != BUILTIN for r in rules)):
        return None  # traces name files by their path in their tree: one tree only
    deltas: dict[str, Delta] = {}
    fresh: list[tuple[Task, tuple]] = []
    seen_by: set[FactsCache] = set()
    try:
        for i, (payload, _, seen) in zip(edited, parallel_map(
                _facts_task, [tasks[i] for i in edited], jobs), strict=True):
            _, tree, root = tasks[i]
            if payload is None or seen is None:
                return None  # the run reports why
            cache = _cache_for(root, tree)  # type: ignore[arg-type]
            cache.remember(*seen)
            seen_by.add(cache)
            if seen[2] == keys[i]:
                continue  # touched, not changed
            old, new = cache.load_data(keys[i], seen[0]), marshal.loads(payload)
            try:
                delta = Delta.between(old, new) if old is not None else None
            except (TypeError, ValueError, IndexError, KeyError):  # an old entry of another shape
                delta = None
            if delta is None or delta.whole or seen[0] in deltas:
                return None
            deltas[seen[0]] = delta
            fresh.append((tasks[i], new))
            keys[i] = seen[2]
    finally:
        for cache in seen_by:
            cache.save_manifest()  # the edited files are known next time, relinked or not
    if not fresh:
        return _Reuse(result, keys)
    tree_ids = [r.id for r in rules if r.scope == "tree"]
    rerun: set[str] = set()
    if tree_ids and not all(d.moved_only for d in deltas.values()):
        reads = results.load_blob(saved.get("reads"))  # the saved run's, kept apart (large)
        if not (isinstance(reads, dict) and all(valid(reads.get(i)) for i in tree_ids)):
            return None
        rerun = {i for i in tree_ids if touched(reads[i], deltas, SEED_KINDS)}
        result.reads = {i: reads[i] for i in tree_ids if i not in rerun}
    refreshed = {str(Path(task[0])) for task, _ in fresh}
    local = [r for r in rules if r.scope == "local"]
    local_ids = {r.id for r in local}
    moves = {path: delta.moves for path, delta in deltas.items()}
    kept = []
    for finding in result.findings:
        if finding.rule in local_ids:
            if str(finding.file) not in refreshed:
                kept.append(finding)
        elif finding.rule in rerun:
            continue
        elif relocate(finding, moves):
            kept.append(finding)
        else:
            return None
    result.findings = kept
    for (path_text, tree, _), data in fresh:
        ctx = FileContext(FileFacts.from_data(data), tree, Path(path_text))
        _check_file(ctx, local, result)
    result.findings.sort(key=Finding.sort_key)
    return _Reuse(result, keys, rerun)


def _from_saved(data: dict) -> RunResult:
    result = RunResult(files=data["files"])
    result.trees = [KernelTree(Path(t[0]) if t[0] else None, (t[1], t[2]), t[3])
                    for t in data["trees"]]
    result.errors = [FileError(**e) for e in data["errors"]]
    for f in data["findings"]:
        trace = [TraceStep(**t) for t in f.pop("trace")]
        file = f.pop("file")
        result.findings.append(Finding(**f, trace=trace, file=Path(file) if file else None))
    return result


def _to_saved(result: RunResult) -> dict:
    return {
        "files": result.files,
        "trees": [[str(t.root) if t.root else None, *t.version, t.version_source]
                  for t in result.trees],
        "errors": [e.to_json() for e in result.errors],
        "findings": [{**f.to_json(), "file": str(f.file) if f.file else None}
                     for f in result.findings],
    }


def _named(rule: Rule) -> str:
    """A rule as error messages name it: with its plugin unless it is built in."""
    plugin = plugin_of(rule)
    return rule.id if plugin == BUILTIN else f"{rule.id} (plugin {plugin})"


def save_latest(cache_root: Path, root: Path, result: RunResult) -> None:
    """Keep a whole-tree run's findings for per-file checks (kbuild) to read."""
    ResultCache(cache_root).store(_latest_key(root), _to_saved(result))


def load_latest(cache_root: Path, root: Path) -> RunResult | None:
    saved = ResultCache(cache_root).load(_latest_key(root))
    try:
        return _from_saved(saved) if saved is not None else None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _latest_key(root: Path) -> str:
    return "latest-" + ResultCache.signature([str(root)])


def _overlaid(tasks: list[Task], overlay: dict[Path, Path | None],
              version: tuple[int, int] | None, extras: Extras) -> list[Task]:
    """The tasks of the changed tree: deleted files dropped, created ones added at
    the end, so the order stays the same for the same change."""
    root = tasks[0][2] if tasks else None
    kept = [t for t in tasks if overlay.get(Path(t[0]), True) is not None]
    known = {Path(t[0]) for t in tasks}
    for real, source in sorted(overlay.items()):
        if source is not None and real not in known:
            kept.append((str(real), tree_for(real, version, extras), root))
    return kept


def _facts(tasks: list[Task], jobs: int, progress: Callable[[int, int], None] | None,
           overlay: dict[Path, Path | None] | None
           ) -> Iterator[tuple[FileFacts | None, FileError | None]]:
    """Facts in task order; overlaid files are extracted here from their new content
    (a change touches a few files: no worker, no cache)."""
    if not overlay:
        yield from load_facts(tasks, jobs, progress)
        return
    loaded = load_facts([t for t in tasks if Path(t[0]) not in overlay], jobs, progress)
    for path_text, tree, _ in tasks:
        real = Path(path_text)
        source = overlay.get(real)
        if source is None:
            yield next(loaded)
            continue
        rel = tree.relpath(real)
        try:
            yield _extract(read_source(source), rel, tree), None
        except Exception as exc:  # noqa: BLE001 - as in the workers: report, go on
            yield None, _file_error(rel, exc)


def run(paths: list[Path], rules: list[Rule], version: tuple[int, int] | None = None,
        jobs: int = 1, want_fixes: bool = True,
        progress: Callable[[int, int], None] | None = None,
        cache_root: Path | None = None, reuse_results: bool = False,
        extras: Extras = NO_EXTRAS, overlay: dict[Path, Path | None] | None = None
        ) -> RunResult:
    """Lint ``paths``; ``cache_root`` enables the facts cache (None: no cache).

    With ``reuse_results`` the findings of the last such run over the same
    files are reused when no file changed, and after edits those of every
    whole-tree rule that read nothing they changed (see _reused; the others
    run again over the linked tree): fix diffs included, but no edits, so
    callers that apply fixes must not ask for it.

    ``overlay`` lints the tree as a change would leave it without touching
    it: each absolute path maps to the file holding its new content (a
    scratch copy), or to None when the change deletes it.
    """
    tasks = plan(paths, version, cache_root, extras)
    if overlay:
        tasks = _overlaid(tasks, overlay, version, extras)
        reuse_results = False
    results = ResultCache(cache_root) if cache_root is not None else None
    signature = saved = None
    if results is not None and reuse_results and tasks:
        signature = _record_signature(tasks, rules, version)
        saved = results.load(signature)
    reused = _reused(tasks, rules, saved, jobs, results) if saved is not None else None
    reads: str | None = None  # the saved reads blob, when it still holds
    if reused is not None and reused.rerun:
        result, keys = reused.result, reused.keys
        with _gc_paused():
            linked = _analyse(tasks, [r for r in rules if r.id in reused.rerun], jobs, progress,
                              overlay, True)
        result.findings = sorted([*result.findings, *linked.findings], key=Finding.sort_key)
        result.errors = sorted({(e.path, e.reason): e for e in [*result.errors, *linked.errors]
                                }.values(), key=lambda e: (e.path, e.reason))
        result.reads.update(linked.reads)
    elif reused is not None:
        result, keys = reused.result, reused.keys
        reads = (saved or {}).get("reads")
    else:
        with _gc_paused():
            result = _analyse(tasks, rules, jobs, progress, overlay, signature is not None)
        if cache_root is not None:
            for tree in result.trees:
                _cache_for(str(cache_root), tree).prune()
        keys = _content_keys(tasks)
    if want_fixes:
        result.fixes, result.fix_problems = build_fixes(result.findings)
    if (results is not None and signature is not None and not result.internal_errors
            and None not in keys and keys != (saved or {}).get("keys")):
        if result.reads and reads is None:
            reads = results.store_blob(result.reads)
        results.store(signature, {**_to_saved(result), "keys": keys, "reads": reads})
        results.prune()
    return result


def _check_file(ctx: FileContext, rules: list[Rule], result: RunResult) -> None:
    """One file's local findings into ``result``; a rule that fails becomes an error."""
    for rule in rules:
        try:
            result.findings.extend(rule.check_file(ctx))
        except Exception as exc:  # noqa: BLE001 - one rule's bug must not hide the rest
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            result.errors.append(FileError(ctx.facts.path, f"internal error in rule "
                                           f"{_named(rule)}: {detail}", True))


def _analyse(tasks: list[Task], rules: list[Rule], jobs: int,
             progress: Callable[[int, int], None] | None,
             overlay: dict[Path, Path | None] | None, note_reads: bool = False) -> RunResult:
    """Facts of every task, the local rules file by file, then the whole-tree rules
    (with ``note_reads``, noting what each reads, for a run that is saved)."""
    if _retained:
        _retained.clear()  # a second run in one process (check-patch): one index at a time
    result = RunResult(files=len(tasks))
    trees: dict[tuple[str, tuple[int, int]], KernelTree] = {}
    local = [r for r in rules if r.scope == "local"]
    whole = [r for r in rules if r.scope == "tree"]
    index = TreeIndex() if whole else None
    for (path_text, tree, _), (facts, error) in zip(tasks, _facts(tasks, jobs, progress, overlay),
                                                    strict=True):
        trees.setdefault((str(tree.root), tree.version), tree)
        if error is not None:
            result.errors.append(error)
            continue
        file = Path(path_text)
        ctx = FileContext(facts, tree, (overlay or {}).get(file) or file)
        if index is not None:
            index.add(facts, tree, ctx.file)
        _check_file(ctx, local, result)
    for rule in whole:
        if note_reads:
            index.reads = Reads()  # type: ignore[union-attr]
        try:
            result.findings.extend(rule.check_tree(index))
        except Exception as exc:  # noqa: BLE001 - one rule's bug must not hide the rest
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            result.errors.append(FileError("<tree>", f"internal error in rule {_named(rule)}: "
                                           f"{detail}", True))
        if index is not None and index.reads is not None:
            result.reads[rule.id] = index.reads.to_json(index.path, index.function_name)
            index.reads = None
    if _retained is not None and index is not None:
        _retained.append(index)
    result.trees = list(trees.values())
    result.findings.sort(key=Finding.sort_key)
    result.errors.sort(key=lambda e: (e.path, e.reason))
    return result


# Set by the command-line entry point, which ends with os._exit(): the whole
# tree's index is then never freed one object at a time (10-19 s of a v6.12
# run went there). Library callers and tests free it as usual.
_retained: list[object] | None = None


def retain_until_exit() -> None:
    """Keep the last run's index alive; only for a process that ends with os._exit()."""
    global _retained
    _retained = []


# -- stats -------------------------------------------------------------------------

def _stats_task(task: Task) -> tuple[int, int, int, str | None]:
    path = Path(task[0])
    try:
        raw = read_source(path)
    except SourceError as exc:
        return 0, 0, 0, str(exc)
    try:
        with _time_limit(FILE_TIME_LIMIT):
            funcs, bad = function_error_counts(parse_source(raw)[1])
    except RecursionError:
        return len(raw), 0, 0, "nesting too deep to parse"
    except _FileTimeout:
        return len(raw), 0, 0, f"took longer than {FILE_TIME_LIMIT:g} s to parse"
    return len(raw), funcs, bad, None


@dataclass
class Stats:
    files: int = 0
    bytes: int = 0
    functions: int = 0
    functions_with_errors: int = 0
    seconds: float = 0.0
    unreadable: int = 0

    @property
    def percent(self) -> float:
        return 100.0 * self.functions_with_errors / self.functions if self.functions else 0.0

    def to_json(self) -> dict[str, object]:
        return {"files": self.files, "bytes": self.bytes, "functions": self.functions,
                "functions_with_errors": self.functions_with_errors,
                "percent_with_errors": round(self.percent, 3), "unreadable": self.unreadable,
                "seconds": round(self.seconds, 2)}


def stats(paths: list[Path], jobs: int,
          progress: Callable[[int, int], None] | None = None) -> Stats:
    start = time.perf_counter()
    tasks = plan(paths, None)
    out = Stats(files=len(tasks))
    for size, funcs, bad, error in parallel_map(_stats_task, tasks, jobs, progress):  # type: ignore[misc]
        out.bytes += size
        out.functions += funcs
        out.functions_with_errors += bad
        out.unreadable += error is not None
    out.seconds = time.perf_counter() - start
    return out
