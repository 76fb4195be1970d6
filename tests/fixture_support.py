"""Reading fixtures: inline expectations and golden ``.fixed`` files.

A fixture is a C file under ``fixtures/<rule-id>/`` (inside a small kernel
tree with its own Makefile, so the version semantics are the tree's).
``/* expect: rule-a, rule-b */`` marks the line a finding must be reported
on; a file without expectations must say ``fixture: clean``. When
``<file>.fixed`` exists, applying every proposed fix must give exactly it.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
_EXPECT = re.compile(r"expect:\s*([\w, -]+?)\s*\*/")


def fixture_files() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".c", ".h") and p.is_file())


def expectations(path: Path) -> Counter[tuple[int, str]]:
    """(line, rule id) -> how many findings are expected there."""
    out: Counter[tuple[int, str]] = Counter()
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        for m in _EXPECT.finditer(line):
            for rule in m.group(1).split(","):
                if rule.strip():
                    out[(lineno, rule.strip())] += 1
    return out


def declared_clean(path: Path) -> bool:
    return "fixture: clean" in path.read_text()


def rule_of(path: Path) -> str:
    return path.relative_to(FIXTURES).parts[0]


def planted_rule(severity: str) -> str:
    """The source of a harmless rule a tree or a plugin directory ships (the attacks put
    it where nofslint must not import it unless told to)."""
    return f'''
from nofslint.api.rule import Rule


class Planted(Rule):
    """A rule a tree ships.

    What it does
        Nothing.
    Why is this bad
        It is not.
    Example
        foo();
    Fix
        None.
    References
        None.
    """

    id = "planted-rule"
    severity = "{severity}"

    def check_file(self, ctx):
        return ()
'''


def kernel_tree(root: Path, files: dict[str, str]) -> Path:
    """A fake v6.12 kernel tree at ``root``: a top-level Makefile with the version and
    ``files`` (tree-relative path -> text)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\n")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root
