"""check-patch at every stage of a patch's life, on git repositories built here.

A patch that is not applied yet is applied to copies (test_check_patch.py); one the
tree already holds (`git format-patch -1` right after the commit, `git diff` of the
working tree) is undone on copies instead; a series `git am` stopped in the middle
of is split where the tree is; a patch that fits neither way is refused with the
hunk and what to do instead.
"""

from __future__ import annotations

import json

import pytest
from test_check_patch import NEW_BUG, check_patch, git, repo, snapshot  # noqa: F401

from nofslint.review import patch


def _commit(repo, rel: str, text: str, subject: str) -> None:  # noqa: F811
    (repo / rel).write_text(text)
    git(repo, "commit", "-qam", subject)


def _export(repo, rev: str, name: str):  # noqa: F811
    out = repo.parent / name
    out.write_text(git(repo, "format-patch", "--stdout", rev))
    return out


def test_already_applied_patch_is_linted_in_reverse(repo) -> None:  # noqa: F811
    clean = "fs/demofs/clean.c"
    _commit(repo, clean, (repo / clean).read_text() + NEW_BUG, "demofs: add a table")
    mail = _export(repo, "-1", "0001.patch")
    before = snapshot(repo)
    result = check_patch(repo, str(mail), "--format", "json")
    assert result.exit_code == 1, result.output
    assert "the patch is already in the tree (applied in reverse)" in result.stderr
    doc = json.loads(result.stdout)
    assert [(f["path"], f["function"]) for f in doc["findings"]] == [
        (clean, "demofs_new_table")]
    assert snapshot(repo) == before


def test_already_applied_fix_reports_nothing(repo) -> None:  # noqa: F811
    bugs = "fs/demofs/bugs.c"
    text = (repo / bugs).read_text()
    _commit(repo, bugs, text.replace("GFP_NOFS | __GFP_ZERO", "GFP_KERNEL | __GFP_ZERO", 1),
            "demofs: fix")
    result = check_patch(repo, str(_export(repo, "-1", "fix.patch")))
    assert result.exit_code == 0, result.output
    assert "already in the tree" in result.stderr
    assert result.stdout.startswith("No findings")


def test_plain_diff_of_the_working_tree(repo) -> None:  # noqa: F811
    clean = repo / "fs/demofs/clean.c"
    clean.write_text(clean.read_text() + NEW_BUG)
    diff = git(repo, "diff")
    result = check_patch(repo, "-", input_text=diff)
    assert result.exit_code == 1 and "[vmalloc-nofs]" in result.stdout


@pytest.mark.parametrize("bug_in", ["first", "second"])
def test_series_applied_up_to_the_middle(repo, bug_in: str) -> None:  # noqa: F811
    clean = "fs/demofs/clean.c"
    text = (repo / clean).read_text()
    one = text + ("\n/* one */\n" if bug_in == "second" else NEW_BUG)
    _commit(repo, clean, one, "demofs: one")
    _commit(repo, clean, one + ("\n/* two */\n" if bug_in == "first" else NEW_BUG),
            "demofs: two")
    mbox = _export(repo, "HEAD~2", "series.mbox")
    git(repo, "reset", "-q", "--hard", "HEAD~1")  # `git am` stopped after the first
    result = check_patch(repo, str(mbox))
    assert result.exit_code == 1, result.output
    assert "patch 1 of 2 is already in the tree" in result.stderr
    assert result.stdout.count("[vmalloc-nofs]") == 1


def test_neither_way_names_the_hunk_and_the_ways_out(repo) -> None:  # noqa: F811
    clean = "fs/demofs/clean.c"
    _commit(repo, clean, (repo / clean).read_text() + NEW_BUG, "demofs: add a table")
    mail = _export(repo, "-1", "0001.patch")
    (repo / clean).write_text("/* rewritten */\n")
    result = check_patch(repo, str(mail))
    assert result.exit_code == 2
    assert "hunk #1 of fs/demofs/clean.c" in result.stderr
    assert "does not apply in reverse either" in result.stderr
    assert "--tree DIR" in result.stderr and "check --diff-from REV" in result.stderr


def test_reverse_turns_every_change_around() -> None:
    diff = ("diff --git a/fs/a.c b/fs/a.c\nnew file mode 100644\n--- /dev/null\n"
            "+++ b/fs/a.c\n@@ -0,0 +1,2 @@\n+int a;\n+int b;\n"
            "diff --git a/fs/b.c b/fs/b.c\n--- a/fs/b.c\n+++ b/fs/b.c\n"
            "@@ -1,2 +1,2 @@\n int c;\n-int d;\n+int e;\n")
    (mail,) = patch.read_patches(diff.encode(), "x.patch")
    (undo,) = patch.reverse([mail])
    created, changed = undo.files[1], undo.files[0]
    assert (created.old_path, created.new_path) == ("fs/a.c", None)
    assert [k for k, _ in created.hunks[0].lines] == ["-", "-"]
    assert changed.hunks[0].lines == ((" ", "int c;\n"), ("+", "int d;\n"), ("-", "int e;\n"))
    assert (changed.hunks[0].old_start, changed.hunks[0].new_start) == (1, 1)
