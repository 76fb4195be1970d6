"""The facts cache: same answers warm and cold, damage is rebuilt, never trusted."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from fixture_support import FIXTURES

import nofslint.run.engine as engine
import nofslint.run.loading as loading
import nofslint.run.saved as saving
from nofslint.incremental.cache import FactsCache
from nofslint.plugins.registry import builtin_rules, select_rules
from nofslint.run.engine import run

TREE = FIXTURES / "nofail-in-reclaim" / "linux-6.12"


def _run(tree: Path, cache: Path | None):
    rules = select_rules(builtin_rules(), ["ALL"], None)
    result = run([tree], rules, jobs=1, cache_root=cache)
    return [f.to_json() for f in result.findings], result.errors


def _entries(cache: Path) -> list[Path]:
    """Facts entries (sharded by the first two hex digits), not the manifest."""
    return sorted(p for p in cache.rglob("*") if p.is_file() and len(p.parent.name) == 2)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    dest = tmp_path / "linux"
    shutil.copytree(TREE, dest)
    return dest


def test_warm_equals_cold_and_uses_the_cache(tree: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    cold = _run(tree, cache)
    assert cold[0] and not cold[1]
    entries = _entries(cache)
    assert len(entries) == len(list(tree.rglob("*.c")))
    # Warm: extraction must not run at all.
    monkeypatch.setattr(loading, "extract", lambda *a: pytest.fail("re-extracted a cached file"))
    # ...nor read the sources: size, mtime and inode say they are unchanged.
    monkeypatch.setattr(loading, "read_source", lambda *a: pytest.fail("read an unchanged file"))
    assert _run(tree, cache) == cold


def test_a_damaged_manifest_is_harmless(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cold = _run(tree, cache)
    for manifest in cache.rglob("manifest-*"):
        manifest.write_bytes(b"\xffgarbage")
    assert _run(tree, cache) == cold


def test_no_cache_means_no_cache(tree: Path, tmp_path: Path) -> None:
    assert _run(tree, None)[0] == _run(tree, tmp_path / "c")[0]
    assert not (Path(os.environ["XDG_CACHE_HOME"]) / "nofslint").exists()


def test_an_edited_file_is_re_extracted(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _run(tree, cache)
    target = tree / "fs" / "demofs" / "inode.c"
    target.write_text(target.read_text().replace("GFP_NOFS | __GFP_NOFAIL); /* expect",
                                                 "GFP_NOFS); /* expect"))
    lines = [f["line"] for f in _run(tree, cache)[0] if f["path"] == "fs/demofs/inode.c"]
    assert 18 not in lines and lines


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty", "foreign"])
def test_damaged_entries_are_rebuilt(tree: Path, tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    cold = _run(tree, cache)
    entries = _entries(cache)
    for i, entry in enumerate(entries):
        data = entry.read_bytes()
        if damage == "garbage":
            entry.write_bytes(b"\x00not marshal" * 3)
        elif damage == "truncate":
            entry.write_bytes(data[: len(data) // 2])
        elif damage == "empty":
            entry.write_bytes(b"")
        else:  # another file's valid entry under this key
            entry.write_bytes(entries[(i + 1) % len(entries)].read_bytes() if len(entries) > 1
                              else b"")
    assert _run(tree, cache) == cold
    # ...and the rebuilt entries are good again.
    assert all(e.stat().st_size > 20 for e in _entries(cache))


def test_prune_drops_only_old_entries(tmp_path: Path) -> None:
    cache = FactsCache(tmp_path, Path("/some/tree"), "salt")
    from nofslint.model.facts import FileFacts

    cache.store("ab" + "0" * 62, FileFacts("a.c", "0"))
    cache.store("cd" + "0" * 62, FileFacts("b.c", "0"))
    old = cache.dir / "ab" / ("ab" + "0" * 62)
    past = time.time() - 100 * 24 * 3600
    os.utime(old, (past, past))
    assert cache.prune() == 1
    assert not old.exists() and cache.load("cd" + "0" * 62, "b.c") is not None


def test_loading_an_entry_marks_it_used_at_most_once_a_day(tmp_path: Path) -> None:
    """Pruning goes by mtime; a warm run must not rewrite 60,000 inodes to say so."""
    cache = FactsCache(tmp_path, Path("/some/tree"), "salt")
    from nofslint.model.facts import FileFacts

    key = "ab" + "0" * 62
    cache.store(key, FileFacts("a.c", "0"))
    entry = cache.dir / "ab" / key
    hour_ago, week_ago = time.time() - 3600, time.time() - 7 * 24 * 3600
    os.utime(entry, (hour_ago, hour_ago))
    assert cache.load(key, "a.c") is not None
    assert entry.stat().st_mtime == pytest.approx(hour_ago, abs=1)
    os.utime(entry, (week_ago, week_ago))
    assert cache.load(key, "a.c") is not None
    assert entry.stat().st_mtime > time.time() - 60


def test_cache_is_per_version_and_table(tmp_path: Path) -> None:
    a = FactsCache(tmp_path, Path("/t"), "table-a")
    b = FactsCache(tmp_path, Path("/t"), "table-b")
    assert a.key(b"int x;", "a.c") != b.key(b"int x;", "a.c")


def test_files_with_the_same_text_are_both_cached(tree: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Identical files (one-line uapi headers) must not evict each other's entry,
    which made every warm run extract them again."""
    for name in ("one.h", "two.h"):
        (tree / "include" / name).parent.mkdir(exist_ok=True)
        (tree / "include" / name).write_text("#include <asm-generic/foo.h>\n")
    cache = tmp_path / "cache"
    cold = _run(tree, cache)
    monkeypatch.setattr(loading, "extract", lambda *a: pytest.fail("re-extracted a cached file"))
    assert _run(tree, cache) == cold


def _run_reusing(tree: Path, cache: Path, rules: list[str] | None = None):
    selected = select_rules(builtin_rules(), rules or ["ALL"], None)
    result = run([tree], selected, jobs=1, cache_root=cache, reuse_results=True)
    return [f.to_json() for f in result.findings], result


def test_unchanged_run_reuses_results(tree: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first, _ = _run_reusing(tree, cache)
    real = loading.load_facts
    monkeypatch.setattr(loading, "load_facts", lambda *a, **k: pytest.fail("facts loaded"))
    again, result = _run_reusing(tree, cache)
    assert again == first and result.files == len(list(tree.rglob("*.c")))
    assert all(f.file is not None and f.file.exists() for f in result.findings)
    # Other rules, or any edit, and the run is real again.
    monkeypatch.setattr(loading, "load_facts", real)
    only, _ = _run_reusing(tree, cache, ["nofail-high-order"])
    assert only == []
    target = tree / "fs" / "demofs" / "inode.c"
    target.write_text(target.read_text().replace("kmalloc(64, gfp);", "kmalloc(64, GFP_NOFS);"))
    edited, _ = _run_reusing(tree, cache)
    assert len(edited) == len(first) - 1


def test_a_damaged_saved_run_is_a_miss(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, _ = _run_reusing(tree, cache)
    (saved,) = (p for p in (cache / "results").iterdir()
                if not p.name.startswith(("latest", "blob-")))
    text = saved.read_bytes()
    line = text.index(b'"line": ') + len(b'"line": ')
    saved.write_bytes(text[:line] + (b"8" if text[line:line + 1] != b"8" else b"9")
                      + text[line + 1:])  # still valid JSON: only the CRC tells
    assert _run_reusing(tree, cache)[0] == first


def test_damaged_reads_relink(tree: Path, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """What the whole-tree rules read is a blob of its own: intact, a new function no
    rule reads keeps the saved findings; damaged, the next such edit relinks."""
    cache = tmp_path / "cache"
    _run_reusing(tree, cache)
    relinks: list[int] = []
    analyse = engine._analyse
    monkeypatch.setattr(engine, "_analyse", lambda *a: relinks.append(1) or analyse(*a))
    target = tree / "fs" / "demofs" / "inode.c"

    def add_function(name: str) -> bool:
        """Whether the run relinked (its answer is a fresh run's either way)."""
        target.write_text(target.read_text() + f"\nstatic void {name}(void)\n{{\n"
                          "\tprintk();\n}\n")
        relinks.clear()
        edited, _ = _run_reusing(tree, cache)
        relinked = bool(relinks)
        fresh = run([tree], select_rules(builtin_rules(), ["ALL"], None), jobs=1)
        assert edited == [f.to_json() for f in fresh.findings]
        return relinked

    assert not add_function("added_first")
    (blob,) = (cache / "results").glob("blob-*")
    body = bytearray(blob.read_bytes())
    body[-5] ^= 0x01
    blob.write_bytes(bytes(body))
    assert add_function("added_second")


def test_diff_and_fix_never_reuse_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from nofslint.cli.app import main

    dest = tmp_path / "linux"
    shutil.copytree(FIXTURES / "vmalloc-nofs" / "linux-5.10", dest)
    cache = tmp_path / "cache"
    args = ["check", str(dest), "--cache-dir", str(cache)]
    CliRunner().invoke(main, args)
    monkeypatch.setattr(saving, "from_saved", lambda d: pytest.fail("reused for --diff"))
    diff = CliRunner().invoke(main, [*args, "--diff"])
    assert diff.exit_code == 1 and diff.stdout.startswith("--- a/")


# -- a damaged cache directory: never an error, never a different answer ------------

def _flip_a_bit(cache: Path) -> None:
    for entry in _entries(cache):
        data = bytearray(entry.read_bytes())
        data[len(data) * 2 // 3] ^= 0x10  # inside the facts, where marshal still loads
        entry.write_bytes(bytes(data))


def _replace_by(paths: list[Path], kind: str) -> None:
    for path in paths:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        if kind == "dir":
            path.mkdir()
        else:
            path.write_bytes(b"\x00garbage")


def _damage(cache: Path, how: str) -> None:
    tree_dirs = [p for p in cache.iterdir() if p.is_dir() and len(p.name) == 16]
    if how == "flipped bits":
        _flip_a_bit(cache)
    elif how == "tree directory is a file":
        _replace_by(tree_dirs, "file")
    elif how == "shards are files":
        _replace_by([p for d in tree_dirs for p in d.iterdir() if len(p.name) == 2], "file")
    elif how == "entries are directories":
        _replace_by(_entries(cache), "dir")
    elif how == "manifest is a directory":
        _replace_by(list(cache.rglob("manifest-*")), "dir")
    elif how == "results are garbage":
        _replace_by(list((cache / "results").iterdir()), "file")
    elif how == "results is a file":
        _replace_by([cache / "results"], "file")
    elif how == "root is a file":
        _replace_by([cache], "file")
    if cache.is_dir():
        (cache / ".last-prune").unlink(missing_ok=True)  # prune the damaged cache too


@pytest.mark.parametrize("how", [
    "flipped bits", "tree directory is a file", "shards are files", "entries are directories",
    "manifest is a directory", "results are garbage", "results is a file", "root is a file"])
def test_a_damaged_cache_directory(tree: Path, tmp_path: Path, how: str) -> None:
    cache = tmp_path / "cache"
    cold, _ = _run_reusing(tree, cache)
    _damage(cache, how)
    for _ in range(2):  # the damaged run, then the one after its repairs
        again, result = _run_reusing(tree, cache)
        assert again == cold and not result.errors


def test_a_cache_that_cannot_be_listed(tree: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    cold = _run(tree, cache)
    (cache / ".last-prune").unlink()
    real = Path.iterdir

    def denied(self: Path):
        if cache in (self, *self.parents):
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", denied)
    assert _run(tree, cache) == cold


def test_a_flipped_bit_is_rebuilt_not_believed(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _run(tree, cache)
    before = {e: e.read_bytes() for e in _entries(cache)}
    _flip_a_bit(cache)
    _run(tree, cache)
    assert {e: e.read_bytes() for e in _entries(cache)} == before  # rewritten whole


# -- the cache is bounded ---------------------------------------------------------

def _aged(path: Path, days: float) -> None:
    past = time.time() - days * 24 * 3600
    os.utime(path, (past, past))


def _facts(rel: str, size: int = 0):
    from nofslint.model.facts import FileFacts

    return FileFacts(rel, "0", gfp_macros={"PAD": "x" * size} if size else {})


def test_prune_keeps_the_cache_under_its_size_bound(tmp_path: Path) -> None:
    a = FactsCache(tmp_path, Path("/tree/a"), "salt")
    b = FactsCache(tmp_path, Path("/tree/b"), "salt")
    keys = [f"{i:02x}" + "0" * 62 for i in range(10)]
    for i, key in enumerate(keys):  # ten entries of ~1 kB, older the lower the index
        (a if i % 2 else b).store(key, _facts(f"f{i}.c", 1000))
        (a if i % 2 else b).remember(f"f{i}.c", (1, 2, 3), key)
        _aged((a if i % 2 else b)._path(key), 10 - i)
    a.save_manifest()
    b.save_manifest()
    size = sum(e.stat().st_size for e in _entries(tmp_path))
    removed = a.prune(max_bytes=size // 2, interval=0)
    left = {e.name for e in _entries(tmp_path)}
    assert removed == len(keys) - len(left) and 4 <= len(left) <= 5
    assert left == set(keys[-len(left):])  # the least recently used went first
    assert sum(e.stat().st_size for e in _entries(tmp_path)) <= size // 2
    # The stat manifests forget the pruned entries (they could only miss).
    import marshal

    lines = {}
    for manifest in tmp_path.rglob("manifest-*"):
        lines.update(marshal.loads(manifest.read_bytes()))
    assert {line[3] for line in lines.values()} == left


def test_prune_drops_old_trees_manifests_and_leftovers(tmp_path: Path) -> None:
    old = FactsCache(tmp_path, Path("/tree/gone"), "salt")
    old.store("ab" + "0" * 62, _facts("a.c"))
    old.remember("a.c", (1, 2, 3), "ab" + "0" * 62)
    old.save_manifest()
    current = FactsCache(tmp_path, Path("/tree/here"), "salt")
    current.store("cd" + "0" * 62, _facts("b.c"))
    stale_tmp = current.dir / "cd" / f".cd{'1' * 62}.00000000dead.nofslint"  # as the writer names
    fresh_tmp = current.dir / "cd" / f".cd{'2' * 62}.0000000000ff.nofslint"
    stale_tmp.write_bytes(b"half")
    fresh_tmp.write_bytes(b"half")
    foreign = tmp_path / "not-ours"
    foreign.mkdir()
    for path in [*old.dir.rglob("*"), stale_tmp]:
        _aged(path, 40)
    assert current.prune(interval=0) == 1
    assert not old.dir.exists()  # every entry and the manifest were a month old
    assert not stale_tmp.exists() and fresh_tmp.exists() and foreign.exists()
    assert current.load("cd" + "0" * 62, "b.c") is not None


def test_prune_runs_at_most_once_an_interval(tmp_path: Path) -> None:
    cache = FactsCache(tmp_path, Path("/tree"), "salt")
    key = "ab" + "0" * 62
    cache.store(key, _facts("a.c"))
    assert cache.prune() == 0  # fresh entry; now stamped
    _aged(cache._path(key), 40)
    assert cache.prune() == 0  # within the hour: not even looked at
    assert cache.prune(interval=0) == 1


def test_saved_results_are_capped(tmp_path: Path) -> None:
    from nofslint.incremental.cache import ResultCache

    results = ResultCache(tmp_path)
    sigs = [f"{i:064x}" for i in range(10)]  # signatures are sha256 hex digests
    for i, sig in enumerate(sigs):
        results.store(sig, {"files": i})
        _aged(results.dir / sig, 10 - i)
    killed = results.dir / f".{'f' * 64}.00000000dead.nofslint"  # as the writer names it
    killed.write_text("{")
    _aged(killed, 1)
    results.prune(keep=4)
    assert sorted(p.name for p in results.dir.iterdir()) == sigs[6:]


def test_the_code_fingerprint_covers_every_layer_and_the_rules(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """Saved results must not survive an edit to any rule or any layer of the engine."""
    import nofslint.incremental.cache as cache_module

    package = Path(cache_module.__file__).resolve().parents[1]
    copy = tmp_path / "nofslint"
    shutil.copytree(package, copy)
    if not (copy / "rules").is_dir():
        shutil.copytree(package.parent / "rules", tmp_path / "rules")
    fake = copy / "incremental" / "cache.py"

    def fingerprint() -> str:
        monkeypatch.setattr(cache_module, "__file__", str(fake))
        monkeypatch.setattr(cache_module, "_CODE", None)
        return cache_module.code_fingerprint()

    first = fingerprint()
    assert fingerprint() == first
    rules = copy / "rules" if (copy / "rules").is_dir() else tmp_path / "rules"
    for edited in (copy / "link" / "index.py", rules / "vmalloc_nofs.py"):
        edited.write_text(edited.read_text() + "\n# edited\n")
        assert fingerprint() != first, edited
        first = fingerprint()
