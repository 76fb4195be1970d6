"""check-patch end to end: a git repository built from fixtures, real format-patch mails.

A patch that introduces a bug is reported in every format; one that touches
unrelated lines or fixes a bug reports nothing; the tree is never written.
"""

from __future__ import annotations

import email
import hashlib
import json
import os
import shutil
import subprocess
import sys
from email import policy
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from fixture_support import FIXTURES

from nofslint.cli.app import main

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

# From the installed package: the schema must ship in the wheel.
SCHEMA = resources.files("nofslint") / "schemas" / "sarif-schema-2.1.0.json"
NEW_BUG = "\nstatic void *demofs_new_table(size_t len)\n{\n\treturn __vmalloc(len, GFP_NOFS);\n}\n"
GIT = ["-c", "user.name=A Developer", "-c", "user.email=dev@example.org"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *GIT, *args], check=True,
                          capture_output=True, text=True).stdout


def snapshot(tree: Path) -> dict[str, str]:
    return {str(p.relative_to(tree)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(tree.rglob("*")) if p.is_file() and ".git" not in p.parts}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    dest = tmp_path / "linux"
    shutil.copytree(FIXTURES / "vmalloc-nofs" / "linux-5.10", dest)
    for fixed in dest.rglob("*.fixed"):
        fixed.unlink()
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "base")
    return dest


def make_patch(repo: Path, edit: dict[str, str], subject: str) -> Path:
    """Commit the edit, export it with git format-patch, and undo the commit."""
    for rel, text in edit.items():
        (repo / rel).write_text(text)
    git(repo, "commit", "-qam", subject)
    out = Path(git(repo, "format-patch", "--thread", "-1", "-o",
                   str(repo.parent / "out")).strip())
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    return out


def check_patch(repo: Path, *args: str, input_text: str | None = None):
    return CliRunner().invoke(main, ["check-patch", "--tree", str(repo), "-j", "1", *args],
                              input=input_text)


@pytest.fixture
def bug_patch(repo: Path) -> Path:
    clean = repo / "fs/demofs/clean.c"
    return make_patch(repo, {"fs/demofs/clean.c": clean.read_text() + NEW_BUG},
                      "demofs: add a table allocator")


def test_bug_reported_in_text_and_tree_untouched(repo: Path, bug_patch: Path) -> None:
    before = snapshot(repo)
    result = check_patch(repo, str(bug_patch))
    assert result.exit_code == 1, result.output
    assert result.output.count("[vmalloc-nofs]") == 1
    assert result.output.startswith("fs/demofs/clean.c:") or \
        f"{repo}/fs/demofs/clean.c:" in result.output
    assert snapshot(repo) == before


def test_json_and_stdin(repo: Path, bug_patch: Path) -> None:
    result = CliRunner().invoke(main, ["check-patch", "--tree", str(repo), "--format", "json",
                                       "-"], input=bug_patch.read_bytes())
    doc = json.loads(result.output)
    assert [(f["path"], f["function"]) for f in doc["findings"]] == [
        ("fs/demofs/clean.c", "demofs_new_table")]
    assert doc["findings"][0]["fix"].startswith("--- a/fs/demofs/clean.c")


def test_checkpatch_format(repo: Path, bug_patch: Path) -> None:
    out = check_patch(repo, str(bug_patch), "--format", "checkpatch").output
    assert "ERROR:vmalloc-nofs: __vmalloc() ignores GFP_NOFS" in out
    assert "FILE: fs/demofs/clean.c:" in out
    assert "+\treturn __vmalloc(len, GFP_NOFS);" in out
    assert out.rstrip().splitlines()[-1].startswith("total: 1 errors, 0 warnings,")


def test_sarif_validates(repo: Path, bug_patch: Path) -> None:
    doc = json.loads(check_patch(repo, str(bug_patch), "--format", "sarif").output)
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(doc)
    result = doc["runs"][0]["results"][0]
    assert result["ruleId"] == "vmalloc-nofs" and result["partialFingerprints"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "fs/demofs/clean.c"
    assert result.get("fixes")


def test_github_review_comments(repo: Path, bug_patch: Path) -> None:
    comments = json.loads(check_patch(repo, str(bug_patch), "--format", "github").output)
    assert len(comments) == 1
    comment = comments[0]
    assert comment["path"] == "fs/demofs/clean.c" and comment["side"] == "RIGHT"
    assert "vmalloc-nofs" in comment["body"] and "```suggestion" in comment["body"]


def test_email_reply(repo: Path, bug_patch: Path) -> None:
    out = check_patch(repo, str(bug_patch), "--format", "email").output
    mail = email.message_from_string(out, policy=policy.default)
    original = email.message_from_bytes(bug_patch.read_bytes(), policy=policy.default)
    assert original["Message-ID"]
    assert mail["Subject"] == f"Re: {original['Subject']}"
    assert mail["In-Reply-To"] == original["Message-ID"]
    assert original["Message-ID"] in mail["References"]
    body = mail.get_content()
    quoted = "> +\treturn __vmalloc(len, GFP_NOFS);"
    assert quoted in body
    after = body.split(quoted, 1)[1].lstrip("\n")
    assert "vmalloc" in after.splitlines()[0]  # the comment right under the line
    first = next(line for line in body.splitlines() if line.strip())
    assert first.endswith("wrote:")  # no top-posting: attribution, then the quote


def test_unrelated_change_and_fix_report_nothing(repo: Path) -> None:
    bugs = repo / "fs/demofs/bugs.c"
    unrelated = make_patch(repo, {"fs/demofs/bugs.c": "/* demofs */\n" + bugs.read_text()},
                           "demofs: comment")
    result = check_patch(repo, str(unrelated))
    assert result.exit_code == 0 and result.output.startswith("No findings")
    text = bugs.read_text()
    fix = make_patch(repo, {"fs/demofs/bugs.c": text.replace("GFP_NOFS | __GFP_ZERO",
                                                              "GFP_KERNEL | __GFP_ZERO", 1)},
                     "demofs: fix")
    assert check_patch(repo, str(fix), "--format", "checkpatch").exit_code == 0


def test_series_mbox(repo: Path) -> None:
    clean = repo / "fs/demofs/clean.c"
    text = clean.read_text()
    (repo / "fs/demofs/clean.c").write_text(text + "\n/* one */\n")
    git(repo, "commit", "-qam", "demofs: one")
    (repo / "fs/demofs/clean.c").write_text(text + "\n/* one */\n" + NEW_BUG)
    git(repo, "commit", "-qam", "demofs: two")
    mbox = repo.parent / "series.mbox"
    mbox.write_text(git(repo, "format-patch", "--thread", "--stdout", "--cover-letter", "HEAD~2"))
    git(repo, "reset", "-q", "--hard", "HEAD~2")
    result = check_patch(repo, str(mbox), "--format", "email")
    assert result.exit_code == 1
    reply = email.message_from_string(result.output, policy=policy.default)
    assert "demofs: two" in reply["Subject"] and reply["In-Reply-To"]
    cover = email.message_from_string(mbox.read_text().split("\nFrom ", 1)[0],
                                      policy=policy.default)
    assert cover["Message-ID"] in reply["References"]  # the thread, from the cover letter


def test_patch_that_does_not_apply(repo: Path, bug_patch: Path) -> None:
    (repo / "fs/demofs/clean.c").write_text("/* rewritten */\n")
    before = snapshot(repo)
    result = check_patch(repo, str(bug_patch))
    assert result.exit_code == 2
    assert "fs/demofs/clean.c" in result.output and "@@" in result.output
    assert snapshot(repo) == before


@pytest.mark.parametrize("content", [b"", b"not a patch at all\n",
                                     b"diff --git a/x.c b/x.c\nGIT binary patch\nliteral 1\n"])
def test_broken_patches_exit_2(repo: Path, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.patch"
    bad.write_bytes(content)
    result = check_patch(repo, str(bad))
    assert result.exit_code == 2 and "bad.patch" in result.output


def test_missing_patch_and_no_tree(repo: Path, tmp_path: Path) -> None:
    assert check_patch(repo, str(tmp_path / "missing.patch")).exit_code == 2
    result = CliRunner().invoke(main, ["check-patch", "--tree", str(tmp_path), "x.patch"])
    assert result.exit_code == 2 and "kernel tree" in result.output


def test_github_comment_outside_the_diff_goes_on_the_changed_chain_step(tmp_path: Path) -> None:
    """A whole-tree finding in an untouched file: GitHub only takes lines the diff shows,
    so the comment sits on the changed line its chain runs through."""
    dest = tmp_path / "linux"
    shutil.copytree(FIXTURES / "nofail-in-reclaim" / "linux-6.12", dest)
    (dest / "fs/libblk/blockread.c").rename(dest / "fs/blockread.c")
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "base")
    lib = dest / "fs/blockread.c"
    patch_file = make_patch(dest, {"fs/blockread.c": lib.read_text().replace(
        " & ~__GFP_NOFAIL);", ");", 1)}, "libblk: keep the flag")
    comments = json.loads(check_patch(dest, str(patch_file), "--format", "github").output)
    assert len(comments) == 1
    comment = comments[0]
    changed = next(i for i, line in enumerate(lib.read_text().splitlines(), 1)
                   if "& ~__GFP_NOFAIL);" in line)
    assert (comment["path"], comment["line"]) == ("fs/blockread.c", changed)
    assert comment["body"].startswith("At `fs/demofs/inode.c:")


def test_patch_creating_a_directory_and_deleting_a_file(repo: Path) -> None:
    (repo / "fs/newfs").mkdir()
    (repo / "fs/newfs/table.c").write_text(NEW_BUG)
    (repo / "fs/demofs/bugs.c").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "newfs: add; demofs: drop bugs")
    out = Path(git(repo, "format-patch", "--thread", "-1", "-o", str(repo.parent / "out")).strip())
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    doc = json.loads(check_patch(repo, str(out), "--format", "json").output)
    assert [(f["path"], f["function"]) for f in doc["findings"]] == [
        ("fs/newfs/table.c", "demofs_new_table")]
    assert not (repo / "fs/newfs").exists() and (repo / "fs/demofs/bugs.c").exists()


def test_the_command_cleans_up_and_keeps_its_exit_codes(repo: Path, bug_patch: Path,
                                                        tmp_path: Path) -> None:
    """The real command leaves with os._exit(): scratch copies still go, output is
    complete, and exit codes are those of main()."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    command = [sys.executable, "-m", "nofslint", "check-patch", "--tree", str(repo), "-j", "1",
               "--format", "json", str(bug_patch)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["findings"][0]["rule"] == "vmalloc-nofs"
    assert list(scratch.iterdir()) == []
    usage = subprocess.run([*command[:3], "check-patch", "--format", "nope"],
                           capture_output=True, text=True, env=env, check=False)
    assert usage.returncode == 2 and "nope" in usage.stderr
