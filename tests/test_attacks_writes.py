"""Issue 25: what nofslint writes, run as root on a tree it was sent.

Every test runs the installed ``nofslint`` console script on a small fake
kernel tree: outputs never replace what nofslint did not create (a device,
a pipe, a directory, the user's files in a cache directory), and ``--fix``
honours permissions, owners, hard links and the tree's boundary.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixture_support import FIXTURES

NOFSLINT = Path(sys.executable).parent / "nofslint"
# One function with a fixable prefer-nofs-scope finding (opt-in: always --select it).
BUGS = b"".join((FIXTURES / "prefer-nofs-scope" / "linux-6.12" / "fs" / "pfs" / "alloc.c"
                 ).read_bytes().splitlines(keepends=True)[:15])
SELECT = ("--select", "prefer-nofs-scope")
NOBODY = 65534


def make_tree(root: Path) -> Path:
    (root / "fs" / "demofs").mkdir(parents=True)
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n")
    (root / "fs" / "demofs" / "bugs.c").write_bytes(BUGS)
    return root


def nofslint(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
             preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NOFSLINT), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, preexec_fn=preexec, timeout=300,
                          errors="surrogateescape")


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(".nofslint")]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "linux")


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, setuid)")


# -- 1. the one writer: -o and --write-baseline ----------------------------------

@needs_root
@pytest.mark.parametrize("option", ["-o", "--write-baseline"])
def test_a_character_device_stays_a_device(tree: Path, tmp_path: Path, option: str) -> None:
    null = tmp_path / "null"  # our own /dev/null: the real /dev is never touched
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    proc = nofslint("check", tree, *SELECT, option, null, cwd=tmp_path)
    assert proc.returncode == (1 if option == "-o" else 0), proc.stderr
    st = os.stat(null)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert not temporaries(tmp_path)


@pytest.mark.parametrize("option", ["-o", "--write-baseline"])
def test_a_fifo_is_written_into_not_replaced(tree: Path, tmp_path: Path, option: str) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    proc = nofslint("check", tree, *SELECT, option, fifo, cwd=tmp_path)
    reader.join(60)
    assert not reader.is_alive() and proc.returncode == (1 if option == "-o" else 0), proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and not temporaries(tmp_path)
    if option == "-o":
        assert b"[prefer-nofs-scope]" in got[0]
    else:
        assert json.loads(got[0])["findings"]


def test_dash_is_standard_output(tree: Path, tmp_path: Path) -> None:
    proc = nofslint("check", tree, *SELECT, "-o", "-", cwd=tmp_path)
    assert proc.returncode == 1 and "[prefer-nofs-scope]" in proc.stdout
    baseline = nofslint("check", tree, *SELECT, "--write-baseline", "-", cwd=tmp_path)
    assert baseline.returncode == 0 and json.loads(baseline.stdout)["findings"]
    assert not (tmp_path / "-").exists()


def test_a_directory_or_a_socket_is_refused(tree: Path, tmp_path: Path) -> None:
    target = tmp_path / "reports"
    target.mkdir()
    proc = nofslint("check", tree, *SELECT, "-o", target, cwd=tmp_path)
    assert proc.returncode == 2
    assert f"cannot write --output {target}: is a directory" in proc.stderr
    assert target.is_dir() and not list(target.iterdir())
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
        proc = nofslint("check", tree, *SELECT, "-o", tmp_path / "sock", cwd=tmp_path)
        assert proc.returncode == 2 and "is a socket" in proc.stderr
        assert stat.S_ISSOCK(os.stat(tmp_path / "sock").st_mode)
    finally:
        sock.close()
    assert not temporaries(tmp_path)


# -- 2. --cache-dir on a directory holding the user's files -------------------------

def _aged(path: Path, days: float = 40) -> None:
    past = time.time() - days * 24 * 3600
    os.utime(path, (past, past))


NEAR_MISSES = ["notes.txt", ".tmp-x", "blob-x", "latest-x", "0" * 63, "0" * 65, "manifest-x",
               "G" * 64, ".tmp-killed", ".x.0123.nofslint"]


def _user_files(cache: Path, layout: str) -> dict[Path, bytes]:
    """71 files of the user's, a month old, some named almost as the cache names its own."""
    where = {"beside": [cache / "results", cache / "photos"],
             "named like the cache": [cache / "results", cache / "fedcba9876543210" / "cd"]}
    files: dict[Path, bytes] = {}
    for i in range(71):
        folder = where[layout][i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        name = NEAR_MISSES[i % len(NEAR_MISSES)] + f"{i}" * (i >= len(NEAR_MISSES))
        files[folder / name] = f"user file {i}\n".encode()
    for path, data in files.items():
        path.write_bytes(data)
        _aged(path)
    return files


@pytest.mark.parametrize("layout", ["beside", "named like the cache"])
def test_cache_dir_never_prunes_the_users_files(tree: Path, tmp_path: Path, layout: str) -> None:
    cache = tmp_path / "mine"
    files = _user_files(cache, layout)
    args = ("check", tree, *SELECT, "--cache-dir", cache)

    def run(*more: str) -> None:
        for stamp in cache.rglob(".last-prune"):
            stamp.unlink()  # prune now, not once an hour
        assert nofslint(*args, *more, cwd=tmp_path).returncode == 1

    run()
    (home,) = {tag.parent for tag in cache.rglob("CACHEDIR.TAG")}
    assert home == (cache if layout == "named like the cache" else cache / "nofslint")
    # Old files the cache did write go: proof that pruning ran.
    stale = [home / "results" / ("e" * 64), home / "0123456789abcdef" / "ab" / ("ab" * 32)]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"stale")
        _aged(path)
    with open(tree / "fs" / "demofs" / "bugs.c", "ab") as fh:
        fh.write(b"/* edited: the run saves (and prunes) results */\n")
    run()  # saves results: the results are pruned
    run("--diff")  # lints afresh: the facts are pruned
    assert not any(path.exists() for path in stale)
    assert sorted(p for p in files if not p.exists()) == []
    assert {p: p.read_bytes() for p in files if p.exists()} == files


# -- 3. --fix honours permissions, owners, hard links and the tree's boundary --------

def test_fix_refuses_a_read_only_file_and_fixes_the_others(tree: Path) -> None:
    ro = tree / "fs" / "demofs" / "ro.c"
    ro.write_bytes(BUGS)
    ro.chmod(0o444)  # root could write it: nofslint must not
    proc = nofslint("check", ".", *SELECT, "--fix", "--no-cache", cwd=tree)
    assert proc.returncode == 1  # the refused file's finding remains
    assert "fs/demofs/ro.c: not fixed: it is read-only (mode 0444)" in proc.stderr
    assert ro.read_bytes() == BUGS and stat.S_IMODE(ro.stat().st_mode) == 0o444
    assert b"memalloc_nofs_save" in (tree / "fs" / "demofs" / "bugs.c").read_bytes()


def test_fix_keeps_hard_links(tree: Path, tmp_path: Path) -> None:
    bugs = tree / "fs" / "demofs" / "bugs.c"
    other = tmp_path / "bugs-backup.c.orig"
    os.link(bugs, other)
    inode = bugs.stat().st_ino
    proc = nofslint("check", ".", *SELECT, "--fix", "--no-cache", cwd=tree)
    assert proc.returncode == 0, proc.stderr
    st = bugs.stat()
    assert st.st_ino == inode and st.st_nlink == 2 and os.path.samefile(bugs, other)
    assert b"memalloc_nofs_save" in other.read_bytes() and not temporaries(tmp_path)


def test_fix_follows_a_symlink_out_of_the_tree_only_when_told(tree: Path, tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere" / "victim.c"
    victim.parent.mkdir()
    victim.write_bytes(BUGS)
    link = tree / "fs" / "demofs" / "link.c"
    link.symlink_to(victim)
    proc = nofslint("check", ".", *SELECT, "--fix", "--no-cache", cwd=tree)
    assert proc.returncode == 1
    assert (f"fs/demofs/link.c: not fixed: a symbolic link leads to {victim}, outside the "
            "linted tree; --fix-follow-symlinks writes there") in proc.stderr
    assert victim.read_bytes() == BUGS
    assert b"memalloc_nofs_save" in (tree / "fs" / "demofs" / "bugs.c").read_bytes()
    proc = nofslint("check", ".", *SELECT, "--fix", "--fix-follow-symlinks", "--no-cache",
                    cwd=tree)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and b"memalloc_nofs_save" in victim.read_bytes()


@pytest.fixture
def shared_tree() -> Iterator[Path]:
    """A tree that user nobody can reach (pytest's tmp_path is private to root)."""
    top = Path(tempfile.mkdtemp(prefix="nofslint-shared-"))
    try:
        top.chmod(0o755)
        yield make_tree(top / "linux")
    finally:
        shutil.rmtree(top)


def _as_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


# When nobody cannot reach the interpreter (a pyenv under /root, mode 0700), it
# starts as root, loads nofslint with a first run, then drops privileges before
# the console script's entry point runs the second.
_DROP_AFTER_START = """
import os, sys
from nofslint.cli.app import console, main
try:
    main([a for a in sys.argv[1:] if a != "--fix"])
except SystemExit:
    pass
os.setgroups([]); os.setgid(NOBODY); os.setuid(NOBODY)
sys.argv = ["nofslint", *sys.argv[1:]]
console()
""".replace("NOBODY", str(NOBODY))


def nofslint_as_nobody(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": "/nonexistent"}
    try:
        return nofslint(*args, cwd=cwd, env=env, preexec=_as_nobody)
    except PermissionError:  # nobody may not execute the console script's interpreter
        return subprocess.run([sys.executable, "-c", _DROP_AFTER_START, *args], cwd=cwd,
                              env=env, capture_output=True, text=True, timeout=300)


@needs_root
def test_fix_as_another_user_never_takes_a_file_over(shared_tree: Path) -> None:
    folder = shared_tree / "fs" / "demofs"
    folder.chmod(0o777)  # nobody may create and rename files here...
    (folder / "bugs.c").chmod(0o644)  # ...but not write root's file
    shared = folder / "shared.c"  # writable by all, still root's
    shared.write_bytes(BUGS)
    shared.chmod(0o666)
    grouped = folder / "grouped.c"  # nobody's, in a group nobody is not in
    grouped.write_bytes(BUGS)
    os.chown(grouped, NOBODY, 0)
    before = {p.name: (p.read_bytes(), p.stat().st_uid, p.stat().st_gid)
              for p in folder.iterdir()}
    proc = nofslint_as_nobody("check", ".", *SELECT, "--fix", "--no-cache", "-j", "1",
                              cwd=shared_tree)
    assert proc.returncode == 1, proc.stderr
    assert "fs/demofs/bugs.c: not fixed: permission denied (no write access to the file)" \
        in proc.stderr
    assert "fs/demofs/shared.c: not fixed: it belongs to uid 0, not to you" in proc.stderr
    assert "fs/demofs/grouped.c: not fixed: cannot keep its owner 65534:0" in proc.stderr
    after = {p.name: (p.read_bytes(), p.stat().st_uid, p.stat().st_gid)
             for p in folder.iterdir()}
    assert after == before and not temporaries(shared_tree)


# -- 4. a file name that is not UTF-8 ------------------------------------------------

def test_a_file_name_that_is_not_utf8_is_linted_with_the_cache(tree: Path,
                                                               tmp_path: Path) -> None:
    folder = os.fsencode(tree / "fs" / "demofs")
    with open(folder + b"/bad\xff.c", "wb") as fh:
        fh.write(BUGS)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    runs = [nofslint("check", ".", *SELECT, "--format", "json", cwd=tree, env=env)
            for _ in range(2)]  # cold, then warm
    for proc in runs:
        assert proc.returncode == 1 and "internal error" not in proc.stderr, proc.stderr
    report = json.loads(runs[0].stdout)
    assert not report["errors"]
    assert {f["path"] for f in report["findings"]} == {"fs/demofs/bad\udcff.c",
                                                       "fs/demofs/bugs.c"}
    assert runs[1].stdout == runs[0].stdout
    out = tmp_path / "baseline.json"
    assert nofslint("check", ".", *SELECT, "--write-baseline", out, cwd=tree,
                    env=env).returncode == 0
    assert nofslint("check", ".", *SELECT, "--baseline", out, cwd=tree,
                    env=env).returncode == 0


# -- 5. a relative XDG_CACHE_HOME ------------------------------------------------------

def test_a_relative_xdg_cache_home_is_ignored(tree: Path, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": "cache", "HOME": str(tmp_path / "home")}
    assert nofslint("check", ".", *SELECT, cwd=tree, env=env).returncode == 1
    assert not (tree / "cache").exists()  # never inside the linted tree
    assert (tmp_path / "home" / ".cache" / "nofslint" / "CACHEDIR.TAG").is_file()


# -- 6. old Mac line endings -------------------------------------------------------------

def test_a_fix_in_a_cr_only_file_uses_cr(tree: Path) -> None:
    source = FIXTURES / "vmalloc-nofs" / "linux-5.10" / "fs" / "demofs" / "fixes.c"
    target = tree / "fs" / "demofs" / "bugs.c"
    target.write_bytes(source.read_bytes().replace(b"\n", b"\r"))
    proc = nofslint("check", ".", "--kernel-version", "5.10", "--fix", "--no-cache", cwd=tree)
    assert proc.returncode in (0, 1) and "fixed 0 findings" not in proc.stderr, proc.stderr
    fixed = target.read_bytes()
    assert b"memalloc_nofs_save" in fixed and b"\n" not in fixed
