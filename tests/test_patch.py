"""Reading and applying patches: format-patch mails, series, plain diffs, bad input."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fixture_support import FIXTURES

from nofslint.review.patch import (
    FilePatch,
    PatchError,
    apply_patches,
    patch_line_map,
    read_patches,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

CLEAN = "fs/demofs/clean.c"
END = " * fixture: clean\n */\n"  # end of the comment at the top of clean.c
GIT_ENV = {
    **os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Jörg Dev", "GIT_AUTHOR_EMAIL": "jorg@example.org",
    "GIT_COMMITTER_NAME": "Jörg Dev", "GIT_COMMITTER_EMAIL": "jorg@example.org",
    "GIT_AUTHOR_DATE": "2024-01-02T10:00:00+01:00",
    "GIT_COMMITTER_DATE": "2024-01-02T10:00:00+01:00",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if ".git" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository of the v5.10 fixture tree, one commit."""
    root = tmp_path / "linux"
    shutil.copytree(FIXTURES / "vmalloc-nofs" / "linux-5.10", root)
    git(root, "init", "-q")
    commit(root, "base")
    return root


def one_change(repo: Path) -> str:
    """Commits a one-line addition to clean.c; returns its format-patch mail."""
    edit(repo / CLEAN, END, END + "/* demofs: added by the patch */\n")
    commit(repo, "demofs: note the clean cases")
    return git(repo, "format-patch", "--thread", "--stdout", "-1")


# -- reading ---------------------------------------------------------------------------


def added_lines(fp: FilePatch) -> set[int]:
    """New-side numbers of the lines a file's patch adds."""
    return {new for h in fp.hunks for kind, _, _, new in h.numbered()
            if kind == "+" and new is not None}

def test_format_patch_mail(repo: Path) -> None:
    text = one_change(repo)
    [mail] = read_patches(text.encode(), "0001.patch")
    assert mail.subject == "[PATCH] demofs: note the clean cases"
    assert mail.sender == "Jörg Dev <jorg@example.org>"
    assert mail.message_id and mail.message_id.startswith("<")
    assert mail.date == "Tue, 2 Jan 2024 10:00:00 +0100"
    assert mail.source == "0001.patch"
    [fp] = mail.files
    assert (fp.old_path, fp.new_path, fp.is_binary) == (CLEAN, CLEAN, False)
    assert fp.header[0] == f"diff --git a/{CLEAN} b/{CLEAN}"
    [hunk] = fp.hunks
    assert hunk.header.startswith("@@ -3,6 +3,7 @@")
    assert added_lines(fp) == {6}
    assert fp.new_ranges() == [(3, 9)]
    # checkpatch's #N: the line of the patch file that shows the added line.
    at = patch_line_map([mail])[(CLEAN, 6)]
    assert text.splitlines()[at - 1] == "+/* demofs: added by the patch */"


def test_mbox_series_skips_the_cover_letter(repo: Path) -> None:
    edit(repo / CLEAN, END, END + "/* first */\n")
    commit(repo, "demofs: first")
    edit(repo / "fs/demofs/bugs.c", "struct demofs_sb {", "/* second */\nstruct demofs_sb {")
    commit(repo, "demofs: second")
    mbox = git(repo, "format-patch", "--cover-letter", "--thread", "--stdout", "-2")
    cover_id = next(line.split(":", 1)[1].strip() for line in mbox.splitlines()
                    if line.lower().startswith("message-id:"))
    mails = read_patches(mbox.encode(), "series.mbox")
    assert [m.subject for m in mails] == ["[PATCH 1/2] demofs: first",
                                          "[PATCH 2/2] demofs: second"]
    assert [m.files[0].path for m in mails] == [CLEAN, "fs/demofs/bugs.c"]
    assert all(m.references == [cover_id] for m in mails)
    # Patch line numbers count from the top of the whole mbox.
    lines = mbox.splitlines()
    for mail, text in zip(mails, ("+/* first */", "+/* second */"), strict=True):
        fp = mail.files[0]
        [added] = added_lines(fp)
        assert lines[fp.patch_lines()[added] - 1] == text


def test_plain_diffs(repo: Path) -> None:
    edit(repo / CLEAN, END, END + "/* plain */\n")
    [mail] = read_patches(git(repo, "diff").encode(), "work.diff")
    assert (mail.subject, mail.sender, mail.message_id, mail.references) == (None, None, None, [])
    assert mail.files[0].path == CLEAN and added_lines(mail.files[0]) == {6}
    # diff -u between two trees: the differing top directory is stripped (-p1).
    classic = (f"--- linux.orig/{CLEAN}\t2024-01-02 10:00:00\n+++ linux/{CLEAN}\t2024-01-02\n"
               "@@ -1,1 +1,2 @@\n a\n+b\n")
    [mail] = read_patches(classic.encode(), "classic.diff")
    assert (mail.files[0].old_path, mail.files[0].new_path) == (CLEAN, CLEAN)


def test_encoded_and_folded_subject(repo: Path) -> None:
    edit(repo / CLEAN, END, END + "/* caf\u00e9 */\n")
    diff = git(repo, "diff")
    mail = ("From: =?UTF-8?q?J=C3=B6rg=20Dev?= <jorg@example.org>\n"
            "Subject: [PATCH v2 1/3] demofs: =?UTF-8?q?caf=C3=A9?= notes for the clean\n"
            " fixture, a subject long enough to be folded\n"
            "Message-ID: <v2.1@example.org>\n"
            "In-Reply-To: <v2.0@example.org>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
            "Content-Transfer-Encoding: 8bit\n\nWhy.\n---\n" + diff)
    [parsed] = read_patches(mail.encode(), "v2.eml")
    assert parsed.subject == ("[PATCH v2 1/3] demofs: café notes for the clean fixture, "
                              "a subject long enough to be folded")
    assert parsed.sender == "Jörg Dev <jorg@example.org>"
    assert parsed.references == ["<v2.0@example.org>"]
    assert parsed.files[0].hunks[0].lines[3] == ("+", "/* café */\n")


@pytest.mark.parametrize("data, message", [
    (b"", "empty input"),
    (b"  \n\n", "empty input"),
    (b"Just some prose, no diff here.\n", "no diff found"),
    (b"From: a@b\nSubject: [PATCH 0/2] cover\n\nThe series.\n", "no diff found in 1 mail"),
    (b"--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+\xff\n", "not valid utf-8"),
    (b"--- a/../../etc/x.c\n+++ b/../../etc/x.c\n@@ -1 +1 @@\n-a\n+b\n", "not inside the tree"),
])
def test_unreadable_input(data: bytes, message: str) -> None:
    with pytest.raises(PatchError, match=message) as info:
        read_patches(data, "bad.patch")
    assert str(info.value).startswith("bad.patch")


def test_binary_diff_of_a_c_file_is_refused(repo: Path) -> None:
    (repo / "fs/demofs/blob.c").write_bytes(b"int x;\0\1\2\n")
    (repo / "fs/demofs/logo.bin").write_bytes(b"\0\1\2\3")
    commit(repo, "demofs: binary")
    text = git(repo, "format-patch", "--binary", "--stdout", "-1")
    with pytest.raises(PatchError, match="fs/demofs/blob.c: binary diff"):
        read_patches(text.encode(), "bin.patch")
    # Without the C file: the other binary diff is marked and skipped by apply.
    git(repo, "rm", "-q", "fs/demofs/blob.c")
    git(repo, "commit", "-q", "--amend", "-m", "demofs: logo")
    [mail] = read_patches(git(repo, "format-patch", "--stdout", "-1").encode(), "logo.patch")
    [fp] = mail.files
    assert fp.is_binary and fp.new_path == "fs/demofs/logo.bin" and not fp.hunks
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert apply_patches([mail], repo, repo.parent / "dest") == {}


@pytest.mark.parametrize("header, problem", [
    ("@@ -3,6 +3,6 @@", "more lines than its header counts"),
    ("@@ -3,6 +3,9 @@", "ends before the line counts"),
    ("@@ -3,5 +3,6 @@", "fewer lines than follow it"),  # unidiff would drop one
])
def test_malformed_hunk_counts_name_file_and_hunk(repo: Path, header: str,
                                                  problem: str) -> None:
    text = one_change(repo).replace("@@ -3,6 +3,7 @@", header, 1)
    with pytest.raises(PatchError, match=problem) as info:
        read_patches(text.encode(), "bad.patch")
    message = str(info.value)
    assert message.startswith("bad.patch") and CLEAN in message and header in message


def test_count_too_large_before_the_next_file_names_the_hunk(repo: Path) -> None:
    edit(repo / CLEAN, END, END + "/* one */\n")
    edit(repo / "fs/demofs/fixes.c", "struct demofs_dir {", "/* two */\nstruct demofs_dir {")
    commit(repo, "demofs: two files")
    text = git(repo, "format-patch", "--stdout", "-1")
    assert text.index(CLEAN) < text.index("fs/demofs/fixes.c")
    with pytest.raises(PatchError) as info:
        read_patches(text.replace("@@ -3,6 +3,7 @@", "@@ -3,6 +3,9 @@").encode(), "bad.patch")
    assert str(info.value).startswith(f"bad.patch: malformed hunk in {CLEAN} (@@ -3,6 +3,9 @@")
    assert "'diff --git a/fs/demofs/fixes.c b/fs/demofs/fixes.c' is not a hunk line" in \
        str(info.value)


# -- applying --------------------------------------------------------------------------

def test_applies_at_an_offset_and_never_writes_the_tree(repo: Path) -> None:
    mails = read_patches(one_change(repo).encode(), "0001.patch")
    wanted = (repo / CLEAN).read_text()
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    # The tree moved on: five lines above the hunk; git apply would say "with offset 5".
    edit(repo / CLEAN, "/*", "/* one */\n/* two */\n/* three */\n/* four */\n/* five */\n/*")
    before = tree_hash(repo)
    result = apply_patches(mails, repo, repo.parent / "dest")
    assert result == {CLEAN: repo.parent / "dest" / CLEAN}
    expected = "/* one */\n/* two */\n/* three */\n/* four */\n/* five */\n" + wanted
    assert result[CLEAN].read_text() == expected
    assert tree_hash(repo) == before


def test_creation_deletion_and_a_file_touched_twice(repo: Path) -> None:
    (repo / "fs/demofs/new.c").write_text("int demofs_new;\n")
    git(repo, "rm", "-q", "fs/demofs/bugs.c")
    edit(repo / CLEAN, END, END + "/* first */\n")
    commit(repo, "demofs: first")
    edit(repo / CLEAN, "/* first */", "/* first, edited by the second patch */")
    edit(repo / "fs/demofs/new.c", "int demofs_new;", "int demofs_new = 1;")
    commit(repo, "demofs: second")
    mails = read_patches(git(repo, "format-patch", "--stdout", "-2").encode(), "series")
    wanted = {p: (repo / p).read_text() for p in (CLEAN, "fs/demofs/new.c")}
    git(repo, "reset", "-q", "--hard", "HEAD~2")
    before = tree_hash(repo)
    dest = repo.parent / "dest"
    result = apply_patches(mails, repo, dest)
    assert result["fs/demofs/bugs.c"] is None and not (dest / "fs/demofs/bugs.c").exists()
    assert {p: result[p].read_text() for p in wanted} == wanted  # type: ignore[union-attr]
    assert tree_hash(repo) == before


def test_a_hunk_that_does_not_apply(repo: Path) -> None:
    mails = read_patches(one_change(repo).encode(), "0001.patch")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    edit(repo / CLEAN, "fixture: clean", "fixture: still clean")
    before = tree_hash(repo)
    dest = repo.parent / "dest"
    with pytest.raises(PatchError) as info:
        apply_patches(mails, repo, dest)
    message = str(info.value)
    assert message.startswith("0001.patch ([PATCH] demofs: note the clean cases): hunk #1 of "
                              f"{CLEAN} (@@ -3,6 +3,7 @@")
    assert "does not apply" in message and "fixture: still clean" in message
    assert tree_hash(repo) == before and not dest.exists()


def test_line_endings_and_missing_final_newline(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "fs").mkdir(parents=True)
    (tree / "fs/crlf.c").write_bytes(b"int a;\r\nint b;\r\nint c;\r\n")
    (tree / "fs/eof.c").write_bytes(b"int a;\nint b;")  # no newline at the end
    diff = ("--- a/fs/crlf.c\n+++ b/fs/crlf.c\n@@ -1,3 +1,4 @@\n int a;\n int b;\n+int x;\n"
            " int c;\n"
            "--- a/fs/eof.c\n+++ b/fs/eof.c\n@@ -1,2 +1,3 @@\n int a;\n-int b;\n"
            "\\ No newline at end of file\n+int b;\n+int y;\n\\ No newline at end of file\n")
    mails = read_patches(diff.encode(), "eol.diff")
    result = apply_patches(mails, tree, tmp_path / "dest")
    assert result["fs/crlf.c"].read_bytes() == b"int a;\r\nint b;\r\nint x;\r\nint c;\r\n"  # type: ignore[union-attr]
    assert result["fs/eof.c"].read_bytes() == b"int a;\nint b;\nint y;"  # type: ignore[union-attr]
    # A patch whose lines a mailer turned into CRLF still applies to an LF file.
    mangled = read_patches(diff.split("--- a/fs/eof.c")[0].replace("\n", "\r\n").encode(),
                           "crlf.diff")
    (tree / "fs/crlf.c").write_bytes(b"int a;\nint b;\nint c;\n")
    result = apply_patches(mangled, tree, tmp_path / "dest2")
    assert result["fs/crlf.c"].read_bytes() == b"int a;\nint b;\nint x;\nint c;\n"  # type: ignore[union-attr]


def test_destination_must_not_overlap_the_tree(repo: Path) -> None:
    mails = read_patches(one_change(repo).encode(), "0001.patch")
    for dest in (repo, repo / "out"):
        with pytest.raises(PatchError, match="overlaps the tree"):
            apply_patches(mails, repo, dest)
