"""Rule docs come from the rule classes: `rules`, `explain`, and the generated docs/rules.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_support import FIXTURES, declared_clean, expectations, fixture_files, rule_of

from nofslint.api.rule import DOC_SECTIONS
from nofslint.cli.app import main
from nofslint.plugins import ruledocs
from nofslint.plugins.registry import builtin_rules

REPO = Path(__file__).resolve().parent.parent
RULES = builtin_rules()


def test_docs_rules_md_is_generated_from_the_rules() -> None:
    generated = ruledocs.markdown(RULES)
    on_disk = (REPO / "docs" / "rules.md").read_text()
    assert on_disk == generated, (
        "docs/rules.md is stale: run `nofslint rules --format markdown > docs/rules.md`")


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_rule_has_full_docs_and_a_bug_and_a_clean_example(rule_id: str) -> None:
    docs = RULES[rule_id].docs()
    for section in DOC_SECTIONS:
        assert docs.get(section, "").strip(), f"{rule_id}: empty '{section}'"
    files = [p for p in fixture_files() if rule_of(p) == rule_id]
    assert any(expectations(p)[key] for p in files for key in expectations(p)
               if key[1] == rule_id), f"{rule_id}: no fixture with a finding"
    assert any(declared_clean(p) for p in files), f"{rule_id}: no clean fixture"
    assert (FIXTURES / rule_id).is_dir()


def test_rules_command_lists_every_rule() -> None:
    result = CliRunner().invoke(main, ["rules"])
    assert result.exit_code == 0
    for rule_id, cls in RULES.items():
        line = next(ln for ln in result.output.splitlines() if ln.startswith(rule_id + " "))
        assert cls.severity in line and ("on" if cls.enabled_by_default else "off") in line
    rows = json.loads(CliRunner().invoke(main, ["rules", "--format", "json"]).output)
    assert {r["id"] for r in rows} == set(RULES)
    assert next(r for r in rows if r["id"] == "prefer-nofs-scope")["default"] == "off"


def test_explain_prints_every_section_and_refuses_unknown_rules() -> None:
    result = CliRunner().invoke(main, ["explain", "wq-flush-reclaim"])
    assert result.exit_code == 0
    for section in DOC_SECTIONS:
        assert f"## {section}" in result.output
    assert "check_flush_dependency" in result.output
    bad = CliRunner().invoke(main, ["explain", "no-such-rule"])
    assert bad.exit_code == 2 and "known rules" in bad.output
