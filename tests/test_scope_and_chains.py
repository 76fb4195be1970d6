"""What `check PATHS` analyses and what it reports, and chains in text output.

Inside a kernel tree, PATHS are reported from an analysis of the whole tree (a
chain from elsewhere still reaches them); `--scope paths` keeps the cut. In text
output every chain step is a gcc `note:` line with its own `path:line`, never
elided unless `--max-chain` asks for less.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_support import FIXTURES

from nofslint.cli.app import main

NOTE = re.compile(r"^    (?P<path>[^:]+):(?P<line>\d+):(?:\d+:)? note: (?P<what>.+)$")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    dest = tmp_path / "linux"
    shutil.copytree(FIXTURES / "nofail-in-reclaim" / "linux-6.12", dest,
                    ignore=shutil.ignore_patterns("*.fixed"))
    return dest


def check(cwd: Path, *args: str):
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, ["check", "-j", "1", *args], catch_exceptions=False)
    finally:
        os.chdir(old)


def findings(cwd: Path, *args: str) -> list[tuple[str, int, str]]:
    doc = json.loads(check(cwd, "--format", "json", *args).stdout)
    return [(f["path"], f["line"], f["rule"]) for f in doc["findings"]]


def test_a_subtree_reports_what_the_whole_tree_run_reports_there(tree: Path) -> None:
    whole = findings(tree, ".")
    mine = [f for f in whole if f[0].startswith("fs/pathfs/")]
    assert mine and len(mine) < len(whole)
    assert findings(tree, "fs/pathfs") == mine
    assert findings(tree / "fs", "pathfs") == mine  # relative to where the user is
    one = [f for f in whole if f[0] == "fs/pathfs/super.c"]
    assert findings(tree, "fs/pathfs/super.c") == one


def test_scope_paths_keeps_the_cut(tree: Path) -> None:
    cut = findings(tree, "fs/pathfs", "--scope", "paths")
    assert len(cut) < len(findings(tree, "fs/pathfs"))  # chains through fs/libpath lost


def test_paths_are_resolved_before_they_are_compared(tree: Path) -> None:
    expected = findings(tree, "fs/pathfs")
    assert findings(tree, "fs/../fs/pathfs/") == expected
    (tree / "fs" / "alias").symlink_to("pathfs")  # a link inside the tree: where it leads
    assert findings(tree, "fs/alias") == expected


def test_the_summary_says_what_was_analysed_and_reported(tree: Path) -> None:
    result = check(tree, "fs/pathfs", "-v")
    summary = result.stdout.splitlines()[-1]
    assert summary.startswith("Found ") and "in fs/pathfs (analysed the whole tree: " in summary
    assert "analysing the whole tree" in result.stderr
    assert "(analysed the whole tree" not in check(tree, ".").stdout


def test_every_chain_step_is_a_note_with_its_place(tree: Path) -> None:
    out = check(tree, ".", "--select", "nofail-in-reclaim").stdout.splitlines()
    assert "…" not in "\n".join(out)
    heads = [i for i, line in enumerate(out) if line.endswith("[nofail-in-reclaim]")]
    assert heads
    for i in heads:
        assert " via " not in out[i]  # the chain is in the notes, not the message
        notes = []
        for line in out[i + 1:]:
            match = NOTE.match(line)
            if not match:
                break
            notes.append(match)
        assert len(notes) >= 2
        for note in notes:
            assert (tree / note["path"]).is_file()
            assert int(note["line"]) <= len((tree / note["path"]).read_text().splitlines())
        assert "is stored in" in notes[0]["what"]  # the reclaim entry point
        assert notes[-1]["what"].endswith("allocates with __GFP_NOFAIL")


def test_max_chain_shows_the_first_and_last_steps(tree: Path) -> None:
    full = check(tree, "fs/pathfs/super.c").stdout.splitlines()
    short = check(tree, "fs/pathfs/super.c", "--max-chain", "2").stdout.splitlines()
    longest = max(sum(1 for _ in _notes(full, i)) for i in range(len(full))
                  if not full[i].startswith(" "))
    assert longest > 2
    for i, line in enumerate(short):
        if line.startswith(" "):
            continue
        steps = list(_notes(short, i))
        assert len([s for s in steps if NOTE.match(s)]) <= 2
    assert any("more step" in line for line in short)
    assert all(not line.startswith(" ") for line in
               check(tree, "fs/pathfs/super.c", "--max-chain", "0").stdout.splitlines()
               if "note:" in line and "more step" not in line)


def _notes(lines: list[str], i: int):
    for line in lines[i + 1:]:
        if not line.startswith("    "):
            return
        yield line


def test_json_trace_steps_say_what_happens(tree: Path) -> None:
    doc = json.loads(check(tree, ".", "--format", "json", "--select",
                           "nofail-in-reclaim").stdout)
    for f in doc["findings"]:
        assert f["message"].startswith(f["brief"]) and " via " in f["message"]
        assert all(step["note"] and step["column"] >= 0 for step in f["trace"])
