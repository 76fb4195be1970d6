"""One run: files -> facts (parallel) -> rules -> findings -> fixes.

Data flows one way. Workers only read and extract facts; rules and fixes run
in the main process over those facts, so the output order never depends on
the number of jobs. A failure in one file or one rule becomes an error entry
naming it; every other file's findings are still reported.
"""

from __future__ import annotations

import contextlib
import gc
import os
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from nofslint.api.rule import FileContext, Rule
from nofslint.fixing.fixes import build_fixes
from nofslint.frontend.triggers import Triggers, combine
from nofslint.incremental.cache import ResultCache
from nofslint.kernel.tree import NO_EXTRAS, Extras, KernelTree
from nofslint.link.index import TreeIndex
from nofslint.link.reads import Reads
from nofslint.model.findings import Finding
from nofslint.run import loading
from nofslint.run import saved as saving
from nofslint.run.calls import check_file, named
from nofslint.run.results import FileError, RunResult


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


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
    tasks = loading.plan(paths, version, cache_root, extras)
    if overlay:
        tasks = loading.overlaid(tasks, overlay, version, extras)
        reuse_results = False
    tasks, not_built = loading.built_only(tasks)
    results = ResultCache(cache_root) if cache_root is not None else None
    signature = saved = None
    if results is not None and reuse_results and tasks:
        signature = saving.record_signature(tasks, rules, version)
        saved = results.load(signature)
    reused = saving.reused(tasks, rules, saved, jobs, results) if saved is not None else None
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
                loading.cache_for(str(cache_root), tree).prune()
        keys = loading.content_keys(tasks)
    result.not_built = not_built
    if cache_root is not None:
        result.content = {tree.relpath(path_text): key
                          for (path_text, tree, _), key in zip(tasks, keys, strict=True) if key}
    if want_fixes:
        result.fixes, result.fix_problems = build_fixes(result.findings, extras.kconfig)
    if (results is not None and signature is not None and not result.internal_errors
            and None not in keys and keys != (saved or {}).get("keys")):
        if result.reads and reads is None:
            reads = results.store_blob(result.reads)
        results.store(signature, {**saving.to_saved(result), "keys": keys, "reads": reads})
        results.prune()
    result.reads_blob = reads
    return result


def _analyse(tasks: list[loading.Task], rules: list[Rule], jobs: int,
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
    arches = {t[1].extras.kconfig.arch for t in tasks if t[1].extras.kconfig is not None}
    if index is not None and len(arches) == 1 and None not in arches:
        index.arch = arches.pop()  # the architecture the config builds
    facts_of = loading.facts_of(tasks, jobs, progress, overlay, run_triggers(rules))
    for n, ((path_text, tree, _), (facts, error)) in enumerate(zip(tasks, facts_of, strict=True)):
        if n == 0:  # the first file's facts: every file has been read
            _phase(progress, "linking" if index is not None else "per-file rules")
        trees.setdefault((str(tree.root), tree.version), tree)
        if error is not None:
            result.errors.append(error)
            continue
        if facts is None:
            continue  # none of the rules' triggers: no rule can report here
        file = Path(path_text)
        ctx = FileContext(facts, tree, (overlay or {}).get(file) or file)
        if index is not None:
            index.add(facts, tree, ctx.file)
        check_file(ctx, local, result)
    for rule in whole:
        _phase(progress, f"whole-tree rule {rule.id}")
        if note_reads:
            index.reads = Reads()  # type: ignore[union-attr]
        try:
            result.findings.extend(rule.check_tree(index))
        except Exception as exc:  # noqa: BLE001 - one rule's bug must not hide the rest
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            result.errors.append(FileError("<tree>", f"internal error in rule {named(rule)}: "
                                           f"{detail}", True))
        if index is not None and index.reads is not None:
            result.reads[rule.id] = index.reads.to_json(index.path, index.function_name)
            index.reads = None
    _phase(progress, None)
    if _retained is not None and index is not None:
        _retained.append(index)
    result.trees = list(trees.values())
    result.findings.sort(key=Finding.sort_key)
    result.errors.sort(key=lambda e: (e.path, e.reason))
    return result


def _phase(progress: Callable[[int, int], None] | None, name: str | None) -> None:
    """Name the phase that begins to a reporter that shows phases (cli.progress.Terminal):
    the link and each whole-tree rule take seconds without a file to count. None:
    the analysis is over."""
    show = getattr(progress, "phase", None)
    if show is not None:
        show(name)


def run_triggers(rules: list[Rule]) -> Triggers | None:
    """The words a file needs for these rules to matter (None: every file matters).

    Whole-tree rules read every file's facts to link the call graph, so a run
    with one parses everything; so does a run with a rule that declares none.
    """
    if any(r.scope != "local" for r in rules):
        return None
    return combine(r.triggers for r in rules)


# Set by the command-line entry point, which ends with os._exit(): the whole
# tree's index is then never freed one object at a time (10-19 s of a v6.12
# run went there). Library callers and tests free it as usual.
_retained: list[object] | None = None


def retain_until_exit() -> None:
    """Keep the last run's index alive; only for a process that ends with os._exit()."""
    global _retained
    _retained = []


