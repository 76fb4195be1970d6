"""Facts of every file to lint: what to read (plan), from the cache or from workers.

Unchanged files come straight from the cache by their stat; the rest are
extracted in workers under the per-file time limit. A file that fails
becomes an error entry naming it; the others' facts still come.
"""

from __future__ import annotations

import functools
import marshal
import os
import traceback
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path

from nofslint.extract.facts import extract
from nofslint.frontend.source import SourceError, read_source
from nofslint.frontend.triggers import Triggers
from nofslint.incremental.cache import FactsCache, ResultCache
from nofslint.kernel.kbuild_makefiles import KbuildMap, build_map
from nofslint.kernel.kconfig import Kconfig
from nofslint.kernel.makefile import unchanged
from nofslint.kernel.tree import NO_EXTRAS, Extras, KernelTree, discover, tree_for, tree_for_dir
from nofslint.model.facts import FileFacts
from nofslint.run import workers
from nofslint.run.results import FileError
from nofslint.run.workers import FileTimeout, parallel_map, time_limit

Task = tuple[str, KernelTree, str | None]  # (file, its tree, cache root or None)


@lru_cache(maxsize=64)
def cache_for(cache_root: str, tree: KernelTree) -> FactsCache:
    kconfig = tree.extras.kconfig
    return FactsCache(Path(cache_root), tree.root,
                      tree.gfp_table().fingerprint() + tree.extras.fingerprint(),
                      kconfig.digest if kconfig is not None else "")


def _file_error(rel: str, exc: BaseException) -> FileError:
    """Why one file produced no facts: bad input, or (internal) a nofslint bug."""
    if isinstance(exc, SourceError):
        return FileError(rel, str(exc))
    if isinstance(exc, RecursionError):
        return FileError(rel, "nesting too deep to analyse")
    if isinstance(exc, FileTimeout):
        return FileError(rel, f"took longer than {workers.FILE_TIME_LIMIT:g} s to analyse; skipped")
    detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return FileError(rel, f"internal error while extracting facts: {detail}", True)


def _extract(raw: bytes, rel: str, tree: KernelTree) -> FileFacts:
    with time_limit(workers.FILE_TIME_LIMIT):
        return extract(raw, rel, tree)


def facts_task(task: Task, trust_cache: bool = True, triggers: Triggers | None = None
                ) -> tuple[bytes | None, FileError | None, tuple | None]:
    """Worker: facts of one file as marshal bytes (cheap to send back), from cache or parse.

    Returns (payload, error, manifest entry for the cache). Without
    ``trust_cache`` the file is extracted again and its cache entry rewritten.
    A file read without any of ``triggers`` is not parsed: no payload and no
    error. Its content key is still remembered, with no entry behind it, so a
    later run that needs its facts finds none and extracts it.
    """
    path_text, tree, cache_root = task
    rel = tree.relpath(path_text)  # strings, not Paths: this runs for 60,000 files
    try:
        if cache_root is None:
            raw = read_source(path_text)
            if triggers is not None and not triggers.matches(raw):
                return None, None, None
            return marshal.dumps(_extract(raw, rel, tree).to_data()), None, None
        cache = cache_for(cache_root, tree)
        stat = cache.stat_key(path_text)
        raw = read_source(path_text)
        kconfig = tree.extras.kconfig
        key = cache.key(raw, rel, kconfig.key_of(raw) if kconfig is not None else b"")
        if triggers is not None and not triggers.matches(raw):
            return None, None, (rel, stat, key)
        data = cache.load_data(key, rel) if trust_cache else None
        if data is None:
            data = cache.store(key, _extract(raw, rel, tree))
        return marshal.dumps(data), None, (rel, stat, key)
    except (Exception, FileTimeout) as exc:  # noqa: BLE001 - isolate one file, report it
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
    fresh, error, _ = facts_task(task, trust_cache=False)
    return _decoded(task, fresh) if fresh is not None else (None, error)


def load_facts(tasks: list[Task], jobs: int,
               progress: Callable[[int, int], None] | None = None,
               triggers: Triggers | None = None
               ) -> Iterator[tuple[FileFacts | None, FileError | None]]:
    """Facts of every task, in task order: unchanged files straight from the cache
    (by size, mtime and inode, without reading them), the rest from workers.
    With ``triggers``, a file read without any of them gives (None, None)."""
    # Facts data (already decoded) for cache hits, marshal bytes from workers.
    payloads: list[tuple[tuple | bytes | None, FileError | None]] = [(None, None)] * len(tasks)
    todo: list[int] = []
    for i, (path_text, tree, cache_root) in enumerate(tasks):
        if cache_root is not None:
            hit = cache_for(cache_root, tree).lookup(path_text, tree.relpath(path_text))
            if hit is not None:
                payloads[i] = (hit, None)
                continue
        todo.append(i)
    work = [tasks[i] for i in todo]
    hits = len(tasks) - len(work)  # the cached files count too: the total is every file
    counted = None if progress is None else (
        lambda done, _: progress(hits + done, len(tasks)))  # type: ignore[misc]
    if progress is not None and not work:
        progress(len(tasks), len(tasks))
    task = facts_task if triggers is None else functools.partial(facts_task, triggers=triggers)
    results = parallel_map(task, work, jobs, counted, on_lost=_lost_file)
    for i, (payload, error, seen) in zip(todo, results, strict=True):
        payloads[i] = (payload, error)
        if seen is not None:
            _, tree, cache_root = tasks[i]
            cache_for(cache_root, tree).remember(*seen)  # type: ignore[arg-type]
    for (_, tree, cache_root) in {(t[1], t[2]): t for t in tasks}.values():
        if cache_root is not None:
            cache_for(cache_root, tree).save_manifest()
    for i, (payload, error) in enumerate(payloads):
        yield (None, error) if payload is None else _decoded(tasks[i], payload)
        payloads[i] = (None, None)  # let the bytes go


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


_KBUILD: dict[tuple[str, str], KbuildMap] = {}


def kbuild_map(root: Path, kconfig: Kconfig, cache_root: str | None = None) -> KbuildMap:
    """Which C files of the tree at ``root`` the config builds: read once per process,
    and kept in the results cache while the Makefiles it read are unchanged (a
    check-patch or a kbuild call then pays a stat per Makefile, not a reading)."""
    key = (str(root), kconfig.digest)
    known = _KBUILD.get(key)
    if known is not None:
        return known
    store = ResultCache(Path(cache_root)) if cache_root is not None else None
    signature = ResultCache.signature(["kbuild-map", *key])
    kmap = None
    saved = store.load(signature) if store is not None else None
    if saved is not None:
        try:
            kmap = KbuildMap.from_data(saved["kbuild"])
        except (KeyError, TypeError, ValueError):
            kmap = None
        if kmap is not None and not unchanged(root, kmap.inputs):
            kmap = None
    if kmap is None:
        kmap = build_map(root, kconfig)
        if store is not None:
            store.store(signature, {"kbuild": kmap.to_data()})
    _KBUILD[key] = kmap
    return kmap


def built_only(tasks: list[Task]) -> tuple[list[Task], list[str]]:
    """The tasks of files the kernel config builds, and the tree-relative paths of the
    C files it does not build (not linked, not reported). Headers, loose files and
    trees without a config are kept as they are."""
    kept: list[Task] = []
    dropped: list[str] = []
    for task in tasks:
        path_text, tree, cache_root = task
        kconfig = tree.extras.kconfig
        if kconfig is None or tree.root is None or not path_text.endswith(".c"):
            kept.append(task)
            continue
        rel = tree.relpath(path_text)
        if kbuild_map(tree.root, kconfig, cache_root).is_built(rel):
            kept.append(task)
        else:
            dropped.append(rel)
    return kept, dropped


def content_keys(tasks: list[Task]) -> list[str | None]:
    """Each file's content key from the stat manifests; None where the file changed
    (or was never seen) since the manifest recorded it."""
    return [cache_for(root, tree).known_key(path_text, tree.relpath(path_text))
            if root is not None else None for path_text, tree, root in tasks]


def overlaid(tasks: list[Task], overlay: dict[Path, Path | None],
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


def facts_of(tasks: list[Task], jobs: int, progress: Callable[[int, int], None] | None,
           overlay: dict[Path, Path | None] | None, triggers: Triggers | None = None
           ) -> Iterator[tuple[FileFacts | None, FileError | None]]:
    """Facts in task order; overlaid files are extracted here from their new content
    (a change touches a few files: no worker, no cache). (None, None) for a file
    without any of ``triggers``: no selected rule can report there."""
    if not overlay:
        yield from load_facts(tasks, jobs, progress, triggers)
        return
    loaded = load_facts([t for t in tasks if Path(t[0]) not in overlay], jobs, progress,
                        triggers)
    for path_text, tree, _ in tasks:
        real = Path(path_text)
        source = overlay.get(real)
        if source is None:
            yield next(loaded)
            continue
        rel = tree.relpath(real)
        try:
            raw = read_source(source)
            if triggers is not None and not triggers.matches(raw):
                yield None, None
                continue
            yield _extract(raw, rel, tree), None
        except Exception as exc:  # noqa: BLE001 - as in the workers: report, go on
            yield None, _file_error(rel, exc)
