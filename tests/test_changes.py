"""Diff-aware checks (--staged, --diff-from), baselines and the kbuild checker.

Each test builds a small git repository from a fixture tree, changes it, and
checks that only what the change introduces is reported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_support import FIXTURES

from nofslint.cli.app import main

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

NOFAIL = FIXTURES / "nofail-in-reclaim" / "linux-6.12"
VMALLOC = FIXTURES / "vmalloc-nofs" / "linux-5.10"
NEW_BUG = "\nstatic void *demofs_new_table(size_t len)\n{\n\treturn __vmalloc(len, GFP_NOFS);\n}\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


def repo_from(fixture: Path, dest: Path, moves: dict[str, str] | None = None) -> Path:
    shutil.copytree(fixture, dest)
    for fixed in dest.rglob("*.fixed"):
        fixed.unlink()
    for old, new in (moves or {}).items():
        (dest / old).rename(dest / new)
    git(dest, "init", "-q")
    git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return dest


def lint(repo: Path, *args: str):
    return CliRunner().invoke(main, ["check", str(repo), "-j", "1", *args])


def json_findings(result) -> list[tuple[str, str | None, str]]:
    return [(f["path"], f["function"], f["rule"]) for f in json.loads(result.output)["findings"]]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return repo_from(VMALLOC, tmp_path / "linux")


def test_staged_reports_only_what_the_index_adds(repo: Path) -> None:
    clean = repo / "fs/demofs/clean.c"
    clean.write_text(clean.read_text() + NEW_BUG)
    # Unstaged: --staged sees nothing yet; --diff-from HEAD sees the working tree.
    assert lint(repo, "--staged").exit_code == 0
    assert json_findings(lint(repo, "--diff-from", "HEAD", "--format", "json")) == [
        ("fs/demofs/clean.c", "demofs_new_table", "vmalloc-nofs")]
    git(repo, "add", "fs/demofs/clean.c")
    result = lint(repo, "--staged")
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith("fs/demofs/clean.c:") or "/fs/demofs/clean.c:" in first
    assert "[vmalloc-nofs]" in first and "nofslint-" not in first  # the user's path
    assert result.output.count("[vmalloc-nofs]") == 1  # not the file's old bugs


def test_unrelated_edit_and_moved_code_report_nothing(repo: Path) -> None:
    bugs = repo / "fs/demofs/bugs.c"
    # Lines added above every function: all the old findings move down.
    bugs.write_text("/* a comment */\n\n\n" + bugs.read_text() + "\n/* trailing */\n")
    git(repo, "add", "-A")
    assert lint(repo, "--staged").exit_code == 0
    assert lint(repo, "--diff-from", "HEAD").exit_code == 0


def test_fixing_a_bug_reports_nothing(repo: Path) -> None:
    bugs = repo / "fs/demofs/bugs.c"
    text = bugs.read_text()
    assert "GFP_NOFS | __GFP_ZERO" in text
    bugs.write_text(text.replace("GFP_NOFS | __GFP_ZERO", "GFP_KERNEL | __GFP_ZERO", 1))
    result = lint(repo, "--diff-from", "HEAD")
    assert result.exit_code == 0 and result.output.startswith("No findings")


def test_new_and_deleted_files(repo: Path) -> None:
    (repo / "fs/demofs/new.c").write_text(NEW_BUG)
    (repo / "fs/demofs/clean.c").unlink()
    git(repo, "add", "-A")
    assert json_findings(lint(repo, "--staged", "--format", "json")) == [
        ("fs/demofs/new.c", "demofs_new_table", "vmalloc-nofs")]


def test_diff_from_a_commit_range_and_paths(repo: Path) -> None:
    clean = repo / "fs/demofs/clean.c"
    clean.write_text(clean.read_text() + NEW_BUG)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "add a bug")
    assert lint(repo, "--diff-from", "HEAD").exit_code == 0  # committed: nothing since HEAD
    assert lint(repo, "--diff-from", "HEAD~1").exit_code == 1
    # Paths limit the change to what they cover.
    assert CliRunner().invoke(main, ["check", str(repo / "fs/demofs/bugs.c"), "--diff-from",
                                     "HEAD~1"]).exit_code == 0


def test_git_problems_are_clear_errors(repo: Path, tmp_path: Path) -> None:
    bad = lint(repo, "--diff-from", "no-such-rev")
    assert bad.exit_code == 2 and "no-such-rev" in bad.output
    loose = tmp_path / "loose"
    shutil.copytree(VMALLOC, loose)
    result = lint(loose, "--staged")
    assert result.exit_code == 2 and "git" in result.output
    assert lint(repo, "--staged", "--diff-from", "HEAD").exit_code == 2
    assert lint(repo, "--staged", "--fix").exit_code == 2


def test_whole_tree_chain_through_a_changed_function(tmp_path: Path) -> None:
    """A new call into a helper that reaches __GFP_NOFAIL from the evict path.

    By default a change is linted with its own directories and the VFS/mm/block
    core (where the buffer-head helpers live, as here); --whole-tree links all.
    """
    repo = repo_from(NOFAIL, tmp_path / "linux", {"fs/libblk/blockread.c": "fs/blockread.c"})
    inode = repo / "fs/demofs/inode.c"
    text = inode.read_text()
    assert "demo_bread_try(" in text
    inode.write_text(text.replace("demo_bread_try(", "demo_bread(", 1))
    found = json_findings(lint(repo, "--diff-from", "HEAD", "--format", "json"))
    assert found == [("fs/demofs/inode.c", "demofs_truncate_blocks", "nofail-in-reclaim")]
    # The helper itself changed (in a directory of its own): the finding sits in the
    # untouched caller, which only --whole-tree links.
    repo2 = repo_from(NOFAIL, tmp_path / "linux2")
    lib = repo2 / "fs/libblk/blockread.c"
    lib.write_text(lib.read_text().replace(" & ~__GFP_NOFAIL);", ");", 1))
    found = json_findings(lint(repo2, "--diff-from", "HEAD", "--whole-tree", "--format",
                               "json"))
    assert [(p, r) for p, _, r in found] == [("fs/demofs/inode.c", "nofail-in-reclaim")]


def test_baseline_hides_known_findings_across_unrelated_edits(repo: Path) -> None:
    baseline = repo / "nofslint-baseline.json"
    written = lint(repo, "--write-baseline", str(baseline))
    assert written.exit_code == 0
    doc = json.loads(baseline.read_text())
    assert doc["format"] == "nofslint-baseline/2" and doc["findings"]
    assert lint(repo, "--baseline", str(baseline)).exit_code == 0
    bugs = repo / "fs/demofs/bugs.c"
    bugs.write_text("\n\n/* moved */\n" + bugs.read_text())
    assert lint(repo, "--baseline", str(baseline)).exit_code == 0
    clean = repo / "fs/demofs/clean.c"
    clean.write_text(clean.read_text() + NEW_BUG)
    result = lint(repo, "--baseline", str(baseline), "--format", "json")
    assert json_findings(result) == [("fs/demofs/clean.c", "demofs_new_table", "vmalloc-nofs")]
    baseline.write_text('{"format": "something-else"}')
    bad = lint(repo, "--baseline", str(baseline))
    assert bad.exit_code == 2 and "not a nofslint baseline" in bad.output


def test_kbuild_checker_prints_one_files_findings_and_exits_0(repo: Path) -> None:
    args = ["kbuild", "-D__linux__", "-Dlinux", "-D__STDC__", "-Dunix", "-D__unix__",
            "-Wbitwise", "-Wno-return-void", "--arch=x86", "-mlittle-endian", "-m64",
            "-Wp,-MMD,fs/demofs/.bugs.o.d", "-nostdinc", "-I./arch/x86/include",
            "-include", "./include/linux/compiler-version.h", "-D__KERNEL__",
            "-DKBUILD_MODNAME=\"demofs\"", "-fmacro-prefix-map=./=", "-O2",
            str(repo / "fs/demofs/bugs.c")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines() if line]
    assert lines and all(": error: " in line and "bugs.c:" in line for line in lines)
    assert "no whole-tree run of" in result.stderr  # not under make: said every time
    assert "once per build" not in result.stderr
    none = CliRunner().invoke(main, ["kbuild", "-D__KERNEL__"])
    assert none.exit_code == 0 and "no .c file" in none.output
    assert "--help" in none.output


def test_kbuild_help_prints_help() -> None:
    for flag in ("--help", "-h"):
        result = CliRunner().invoke(main, ["kbuild", flag])
        assert result.exit_code == 0
        assert "Usage: main kbuild" in result.output and "make C=1" in result.output
        assert "no .c file" not in result.output


def test_kbuild_uses_the_last_whole_tree_run(tmp_path: Path) -> None:
    repo = repo_from(NOFAIL, tmp_path / "linux")
    target = str(repo / "fs/demofs/inode.c")
    before = CliRunner().invoke(main, ["kbuild", "-D__KERNEL__", target])
    assert "[nofail-in-reclaim]" not in before.output  # no whole-tree run yet
    assert lint(repo).exit_code == 1
    after = CliRunner().invoke(main, ["kbuild", "-D__KERNEL__", target])
    assert after.exit_code == 0 and after.output.count("[nofail-in-reclaim]") == 4


def test_kbuild_never_stops_the_build_on_a_bad_config(repo: Path) -> None:
    (repo / ".nofslint.toml").write_text("selct = []\n")
    result = CliRunner().invoke(main, ["kbuild", "-D__KERNEL__", str(repo / "fs/demofs/bugs.c")])
    assert result.exit_code == 0 and "selct: unknown key" in result.output
