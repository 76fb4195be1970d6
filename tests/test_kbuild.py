"""``nofslint kbuild`` under a real ``make``: the checker command kbuild runs per file,
whole-tree findings moved with an edit or marked out of date, and the "no saved run"
note said once per build.

A real kbuild needs a configured kernel build directory (``make O=... defconfig``
builds host tools first: minutes, and a compiler toolchain CI does not promise). The
Makefile here does what kbuild does for ``C=1`` instead, with the same command
(scripts/Makefile.build: ``cmd_checksrc = $(CHECK) $(CHECKFLAGS) $(c_flags) $<``),
from a sub-make per directory as kbuild's ``$(MAKE) -f scripts/Makefile.build obj=dir``
does, with ``-j`` so that checks run in parallel. What it does not cover: kbuild's
own flags and rules (docs/patch-mode.md#kbuild records a run on a real 6.12 build).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixture_support import FIXTURES

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

NOFSLINT = Path(sys.executable).with_name("nofslint")
NOFAIL = FIXTURES / "nofail-in-reclaim" / "linux-6.12"
STALE = "whole-tree findings for this file are out of date"
NONE_SAVED = "no whole-tree run of"

TOP = """\
VERSION = 6
PATCHLEVEL = 12
SUBLEVEL = 0
# What kbuild does for C=1, per directory in a sub-make (see tests/test_kbuild.py).
CHECKFLAGS := -D__linux__ -Dlinux -D__STDC__ -Dunix -D__unix__ -Wbitwise \\
\t-Wno-return-void -Wno-unknown-attribute --arch=x86 -mlittle-endian -m64
export CHECK CHECKFLAGS C
DIRS := fs/demofs fs/pathfs fs/libblk fs/libpath
all: $(DIRS)
$(DIRS):
\t@$(MAKE) --no-print-directory -f Build.mk obj=$@
.PHONY: all $(DIRS)
"""
BUILD = """\
c_flags := -Wp,-MMD,$(obj)/.dep.d -nostdinc -I./arch/x86/include -I./include \\
\t-include ./include/linux/compiler-version.h -D__KERNEL__ -DKBUILD_MODNAME='"x"'
all: $(patsubst %.c,%.o,$(wildcard $(obj)/*.c))
%.o: %.c
\t@echo '  CHECK   $<'
\t@$(if $(filter 1 2,$(C)),$(CHECK) $(CHECKFLAGS) $(c_flags) $<)
.PHONY: all
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    dest = tmp_path / "linux"
    shutil.copytree(NOFAIL, dest, ignore=shutil.ignore_patterns("*.fixed"))
    (dest / "Makefile").write_text(TOP)
    (dest / "Build.mk").write_text(BUILD)
    return dest


def make(tree: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NOFSLINT_CACHE_DIR": str(cache)}
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    return subprocess.run(["make", "-j2", "-C", str(tree), "C=1", f"CHECK={NOFSLINT} kbuild"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def check(tree: Path, cache: Path) -> None:
    subprocess.run([NOFSLINT, "check", str(tree), "-j", "1"], capture_output=True,
                   env={**os.environ, "NOFSLINT_CACHE_DIR": str(cache)}, timeout=300)


def findings(output: str, name: str) -> list[str]:
    return sorted(re.findall(rf"^\S*{re.escape(name)}:\d+:\d+: .*$", output, re.M))


def test_make_without_a_saved_run_says_so_once_per_build(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = make(tree, cache)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("  CHECK   ") == 6  # every file was checked
    assert first.stderr.count(NONE_SAVED) == 1, first.stderr
    assert "nofslint check" in first.stderr and "(said once per build)" in first.stderr
    # A second build says it again, once: it is another make invocation.
    second = make(tree, cache)
    assert second.returncode == 0 and second.stderr.count(NONE_SAVED) == 1, second.stderr
    # The markers live in the cache directory, never in the tree.
    assert len(list((cache / "kbuild").iterdir())) == 2
    assert not [p for p in tree.rglob("*") if p.name not in
                {p.name for p in NOFAIL.rglob("*")} | {"Build.mk"}]


def test_make_shows_whole_tree_findings_moved_or_marked_stale(tree: Path,
                                                              tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    check(tree, cache)
    fresh = make(tree, cache)
    assert NONE_SAVED not in fresh.stderr and STALE not in fresh.stderr, fresh.stderr
    before = findings(fresh.stdout, "fs/demofs/inode.c")
    assert sum("[nofail-in-reclaim]" in line for line in before) == 4
    # Each finding's chain follows as gcc notes, as in check's text output.
    assert re.search(r"^    \S*fs/demofs/super\.c:\d+:\d+: note: \w+\(\) is stored in "
                     r"super_operations\.evict_inode", fresh.stdout, re.M), fresh.stdout

    # An edit that only moves code: the same findings, three lines lower.
    inode = tree / "fs/demofs/inode.c"
    inode.write_text("/* a\n * moved\n */\n" + inode.read_text())
    moved = make(tree, cache)
    assert STALE not in moved.stderr, moved.stderr
    shifted = [re.sub(r":(\d+):", lambda m: f":{int(m.group(1)) + 3}:", line, count=1)
               for line in before]
    assert findings(moved.stdout, "fs/demofs/inode.c") == sorted(shifted)

    # A new function that no rule's reads involve: the findings still hold (the saved
    # reads say so, as for a check that reuses a saved run), at their places.
    inode.write_text(inode.read_text() + "\nint demofs_version(void)\n{\n\treturn 3;\n}\n")
    added = make(tree, cache)
    assert STALE not in added.stderr, added.stderr
    assert findings(added.stdout, "fs/demofs/inode.c") == sorted(shifted)

    # An edit that changes a function: the saved findings may no longer hold; one hint.
    text = inode.read_text()
    assert "GFP_NOFS | __GFP_NOFAIL" in text
    inode.write_text(text.replace("GFP_NOFS | __GFP_NOFAIL", "GFP_NOFS", 1))
    changed = make(tree, cache)
    assert changed.stderr.count(STALE) == 1, changed.stderr
    assert "fs/demofs/inode.c: note: " + STALE in changed.stderr
    assert f"nofslint check {tree}" in changed.stderr
    assert "[nofail-in-reclaim]" not in "".join(findings(changed.stdout, "fs/demofs/inode.c"))
    # The other files still show theirs.
    assert findings(changed.stdout, "fs/demofs/super.c") == \
        findings(fresh.stdout, "fs/demofs/super.c")

    check(tree, cache)  # run again: up to date, without the finding the edit fixed
    again = make(tree, cache)
    assert STALE not in again.stderr
    assert sum("[nofail-in-reclaim]" in line
               for line in findings(again.stdout, "fs/demofs/inode.c")) == 3


def test_the_build_marker_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    from nofslint.cli.kbuild import first_in_build

    cache, victim = tmp_path / "cache", tmp_path / "victim"
    cache.mkdir()
    victim.mkdir()
    (cache / "kbuild").symlink_to(victim)
    root = tmp_path / "linux"
    # Nothing can be recorded: the note is said every time rather than written there.
    assert first_in_build(cache, root, "123:456") and first_in_build(cache, root, "123:456")
    assert list(victim.iterdir()) == []
    (cache / "kbuild").unlink()
    assert first_in_build(cache, root, "123:456")  # recorded once in a real folder
    assert not first_in_build(cache, root, "123:456")
    assert first_in_build(cache, root, "123:789")  # another make: another build
    for marker in (cache / "kbuild").iterdir():  # a symlink in a marker's place...
        marker.unlink()
        marker.symlink_to(victim / "planted")
    for build in ("123:456", "123:789"):
        first_in_build(cache, root, build)
    assert not (victim / "planted").exists()  # ...is never followed
