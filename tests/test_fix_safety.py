"""--fix never damages a file: each one is left old or new, never half-written,
never with a temporary file beside it, whatever happens during the write."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nofslint.fixing.fixes as fixes
from nofslint.fixing.fixes import (
    FileFix,
    apply_edits,
    apply_fix,
    edits_diff,
    merge,
    unified_diff,
    write_atomic,
)
from nofslint.model.findings import Edit
from nofslint.plugins.registry import builtin_rules, select_rules
from nofslint.run.engine import run

BUG = b"static void *f%d(int n)\n{\n\tvoid *p;\n\n\tp = __vmalloc(n, GFP_NOFS);\n\treturn p;\n}\n"


def make_tree(root: Path, files: int = 1, line_end: bytes = b"\n") -> Path:
    (root / "fs" / "x").mkdir(parents=True)
    (root / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\n")
    for i in range(files):
        (root / "fs" / "x" / f"f{i:03}.c").write_bytes((BUG % i).replace(b"\n", line_end))
    return root


def the_fix(root: Path) -> FileFix:
    result = run([root], select_rules(builtin_rules(), None, None), jobs=1)
    (fix,) = result.fixes
    return fix


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".nofslint")]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "linux")


# -- one write ---------------------------------------------------------------------

def test_a_failed_write_leaves_the_old_file_and_no_temporary(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fix = the_fix(root)

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fixes.os, "fsync", full_disk)
    assert apply_fix(fix) == "fs/x/f000.c: not fixed: No space left on device"
    assert fix.path.read_bytes() == fix.old and not leftovers(root)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_mode_and_owner_are_kept(root: Path, mode: int) -> None:
    fix = the_fix(root)
    fix.path.chmod(mode)
    if os.geteuid() == 0:
        os.chown(fix.path, 1234, 5678)
    assert apply_fix(fix) is None
    st_ = fix.path.stat()
    assert stat.S_IMODE(st_.st_mode) == mode and fix.path.read_bytes() == fix.new
    if os.geteuid() == 0:
        assert (st_.st_uid, st_.st_gid) == (1234, 5678)


def test_a_symlinked_file_is_fixed_through_the_link(root: Path) -> None:
    real = root / "fs" / "x" / "f000.c"
    store = root.parent / "store.c"  # outside the tree: linted through the link only
    real.rename(store)
    real.symlink_to(store)
    fix = the_fix(root)
    assert "outside the linted tree" in (apply_fix(fix) or "")  # not without asking
    assert store.read_bytes() == fix.old
    assert apply_fix(fix, follow_symlinks=True) is None
    assert real.is_symlink() and store.read_bytes() == fix.new


def test_a_read_only_file_is_not_fixed(root: Path) -> None:
    fix = the_fix(root)
    fix.path.chmod(0o444)  # refused even for root, whom the mode does not stop
    assert apply_fix(fix) == "fs/x/f000.c: not fixed: it is read-only (mode 0444)"
    assert fix.path.read_bytes() == fix.old


def test_a_file_changed_between_the_check_and_the_rename(root: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fix = the_fix(root)
    real_score = fixes.error_score

    def edit_meanwhile(tree: object) -> int:  # runs after the content check
        with open(fix.path, "ab") as fh:
            fh.write(b"/* an editor saved */\n")
        return real_score(tree)  # type: ignore[arg-type]

    monkeypatch.setattr(fixes, "error_score", edit_meanwhile)
    assert "changed while nofslint was running" in (apply_fix(fix) or "")
    assert fix.path.read_bytes().endswith(b"/* an editor saved */\n")
    assert not leftovers(root)


def test_a_file_deleted_before_the_fix(root: Path) -> None:
    fix = the_fix(root)
    fix.path.unlink()
    assert apply_fix(fix) == "fs/x/f000.c: not fixed: file disappeared while linting"
    assert not fix.path.exists() and not leftovers(root)


def test_crlf_files_keep_crlf(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "linux", line_end=b"\r\n")
    fix = the_fix(root)
    assert apply_fix(fix) is None
    new = fix.path.read_bytes()
    assert b"memalloc_nofs_save" in new and new.count(b"\n") == new.count(b"\r\n")


def test_hunk_line_numbers_count_only_newlines(root: Path) -> None:
    """A form feed or a lone CR is not a line break for git (nor for the diff)."""
    path = root / "fs" / "x" / "f000.c"
    path.write_bytes(b"/* a\x0c b \r c */\n" + path.read_bytes())
    fix = the_fix(root)
    assert strict_apply(fix.old, fix.diff) == fix.new
    assert strict_apply(fix.old, fix.findings[0].fix or "") == fix.new


# -- signals -------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_write_waits_for_the_rename(root: Path, sig: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    target = root / "fs" / "x" / "f000.c"
    seen: list[int] = []
    # As in a terminal (a background CI job may start with SIGINT ignored).
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous = signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))
    real_fsync = os.fsync

    def fsync_then_signal(fd: int) -> None:
        real_fsync(fd)
        os.kill(os.getpid(), sig)  # arrives with the temporary file still open

    monkeypatch.setattr(fixes.os, "fsync", fsync_then_signal)
    try:
        if sig == signal.SIGINT:
            with pytest.raises(KeyboardInterrupt):
                write_atomic(target, b"new\n")
        else:
            write_atomic(target, b"new\n")
            assert seen == [signal.SIGTERM]  # delivered once the write was done
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    assert target.read_bytes() == b"new\n" and not leftovers(root)


def test_an_ignored_signal_stays_ignored(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = root / "fs" / "x" / "f000.c"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # nohup, background jobs
    real_fsync = os.fsync

    def fsync_then_signal(fd: int) -> None:
        real_fsync(fd)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(fixes.os, "fsync", fsync_then_signal)
    try:
        write_atomic(target, b"new\n")
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert target.read_bytes() == b"new\n" and not leftovers(root)


_INTERRUPTED_RUN = textwrap.dedent("""
    import os, signal, sys
    import nofslint.fixing.fixes as fixes
    from nofslint.cli.app import main

    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    when, sig, after = sys.argv[1], getattr(signal, sys.argv[2]), int(sys.argv[3])
    writes = []
    real_fsync, real_apply = os.fsync, fixes.apply_fix

    def fsync(fd):  # in the middle of a write: the temporary file exists
        real_fsync(fd)
        writes.append(fd)
        if when == "write" and len(writes) == after:
            os.kill(os.getpid(), sig)

    def apply_fix(fix, **options):  # between two files
        if when == "between" and len(writes) == after:
            os.kill(os.getpid(), sig)
        return real_apply(fix, **options)

    fixes.os.fsync = fsync
    import nofslint.cli.check
    nofslint.cli.check.apply_fix = apply_fix
    sys.argv = ["nofslint", "check", sys.argv[4], "--fix", "--no-cache", "-j", "1"]
    main()
""")


@pytest.mark.parametrize("when", ["write", "between"])
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_an_interrupted_fix_run_leaves_every_file_old_or_new(tmp_path: Path, when: str,
                                                             sig: str) -> None:
    root = make_tree(tmp_path / "linux", files=12)
    done = tmp_path / "done"
    shutil.copytree(root, done)
    assert subprocess.run([sys.executable, "-m", "nofslint", "check", str(done), "--fix",
                           "--no-cache", "-j", "1"], capture_output=True, cwd=tmp_path
                          ).returncode == 0
    old = {p.name: p.read_bytes() for p in (root / "fs" / "x").iterdir()}
    new = {p.name: p.read_bytes() for p in (done / "fs" / "x").iterdir()}
    proc = subprocess.run([sys.executable, "-c", _INTERRUPTED_RUN, when, sig, "5", str(root)],
                          capture_output=True, timeout=300, cwd=tmp_path)
    # Ctrl-C exits 130 (exit 1 would mean findings); the other signals kill.
    expected = (130,) if sig == "SIGINT" else (-getattr(signal, sig),)
    assert proc.returncode in expected, proc.stderr.decode()[-2000:]
    state = {p.name: p.read_bytes() for p in (root / "fs" / "x").iterdir()
             if not p.name.endswith(".nofslint")}
    assert set(state) == set(old)
    fixed = [name for name in state if state[name] == new[name]]
    unfixed = [name for name in state if state[name] == old[name]]
    assert len(fixed) + len(unfixed) == len(old)  # nothing in between
    assert fixed and unfixed  # the run really was stopped half-way
    if sig != "SIGKILL":  # SIGKILL cannot be held; the rename still makes it old or new
        assert not leftovers(root)
        assert len(fixed) == 5 if when == "write" else 4


# -- merging and diffs, against their definitions ----------------------------------

def _overlaps(a: Edit, b: Edit) -> bool:
    """The definition merge() implements: replacements may not overlap, an
    insertion may not fall strictly inside a replacement, equal edits are one."""
    if a == b:
        return False
    if a.start == a.end or b.start == b.end:
        return (a.start < b.start < a.end) or (b.start < a.start < b.end)
    return a.start < b.end and b.start < a.end


def _merge_by_definition(edit_sets: list[list[Edit]]) -> tuple[list[Edit], list[int]]:
    merged: list[Edit] = []
    dropped: list[int] = []
    for i, edits in enumerate(edit_sets):
        if any(_overlaps(e, m) for e in edits for m in merged):
            dropped.append(i)
            continue
        merged.extend(e for e in edits if e not in merged)
    return merged, dropped


def _edit(size: int) -> st.SearchStrategy[Edit]:
    return st.builds(lambda a, b, text: Edit(min(a, b), max(a, b), text),
                     st.integers(0, size), st.integers(0, size), st.sampled_from(["", "x", "y\n"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_edit(30), min_size=1, max_size=3), max_size=12))
def test_merge_matches_its_definition(edit_sets: list[list[Edit]]) -> None:
    # Within one set, edits come from one builder and never overlap each other.
    sets = [s for s in edit_sets if not any(_overlaps(a, b) for a in s for b in s)]
    assert merge(sets) == _merge_by_definition(sets)


_LINE = st.sampled_from(["a\n", "b\n", "\n", "}\n", "\tx = 1;\n", "a\x0cb\n", "c\r\n"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINE, min_size=1, max_size=60), st.data())
def test_a_fix_diff_applies_exactly(lines: list[str], data: st.DataObject) -> None:
    """Computed around the edits only, it is still exact for the whole file (where
    lines repeat, it may place a change differently than a whole-file diff)."""
    raw = "".join(lines).encode()
    if data.draw(st.booleans()):
        raw = raw.rstrip(b"\n")  # no newline at the end of the file
    edits = data.draw(st.lists(_edit(len(raw)), min_size=1, max_size=4))
    edits, _ = merge([[e] for e in edits])
    new = apply_edits(raw, edits)
    diff = edits_diff("f.c", raw, edits)
    assert strict_apply(raw, diff) == new
    assert strict_apply(raw, unified_diff("f.c", raw, new)) == new


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def strict_apply(old: bytes, diff: str) -> bytes:
    """Apply a unified diff with no fuzz and no offset: every hunk's line numbers
    and context must be exact, as `git apply` requires at a minimum."""
    lines = old.decode().split("\n")
    src = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    out: list[str] = []
    pos = 0
    body = diff.split("\n")[2:]
    i = 0
    while i < len(body) and body[i]:
        m = _HUNK.match(body[i])
        assert m, body[i]
        start = int(m[1]) - (0 if m[2] == "0" else 1)
        out.extend(src[pos:start])
        pos = start
        i += 1
        while i < len(body) and body[i] and not body[i].startswith("@@"):
            tag, text = body[i][0], body[i][1:] + "\n"
            if i + 1 < len(body) and body[i + 1] == "\\ No newline at end of file":
                text = text[:-1]
                i += 1
            if tag in " -":
                assert src[pos] == text, (pos, src[pos], text)
                pos += 1
            if tag in " +":
                out.append(text)
            i += 1
    out.extend(src[pos:])
    return "".join(out).encode()
