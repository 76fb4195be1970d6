"""Saved runs: reuse the last run's findings when files did not change, or changed
only in ways the whole-tree rules did not read; and the latest whole-tree run
that kbuild's per-file checks read.
"""

from __future__ import annotations

import marshal
from dataclasses import dataclass, field
from pathlib import Path

from nofslint.analysis.summaries import SEED_KINDS
from nofslint.api.rule import FileContext, Rule
from nofslint.incremental.cache import FactsCache, ResultCache
from nofslint.incremental.relocation import Delta, relocate
from nofslint.incremental.saved_reads import touched, valid
from nofslint.kernel.reclaim import reclaim_calls_writepage
from nofslint.kernel.tree import KernelTree
from nofslint.model.facts import FileFacts
from nofslint.model.findings import Finding, TraceStep
from nofslint.plugins.loading import rules_fingerprint
from nofslint.plugins.registry import BUILTIN, plugin_of
from nofslint.run.calls import check_file
from nofslint.run.loading import Task, cache_for, content_keys, facts_task
from nofslint.run.results import FileError, RunResult
from nofslint.run.workers import parallel_map


def record_signature(tasks: list[Task], rules: list[Rule],
                      version: tuple[int, int] | None) -> str:
    """Names the saved record of runs over the same files with the same rules and
    options (file contents aside: the record holds their keys)."""
    parts = [",".join(sorted(r.id for r in rules)), rules_fingerprint(rules), repr(version)]
    parts += [f"{path_text}\0{tree.version_text}" for path_text, tree, _ in tasks]
    # Each tree's configuration and GFP definitions (the cache salt), and what
    # reclaim reads from mm/vmscan.c itself, not from its facts.
    trees = {(tree, root) for _, tree, root in tasks if root is not None}
    parts += sorted(f"{tree.root}\0{cache_for(root, tree).salt}\0"
                    f"{reclaim_calls_writepage(tree.root)}" for tree, root in trees)
    # The kernel config: which files are built and which architecture is linked.
    parts += sorted({tree.extras.kconfig.digest for _, tree, _ in tasks
                     if tree.extras.kconfig is not None})
    return ResultCache.signature(parts)


# More edited files than this and a run relinks: the edits are rarely all moves.
MAX_EDITED = 64


@dataclass
class Reuse:
    """What a saved run gives the files as they are now."""

    result: RunResult  # its findings, moved, and the edited files' local findings
    keys: list[str]  # every file's content key now
    # Whole-tree rules that read something an edit changed: they run again over
    # the linked tree. The others keep their findings, and their saved reads are
    # in ``result.reads``; the rules that run again note theirs anew.
    rerun: set[str] = field(default_factory=set)


def reused(tasks: list[Task], rules: list[Rule], saved: dict, jobs: int,
            results: ResultCache) -> Reuse | None:
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
        result = from_saved(saved)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    now = content_keys(tasks)
    edited = [i for i, key in enumerate(now) if key != keys[i]]
    if not edited:
        return Reuse(result, keys)
    if (len(edited) > MAX_EDITED or len({tree.root for _, tree, _ in tasks}) > 1
            or any(r.scope == "tree" and plugin_of(r) != BUILTIN for r in rules)):
        return None  # traces name files by their path in their tree: one tree only
    deltas: dict[str, Delta] = {}
    fresh: list[tuple[Task, tuple]] = []
    # Only whole-tree findings move with a delta; a run of local rules only needs the
    # edited files' new facts (its old ones may never have been extracted: triggers).
    whole = any(r.scope == "tree" for r in rules)
    seen_by: set[FactsCache] = set()
    try:
        for i, (payload, _, seen) in zip(edited, parallel_map(
                facts_task, [tasks[i] for i in edited], jobs), strict=True):
            _, tree, root = tasks[i]
            if payload is None or seen is None:
                return None  # the run reports why
            cache = cache_for(root, tree)  # type: ignore[arg-type]
            cache.remember(*seen)
            seen_by.add(cache)
            if seen[2] == keys[i]:
                continue  # touched, not changed
            old_key, keys[i] = keys[i], seen[2]
            new = marshal.loads(payload)
            fresh.append((tasks[i], new))
            if not whole:
                continue
            old = cache.load_data(old_key, seen[0])
            try:
                delta = Delta.between(old, new) if old is not None else None
            except (TypeError, ValueError, IndexError, KeyError):  # an old entry of another shape
                delta = None
            if delta is None or delta.whole or seen[0] in deltas:
                return None
            deltas[seen[0]] = delta
    finally:
        for cache in seen_by:
            cache.save_manifest()  # the edited files are known next time, relinked or not
    if not fresh:
        return Reuse(result, keys)
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
        check_file(ctx, local, result)
    result.findings.sort(key=Finding.sort_key)
    return Reuse(result, keys, rerun)


def from_saved(data: dict) -> RunResult:
    result = RunResult(files=data["files"])
    result.trees = [KernelTree(Path(t[0]) if t[0] else None, (t[1], t[2]), t[3])
                    for t in data["trees"]]
    result.errors = [FileError(**e) for e in data["errors"]]
    for f in data["findings"]:
        trace = [TraceStep(**t) for t in f.pop("trace")]
        file = f.pop("file")
        result.findings.append(Finding(**f, trace=trace, file=Path(file) if file else None))
    return result


def to_saved(result: RunResult) -> dict:
    return {
        "files": result.files,
        "trees": [[str(t.root) if t.root else None, *t.version, t.version_source]
                  for t in result.trees],
        "errors": [e.to_json() for e in result.errors],
        "findings": [{**f.to_json(), "key": f.key, "file": str(f.file) if f.file else None}
                     for f in result.findings],
    }


def save_latest(cache_root: Path, root: Path, result: RunResult) -> None:
    """Keep a whole-tree run's findings, and each file's content key then, for
    per-file checks (kbuild) to read."""
    ResultCache(cache_root).store(_latest_key(root), {
        **to_saved(result), "content": result.content, "reads": result.reads_blob})


def load_latest(cache_root: Path, root: Path) -> RunResult | None:
    saved = ResultCache(cache_root).load(_latest_key(root))
    try:
        return from_saved(saved) if saved is not None else None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


@dataclass
class Latest:
    """The latest whole-tree run's findings for one file, as they hold for it now.

    ``state``: "none" (no whole-tree run saved for the tree), "current" (the file
    is as that run saw it), "moved" (the file was edited, but the edit changed
    nothing any of the rules read: the findings are moved with it, as a run
    reusing a saved run does) or "stale" (anything else, or what cannot be
    told: no findings are given, the caller says to run again).
    """

    findings: list[Finding]
    state: str


def latest_for(cache_root: Path, tree: KernelTree, path: Path, rules: set[str]) -> Latest:
    """The findings of ``rules`` in ``path`` from the tree's latest whole-tree run,
    checked against the file's content now.

    Only this file's content is compared: an edit elsewhere in the tree that
    changes what a whole-tree rule finds here is seen by the next ``check``.
    """
    if tree.root is None:
        return Latest([], "none")
    saved = ResultCache(cache_root).load(_latest_key(tree.root))
    try:
        result = from_saved(dict(saved)) if saved is not None else None
    except (KeyError, TypeError, ValueError, AttributeError):
        result = None
    if result is None:
        return Latest([], "none")
    rel = tree.relpath(path)
    findings = [f for f in result.findings if f.path == rel and f.rule in rules]
    content = saved.get("content")  # type: ignore[union-attr]
    old = content.get(rel) if isinstance(content, dict) else None
    if not isinstance(old, str):
        return Latest([], "stale")  # a file the run did not see, or an older record
    cache = cache_for(str(cache_root), tree)
    task = (str(path), tree, str(cache_root))
    try:
        now = cache.known_key(str(path), rel)
    except OSError:
        return Latest([], "stale")
    if now is None:  # keyed as every run keys it (the config's part included)
        _, error, seen = facts_task(task)
        if error is not None or seen is None:
            return Latest([], "stale")
        now = seen[2]
    if old == now:
        return Latest(findings, "current")
    before, after = cache.load_data(old, rel), cache.load_data(now, rel)
    if before and not after:  # read by a run of triggered rules, never parsed: parse it
        facts_task(task)
        after = cache.load_data(now, rel)
    try:
        delta = Delta.between(before, after) if before and after else None
    except (TypeError, ValueError, IndexError, KeyError):  # an entry of another shape
        delta = None
    if delta is None or delta.whole:
        return Latest([], "stale")
    if not delta.moved_only:  # functions changed: did any rule read them? (reused() asks too)
        reads = ResultCache(cache_root).load_blob(saved.get("reads"))  # type: ignore[union-attr]
        if not (isinstance(reads, dict) and all(valid(reads.get(r)) for r in rules)) or any(
                touched(reads[r], {rel: delta}, SEED_KINDS) for r in rules):
            return Latest([], "stale")
    moves = {rel: delta.moves}
    if not all(relocate(f, moves) for f in findings):
        return Latest([], "stale")
    findings.sort(key=Finding.sort_key)
    return Latest(findings, "moved")


def _latest_key(root: Path) -> str:
    return "latest-" + ResultCache.signature([str(root)])
