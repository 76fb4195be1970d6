"""The 0.1.0 import paths plugins used keep working for one release, with a warning."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nofslint.api as api


@pytest.mark.parametrize("old, name, new", [
    ("nofslint.rule", "Rule", api.Rule),
    ("nofslint.rule", "Finding", api.Finding),
    ("nofslint.rule", "FileContext", api.FileContext),
    ("nofslint.facts", "Allocation", api.Allocation),
    ("nofslint.index", "TreeIndex", api.TreeIndex),
    ("nofslint.flow", "Walk", api.Walk),
    ("nofslint.gfp", "NOFAIL", api.NOFAIL),
    ("nofslint.reclaim", "reclaim_entries", api.reclaim_entries),
    ("nofslint.rewrite", "ScopeWrap", api.ScopeWrap),
    ("nofslint.workqueue_api", "RECLAIM", api.RECLAIM),
])
def test_an_old_path_warns_and_gives_the_same_object(old: str, name: str, new: object) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="nofslint.api|nofslint\\."):
        module = importlib.import_module(old)
    assert getattr(module, name) is new
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_a_plugin_written_for_0_1_0_still_runs(tmp_path: Path) -> None:
    """A rule directory importing the old paths loads and reports, in a real process."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "old_style.py").write_text(textwrap.dedent('''
        from nofslint.facts import Allocation
        from nofslint.rule import FileContext, Finding, Rule


        class OldStyle(Rule):
            """Any kmalloc, the 0.1.0 way.

            What it does:
                Reports kmalloc.
            Why is this bad:
                A test.
            Example:
                kmalloc(n, GFP_KERNEL);
            Fix:
                None.
            References:
                None.
            """

            id = "old-style"
            severity = "info"

            def check_file(self, ctx: FileContext):
                for alloc in ctx.facts.allocations:
                    assert isinstance(alloc, Allocation)
                    if alloc.allocator == "kmalloc":
                        yield self.finding_at_call(ctx, ctx.facts.calls[alloc.call], "kmalloc")
    '''))
    tree = tmp_path / "linux"
    (tree / "fs").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\n")
    (tree / "fs" / "a.c").write_text("void *f(int n)\n{\n\treturn kmalloc(n, GFP_KERNEL);\n}\n")
    script = Path(sys.executable).parent / "nofslint"
    done = subprocess.run([str(script), "check", "--no-cache", "--rules-dir", str(rules),
                           "--select", "old-style", str(tree)],
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "fs/a.c:3:" in done.stdout and "[old-style]" in done.stdout
