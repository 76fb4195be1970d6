"""Tests generated from fixtures/: every expectation, every golden fix."""

from __future__ import annotations

import shutil
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from fixture_support import declared_clean, expectations, fixture_files, rule_of

from nofslint.fixing.fixes import apply_edits, error_score, merge
from nofslint.frontend.parse import parse_source
from nofslint.kernel.tree import Extras, find_root
from nofslint.plugins.registry import builtin_rules, select_rules
from nofslint.run.config import Config
from nofslint.run.engine import run
from nofslint.run.settings import choose_kconfig

FILES = fixture_files()
IDS = [str(p.relative_to(p.parents[len(p.parts) - p.parts.index("fixtures") - 2]))
       for p in FILES]


def _findings(path: Path, rules: list[str] | None = None, version: tuple | None = None):
    """A tree with a ``.config`` at its root is linted with it, as the command line does."""
    selected = select_rules(builtin_rules(), rules or ["ALL"], None)
    root = find_root(path if path.is_dir() else path.parent)
    kconfig, _ = choose_kconfig(None, Config(), root)
    return run([path], selected, version, jobs=1, extras=Extras(kconfig=kconfig))


def _tree_root(path: Path) -> Path:
    """The fixture tree's root: its top-level Makefile (Kbuild trees have more Makefiles)."""
    root = find_root(path.parent)
    assert root is not None, path
    return root


@cache
def _tree_run(root: Path):
    """Each fixture tree is linted once, whole, so whole-tree rules see every file.

    With the default rules and the tree's own rule (advice rules are off by default).
    """
    rules = builtin_rules()
    own = rule_of(root)
    return _findings(root, sorted({r for r, cls in rules.items() if cls.enabled_by_default}
                                  | {own}))


def test_there_are_fixtures_for_every_rule() -> None:
    rules = set(builtin_rules())
    covered = {rule_of(p) for p in FILES}
    assert rules <= covered, f"rules without fixtures: {sorted(rules - covered)}"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_fixture_expectations(path: Path) -> None:
    expected = expectations(path)
    assert expected or declared_clean(path), f"{path.name}: no expect: and not 'fixture: clean'"
    result = _tree_run(_tree_root(path))
    assert not result.errors, result.errors
    mine = [f for f in result.findings if f.file == path]
    got = Counter((f.line, f.rule) for f in mine)
    assert got == expected, "\n".join(
        [f"missing: line {ln} [{r}]" for (ln, r) in expected - got]
        + [f"unexpected: line {ln} [{r}]: " + next(f.message for f in mine
                                                  if (f.line, f.rule) == (ln, r))
           for (ln, r) in got - expected])


@pytest.mark.parametrize("path", [p for p in FILES if p.with_name(p.name + ".fixed").exists()],
                         ids=lambda p: p.name)
def test_fixture_fixes(path: Path) -> None:
    raw = path.read_bytes()
    result = _tree_run(_tree_root(path))
    edits, dropped = merge(f.edits for f in result.findings
                           if f.edits and (f.fix_file or f.file) == path)
    assert not dropped, "fixes in one file must merge without conflicts"
    fixed = apply_edits(raw, edits)
    golden = path.with_name(path.name + ".fixed").read_bytes()
    assert fixed.decode() == golden.decode()
    # A fix never makes the file parse worse...
    assert error_score(parse_source(fixed)[1]) <= error_score(parse_source(raw)[1])


@pytest.mark.parametrize("path", [p for p in FILES if p.with_name(p.name + ".fixed").exists()],
                         ids=lambda p: p.name)
def test_fixed_fixture_is_clean(tmp_path: Path, path: Path) -> None:
    """...and with the golden file in place, every finding its fix addressed is gone.

    The whole tree is linted again (a fix may live in another file than its
    findings: a queue's flags fix the flushes that wait on it); nothing new appears.
    """
    root = _tree_root(path)
    rule = rule_of(path)
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    copy = tmp_path / path.relative_to(root)
    copy.write_bytes(path.with_name(path.name + ".fixed").read_bytes())
    before = [f for f in _tree_run(root).findings if f.rule == rule]
    fixed_here = [f for f in before if f.edits and (f.fix_file or f.file) == path]
    assert fixed_here
    after = _findings(tmp_path, [rule]).findings
    assert not [f.message for f in after if f.edits and (f.fix_file or f.file) == copy]
    assert len(after) == len(before) - len(fixed_here), [f.message for f in after]


@pytest.mark.parametrize("path", [p for p in FILES if p.with_name(p.name + ".fixed").exists()],
                         ids=lambda p: p.name)
def test_fixes_keep_scopes_balanced(tmp_path: Path, path: Path) -> None:
    """Every scope a fix opens is closed on every path: nofs-scope-balance says so."""
    root = _tree_root(path)
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    copy = tmp_path / path.relative_to(root)
    copy.write_bytes(path.with_name(path.name + ".fixed").read_bytes())
    before = [f for f in _tree_run(root).findings
              if f.rule == "nofs-scope-balance" and f.file == path]
    after = [f for f in _findings(tmp_path, ["nofs-scope-balance"]).findings if f.file == copy]
    assert len(after) <= len(before), [f.message for f in after]
