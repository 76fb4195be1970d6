"""Issue 25: a linted tree must never get code executed, and a stopped run must not leave
anything behind.

Every test runs the real ``nofslint`` console script (the one beside this Python) in a
subprocess, as a user would: plugin trust, git's configuration and signal handling all
depend on how the process starts. Code a tree plants writes a marker file when it runs;
the marker must never appear.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixture_support import planted_rule

NOFSLINT = Path(sys.executable).parent / "nofslint"
pytestmark = pytest.mark.skipif(not NOFSLINT.exists(), reason="needs the nofslint script")

MAKEFILE = "VERSION = 6\nPATCHLEVEL = 12\n"
BUGS_C = "void f(void)\n{\n\tvoid *p = kmalloc(16, GFP_KERNEL);\n\tkfree(p);\n}\n"
RULE = planted_rule("warning")


def nofslint(*args: str, cwd: Path, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NOFSLINT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def plant(directory: Path, marker: Path) -> None:
    """A rules directory whose module writes ``marker`` when imported."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "planted.py").write_text(f"open({str(marker)!r}, 'a').write('ran\\n')\n"
                                          + RULE)


def kernel_tree(top: Path) -> Path:
    (top / "fs" / "demofs").mkdir(parents=True)
    (top / "include").mkdir()
    (top / "build").mkdir()
    (top / "Makefile").write_text(MAKEFILE)
    (top / "fs" / "demofs" / "bugs.c").write_text(BUGS_C)
    return top


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PLANTED-CODE-RAN"


@pytest.fixture
def evil(tmp_path: Path, marker: Path) -> Path:
    """A tree whose own config names its own code, and a symlink to it."""
    tree = kernel_tree(tmp_path / "evil")
    plant(tree / "tools" / "rules", marker)
    (tree / ".nofslint.toml").write_text('plugins = ["tools/rules"]\n')
    (tmp_path / "evil-link").symlink_to(tree)
    return tree


def assert_refused(done: subprocess.CompletedProcess[str], marker: Path, code: int = 2) -> None:
    assert not marker.exists(), "the tree's code ran"
    assert done.returncode == code, done.stderr
    assert "--allow-config-plugins" in done.stderr


# -- 1. plugins named by the linted tree ------------------------------------------------------

@pytest.mark.parametrize("target", ["evil", "evil-link", "evil/../evil", "evil-link/fs/..",
                                    "evil/fs/../fs/demofs/bugs.c", "evil-link/fs/demofs"])
def test_check_refuses_the_trees_plugins_however_the_path_is_spelt(
        tmp_path: Path, evil: Path, marker: Path, target: str) -> None:
    assert_refused(nofslint("check", "--no-cache", target, cwd=tmp_path), marker)


@pytest.mark.parametrize("target", ["evil-link", "evil/../evil", "evil/fs/../fs/demofs"])
def test_a_users_config_naming_the_trees_code_is_refused_too(
        tmp_path: Path, evil: Path, marker: Path, target: str) -> None:
    # The config is trusted, but the directory it names lies in what is linted.
    (tmp_path / "x.toml").write_text(f'plugins = ["{evil / "tools" / "rules"}"]\n')
    done = nofslint("check", "--no-cache", "--config", "x.toml", target, cwd=tmp_path)
    assert_refused(done, marker)


@pytest.mark.parametrize("env", [{}, {"srctree": "..", "objtree": "."}], ids=["args", "env"])
def test_kbuild_out_of_tree_build_refuses_the_trees_plugins(
        evil: Path, marker: Path, env: dict[str, str]) -> None:
    # What `make O=build C=1 CHECK="nofslint kbuild"` runs, from the build directory.
    done = nofslint("kbuild", "-D__KERNEL__", "-I../include", "../fs/demofs/bugs.c",
                    cwd=evil / "build", env=env)
    assert_refused(done, marker, code=0)


def test_a_fake_root_inside_the_tree_is_still_the_tree(tmp_path: Path, marker: Path) -> None:
    tree = kernel_tree(tmp_path / "linux")
    plant(tree / "scripts" / "nofs", marker)
    fake = tree / "drivers" / "fake"
    fake.mkdir(parents=True)
    (fake / "Makefile").write_text("# kbuild\n" + MAKEFILE)
    (fake / "x.c").write_text(BUGS_C)
    (fake / ".nofslint.toml").write_text('plugins = ["../../scripts/nofs"]\n')
    assert_refused(nofslint("check", "--no-cache", "drivers/fake", cwd=tree), marker)
    # Not only because the config is the tree's: the outer root is the tree too.
    (tmp_path / "x.toml").write_text(f'plugins = ["{tree / "scripts" / "nofs"}"]\n')
    assert_refused(nofslint("check", "--no-cache", "--config", str(tmp_path / "x.toml"),
                            "drivers/fake", cwd=tree), marker)
    assert_refused(nofslint("kbuild", "-D__KERNEL__", "drivers/fake/x.c", cwd=tree), marker,
                   code=0)


def test_the_trees_config_cannot_name_code_beside_the_tree(tmp_path: Path,
                                                           marker: Path) -> None:
    # A tarball holding linux/ and, next to it, the code linux/.nofslint.toml names.
    tree = kernel_tree(tmp_path / "linux")
    plant(tmp_path / "rules", marker)
    (tree / ".nofslint.toml").write_text('plugins = ["../rules"]\n')
    assert_refused(nofslint("check", "--no-cache", "linux", cwd=tmp_path), marker)


def test_allow_config_plugins_still_runs_the_trees_plugins(tmp_path: Path, evil: Path,
                                                           marker: Path) -> None:
    done = nofslint("check", "--no-cache", "--allow-config-plugins", "evil-link", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert marker.exists()


def test_a_config_outside_the_tree_loads_the_plugins_it_names(tmp_path: Path, evil: Path,
                                                              marker: Path) -> None:
    home = tmp_path / "home"
    plant(home / "rules", marker)
    (home / "x.toml").write_text('plugins = ["rules"]\nselect = ["planted-rule"]\n')
    done = nofslint("check", "--no-cache", "--config", str(home / "x.toml"), "evil",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert marker.exists()


def test_kbuild_names_a_missing_file_plainly(tmp_path: Path) -> None:
    tree = kernel_tree(tmp_path / "linux")
    done = nofslint("kbuild", "-D__KERNEL__", "fs/demofs/gone.c", cwd=tree)
    assert done.returncode == 0
    assert "fs/demofs/gone.c: no such file" in done.stderr
    assert "disappeared" not in done.stderr


# -- 2. the tree's git configuration ------------------------------------------------------------

def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                    *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, marker: Path) -> Path:
    """A tree with a staged change and an unstaged one after it (with fresh stat data,
    so git re-reads the file through its filter rather than trust the index), whose
    .git/config and .gitattributes then try to run a script."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    tree = kernel_tree(tmp_path / "linux")
    git(tree, "init", "-q")
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "base")
    bugs = tree / "fs" / "demofs" / "bugs.c"
    bugs.write_text(BUGS_C + "static int staged;\n")
    git(tree, "add", "fs/demofs/bugs.c")
    time.sleep(1.1)
    bugs.write_text(BUGS_C + "static int staged;\nstatic int unstaged;\n")
    script = tmp_path / "planted.sh"
    script.write_text(f"#!/bin/sh\necho ran >> '{marker}'\ncat\n")
    script.chmod(0o755)
    for key in ["core.fsmonitor", "diff.external", "filter.planted.clean",
                "filter.planted.smudge", "filter.planted.process", "diff.planted.textconv",
                "diff.planted.command"]:
        git(tree, "config", key, str(script))
    git(tree, "config", "filter.planted.required", "true")
    (tree / ".gitattributes").write_text("*.c filter=planted diff=planted\n")
    return tree


@pytest.mark.parametrize("mode", [["--staged"], ["--diff-from", "HEAD"]], ids=["staged", "rev"])
def test_git_runs_nothing_the_repository_configures(repo: Path, marker: Path,
                                                    mode: list[str]) -> None:
    done = nofslint("check", "--no-cache", *mode, ".", cwd=repo)
    assert not marker.exists(), "the repository's git config ran a program"
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_git_works_on_a_tree_someone_else_owns(repo: Path, marker: Path) -> None:
    for path in [repo, *repo.rglob("*")]:
        os.lchown(path, 12345, 12345)
    done = nofslint("check", "--no-cache", "--diff-from", "HEAD", ".", cwd=repo)
    assert not marker.exists()
    assert done.returncode == 0, done.stderr


# -- 3. SIGTERM / SIGHUP ----------------------------------------------------------------------

def big_tree(top: Path, files: int = 2400) -> Path:
    """A fake kernel tree that takes well over ten seconds to lint with --jobs 2: the
    signal tests stop it early, and must never see it finish first."""
    top.mkdir()
    (top / "Makefile").write_text(MAKEFILE)
    body = "".join(f"static void *f{j}(void)\n{{\n\treturn kmalloc({j}, GFP_NOFS | "
                   "__GFP_NOFAIL);\n}\n" for j in range(150))
    for i in range(files):
        directory = top / "fs" / f"d{i // 100}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i}.c").write_text(body)
    return top


def _default_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every other process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        found.append((int(entry.name), ppid, cmdline))
    return found


def survivors(pid: int, unique: str) -> list[int]:
    """Processes whose parent is ``pid`` or whose command line names ``unique``."""
    return [p for p, ppid, cmdline in processes() if ppid == pid or unique in cmdline]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize(("command", "sig"), [("check", signal.SIGTERM),
                                              ("check", signal.SIGHUP),
                                              ("check-patch", signal.SIGTERM),
                                              ("check", signal.SIGKILL)])
def test_a_stopped_run_leaves_no_worker_and_no_scratch(tmp_path: Path, command: str,
                                                       sig: signal.Signals) -> None:
    """The run exits 128 + the signal (143 for SIGTERM), its workers go with it (they
    hold the caller's pipes: communicate() would never return), and check-patch's
    scratch copies are removed. Even SIGKILL takes the workers along (Linux)."""
    tree = big_tree(tmp_path / "linux")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    if command == "check":
        args = ["check", "--no-cache", "--jobs", "2", str(tree)]
    else:
        (tmp_path / "p.diff").write_text(
            "--- a/fs/d0/f0.c\n+++ b/fs/d0/f0.c\n@@ -1,1 +1,2 @@\n"
            " static void *f0(void)\n+/* a comment */\n")
        args = ["check-patch", "--no-cache", "--jobs", "2", "--whole-tree", "--tree",
                str(tree), str(tmp_path / "p.diff")]
    # A run under nohup (a CI runner may be one) inherits SIGHUP ignored, and nofslint
    # rightly keeps an ignored signal ignored: give the child the default disposition.
    proc = subprocess.Popen([str(NOFSLINT), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "TMPDIR": str(scratch)},
                            start_new_session=True, preexec_fn=_default_signals)
    try:
        deadline = time.monotonic() + 20  # until the workers run (and the scratch is there)
        while not (any(ppid == proc.pid for _, ppid, _ in processes())
                   and (command == "check" or any(scratch.iterdir()))):
            assert proc.poll() is None and time.monotonic() < deadline, "no workers seen"
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == (-sig if sig == signal.SIGKILL else 128 + sig), err
        deadline = time.monotonic() + 5
        while survivors(proc.pid, str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert survivors(proc.pid, str(tmp_path)) == []
        assert list(scratch.iterdir()) == []
    finally:  # whatever failed, leave nothing running (the group outlives its leader)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
