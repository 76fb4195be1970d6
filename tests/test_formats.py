"""Review formats on real findings: checkpatch, SARIF, GitHub comments, reply mail."""

from __future__ import annotations

import dataclasses
import email as stdlib_email
import json
import shutil
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from fixture_support import FIXTURES
from test_patch import commit, edit, git

from nofslint import __version__
from nofslint.model.findings import Finding
from nofslint.output import formats
from nofslint.plugins.registry import builtin_rules, select_rules
from nofslint.review.patch import PatchMail, apply_patches, read_patches
from nofslint.run.engine import run
from nofslint.run.results import FileError, RunResult

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

RULES = builtin_rules()
TREE_510 = FIXTURES / "vmalloc-nofs" / "linux-5.10"
BUGS = "fs/demofs/bugs.c"
BITMAP_LINE = "\tsbi->bitmap = __vmalloc(len, DEMOFS_GFP); /* expect: vmalloc-nofs */\n"
INODE = "fs/demofs/inode.c"
# The patch under review adds the two NOFAIL lines above the allocation.
NOFAIL_BEFORE = "GFP_NOFS;\n\n\tcache->scratch"
NOFAIL_AFTER = ("GFP_NOFS;\n\n\t/* Through a local gfp_t variable. */\n\tgfp |= __GFP_NOFAIL;\n"
                "\tcache->scratch")


def lint(tree: Path, *rules: str) -> RunResult:
    return run([tree], select_rules(RULES, list(rules) or ["ALL"], None))


def find(result: RunResult, path: str, line: int) -> Finding:
    return next(f for f in result.findings if (f.path, f.line) == (path, line))


def fixed_text(finding: Finding, tmp_path: Path) -> str:
    """The finding's file with its fix applied (as ``git apply`` would)."""
    assert finding.fix and finding.file
    root = finding.file.parents[len(Path(finding.path).parts) - 1]
    mails = read_patches(finding.fix.encode(), "fix.diff")
    out = apply_patches(mails, root, tmp_path / f"fixed-{finding.line}")[finding.path]
    assert out is not None
    return out.read_text()


@pytest.fixture(scope="module")
def result_510() -> RunResult:
    return lint(TREE_510)


def make_repo(tmp_path: Path, tree: Path, path: str, old: str, new: str,
              *format_args: str) -> tuple[Path, PatchMail]:
    """A repository whose one commit turns ``old`` into ``new`` in ``path``, and that
    commit read back from its format-patch mail."""
    root = tmp_path / "linux"
    shutil.copytree(tree, root)
    edit(root / path, new, old)
    git(root, "init", "-q")
    commit(root, "base")
    edit(root / path, old, new)
    commit(root, "demofs: the change under review")
    mbox = git(root, "format-patch", "--stdout", "--thread", "--in-reply-to=<cover@example.org>",
               *format_args, "-1")
    [mail] = read_patches(mbox.encode(), "0001.patch")
    return root, mail


# -- checkpatch --------------------------------------------------------------------------

def test_checkpatch_blocks_and_total(result_510: RunResult) -> None:
    out = formats.checkpatch(result_510, 321, {(BUGS, 19): 42, (BUGS, 13): 40},
                             {(BUGS, 19)}).splitlines()
    at = out.index(f"#42: FILE: {BUGS}:19:")
    assert out[at - 1] == "ERROR:vmalloc-nofs: " + find(result_510, BUGS, 19).message
    assert out[at + 1:at + 3] == ["+" + BITMAP_LINE.rstrip("\n"), ""]  # an added line
    at = out.index(f"#40: FILE: {BUGS}:13:")  # shown by the patch, not added by it
    assert out[at + 1].startswith(" \t")
    assert f"#28: FILE: {BUGS}:28:" in out  # no patch line known: the file line
    infos = sum(f.severity == "info" for f in result_510.findings)
    errors = sum(f.severity == "error" for f in result_510.findings)
    assert infos and any(line.startswith("CHECK:prefer-nofs-scope: ") for line in out)
    assert out[-1] == f"total: {errors} errors, 0 warnings, {infos} checks, 321 lines checked"


def test_checkpatch_without_checks_quotes_the_analysed_text(result_510: RunResult) -> None:
    gone = dataclasses.replace(find(result_510, BUGS, 13), file=Path("/nonexistent/bugs.c"))
    out = formats.checkpatch(RunResult(findings=[gone]), 7).splitlines()
    assert out == [f"ERROR:vmalloc-nofs: {gone.message}", f"#13: FILE: {BUGS}:13:", "",
                   "total: 1 errors, 0 warnings, 7 lines checked"]
    # A patched copy's text (``source``) is what gets quoted.
    copy = dataclasses.replace(gone, source=TREE_510 / BUGS)
    assert formats.checkpatch(RunResult(findings=[copy]), 7, {}, {(BUGS, 13)}
                              ).splitlines()[2] == \
        "+\treturn __vmalloc(len, GFP_NOFS | __GFP_ZERO); /* expect: vmalloc-nofs */"


def test_checkpatch_of_files_marks_no_line_added_and_counts_files(
        result_510: RunResult) -> None:
    """``check --format checkpatch``: no patch, so no ``+`` and no "lines checked"."""
    out = formats.checkpatch(result_510, None).splitlines()
    quoted = [line for line in out if line.startswith(("+", " "))]
    assert quoted and all(line.startswith(" ") for line in quoted)
    assert out[-1].endswith(f", {result_510.files} files analysed")
    assert "lines checked" not in out[-1]


# -- SARIF -------------------------------------------------------------------------------

def test_sarif_is_valid_and_complete(result_510: RunResult, tmp_path: Path) -> None:
    nofail = lint(FIXTURES / "nofail-in-reclaim" / "linux-6.12")
    result = RunResult(findings=result_510.findings + nofail.findings,
                       errors=[FileError("fs/bad.c", "not valid UTF-8"),
                               FileError("<tree>", "internal error in rule x: boom", True)])
    doc = json.loads(formats.sarif(result, RULES))
    # The schema ships inside the package (package-data), as the tests see it installed.
    schema_file = resources.files("nofslint") / "schemas" / "sarif-schema-2.1.0.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator(schema).validate(doc)

    [run_] = doc["runs"]
    driver = run_["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("nofslint", __version__)
    rules = {r["id"]: r for r in driver["rules"]}
    assert set(rules) == set(RULES)
    vmalloc = rules["vmalloc-nofs"]
    assert vmalloc["shortDescription"]["text"] == RULES["vmalloc-nofs"].summary()
    assert vmalloc["defaultConfiguration"]["level"] == "error"
    assert rules["prefer-nofs-scope"]["defaultConfiguration"]["level"] == "note"
    for title in ("What it does", "Why is this bad", "Fix"):
        assert f"{title}:" in vmalloc["help"]["text"]
        assert f"## {title}" in vmalloc["help"]["markdown"]

    results = run_["results"]
    assert len(results) == len(result.findings)
    for finding, res in zip(result.findings, results, strict=True):
        assert driver["rules"][res["ruleIndex"]]["id"] == finding.rule == res["ruleId"]
        assert res["partialFingerprints"] == {"nofslint/v2": finding.fingerprint()}
        loc = res["locations"][0]
        assert loc["physicalLocation"]["artifactLocation"] == {"uri": finding.path,
                                                               "uriBaseId": "%SRCROOT%"}
        assert loc["physicalLocation"]["region"]["startLine"] == finding.line
        assert loc["logicalLocations"][0]["name"] == finding.function

    chained = next(i for i, f in enumerate(result.findings) if f.rule == "nofail-in-reclaim")
    steps = results[chained]["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [s["location"]["message"]["text"] for s in steps] == \
        [t.function for t in result.findings[chained].trace]

    # The fix as replacements gives exactly what applying the fix diff gives.
    fixable = next(i for i, f in enumerate(result.findings) if (f.path, f.line) == (BUGS, 19))
    finding = result.findings[fixable]
    [change] = results[fixable]["fixes"][0]["artifactChanges"]
    assert change["artifactLocation"]["uri"] == BUGS
    lines = finding.file.read_text().splitlines(True)  # type: ignore[union-attr]
    for rep in sorted(change["replacements"], key=lambda r: -r["deletedRegion"]["startLine"]):
        region = rep["deletedRegion"]
        lines[region["startLine"] - 1:region["endLine"] - 1] = \
            rep.get("insertedContent", {}).get("text", "").splitlines(True)
    assert "".join(lines) == fixed_text(finding, tmp_path)

    invocation = run_["invocations"][0]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert [n["level"] for n in notes] == ["warning", "error"]
    assert notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "fs/bad.c"


# -- GitHub ------------------------------------------------------------------------------

def test_github_comments_and_suggestions(result_510: RunResult, tmp_path: Path) -> None:
    comments = json.loads(formats.github(result_510))
    assert len(comments) == len(result_510.findings)
    for comment, finding in zip(comments, result_510.findings, strict=True):
        assert comment["path"] == finding.path and comment["side"] == "RIGHT"
        assert f"`{finding.rule}`" in comment["body"] and finding.message in comment["body"]
        assert f"nofslint explain {finding.rule}" in comment["body"]
        assert "http" not in comment["body"]
    # A multi-line suggestion: start_line < line, and it replaces exactly those lines.
    finding = find(result_510, BUGS, 19)
    comment = comments[result_510.findings.index(finding)]
    assert (comment["start_line"], comment["start_side"], comment["line"]) == (18, "RIGHT", 19)
    suggestion = comment["body"].split("```suggestion\n", 1)[1].split("\n```", 1)[0] + "\n"
    lines = finding.file.read_text().splitlines(True)  # type: ignore[union-attr]
    lines[17:19] = [suggestion]
    assert "".join(lines) == fixed_text(finding, tmp_path)
    # A one-line suggestion has no start_line.
    single = comments[result_510.findings.index(find(result_510, BUGS, 13))]
    assert single["line"] == 13 and "start_line" not in single and "```suggestion" in single["body"]


@pytest.mark.parametrize("context, suggested", [("-U3", True), ("-U0", False)])
def test_github_suggestion_only_inside_the_patch_hunk(tmp_path: Path, context: str,
                                                      suggested: bool) -> None:
    """The fix replaces lines 18-19; a -U0 hunk shows only line 19, so GitHub could not
    take a suggestion there and the comment stays on the finding's line."""
    bug = "__vmalloc(len, DEMOFS_GFP)"
    root, mail = make_repo(tmp_path, TREE_510, BUGS, "__vmalloc(len, GFP_KERNEL)", bug, context)
    result = lint(root, "vmalloc-nofs")
    listed = json.loads(formats.github(result, [mail]))
    comment = next(c for c in listed if c["line"] == 19 and not c["body"].startswith("At "))
    assert ("```suggestion" in comment["body"]) is suggested
    assert ("start_line" in comment) is suggested
    # Line 28 is outside every hunk: GitHub only takes lines the diff shows, so the
    # comment moves to the nearest one and says where the finding is; no suggestion.
    outside = next(c for c in listed if c["body"].startswith(f"At `{BUGS}:28`"))
    assert outside["line"] != 28 and "```suggestion" not in outside["body"]


# -- reply mail --------------------------------------------------------------------------

def reply_body(reply: str) -> tuple[stdlib_email.message.Message, list[str]]:
    msg = stdlib_email.message_from_string(reply)
    payload = msg.get_payload()
    assert isinstance(payload, str)
    return msg, payload.split("\n")


def test_email_reply_quotes_the_hunk_and_comments_below_the_line(tmp_path: Path) -> None:
    root, mail = make_repo(tmp_path, FIXTURES / "nofail-in-reclaim" / "linux-6.12", INODE,
                           NOFAIL_BEFORE, NOFAIL_AFTER)
    result = lint(root, "nofail-in-reclaim")
    reply = formats.email(result, mail)
    msg, body = reply_body(reply)
    assert msg["Subject"] == "Re: [PATCH] demofs: the change under review"
    assert msg["In-Reply-To"] == mail.message_id
    assert msg["References"].split() == ["<cover@example.org>", mail.message_id]
    assert msg["From"] == "nofslint <nofslint@localhost>"
    assert "jorg@example.org" in msg["To"]
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"

    # No top-posting: the attribution, then the quote.
    assert body[0] == f"On {mail.date}, Jörg Dev <jorg@example.org> wrote:"
    assert body[1] == f"> diff --git a/{INODE} b/{INODE}"
    assert any(line.startswith("> @@ -27,6 +27,8 @@") for line in body)
    assert "[...]" in body  # the start of the hunk was cut
    quoted = body.index(">  \tcache->scratch = kmalloc(64, gfp); /* expect: nofail-in-reclaim */")
    assert body[quoted - 2:quoted] == ["> +\t/* Through a local gfp_t variable. */",
                                       "> +\tgfp |= __GFP_NOFAIL;"]
    assert body[quoted + 1] == ""
    assert body[quoted + 2].startswith("nofslint warning [nofail-in-reclaim]: __GFP_NOFAIL")
    comment = "\n".join(body[quoted + 2:])
    assert "Reached from shrinker.scan_objects: demofs_cache_scan() ->\ndemofs_cache_prune()" \
        in comment
    assert all(len(line) <= 72 for line in body if not line.startswith(">"))
    # The other chains end outside the patch: a short paragraph after the quote.
    rest = body.index("nofslint also reports, outside the lines quoted above:")
    assert rest > quoted and f"{INODE}:18 (demofs_truncate_blocks):" in body[rest:]
    assert reply.endswith(f"\n-- \nnofslint {__version__}\n")


def test_email_reply_shows_the_fix_and_keeps_one_re(tmp_path: Path) -> None:
    root, mail = make_repo(tmp_path, TREE_510, BUGS, "__vmalloc(len, GFP_KERNEL)",
                           "__vmalloc(len, DEMOFS_GFP)")
    result = lint(root, "vmalloc-nofs")
    mail = dataclasses.replace(mail, subject="Re: " + (mail.subject or ""), references=[])
    msg, body = reply_body(formats.email(result, mail, sender="Bot <bot@example.org>"))
    assert msg["Subject"] == "Re: [PATCH] demofs: the change under review"
    assert msg["References"] == mail.message_id and msg["From"] == "Bot <bot@example.org>"
    quoted = body.index("> +" + BITMAP_LINE.rstrip("\n"))
    fix = body.index("Something like this would fix it:", quoted)
    assert body[fix + 2] == f"--- a/{BUGS}"


def test_email_reply_to_a_plain_diff(tmp_path: Path) -> None:
    root, _ = make_repo(tmp_path, TREE_510, BUGS, "__vmalloc(len, GFP_KERNEL)",
                        "__vmalloc(len, DEMOFS_GFP)")
    [mail] = read_patches(git(root, "show", "--format=", "HEAD").encode(), "work.diff")
    msg, body = reply_body(formats.email(lint(root, "vmalloc-nofs"), mail))
    assert msg["Subject"] == "Re: nofslint review of work.diff"
    assert msg["In-Reply-To"] is None and msg["To"] is None
    assert body[0] == "In work.diff:" and body[1].startswith("> diff --git")
