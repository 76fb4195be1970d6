"""The command-line contract: exit codes, formats, bad input, fixes."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_support import FIXTURES

from nofslint import __version__
from nofslint.cli.app import main

TREE_510 = FIXTURES / "vmalloc-nofs" / "linux-5.10"
BUGS = "fs/demofs/bugs.c"
BUG_LINE = "\treturn __vmalloc(len, GFP_NOFS | __GFP_ZERO);\n"


def invoke(*args: str, cwd: Path | None = None):
    runner = CliRunner()
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A writable copy of the v5.10 fixture tree."""
    dest = tmp_path / "linux"
    shutil.copytree(TREE_510, dest)
    return dest


def make_tree(root: Path, version: str = "5.10") -> Path:
    major, minor = version.split(".")
    (root / "fs" / "x").mkdir(parents=True)
    (root / "Makefile").write_text(f"VERSION = {major}\nPATCHLEVEL = {minor}\n")
    (root / "fs" / "x" / "bug.c").write_text("static void *f(int n)\n{\n" + BUG_LINE + "}\n")
    return root


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_findings_exit_1_with_gcc_style_lines(tree: Path) -> None:
    result = invoke("check", ".", "-j", "1", cwd=tree)
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith(f"{BUGS}:13:9: error: __vmalloc() ignores GFP_NOFS")
    assert first.endswith("[vmalloc-nofs]")
    assert result.output.splitlines()[-1].startswith("Found ")


def test_clean_exit_0_and_exit_zero(tmp_path: Path) -> None:
    make_tree(tmp_path, "6.12")
    assert invoke("check", str(tmp_path)).exit_code == 0
    make_tree(tmp_path / "old", "5.4")
    assert invoke("check", str(tmp_path / "old")).exit_code == 1
    assert invoke("check", str(tmp_path / "old"), "--exit-zero").exit_code == 0


def test_kernel_version_override(tmp_path: Path) -> None:
    make_tree(tmp_path, "6.12")
    assert invoke("check", str(tmp_path), "--kernel-version", "5.16").exit_code == 1
    assert invoke("check", str(tmp_path), "--kernel-version", "5.17").exit_code == 0
    bad = invoke("check", str(tmp_path), "--kernel-version", "five")
    assert bad.exit_code == 2 and "MAJOR.MINOR" in bad.output


def test_loose_files_use_newest_semantics_and_say_so(tmp_path: Path) -> None:
    loose = tmp_path / "loose.c"
    loose.write_text("static void *f(int n)\n{\n" + BUG_LINE + "}\n")
    result = invoke("check", str(loose), "--verbose")
    assert result.exit_code == 0
    assert "newest semantics" in result.output  # CliRunner mixes stderr in


def test_json_schema(tree: Path) -> None:
    result = invoke("check", str(tree), "--format", "json", "--select", "vmalloc-nofs")
    doc = json.loads(result.output)
    assert doc["version"] == __version__ and doc["kernel_version"] == "5.10"
    assert doc["errors"] == []
    f = doc["findings"][0]
    assert set(f) == {"rule", "severity", "path", "line", "column", "end_line", "end_column",
                      "function", "message", "brief", "trace", "fix"}
    assert f["path"] == BUGS and f["function"] == "demofs_table_alloc" and f["trace"] == []
    assert f["fix"].startswith(f"--- a/{BUGS}\n+++ b/{BUGS}\n@@ ")
    unfixable = [x for x in doc["findings"] if x["function"] == "demofs_maybe_nofs"]
    assert unfixable and unfixable[0]["fix"] is None


def test_output_file(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = invoke("check", str(tree), "--format", "json", "-o", str(out))
    assert result.exit_code == 1
    assert json.loads(out.read_text())["findings"]


def test_select_and_ignore(tree: Path) -> None:
    assert invoke("check", str(tree), "--ignore", "vmalloc-nofs").exit_code == 0
    bad = invoke("check", str(tree), "--select", "no-such-rule")
    assert bad.exit_code == 2 and "unknown rule 'no-such-rule'" in bad.output


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = invoke("check", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert invoke("check", "--no-such-option").exit_code == 2
    assert invoke("check", str(tmp_path), "--diff", "--fix").exit_code == 2


def test_bad_files_are_reported_and_others_still_linted(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    d = root / "fs" / "x"
    (d / "binary.c").write_bytes(b"int x;\0\0\x7fELF")
    (d / "latin1.c").write_bytes(b"/* caf\xe9 */\nint x;\n")
    (d / "dir.c").mkdir()
    (d / "empty.c").write_bytes(b"")
    (d / "crlf.c").write_bytes(b"static void *g(int n)\r\n{\r\n\treturn __vmalloc(n, GFP_NOFS);"
                               b"\r\n}\r\n")
    (d / "broken.c").write_text("static int f(void) { if ( { ;; }\n")
    unreadable = d / "secret.c"
    unreadable.write_text("int x;\n")
    unreadable.chmod(0)
    result = invoke("check", str(root), "--format", "json")
    doc = json.loads(result.stdout)
    reasons = {e["path"]: e["reason"] for e in doc["errors"]}
    assert "binary" in reasons["fs/x/binary.c"]
    assert "UTF-8" in reasons["fs/x/latin1.c"]
    assert "directory" in reasons["fs/x/dir.c"]
    if os.geteuid() != 0:  # root reads anything
        assert "permission" in reasons["fs/x/secret.c"]
    assert {f["path"] for f in doc["findings"]} == {"fs/x/bug.c", "fs/x/crlf.c"}
    assert result.exit_code == 1
    text = invoke("check", str(root))
    assert "fs/x/binary.c: error: binary file" in text.stderr


def test_huge_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nofslint.frontend.source as source

    monkeypatch.setattr(source, "MAX_FILE_BYTES", 1000)
    root = make_tree(tmp_path)
    (root / "fs" / "x" / "huge.c").write_text("int x;\n" * 1000)
    doc = json.loads(invoke("check", str(root), "--format", "json", "-j", "1").stdout)
    assert "too large" in doc["errors"][0]["reason"]
    assert doc["findings"]


def test_diff_applies_and_fix_writes(tree: Path) -> None:
    diff = invoke("check", str(tree), "--diff", cwd=tree)
    assert diff.exit_code == 1
    assert diff.stdout.startswith("--- a/fs/demofs/bugs.c")
    target = tree / BUGS
    target.chmod(0o640)
    result = invoke("check", ".", "--fix", cwd=tree)
    assert "fixed" in result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # mode kept
    assert "memalloc_nofs_save()" in target.read_text()
    assert not list(tree.rglob("*.nofslint"))  # no temp files left
    # What is left cannot be fixed mechanically (a variable mask).
    again = invoke("check", ".", "--format", "json", cwd=tree)
    left = json.loads(again.stdout)["findings"]
    assert left and all(f["fix"] is None for f in left)


def test_fix_refuses_a_file_changed_meanwhile(tree: Path) -> None:
    from nofslint.fixing.fixes import apply_fix
    from nofslint.plugins.registry import builtin_rules, select_rules
    from nofslint.run.engine import run

    result = run([tree], select_rules(builtin_rules(), None, None), None, 1)
    fix = result.fixes[0]
    fix.path.write_bytes(fix.old + b"\n/* edited */\n")
    assert "changed" in (apply_fix(fix) or "")
    assert fix.path.read_bytes().endswith(b"/* edited */\n")


def test_fix_refuses_a_result_that_parses_worse(tree: Path) -> None:
    from nofslint.fixing.fixes import apply_fix
    from nofslint.plugins.registry import builtin_rules, select_rules
    from nofslint.run.engine import run

    result = run([tree], select_rules(builtin_rules(), None, None), None, 1)
    fix = result.fixes[0]
    fix.new = fix.new.replace(b"memalloc_nofs_save();", b"memalloc_nofs_save( {", 1)
    assert "parse" in (apply_fix(fix) or "")
    assert fix.path.read_bytes() == fix.old


def test_jobs_do_not_change_the_output(tree: Path) -> None:
    one = invoke("check", str(tree), "--format", "json", "-j", "1").stdout
    two = invoke("check", str(tree), "--format", "json", "-j", "2").stdout
    assert one == two


def test_stats(tree: Path) -> None:
    result = invoke("stats", str(tree), "--format", "json")
    doc = json.loads(result.output)
    assert doc["files"] == 3 and doc["functions"] > 10
    assert doc["functions_with_errors"] == 0 and doc["seconds"] >= 0


def test_ctrl_c_exits_130_not_1(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 1 means findings to a hook or a CI script; an interrupted run must not."""
    import nofslint.cli.check as cli

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run", interrupted)
    result = CliRunner().invoke(main, ["check", str(tree)])
    assert result.exit_code == 130 and "interrupted" in result.output
