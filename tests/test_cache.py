"""The facts cache: same answers warm and cold, damage is rebuilt, never trusted."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from fixture_support import FIXTURES

from nofslint.cache import FactsCache
from nofslint.engine import run
from nofslint.registry import builtin_rules, select_rules

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
    import nofslint.engine as engine

    monkeypatch.setattr(engine, "extract", lambda *a: pytest.fail("re-extracted a cached file"))
    # ...nor read the sources: size, mtime and inode say they are unchanged.
    monkeypatch.setattr(engine, "read_source", lambda *a: pytest.fail("read an unchanged file"))
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
    from nofslint.facts import FileFacts

    cache.store("ab" + "0" * 62, FileFacts("a.c", "0"))
    cache.store("cd" + "0" * 62, FileFacts("b.c", "0"))
    old = cache.dir / "ab" / ("ab" + "0" * 62)
    past = time.time() - 100 * 24 * 3600
    os.utime(old, (past, past))
    assert cache.prune() == 1
    assert not old.exists() and cache.load("cd" + "0" * 62, "b.c") is not None


def test_cache_is_per_version_and_table(tmp_path: Path) -> None:
    a = FactsCache(tmp_path, Path("/t"), "table-a")
    b = FactsCache(tmp_path, Path("/t"), "table-b")
    assert a.key(b"int x;") != b.key(b"int x;")


def _run_reusing(tree: Path, cache: Path, rules: list[str] | None = None):
    selected = select_rules(builtin_rules(), rules or ["ALL"], None)
    result = run([tree], selected, jobs=1, cache_root=cache, reuse_results=True)
    return [f.to_json() for f in result.findings], result


def test_unchanged_run_reuses_results(tree: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first, _ = _run_reusing(tree, cache)
    import nofslint.engine as engine

    real = engine.load_facts
    monkeypatch.setattr(engine, "load_facts", lambda *a, **k: pytest.fail("facts loaded"))
    again, result = _run_reusing(tree, cache)
    assert again == first and result.files == len(list(tree.rglob("*.c")))
    assert all(f.file is not None and f.file.exists() for f in result.findings)
    # Other rules, or any edit, and the run is real again.
    monkeypatch.setattr(engine, "load_facts", real)
    only, _ = _run_reusing(tree, cache, ["nofail-high-order"])
    assert only == []
    target = tree / "fs" / "demofs" / "inode.c"
    target.write_text(target.read_text().replace("kmalloc(64, gfp);", "kmalloc(64, GFP_NOFS);"))
    edited, _ = _run_reusing(tree, cache)
    assert len(edited) == len(first) - 1


def test_diff_and_fix_never_reuse_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from nofslint.cli import main

    dest = tmp_path / "linux"
    shutil.copytree(FIXTURES / "vmalloc-nofs" / "linux-5.10", dest)
    cache = tmp_path / "cache"
    args = ["check", str(dest), "--cache-dir", str(cache)]
    CliRunner().invoke(main, args)
    import nofslint.engine as engine

    monkeypatch.setattr(engine, "_from_saved", lambda d: pytest.fail("reused for --diff"))
    diff = CliRunner().invoke(main, [*args, "--diff"])
    assert diff.exit_code == 1 and diff.stdout.startswith("--- a/")
