"""The small things a newcomer trips on (issue 23, item 6): progress on a terminal, summaries
that say what was analysed, checkpatch output that does not pretend, reply mails from the
user, clear refusals and "did you mean"."""

from __future__ import annotations

import email
import io
import os
import pty
import select
import shutil
import subprocess
import sys
import threading
import time
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_support import FIXTURES

from nofslint.cli.app import main
from nofslint.cli.progress import Terminal

TREE_510 = FIXTURES / "vmalloc-nofs" / "linux-5.10"
NOFSLINT = Path(sys.executable).with_name("nofslint")
NEW_BUG = "\nstatic void *demofs_new_table(size_t len)\n{\n\treturn __vmalloc(len, GFP_NOFS);\n}\n"
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    dest = tmp_path / "linux"
    shutil.copytree(TREE_510, dest, ignore=shutil.ignore_patterns("*.fixed"))
    return dest


@pytest.fixture
def repo(tree: Path) -> Path:
    git(tree, "init", "-q")
    git(tree, "add", "-A")
    git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return tree


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


# -- progress on a terminal ----------------------------------------------------------------

def on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run nofslint with stderr on a pseudo-terminal (stdout a pipe, as `nofslint check |
    less` would): its exit code, stdout, and what the terminal showed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(NOFSLINT), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    out = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(timeout=60), out, shown.decode(errors="replace")


def test_progress_shows_every_file_and_each_phase_on_a_terminal(tree: Path,
                                                                tmp_path: Path) -> None:
    files = len([p for p in tree.rglob("*") if p.suffix in (".c", ".h")])
    args = ["check", ".", "-j", "1", "--cache-dir", str(tmp_path / "cache")]
    # Warm: every file's facts from the cache, still counted (--diff: the saved run's
    # findings are not reused, so the run reads and links again).
    for run, extra in (("cold", []), ("warm", ["--diff"])):
        code, out, shown = on_a_terminal(args + extra, tree)
        assert code == 1, shown
        assert f"{files}/{files} files" in shown, (run, shown)
        assert "linking" in shown and "whole-tree rule " in shown, (run, shown)
        assert " s" in shown  # the elapsed time
        assert shown.rindex("\r\x1b[K") > shown.rindex("whole-tree rule")  # cleared after
        assert "\x1b" not in out and "reading " not in out  # stdout is clean
        assert shown.count(f"reading {files}/{files} files") == 1


def test_no_progress_when_stderr_is_not_a_terminal(tree: Path) -> None:
    done = subprocess.run([str(NOFSLINT), "check", ".", "-j", "1"], cwd=tree,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr == ""


def test_a_long_phase_shows_its_time_going_up() -> None:
    """A whole-tree rule runs for seconds without calling back: the line still moves."""
    shown = io.StringIO()
    terminal = Terminal(shown)
    terminal.phase("whole-tree rule wq-flush-reclaim")
    time.sleep(1.3)
    terminal.phase(None)
    assert "\rwhole-tree rule wq-flush-reclaim: 0 s\x1b[K" in shown.getvalue()
    assert "\rwhole-tree rule wq-flush-reclaim: 1 s\x1b[K" in shown.getvalue()
    assert shown.getvalue().endswith("\r\x1b[K")
    assert not [t for t in threading.enumerate() if t.name == "nofslint-progress"]


# -- summaries -----------------------------------------------------------------------------

def test_the_summary_after_diff_does_not_point_to_diff(tree: Path) -> None:
    plain = invoke("check", str(tree))
    assert "(--diff to see, --fix to apply)" in plain.stdout
    diff = invoke("check", str(tree), "--diff")
    assert diff.stdout.startswith("--- a/")
    assert "with a fix." in diff.stderr and "--diff" not in diff.stderr


@needs_git
def test_staged_with_nothing_staged_says_so(repo: Path) -> None:
    result = invoke("check", str(repo), "--staged")
    assert result.exit_code == 0 and result.stdout == "Nothing staged.\n"
    result = invoke("check", str(repo / "fs"), "--staged")
    assert result.stdout == f"Nothing staged under {repo / 'fs'}.\n"
    result = invoke("check", str(repo), "--diff-from", "HEAD")
    assert result.exit_code == 0 and result.stdout == "No changes since HEAD.\n"
    # Something staged: what it introduces, in how many files it touches.
    clean = repo / "fs/demofs/clean.c"
    clean.write_text(clean.read_text() + NEW_BUG)
    git(repo, "add", "-A")
    result = invoke("check", str(repo), "--staged")
    last = result.stdout.splitlines()[-1]
    assert result.exit_code == 1
    assert last.startswith("Found 1 finding (1 error) introduced by the staged change; ")
    assert last.endswith(" files analysed, 1 touched by it; 1 with a fix (--diff to see).")


def format_patch(repo: Path, rel: str, text: str) -> Path:
    (repo / rel).write_text(text)
    git(repo, "-c", "user.name=A Developer", "-c", "user.email=dev@example.org",
        "commit", "-qam", "demofs: add a table allocator")
    out = Path(git(repo, "format-patch", "-1", "-o", str(repo.parent / "out")).strip())
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    return out


@needs_git
def test_check_patch_summary_tells_analysed_from_touched(repo: Path) -> None:
    clean = repo / "fs/demofs/clean.c"
    patch = format_patch(repo, "fs/demofs/clean.c", clean.read_text() + NEW_BUG)
    result = invoke("check-patch", "--tree", str(repo), str(patch))
    last = result.stdout.splitlines()[-1]
    assert last.startswith("Found 1 finding (1 error) introduced by the patch; ")
    assert " files analysed, 1 touched by it; 1 with a fix." in last
    assert "--diff" not in last and "--fix" not in last  # check-patch has neither


# -- checkpatch format of files --------------------------------------------------------------

def test_checkpatch_format_of_files_marks_nothing_added(tree: Path) -> None:
    out = invoke("check", str(tree), "--format", "checkpatch").stdout.splitlines()
    quoted = [line for line in out if line.startswith(("+", " "))]
    assert quoted and not [line for line in quoted if line.startswith("+")]
    files = len([p for p in tree.rglob("*") if p.suffix in (".c", ".h")])
    assert out[-1].startswith("total: ") and out[-1].endswith(f", {files} files analysed")
    assert "lines checked" not in out[-1]


# -- reply mails -------------------------------------------------------------------------------

@needs_git
def test_reply_mails_come_from_the_user(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOFSLINT_FROM", raising=False)
    monkeypatch.setenv("HOME", str(repo.parent))  # no ~/.gitconfig of the user running this
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    clean = repo / "fs/demofs/clean.c"
    patch = format_patch(repo, "fs/demofs/clean.c", clean.read_text() + NEW_BUG)
    args = ["check-patch", "--tree", str(repo), "--format", "email", str(patch)]

    def sender(result) -> str:
        return str(email.message_from_string(result.stdout, policy=policy.default)["From"])

    nobody = invoke(*args)
    assert sender(nobody) == "nofslint <nofslint@localhost>"
    assert "set git's user.name and user.email, or pass --from" in nobody.stderr
    git(repo, "config", "user.name", "Reviewer Name")
    git(repo, "config", "user.email", "reviewer@example.org")
    from_git = invoke(*args)
    assert sender(from_git) == "Reviewer Name <reviewer@example.org>"
    assert from_git.stderr == ""
    monkeypatch.setenv("NOFSLINT_FROM", "Env Person <env@example.org>")
    assert sender(invoke(*args)) == "Env Person <env@example.org>"
    assert sender(invoke(*args, "--from", "Flag Person <flag@example.org>")) == \
        "Flag Person <flag@example.org>"


@needs_git
def test_the_trees_git_config_runs_nothing_when_read(repo: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading user.name must not run the tree's fsmonitor (or any configured program)."""
    monkeypatch.delenv("NOFSLINT_FROM", raising=False)
    ran = tmp_path / "ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {ran}\n")
    hook.chmod(0o755)
    clean = repo / "fs/demofs/clean.c"
    patch = format_patch(repo, "fs/demofs/clean.c", clean.read_text() + NEW_BUG)
    git(repo, "config", "core.fsmonitor", str(hook))
    git(repo, "config", "user.name", "R")
    git(repo, "config", "user.email", "r@example.org")
    result = invoke("check-patch", "--tree", str(repo), "--format", "email", str(patch))
    assert "From: R <r@example.org>" in result.stdout
    assert not ran.exists()


# -- refusals and suggestions -------------------------------------------------------------------

def test_a_file_that_is_not_c_is_refused(tree: Path) -> None:
    (tree / "README.md").write_text("# not C\n")
    result = invoke("check", str(tree / "README.md"))
    assert result.exit_code == 2
    assert "is not a C file (.c or .h)" in result.output
    # Directories (holding such files) and C files still work.
    assert invoke("check", str(tree)).exit_code == 1
    assert invoke("check", str(tree / "fs/demofs/bugs.c")).exit_code == 1


@pytest.mark.parametrize(("version", "warning"), [
    ("99.1", "newer than the newest kernel nofslint models (6.12): it is linted as 6.12"),
    ("6.13", "newer than the newest kernel nofslint models"),
    ("5.99", "no such kernel release"),
    ("1.0", "no such kernel release"),
])
def test_kernel_versions_nofslint_does_not_model_are_warned(tree: Path, version: str,
                                                           warning: str) -> None:
    result = invoke("check", str(tree), "--kernel-version", version)
    assert result.exit_code in (0, 1) and warning in result.stderr  # used, as it says
    assert "warning: --kernel-version" not in invoke(
        "check", str(tree), "--kernel-version", "5.10").stderr


def test_a_misspelt_rule_id_gets_did_you_mean(tree: Path) -> None:
    for option in ("--select", "--ignore"):
        result = invoke("check", str(tree), option, "vmaloc-nofs")
        assert result.exit_code == 2
        assert "unknown rule 'vmaloc-nofs' (did you mean 'vmalloc-nofs'?)" in result.output
    result = invoke("check", str(tree), "--select", "all")
    assert "(did you mean 'ALL'?)" in result.output
    (tree / ".nofslint.toml").write_text('[severity]\nnofail-in-reclam = "error"\n')
    result = invoke("check", str(tree))
    assert result.exit_code == 2 and "did you mean 'nofail-in-reclaim'?" in result.output
    result = invoke("explain", "wq-flush-reclam")
    assert result.exit_code == 2 and "did you mean 'wq-flush-reclaim'?" in result.output
