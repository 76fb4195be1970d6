"""Baselines key on rule, path, function and the rule's own key: rewording a message
or moving code keeps them valid, and baselines written by 0.1.0 still match."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_support import FIXTURES

from nofslint.cli.app import main
from nofslint.model.findings import Finding
from nofslint.plugins.registry import builtin_rules, select_rules
from nofslint.run import filters
from nofslint.run.engine import run

BUG = ("static void *f(int n)\n{\n\treturn __vmalloc(n, GFP_NOFS);\n}\n\n"
       "static void *g(int n)\n{\n\treturn __vmalloc(n, GFP_NOIO);\n}\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\n")
    (tmp_path / "fs" / "x").mkdir(parents=True)
    (tmp_path / "fs" / "x" / "a.c").write_text(BUG)
    return tmp_path


def _finding(message: str, key: str = "kvmalloc|nofs|GFP_NOFS") -> Finding:
    return Finding("vmalloc-nofs", "error", "fs/x/a.c", 3, 9, 3, 30, "f", message, key=key)


def test_rewording_keeps_the_fingerprint_and_the_key_decides() -> None:
    a = _finding("kvmalloc() with GFP_NOFS never falls back to vmalloc")
    reworded = _finding("kvmalloc(): GFP_NOFS means no vmalloc fallback before v5.17")
    assert a.fingerprint() == reworded.fingerprint()
    assert a.legacy_fingerprint() != reworded.legacy_fingerprint()
    other = _finding(a.message, key="kvmalloc|noio|GFP_NOIO")
    assert other.fingerprint() != a.fingerprint()
    moved = dataclasses.replace(a, line=90, end_line=90)
    assert moved.fingerprint() == a.fingerprint()
    # A plugin's finding without a key keeps the message-based identity.
    assert _finding("m", key="").fingerprint() == _finding("m", key="").legacy_fingerprint()


def test_every_builtin_rule_keys_its_findings() -> None:
    """Every finding the built-in rules report on their fixtures carries a key."""
    rules = select_rules(builtin_rules(), ["ALL"], None)
    trees = sorted({p.parent for p in FIXTURES.glob("*/*/Makefile")})
    result = run(trees, rules, jobs=1)
    assert result.findings
    assert {f.rule for f in result.findings} == {r.id for r in rules}
    assert [f for f in result.findings if not f.key] == []


def _write_baseline(tree: Path, baseline: Path) -> dict:
    CliRunner().invoke(main, ["check", str(tree), "--no-cache", "--select", "vmalloc-nofs",
                              "--write-baseline", str(baseline)])
    return json.loads(baseline.read_text())


def test_a_baseline_hides_what_it_recorded(tree: Path, tmp_path: Path) -> None:
    doc = _write_baseline(tree, tmp_path / "base.json")
    assert doc["format"] == filters.BASELINE_FORMAT and len(doc["findings"]) == 2
    out = CliRunner().invoke(main, ["check", str(tree), "--no-cache", "--select",
                                    "vmalloc-nofs", "--baseline", str(tmp_path / "base.json")])
    assert out.exit_code == 0, out.output


def test_a_0_1_0_baseline_still_loads_and_matches(tree: Path, tmp_path: Path) -> None:
    """0.1.0 wrote format /1 with fingerprints of the message: build one the way it did."""
    rules = select_rules(builtin_rules(), ["vmalloc-nofs"], None)
    found = run([tree], rules, jobs=1).findings
    g = next(f for f in found if f.function == "g")
    old = {"format": "nofslint-baseline/1", "nofslint": "0.1.0", "findings": [
        {"rule": g.rule, "path": g.path, "function": g.function,
         "fingerprint": g.legacy_fingerprint(), "message": g.message}]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    out = CliRunner().invoke(main, ["check", str(tree), "--no-cache", "--select",
                                    "vmalloc-nofs", "--format", "json", "--baseline",
                                    str(tmp_path / "old.json")])
    assert out.exit_code == 1, out.output
    assert [f["function"] for f in json.loads(out.stdout)["findings"]] == ["f"]


def test_moving_code_keeps_the_baseline(tree: Path, tmp_path: Path) -> None:
    _write_baseline(tree, tmp_path / "base.json")
    source = tree / "fs" / "x" / "a.c"
    source.write_text("/* a comment\n * that moves everything down */\n\n" + BUG)
    out = CliRunner().invoke(main, ["check", str(tree), "--no-cache", "--select",
                                    "vmalloc-nofs", "--baseline", str(tmp_path / "base.json")])
    assert out.exit_code == 0, out.output


@pytest.mark.parametrize("text, message", [
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ("{}", "not a nofslint baseline"),
    ('{"format": "nofslint-baseline/2", "findings": [{}]}', "has no fingerprint"),
    ("\xff", "not a JSON baseline"),
])
def test_a_bad_baseline_is_a_message_and_exit_2(tree: Path, tmp_path: Path, text: str,
                                                message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(text.encode("latin-1"))
    out = CliRunner().invoke(main, ["check", str(tree), "--no-cache", "--baseline", str(bad)])
    assert out.exit_code == 2 and message in out.output, out.output
    assert "Traceback" not in out.output
    shutil.rmtree(tmp_path / "fs", ignore_errors=True)


def test_a_saved_run_keeps_the_keys(tree: Path, tmp_path: Path) -> None:
    """Findings reused from a saved run match a baseline exactly as fresh ones do."""
    rules = select_rules(builtin_rules(), ["vmalloc-nofs"], None)
    cache = tmp_path / "cache"
    fresh = run([tree], rules, jobs=1, cache_root=cache, reuse_results=True).findings
    reused = run([tree], rules, jobs=1, cache_root=cache, reuse_results=True).findings
    assert [f.key for f in reused] == [f.key for f in fresh] and all(f.key for f in fresh)
    assert [f.fingerprint() for f in reused] == [f.fingerprint() for f in fresh]
