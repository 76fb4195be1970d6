"""``nofslint rules new``: write a rule module with its doc sections and a check stub,
fixture stubs that follow the fixture conventions, and, in a plugin package, an
import of the rule in its ``__init__.py`` (a CST edit that keeps the file's
formatting) so the package's entry point finds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from nofslint.plugins.registry import (
    RULE_ID,
    builtin_package,
    builtin_rules,
)
from nofslint.plugins.static import StaticReadError, parse_source, read_source


class ScaffoldError(Exception):
    """The scaffold cannot be written (a file exists, the name is taken)."""


@dataclass
class Scaffold:
    created: list[Path]
    registered: str  # how the new rule is found, for the user


def checkout_rules_dir(cwd: Path | None = None) -> Path | None:
    """The built-in rules/ directory when working inside nofslint's source checkout.

    Only when the current directory is in that checkout: an editable install
    must not make ``rules new`` write into nofslint from anywhere else.
    """
    rules = Path(builtin_package().__path__[0]).resolve()
    root = rules.parent
    checkout = (root / "pyproject.toml").is_file() and (root / "nofslint").is_dir()
    here = (cwd or Path.cwd()).resolve()
    inside = here == root or root in here.parents
    return rules if checkout and rules.name == "rules" and inside else None


def class_name(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.split("-"))


def _fixtures_root(directory: Path) -> Path:
    """Fixtures live at the project root (beside pyproject.toml), else in the rules directory."""
    for candidate in (directory, *list(directory.parents)[:2]):
        if (candidate / "pyproject.toml").is_file():
            return candidate / "fixtures"
    return directory / "fixtures"


_RULE_TEMPLATE = '''"""{id}: TODO say in one line what it reports."""

from __future__ import annotations

from collections.abc import Iterator

{imports}


class {cls}(Rule):
    """TODO: one line that says what {id} reports.

    What it does
        TODO: what the rule looks for, in terms of the facts it reads.

    Why is this bad
        TODO: the deadlock or failure it leads to, and when.

    Example
        TODO: a few lines of C that it reports.

    Fix
        TODO: how to fix the reported code (and whether a fix is proposed).

    References
        TODO: kernel source, documentation or mailing-list threads.
    """

    id = "{id}"
    severity = "{severity}"{scope_line}
    # TODO: the words a file must contain for this rule to report there (the API
    # names it checks), e.g. triggers = ("kvmalloc", "kvzalloc"); a run of local
    # rules parses only files with one of them. None (the default): every file.
    triggers = None

{method}
'''

_LOCAL_METHOD = '''    def check_file(self, ctx: FileContext) -> Iterator[Finding]:
        # TODO: read ctx.facts (calls, allocations, scopes, ops) and, for each bad call,
        # yield self.finding_at_call(ctx, call, "what is wrong and how to fix it").
        yield from ()'''

_TREE_METHOD = '''    def check_tree(self, index: TreeIndex) -> Iterator[Finding]:
        # TODO: walk index (resolve, callees, callers, distances, sites_calling) and
        # yield Finding(...) with a trace from the entry to the bad call.
        yield from ()'''

_MAKEFILE = """# Fixture tree: nofslint reads VERSION/PATCHLEVEL from here.
VERSION = 6
PATCHLEVEL = 12
SUBLEVEL = 0
"""

_BUG_FIXTURE = """/* nofslint fixture: original code written for these tests, not kernel code. */
/*
 * Fixture: code {id} must report. TODO: write the pattern the rule finds and
 * put an expect comment on every line it must report.
 */

static void *demo_{stem}(size_t size)
{{
	return kmalloc(size, GFP_NOFS); /* expect: {id} */
}}
"""

_CLEAN_FIXTURE = """/* nofslint fixture: original code written for these tests, not kernel code. */
/*
 * Look-alikes {id} must not report. TODO: write code that is close to the
 * bug but correct.
 * fixture: clean
 */

static void *demo_{stem}_ok(size_t size)
{{
	return kmalloc(size, GFP_KERNEL);
}}
"""


def rule_source(rule_id: str, scope: str, severity: str) -> str:
    if scope == "tree":
        imports = "from nofslint.api import Finding, Rule, TreeIndex"
        method, scope_line = _TREE_METHOD, '\n    scope = "tree"'
    else:
        imports, method, scope_line = ("from nofslint.api import FileContext, Finding, Rule",
                                       _LOCAL_METHOD, "")
    return _RULE_TEMPLATE.format(id=rule_id, cls=class_name(rule_id), severity=severity,
                                 imports=imports, method=method, scope_line=scope_line)


def new_rule(rule_id: str, directory: Path, scope: str = "local",
             severity: str = "warning") -> Scaffold:
    """Write a rule module, its fixture stubs, and register it; never overwrites a file.

    Raises ValueError for a bad id and ScaffoldError when a file or the id exists.
    """
    if not RULE_ID.match(rule_id):
        raise ValueError(f"{rule_id!r} is not a rule id: use lowercase words joined by "
                         "hyphens, like vmalloc-nofs")
    if rule_id in builtin_rules():
        raise ScaffoldError(f"{rule_id} is already a built-in rule")
    stem = rule_id.replace("-", "_")
    module = directory / f"{stem}.py"
    tree = _fixtures_root(directory) / rule_id / "linux-6.12"
    files = {
        module: rule_source(rule_id, scope, severity),
        tree / "fs" / "demo" / f"{stem}.c": _BUG_FIXTURE.format(id=rule_id, stem=stem),
        tree / "fs" / "demo" / f"{stem}_clean.c": _CLEAN_FIXTURE.format(id=rule_id, stem=stem),
    }
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise ScaffoldError(f"{', '.join(existing)} already exist(s); nothing was written")
    if not (tree / "Makefile").exists():
        files[tree / "Makefile"] = _MAKEFILE
    init = directory / "__init__.py"
    builtin_dir = directory.resolve() == checkout_rules_dir()
    new_init = None
    if init.is_file() and not builtin_dir:
        try:
            source = read_source(init)
            parse_source(source)  # libcst only sees what CPython's parser accepted
            text = source.decode("utf-8")
        except (StaticReadError, UnicodeDecodeError) as exc:
            raise ScaffoldError(f"{init}: {exc}; nothing was written") from None
        new_init = register_in_init(text, stem, class_name(rule_id))
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if builtin_dir:
        how = ("nothing to register: the built-in rules/ modules are discovered by pkgutil; "
               "regenerate docs/rules.md with `nofslint rules --format markdown`")
    elif new_init is not None:
        init.write_text(new_init, encoding="utf-8")
        how = (f"registered in {init}: the package's entry point (group nofslint.rules) "
               "finds it there")
    else:
        how = (f"nothing to register: {directory} is not a package; every module of a "
               f"--rules-dir is loaded (nofslint check --rules-dir {directory})")
    return Scaffold(sorted(files), how)


# -- registering in a package's __init__.py ------------------------------------------------

def _is_relative_import(stmt: cst.CSTNode) -> bool:
    return (isinstance(stmt, cst.SimpleStatementLine)
            and any(isinstance(s, cst.ImportFrom) and s.relative for s in stmt.body))


def _is_import(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and any(
        isinstance(s, cst.Import | cst.ImportFrom) for s in stmt.body)


def _insert_at(body: Sequence[cst.BaseStatement]) -> int:
    """After the last relative import; else after the imports; else after the docstring."""
    relative = [i for i, s in enumerate(body) if _is_relative_import(s)]
    if relative:
        return relative[-1] + 1
    index = 0
    if body and isinstance(body[0], cst.SimpleStatementLine) and isinstance(
            body[0].body[0], cst.Expr) and isinstance(
            body[0].body[0].value, cst.SimpleString | cst.ConcatenatedString):
        index = 1
    while index < len(body) and _is_import(body[index]):
        index += 1
    return index


def _append(seq: cst.List | cst.Tuple, value: cst.BaseExpression) -> cst.List | cst.Tuple:
    """Append an element, with the separators the sequence already uses."""
    elements = list(seq.elements)
    if not elements:
        return seq.with_changes(elements=[cst.Element(value)])
    last = elements[-1]
    if len(elements) >= 2 and isinstance(elements[-2].comma, cst.Comma):
        sep = elements[-2].comma
    elif isinstance(seq, cst.List) and isinstance(seq.lbracket.whitespace_after,
                                                  cst.ParenthesizedWhitespace):
        sep = cst.Comma(whitespace_after=seq.lbracket.whitespace_after)
    else:
        sep = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    elements[-1] = last.with_changes(comma=sep)
    elements.append(cst.Element(value, comma=last.comma))
    return seq.with_changes(elements=elements)


class _AddToList(cst.CSTTransformer):
    """Append the class to ``RULES = [...]`` (or its name to ``__all__``) at module level."""

    def __init__(self, name: str, element: cst.BaseExpression) -> None:
        self.name = name
        self.element = element
        self.done = False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        if (not self.done and len(updated.targets) == 1
                and isinstance(updated.targets[0].target, cst.Name)
                and updated.targets[0].target.value == self.name
                and isinstance(updated.value, cst.List | cst.Tuple)):
            self.done = True
            return updated.with_changes(value=_append(updated.value, self.element))
        return updated


def register_in_init(source: str, stem: str, cls: str) -> str:
    """``__init__.py`` with ``from .stem import Cls`` added, and Cls added to RULES/__all__."""
    module = cst.parse_module(source)
    body = list(module.body)
    body.insert(_insert_at(body), cst.parse_statement(f"from .{stem} import {cls}\n"))
    module = module.with_changes(body=body)
    rules = _AddToList("RULES", cst.Name(cls))
    module = module.visit(rules)
    if not rules.done:
        module = module.visit(_AddToList("__all__", cst.SimpleString(f'"{cls}"')))
    return module.code
