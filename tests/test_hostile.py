"""Hostile input: nothing a tree can hold crashes a run, stalls it, or hides other findings.

Every case lints a small v5.10 tree holding one known bug (fs/x/bug.c) next to
the hostile file: the bug must still be found, the hostile file either linted
or listed in ``errors`` with a reason, and no error may be internal.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nofslint.kernel.tree as tree_module
import nofslint.run.loading as loading
import nofslint.run.stats as run_stats
import nofslint.run.workers as workers
from nofslint.analysis.paths import Walk
from nofslint.analysis.scopes import scope_walk
from nofslint.extract.facts import extract
from nofslint.kernel.tree import KernelTree
from nofslint.plugins.registry import builtin_rules, select_rules
from nofslint.run.engine import run
from nofslint.run.results import RunResult

BUG = b"static void *f(int n)\n{\n\treturn __vmalloc(n, GFP_NOFS);\n}\n"


def make_tree(root: Path) -> Path:
    (root / "fs" / "x").mkdir(parents=True)
    (root / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\n")
    (root / "fs" / "x" / "bug.c").write_bytes(BUG)
    return root


def lint(root: Path, jobs: int = 1, cache: Path | None = None) -> RunResult:
    return run([root], select_rules(builtin_rules(), ["ALL"], None), jobs=jobs, cache_root=cache)


def errors(result: RunResult) -> dict[str, str]:
    assert not result.internal_errors, [e for e in result.errors if e.internal]
    return {e.path: e.reason for e in result.errors}


def bug_found(result: RunResult) -> bool:
    return any(f.path == "fs/x/bug.c" and f.rule == "vmalloc-nofs" for f in result.findings)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "linux")


# -- size, depth, length ----------------------------------------------------------

def test_a_50_mb_file_is_refused_at_once(root: Path) -> None:
    line = b"static int generated_%08d = 0x%08x;\n"
    with open(root / "fs" / "x" / "huge.c", "wb") as fh:
        for block in range(50):
            fh.write(b"".join(line % (i, i) for i in range(block * 26000, (block + 1) * 26000)))
    assert (root / "fs" / "x" / "huge.c").stat().st_size > 50 * 10**6
    start = time.perf_counter()
    result = lint(root)
    assert time.perf_counter() - start < 20
    assert "too large" in errors(result)["fs/x/huge.c"]
    assert bug_found(result)


def _nested(depth: int) -> dict[str, bytes]:
    alloc = b"p = kmalloc(1, GFP_NOFS);"
    save = b"\tunsigned int fl = memalloc_nofs_save();\n"
    restore = b"\n\tmemalloc_nofs_restore(fl);\n}\n"
    return {
        "braces": b"void f(void)\n{\n" + save + b"{" * depth + alloc + b"}" * depth + restore,
        "ifs": b"void f(int x)\n{\n" + save + b"if (x) {" * depth + alloc + b"}" * depth
        + restore,
        "loops": b"void f(int x)\n{\n" + save + b"while (x) {" * depth + alloc + b"}" * depth
        + restore,
        "else_chain": b"void f(int x)\n{\n" + save + b"if (x) x++; else " * depth + b"x--;"
        + restore,
        "parens": b"int f(void)\n{\n\treturn " + b"(" * depth + b"1" + b")" * depth + b";\n}\n",
        "calls": b"void f(void)\n{\n\t" + b"g(" * depth + b"kmalloc(1, GFP_NOFS | __GFP_NOFAIL)"
        + b")" * depth + b";\n}\n",
        "masks": b"void f(void)\n{\n\tkmalloc(1, " + b"(" * depth + b"GFP_NOFS" + b")" * depth
        + b");\n}\n",
        "ternaries": b"void f(int x)\n{\n\tx = " + b"x ? " * depth + b"1" + b" : 0" * depth
        + b";\n}\n",
        "initializers": b"static int a[] = " + b"{" * depth + b"1" + b"}" * depth + b";\n",
        "unclosed": b"void f(void)\n{\n" + b"{ if (x) (" * depth + b"\n",
        "closers_only": b"}" * depth + b")" * depth + b"\n",
        "preprocessor": b"#if A\n" * depth + b"int x;\n" + b"#endif\n" * depth,
    }


@pytest.mark.parametrize("kind", sorted(_nested(1)))
def test_10000_deep_nesting(root: Path, kind: str) -> None:
    (root / "fs" / "x" / "deep.c").write_bytes(_nested(10_000)[kind])
    start = time.perf_counter()
    result = lint(root)
    assert time.perf_counter() - start < 30
    reason = errors(result).get("fs/x/deep.c")
    assert reason in (None, "nesting too deep to analyse")
    assert bug_found(result)


def _long_lines(length: int) -> dict[str, bytes]:
    return {
        "expression": b"int f(void) { return " + b"1 + " * (length // 4) + b"1; }\n",
        "comment": b"/*" + b"x" * length + b"*/\n",
        "string": b"static const char *s = \"" + b"x" * length + b"\";\n",
        "identifier": b"int " + b"a" * length + b";\n",
        "arguments": b"void f(void) { g(" + b"a, " * (length // 3) + b"GFP_NOFS); }\n",
        "mask": b"void f(void) { kmalloc(1, " + b"__GFP_NOWARN | " * (length // 15)
        + b"GFP_NOFS); }\n",
        "macro": b"#define M " + b"__GFP_NOWARN | " * (length // 15) + b"GFP_NOFS\n",
        "initializer": b"static struct super_operations s = { "
        + b".evict_inode = f, " * (length // 18) + b"};\n",
    }


@pytest.mark.parametrize("kind", sorted(_long_lines(10)))
def test_100000_character_lines(root: Path, kind: str) -> None:
    (root / "fs" / "x" / "long.c").write_bytes(_long_lines(100_000)[kind])
    result = lint(root)
    assert errors(result) == {}
    assert bug_found(result)


def test_a_finding_after_100000_characters_on_its_line(root: Path) -> None:
    pad = b"/*" + b"x" * 100_000 + b"*/ "
    (root / "fs" / "x" / "bug.c").write_bytes(BUG.replace(b"\treturn", pad + b"return"))
    (finding,) = [f for f in lint(root).findings if f.rule == "vmalloc-nofs"]
    assert (finding.line, finding.column) == (3, len(pad) + 8)


# -- bytes that are not C ---------------------------------------------------------

@pytest.mark.parametrize("name, data, reason", [
    ("elf.c", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "binary"),
    ("nul_at_end.c", BUG + b"\0", "binary"),
    ("utf16.c", "int x;\n".encode("utf-16"), "binary"),
    ("latin1.c", b"int x;\n/* caf\xe9 */\n", "UTF-8 (first bad byte on line 2)"),
    ("surrogate.c", b"/* \xed\xa0\x80 */\n", "UTF-8"),
    ("truncated.c", b"int x; /* \xe2\x82", "UTF-8"),
    ("overlong.c", b"/* \xc0\xaf */\n", "UTF-8"),
])
def test_bytes_that_are_not_c_source(root: Path, name: str, data: bytes, reason: str) -> None:
    (root / "fs" / "x" / name).write_bytes(data)
    result = lint(root)
    assert reason in errors(result)[f"fs/x/{name}"]
    assert bug_found(result)


@pytest.mark.parametrize("data", [
    b"", b"\n\n\n", b"   \t  ", b"/* only a comment */", b"#define X 1", b"\xef\xbb\xbf",
    b"\xef\xbb\xbf" + BUG, b"}", b"{", b"\\", b"\"", b"'", b"/*", b"#if", b"\x0c\n",
])
def test_degenerate_files_are_linted(root: Path, data: bytes) -> None:
    (root / "fs" / "x" / "odd.c").write_bytes(data)
    result = lint(root)
    assert errors(result) == {}
    assert bug_found(result)


def test_crlf_and_cr_sources(root: Path) -> None:
    (root / "fs" / "x" / "crlf.c").write_bytes(BUG.replace(b"\n", b"\r\n"))
    (root / "fs" / "x" / "cr.c").write_bytes(BUG.replace(b"\n", b"\r"))
    result = lint(root)
    assert errors(result) == {}
    where = {(f.path, f.line, f.column) for f in result.findings}
    assert {("fs/x/bug.c", 3, 9), ("fs/x/crlf.c", 3, 9)} <= where


# -- the file system ---------------------------------------------------------------

def test_symlink_loops(root: Path) -> None:
    x = root / "fs" / "x"
    (x / "a.c").symlink_to("b.c")
    (x / "b.c").symlink_to("a.c")
    (x / "self.c").symlink_to("self.c")
    (x / "up").symlink_to("..")  # a directory loop: never walked
    (x / "here.c").symlink_to(".")  # a directory named *.c
    (x / "dangling.c").symlink_to("nowhere.c")
    (x / "alias.c").symlink_to("bug.c")
    result = lint(root)
    reasons = errors(result)
    for name in ("a.c", "b.c", "self.c"):
        assert "symbolic links" in reasons[f"fs/x/{name}"]
    assert "directory" in reasons["fs/x/here.c"]
    assert "disappeared" in reasons["fs/x/dangling.c"]
    assert {f.path for f in result.findings} == {"fs/x/bug.c", "fs/x/alias.c"}
    # Named on the command line, a loop is reported the same way.
    loop = lint(x / "a.c")
    assert not loop.findings and "symbolic links" in loop.errors[0].reason


def test_one_file_named_twice_is_linted_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(root)
    found = list(tree_module.discover([Path("fs"), Path("./fs/x/bug.c"), root / "fs/x/bug.c"]))
    assert found == [Path("fs/x/bug.c")]


def test_directories_named_like_sources(root: Path) -> None:
    (root / "fs" / "x" / "dir.c" / "inner.c").mkdir(parents=True)
    (root / "fs" / "x" / "dir.c" / "real.c").write_bytes(BUG)
    result = lint(root)
    reasons = errors(result)
    assert reasons == {"fs/x/dir.c": "is a directory", "fs/x/dir.c/inner.c": "is a directory"}
    assert {f.path for f in result.findings} == {"fs/x/bug.c", "fs/x/dir.c/real.c"}


def test_pipes_sockets_and_devices_are_refused_not_read(root: Path) -> None:
    x = root / "fs" / "x"
    os.mkfifo(x / "fifo.c")  # reading a pipe with no writer would wait forever
    (x / "tty.c").symlink_to("/dev/tty")
    (x / "zero.h").symlink_to("/dev/zero")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(x / "sock.c"))
        out = subprocess.run([sys.executable, "-m", "nofslint", "check", str(root), "--select",
                              "ALL", "--format", "json", "--no-cache", "-j", "1"],
                             capture_output=True, timeout=120, text=True, cwd=root.parent)
    finally:
        sock.close()
    import json

    doc = json.loads(out.stdout)
    reasons = {e["path"]: e["reason"] for e in doc["errors"]}
    assert reasons["fs/x/fifo.c"] == "is a named pipe"
    assert reasons["fs/x/sock.c"] == "is a socket"
    assert reasons["fs/x/zero.h"] == "is a character device"
    assert "fs/x/tty.c" in reasons  # a character device, or no terminal at all
    assert not any(e["internal"] for e in doc["errors"])
    assert [f["path"] for f in doc["findings"]] == ["fs/x/bug.c"]
    assert out.returncode == 1


def _deleting(victim: Path) -> Iterator[Path]:
    """discover(), deleting ``victim`` right after it is listed (the run has begun)."""
    real = tree_module.discover

    def discover(paths: list[Path]) -> Iterator[Path]:
        for path in real(paths):
            yield path
            if path.absolute() == victim.absolute():
                victim.unlink()

    return discover  # type: ignore[return-value]


@pytest.mark.parametrize("cache", ["none", "cold", "warm"])
def test_a_file_deleted_during_the_run(root: Path, tmp_path: Path, cache: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    victim = root / "fs" / "x" / "gone.c"
    victim.write_bytes(BUG)
    cache_dir = None if cache == "none" else tmp_path / "cache"
    if cache == "warm":
        assert len(lint(root, cache=cache_dir).findings) == 2
    monkeypatch.setattr(loading, "discover", _deleting(victim))
    result = lint(root, cache=cache_dir)
    assert errors(result) == {"fs/x/gone.c": "file disappeared while linting"}
    assert [f.path for f in result.findings] == ["fs/x/bug.c"]


def test_unreadable_files_and_directories(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root nothing is unreadable, so the refusals are simulated at the system call."""
    secret = root / "fs" / "x" / "secret.c"
    secret.write_bytes(BUG)
    locked = root / "fs" / "locked"
    locked.mkdir()
    (locked / "hidden.c").write_bytes(BUG)
    real_open, real_scandir = os.open, os.scandir

    def deny_open(path: object, *args: object, **kw: object) -> int:
        if Path(str(path)) in (secret, locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kw)  # type: ignore[arg-type]

    def deny_scandir(path: object = ".") -> object:
        if Path(str(path)) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny_open)
    monkeypatch.setattr(os, "scandir", deny_scandir)
    result = lint(root)
    assert errors(result) == {"fs/x/secret.c": "permission denied",
                              "fs/locked": "permission denied"}
    assert [f.path for f in result.findings] == ["fs/x/bug.c"]


# -- one file's trouble stays that file's -----------------------------------------

@pytest.mark.parametrize("jobs", [1, 2])
def test_a_slow_file_is_skipped_after_the_time_limit(root: Path, jobs: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(6):  # enough files for a worker pool
        (root / "fs" / "x" / f"ok{i}.c").write_bytes(BUG)
    (root / "fs" / "x" / "slow.c").write_bytes(BUG)
    real = loading.extract

    def extract(raw: bytes, rel: str, tree: object) -> object:
        if rel == "fs/x/slow.c":
            time.sleep(30)
        return real(raw, rel, tree)  # type: ignore[arg-type]

    monkeypatch.setattr(loading, "extract", extract)
    monkeypatch.setattr(workers, "FILE_TIME_LIMIT", 0.5)
    handler = signal.getsignal(signal.SIGALRM)
    start = time.perf_counter()
    result = lint(root, jobs=jobs)
    assert time.perf_counter() - start < 15
    assert errors(result) == {"fs/x/slow.c": "took longer than 0.5 s to analyse; skipped"}
    assert len(result.findings) == 7
    assert signal.getsignal(signal.SIGALRM) is handler  # restored, and no timer left
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize("jobs", [1, 2])
def test_stats_skips_a_slow_file_after_the_time_limit(root: Path, jobs: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(6):
        (root / "fs" / "x" / f"ok{i}.c").write_bytes(BUG)
    (root / "fs" / "x" / "slow.c").write_bytes(BUG + b"/* slow */\n")
    real = run_stats.parse_source

    def parse_source(raw: bytes) -> object:
        if raw.endswith(b"/* slow */\n"):
            time.sleep(30)
        return real(raw)

    monkeypatch.setattr(run_stats, "parse_source", parse_source)
    monkeypatch.setattr(workers, "FILE_TIME_LIMIT", 0.5)
    start = time.perf_counter()
    out = run_stats.stats([root], jobs)
    assert time.perf_counter() - start < 15
    assert out.files == len([*root.rglob("*.[ch]")]) and out.unreadable == 1
    assert out.functions > 0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize("files", [20, 150])  # one file per chunk, and several
def test_a_worker_that_dies_costs_only_its_file(root: Path, files: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(files):
        (root / "fs" / "x" / f"ok{i:03}.c").write_bytes(BUG)
    real = loading.extract
    fatal = {"fs/x/ok003.c", "fs/x/ok017.c", f"fs/x/ok{files - 1:03}.c"}

    def extract(raw: bytes, rel: str, tree: object) -> object:
        if rel in fatal:
            os._exit(11)  # as a crash in native code would
        return real(raw, rel, tree)  # type: ignore[arg-type]

    monkeypatch.setattr(loading, "extract", extract)
    result = lint(root, jobs=2)
    died = {e.path for e in result.errors if e.internal and "process died" in e.reason}
    assert died == fatal and len(result.errors) == len(fatal)
    assert len(result.findings) == files + 1 - len(fatal)


def test_failures_are_isolated_and_exit_2(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from nofslint.cli.app import main

    (root / "fs" / "x" / "crash_rule.c").write_bytes(BUG)
    (root / "fs" / "x" / "crash_parse.c").write_bytes(BUG)
    rule = builtin_rules()["vmalloc-nofs"]
    real_check, real_extract = rule.check_file, loading.extract

    def check_file(self: object, ctx: object) -> object:
        if ctx.facts.path == "fs/x/crash_rule.c":  # type: ignore[attr-defined]
            raise KeyError("rule bug")
        return real_check(self, ctx)  # type: ignore[arg-type]

    def extract(raw: bytes, rel: str, tree: object) -> object:
        if rel == "fs/x/crash_parse.c":
            raise IndexError("parser bug")
        return real_extract(raw, rel, tree)  # type: ignore[arg-type]

    monkeypatch.setattr(rule, "check_file", check_file)
    monkeypatch.setattr(loading, "extract", extract)
    out = CliRunner().invoke(main, ["check", str(root), "--format", "json", "--no-cache",
                                    "-j", "1"])
    assert out.exit_code == 2
    doc = json.loads(out.stdout)
    reasons = {e["path"]: (e["reason"], e["internal"]) for e in doc["errors"]}
    assert reasons["fs/x/crash_rule.c"][1] and "vmalloc-nofs" in reasons["fs/x/crash_rule.c"][0]
    assert reasons["fs/x/crash_parse.c"][1] and "parser bug" in reasons["fs/x/crash_parse.c"][0]
    assert [f["path"] for f in doc["findings"]] == ["fs/x/bug.c"]


LOOP_SAVE = b"""static int f(struct btrfs_root *root, int x)
{
\tstruct btrfs_trans_handle *trans;
\tunsigned int fl;

\ttrans = btrfs_start_transaction(root, 1);
\twhile (x) {
\t\tif (x > 1)
\t\t\tfl = memalloc_nofs_save();
\t\tx--;
\t}
\tbtrfs_end_transaction(trans);
\treturn 0;
}
"""


def test_a_scope_saved_in_a_loop_converges(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Walk.__init__

    def small(self: Walk, *args: object, **kw: object) -> None:
        kw.setdefault("budget", 2000)  # plenty for 14 lines; the bug makes it run out
        real(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Walk, "__init__", small)
    facts = extract(LOOP_SAVE, "fs/btrfs/loop.c", KernelTree(None, (6, 12), "default"))
    assert facts.flows and all(scope_walk(facts, flow) is not None for flow in facts.flows)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_device_named_like_source_is_refused_before_it_is_opened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a device has effects of its own (a watchdog arms): never open one."""
    import stat as stat_module

    import nofslint.frontend.source as source

    device = tmp_path / "dev.c"
    os.mknod(device, stat_module.S_IFCHR | 0o600, os.makedev(1, 3))
    link = tmp_path / "link.c"
    link.symlink_to(device)
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(source.os, "open",
                        lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k))
    for path in (device, link):
        with pytest.raises(source.SourceError, match="character device"):
            source.read_source(path)
    assert opened == []


def test_reads_whole_files_and_refuses_growth_past_the_limit(tmp_path: Path) -> None:
    """read_regular reads by fstat's size, then on to the end: a file that fstat
    undersized (it grew) is still read whole, and past the limit it is refused."""
    from nofslint.frontend import source

    for size in (0, 1, 4095, 4096, 70000):
        path = tmp_path / f"f{size}.c"
        path.write_bytes(b"x" * size)
        assert source.read_regular(path) == b"x" * size
    path = tmp_path / "grown.c"
    path.write_bytes(b"y" * 200000)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert source._read_fd(fd, 10, 10**6) == b"y" * 200000  # fstat said 10 bytes
        os.lseek(fd, 0, os.SEEK_SET)
        assert len(source._read_fd(fd, 10, 1000)) == 1001  # limit + 1: the caller refuses
    finally:
        os.close(fd)
    with pytest.raises(source.TooLarge):
        source.read_regular(path, limit=1000)
