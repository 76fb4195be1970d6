"""Triggers: a run of local rules parses only the files that can matter, and says the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixture_support import FIXTURES

import nofslint.run.engine as engine
import nofslint.run.loading as loading
from nofslint.api import Rule
from nofslint.frontend.triggers import Triggers, combine
from nofslint.plugins.registry import RuleError, builtin_rules, select_rules, validate
from nofslint.run.engine import run

LOCAL = ["vmalloc-nofs", "nofail-high-order", "nofs-scope-balance", "prefer-nofs-scope"]
MAKEFILE = "VERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 0\n"
HIT = ("/* nofslint fixture: original code written for these tests, not kernel code. */\n"
       "void *demo_hit(unsigned long size)\n{\n\treturn kvmalloc(size, GFP_NOFS);\n}\n")
MISS = ("/* nofslint fixture: original code written for these tests, not kernel code. */\n"
        "void demo_miss(void **a, unsigned long size)\n{\n"
        "\ta[0] = kmalloc(size, GFP_NOFS);\n\ta[1] = kmalloc(size, GFP_NOFS);\n"
        "\ta[2] = kmalloc(size, GFP_NOFS);\n}\n")


def _rules(ids: list[str]) -> list[Rule]:
    return select_rules(builtin_rules(), ids, None)


def _json(result) -> list[dict]:
    return [f.to_json() for f in result.findings]


def test_a_word_that_contains_another_is_dropped() -> None:
    t = Triggers(["__vmalloc_node", "kvmalloc_node", "__vmalloc", "kvmalloc"])
    assert t.words == (b"kvmalloc", b"__vmalloc")
    assert t.matches(b"x = kvmalloc_array(n, s, GFP_NOFS);")
    assert not t.matches(b"x = kmalloc(s, GFP_NOFS);")


def test_a_rule_without_triggers_means_every_file() -> None:
    assert combine([("a",), None]) is None
    assert combine([]) is None
    both = combine([("kvmalloc",), ("memalloc_nofs_save",)])
    assert both is not None and both.words == (b"kvmalloc", b"memalloc_nofs_save")
    whole = _rules(["vmalloc-nofs", "nofail-in-reclaim"])
    assert engine.run_triggers(whole) is None  # a whole-tree rule links every file
    assert engine.run_triggers(_rules(LOCAL)) is not None


def test_every_builtin_local_rule_declares_triggers() -> None:
    for rule in builtin_rules().values():
        if rule.scope == "local":
            assert rule.triggers, rule.id
            validate(rule)


def test_triggers_must_be_words() -> None:
    class Spelled(Rule):
        """Summary.

        What it does
            x
        Why is this bad
            x
        Example
            x
        Fix
            x
        References
            x
        """

        id = "spelled"
        triggers = "kvmalloc"  # type: ignore[assignment]  # a str, not a tuple of them

    with pytest.raises(RuleError, match="triggers"):
        validate(Spelled)
    Spelled.triggers = ()
    with pytest.raises(RuleError, match="triggers"):
        validate(Spelled)
    Spelled.triggers = ("kvmalloc",)
    validate(Spelled)


def _fixture_trees() -> list[Path]:
    return sorted({m.parent for m in FIXTURES.glob("*/*/Makefile")})


@pytest.mark.parametrize("tree", _fixture_trees(), ids=lambda p: "/".join(p.parts[-2:]))
def test_the_filter_loses_no_fixture_finding(tree: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """Every local finding is in a file holding one of its rule's words, so the
    filtered run equals the run that parses every file."""
    rules = _rules(LOCAL)
    filtered = run([tree], rules, jobs=1)
    monkeypatch.setattr(engine, "run_triggers", lambda rules: None)
    full = run([tree], rules, jobs=1)
    assert _json(filtered) == _json(full)
    assert [e.to_json() for e in filtered.errors] == [e.to_json() for e in full.errors]
    by_id = {r.id: r for r in rules}
    for finding in full.findings:
        raw = finding.file.read_bytes()
        assert any(w.encode() in raw for w in by_id[finding.rule].triggers), finding.to_json()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "linux"
    (root / "fs" / "demo").mkdir(parents=True)
    (root / "Makefile").write_text(MAKEFILE)
    (root / "fs" / "demo" / "hit.c").write_text(HIT)
    (root / "fs" / "demo" / "miss.c").write_text(MISS)
    return root


def test_only_files_with_triggers_are_parsed(tree: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    parsed: list[str] = []
    real = loading.extract

    def counting(raw: bytes, rel: str, t: object):
        parsed.append(rel)
        return real(raw, rel, t)

    monkeypatch.setattr(loading, "extract", counting)
    result = run([tree], _rules(["vmalloc-nofs"]), jobs=1)
    assert parsed == ["fs/demo/hit.c"]
    assert [(f.rule, f.path) for f in result.findings] == [("vmalloc-nofs", "fs/demo/hit.c")]
    assert result.files == 2  # both were read; one could matter
    parsed.clear()
    run([tree], _rules(["vmalloc-nofs", "prefer-nofs-scope"]), jobs=1)
    assert parsed == ["fs/demo/hit.c", "fs/demo/miss.c"]  # miss.c says GFP_NOFS


def test_a_later_full_run_extracts_what_the_filter_skipped(tree: Path, tmp_path: Path) -> None:
    """The filtered run remembers skipped files' content keys without facts behind
    them: a later run that needs their facts extracts them, and says what a run
    without any cache says."""
    cache = tmp_path / "cache"
    local = run([tree], _rules(["vmalloc-nofs"]), jobs=1, cache_root=cache,
                reuse_results=True)
    assert len(local.findings) == 1
    everything = _rules(["ALL"])
    warm = run([tree], everything, jobs=1, cache_root=cache, reuse_results=True)
    cold = run([tree], everything, jobs=1)
    assert _json(warm) == _json(cold)
    assert any(f.path == "fs/demo/miss.c" for f in cold.findings)  # prefer-nofs-scope there


def test_an_edit_to_a_skipped_file_is_linted(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rules = _rules(["vmalloc-nofs"])
    first = run([tree], rules, jobs=1, cache_root=cache, reuse_results=True)
    assert len(first.findings) == 1
    (tree / "fs" / "demo" / "miss.c").write_text(MISS.replace("kmalloc", "kvzalloc"))
    again = run([tree], rules, jobs=1, cache_root=cache, reuse_results=True)
    fresh = run([tree], rules, jobs=1)
    assert _json(again) == _json(fresh)
    assert len(again.findings) == 4


def test_check_patch_side_is_filtered_too(tree: Path, tmp_path: Path) -> None:
    """An overlay (check-patch, --staged) is linted through the same filter."""
    scratch = tmp_path / "new.c"
    scratch.write_text(MISS.replace("kmalloc", "__vmalloc"))
    miss = (tree / "fs" / "demo" / "miss.c").absolute()
    result = run([tree], _rules(["vmalloc-nofs"]), jobs=1, overlay={miss: scratch})
    assert sorted(f.path for f in result.findings) == ["fs/demo/hit.c"] + ["fs/demo/miss.c"] * 3
