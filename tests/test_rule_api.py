"""The rule API: docs sections, registry validation, local and whole-tree rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nofslint.api.rule import DOC_SECTIONS, Rule
from nofslint.link.index import TreeIndex
from nofslint.model.findings import Finding, TraceStep
from nofslint.plugins.registry import RuleError, builtin_rules, select_rules, validate
from nofslint.run.engine import run

DOC = """Calls that cross files.

    What it does
        Reports calls whose callee is defined in another file.
    Why is this bad
        It is not; this rule exists to exercise the whole-tree stage.
    Example
        a.c calls b_helper() defined in b.c.
    Fix
        None.
    References
        None.
    """


class CrossFileCalls(Rule):
    id = "cross-file-call"
    severity = "info"
    scope = "tree"

    def check_tree(self, index: TreeIndex) -> Iterator[Finding]:
        for fidx, entry in enumerate(index.files):
            for call in entry.facts.calls:
                for ref in index.resolve(fidx, call.callee):
                    if ref[0] != fidx:
                        target = index.files[ref[0]]
                        callee = index.function(ref)
                        yield Finding(self.id, self.severity, entry.facts.path, call.line,
                                      call.column, call.end_line, call.end_column, None,
                                      f"calls {call.callee}() in {target.facts.path}",
                                      trace=[TraceStep(callee.name, target.facts.path,
                                                       callee.line)])


CrossFileCalls.__doc__ = DOC


def test_builtin_rules_have_complete_docs() -> None:
    for rule in builtin_rules().values():
        assert set(DOC_SECTIONS) <= set(rule.docs()), rule.id
        assert rule.summary()


def test_validation_rejects_bad_rules() -> None:
    class NoDocs(Rule):
        """Only a summary."""

        id = "no-docs"

    class BadSeverity(CrossFileCalls):
        id = "bad-sev"
        severity = "fatal"

    with pytest.raises(RuleError, match="lacks section"):
        validate(NoDocs)
    with pytest.raises(RuleError, match="severity"):
        validate(BadSeverity)
    validate(CrossFileCalls)


def test_whole_tree_rule_sees_every_file_and_static_scoping(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\n")
    (tmp_path / "a.c").write_text(
        "static int local(void) { return 0; }\n"
        "int a(void)\n{\n\treturn b_helper() + local();\n}\n")
    (tmp_path / "b.c").write_text(
        "static int local(void) { return 1; }\n"
        "int b_helper(void)\n{\n\treturn local();\n}\n")
    result = run([tmp_path], [CrossFileCalls()], jobs=1)
    assert [(f.path, f.line, f.message) for f in result.findings] == [
        ("a.c", 4, "calls b_helper() in b.c")]
    assert result.findings[0].trace[0].function == "b_helper"


def test_a_raising_rule_is_isolated(tmp_path: Path) -> None:
    class Boom(CrossFileCalls):
        id = "boom"

        def check_tree(self, index: TreeIndex) -> Iterator[Finding]:
            raise ValueError("bug in rule")

    (tmp_path / "a.c").write_text("static void *f(int n) { return __vmalloc(n, GFP_NOFS); }\n")
    (tmp_path / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 4\n")
    rules = [Boom(), *select_rules(builtin_rules(), None, None)]
    result = run([tmp_path], rules, jobs=1)
    assert result.internal_errors
    assert any("rule boom" in e.reason for e in result.errors)
    assert [f.rule for f in result.findings] == ["vmalloc-nofs"]
