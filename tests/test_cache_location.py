"""Where the cache lives: --cache-dir, NOFSLINT_CACHE_DIR, the config's cache-dir, the XDG
default; for every command that has a cache (check, check-patch, kbuild), never inside
the linted tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_support import kernel_tree

from nofslint.cli.app import main

BUG = "static void *f(void)\n{\n\treturn alloc_pages(GFP_KERNEL | __GFP_NOFAIL, 3);\n}\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return kernel_tree(tmp_path / "linux", {"fs/myfs/old.c": BUG})


def used(cache: Path) -> bool:
    """Did a run put facts there (a tree directory of entries, or saved results)?"""
    return cache.is_dir() and any(p.is_file() and p.name != "CACHEDIR.TAG"
                                  for p in cache.rglob("*"))


def invoke(*args: str):
    return CliRunner().invoke(main, [*args])


def test_the_environment_moves_the_cache_for_every_command(
        tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    for n, command in enumerate((["check", str(tree)],
                                 ["kbuild", "-D__KERNEL__", str(tree / "fs/myfs/old.c")])):
        cache = tmp_path / f"env-cache-{n}"
        monkeypatch.setenv("NOFSLINT_CACHE_DIR", str(cache))
        result = invoke(*command)
        assert result.exit_code in (0, 1), result.output
        assert used(cache), command
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    patch = tmp_path / "p.diff"
    patch.write_text("--- a/fs/myfs/old.c\n+++ b/fs/myfs/old.c\n@@ -1,2 +1,3 @@\n"
                     " static void *f(void)\n+/* c */\n {\n")
    cache = tmp_path / "env-cache-patch"
    monkeypatch.setenv("NOFSLINT_CACHE_DIR", str(cache))
    result = invoke("check-patch", "--tree", str(tree), str(patch))
    assert result.exit_code == 0, result.output
    assert used(cache)
    assert not used(xdg)  # the default was never touched
    # --cache-dir still comes first.
    flag = tmp_path / "flag-cache"
    assert invoke("check", str(tree), "--cache-dir", str(flag)).exit_code == 1
    assert used(flag)


def test_the_environment_must_be_absolute_and_outside_the_tree(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOFSLINT_CACHE_DIR", "relative/cache")
    result = invoke("check", str(tree))
    assert result.exit_code == 2 and "must be an absolute path" in result.output
    monkeypatch.setenv("NOFSLINT_CACHE_DIR", str(tree / ".cache"))
    result = invoke("check", str(tree))
    assert result.exit_code == 2 and "inside the linted tree" in result.output
    assert not (tree / ".cache").exists()
    # kbuild says so and lets the build go on.
    result = invoke("kbuild", str(tree / "fs/myfs/old.c"))
    assert result.exit_code == 0 and "inside the linted tree" in result.output


def test_config_cache_dir(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    # The tree's own config: within the home, honoured (~/ expanded).
    (tree / ".nofslint.toml").write_text('cache-dir = "~/nofslint-cache"\n')
    assert invoke("check", str(tree)).exit_code == 1
    assert used(home / "nofslint-cache")
    assert invoke("kbuild", str(tree / "fs/myfs/old.c")).exit_code == 0
    # Outside the home: refused, the tree may not choose where a run writes.
    outside = tmp_path / "elsewhere"
    (tree / ".nofslint.toml").write_text(f'cache-dir = "{outside}"\n')
    result = invoke("check", str(tree))
    assert result.exit_code == 2 and "outside your home" in result.output
    assert not outside.exists()
    # A config of the user's own (--config, outside the tree) may put it anywhere...
    mine = tmp_path / "mine.toml"
    mine.write_text(f'cache-dir = "{outside}"\n')
    assert invoke("check", str(tree), "--config", str(mine)).exit_code == 1
    assert used(outside)
    # ...but not inside the tree, and never relative to the config.
    mine.write_text(f'cache-dir = "{tree / "cache"}"\n')
    result = invoke("check", str(tree), "--config", str(mine))
    assert result.exit_code == 2 and "inside the linted tree" in result.output
    mine.write_text('cache-dir = "cache"\n')
    result = invoke("check", str(tree), "--config", str(mine))
    assert result.exit_code == 2 and "cache-dir: 'cache' must be absolute" in result.output
    # The environment comes before the config.
    env = tmp_path / "env"
    monkeypatch.setenv("NOFSLINT_CACHE_DIR", str(env))
    mine.write_text(f'cache-dir = "{outside / "other"}"\n')
    assert invoke("check", str(tree), "--config", str(mine)).exit_code == 1
    assert used(env) and not (outside / "other").exists()
