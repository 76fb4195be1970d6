"""Rule files as source, through libcst: read rules without importing or running them.

This is for code nofslint must not run. ``nofslint rules --rules-dir DIR``
lists and checks someone else's rules by parsing them: nothing in DIR is
imported or executed, and an attribute whose value is not a literal is
reported as unknown, never evaluated. A class is a rule when it subclasses
``Rule`` (imported from nofslint.api under any name, or written
``nofslint.api.Rule``; the 0.1.0 spelling ``nofslint.rule.Rule`` too) or a class
of the same file that does.
Files are read only when regular and small, and checked by CPython's parser and a
depth limit before libcst sees them (reliability.md, "Resource bounds").
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from nofslint.api.rule import Rule, parse_doc_sections
from nofslint.frontend.source import NotRegular, TooLarge, read_regular
from nofslint.plugins.registry import (
    PluginProblem,
    rule_files,
    rule_problems,
)

# Where Rule can be named from: the API, its defining module, and the 0.1.0 path.
RULE_BASES = frozenset({"nofslint.api.Rule", "nofslint.api.rule.Rule", "nofslint.rule.Rule"})
ATTRIBUTES = ("id", "severity", "scope", "enabled_by_default", "fixable")
_LITERALS = {"True": True, "False": False, "None": None}
# A rule file is read only when it is a regular file of at most this size: a link to
# /dev/zero or a named pipe in a rules directory must be refused, not read forever.
MAX_RULE_FILE_BYTES = 1024 * 1024
# libcst's native parser overflows the C stack (a segfault) on a few thousand nested
# expressions, and its visitors recurse in Python: a file nested deeper than this
# (syntax-tree levels; real rules use under 30) is refused before libcst sees it.
# CPython's parser, which checks first, also refuses more than 200 nested brackets.
MAX_SYNTAX_DEPTH = 100


@dataclass(frozen=True)
class Unknown:
    """An attribute whose value is not a literal: its source text, never evaluated."""

    source: str


@dataclass
class StaticRule:
    """A rule class as read from source; None where the value is not a literal."""

    id: str
    severity: str | None
    scope: str | None
    enabled_by_default: bool | None
    fixable: bool | None
    doc: str | None
    plugin: str  # the file it was read from
    class_name: str
    line: int
    unknown: dict[str, str] = field(default_factory=dict)  # attribute -> its source text
    methods: frozenset[str] = frozenset()

    def summary(self) -> str:
        doc = (self.doc or "").strip()
        return doc.splitlines()[0].strip() if doc else ""

    def docs(self) -> dict[str, str]:
        return parse_doc_sections(self.doc or "")

    def problems(self) -> list[str]:
        """What the registry would refuse, plus what cannot be checked without importing."""
        where = f"{self.class_name} (line {self.line})"
        out = [f"{where}: {name} is not a literal ({text}); it is not evaluated, so it "
               "cannot be checked without importing the file"
               for name, text in sorted(self.unknown.items())]
        out += [f"{where}: {p}" for p in rule_problems(self, self.unknown)]
        method = "check_tree" if self.scope == "tree" else "check_file"
        if self.scope in ("local", "tree") and method not in self.methods:
            out.append(f"{where}: scope is {self.scope!r} but the class defines no {method}(): "
                       "it can never report")
        return out


class StaticReadError(Exception):
    """A file that cannot be read or parsed as Python."""


def _dotted(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr.value}" if head else None
    return None


def _import_names(module: cst.Module) -> dict[str, str]:
    """Local name -> what it names, for the module's top-level imports."""
    names: dict[str, str] = {}
    for small in _top_level_statements(module):
        if isinstance(small, cst.Import):
            for alias in small.names:
                full = _dotted(alias.name) or ""
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    names[alias.asname.name.value] = full
                else:
                    names[full.split(".")[0]] = full.split(".")[0]
        elif (isinstance(small, cst.ImportFrom) and not small.relative
              and small.module is not None and not isinstance(small.names, cst.ImportStar)):
            base = _dotted(small.module) or ""
            for alias in small.names:
                name = _dotted(alias.name) or ""
                local = name
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    local = alias.asname.name.value
                names[local] = f"{base}.{name}"
    return names


def _top_level_statements(module: cst.Module) -> Iterator[cst.BaseSmallStatement]:
    """The module's simple statements (imports, assignments), not its blocks."""
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            yield from stmt.body


def _literal(node: cst.BaseExpression, module: cst.Module) -> object:
    """The value of a string or True/False/None literal, else Unknown (not evaluated)."""
    if isinstance(node, cst.SimpleString | cst.ConcatenatedString):
        value = node.evaluated_value
        if isinstance(value, str):
            return value
    elif isinstance(node, cst.Name) and node.value in _LITERALS:
        return _LITERALS[node.value]
    return Unknown(module.code_for_node(node))


def _class_attributes(cls: cst.ClassDef, module: cst.Module) -> tuple[dict[str, object], set[str]]:
    """Class-body assignments to the rule attributes, and the methods defined."""
    attrs: dict[str, object] = {}
    methods: set[str] = set()
    for stmt in cls.body.body:
        if isinstance(stmt, cst.FunctionDef):
            methods.add(stmt.name.value)
            continue
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Assign):
                targets = [t.target for t in small.targets]
                value = small.value
            elif isinstance(small, cst.AnnAssign) and small.value is not None:
                targets, value = [small.target], small.value
            else:
                continue
            for target in targets:
                if isinstance(target, cst.Name) and target.value in ATTRIBUTES:
                    attrs[target.value] = _literal(value, module)
    return attrs, methods


def _assigned_later(module: cst.Module) -> dict[str, set[str]]:
    """``Cls.attr = ...`` at module level: attributes a class gets outside its body."""
    out: dict[str, set[str]] = {}
    for small in _top_level_statements(module):
        if isinstance(small, cst.Assign):
            for t in small.targets:
                if isinstance(t.target, cst.Attribute) and isinstance(t.target.value, cst.Name):
                    out.setdefault(t.target.value.value, set()).add(t.target.attr.value)
    return out


@dataclass
class _Class:
    attrs: dict[str, object]
    doc: str | Unknown | None
    methods: set[str]


def read_source(path: Path) -> bytes:
    """A rule file's bytes: a regular file (a symlink to one too) of at most
    MAX_RULE_FILE_BYTES, read as frontend.source reads every file (never a device,
    never a wait on a pipe, never more than the limit)."""
    try:
        return read_regular(path, MAX_RULE_FILE_BYTES)
    except NotRegular:
        raise StaticReadError("not a regular file (a directory, device, pipe or socket): "
                              "not read") from None
    except TooLarge:
        raise StaticReadError(f"larger than {MAX_RULE_FILE_BYTES // 1024} KiB: not read"
                              ) from None
    except OSError as exc:
        raise StaticReadError(f"cannot read: {exc.strerror or exc}") from None


def parse_source(data: bytes) -> cst.Module:
    """libcst's tree of a Python file, after CPython's own parser (parse only, nothing
    runs) has checked it: it refuses over-deep nesting with an exception where
    libcst's native parser would crash the process. Raises StaticReadError."""
    try:
        with warnings.catch_warnings():  # invalid escapes and the like: not our business
            warnings.simplefilter("ignore")
            tree = ast.parse(data)
    except SyntaxError as exc:
        raise StaticReadError(f"not valid Python: line {exc.lineno}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:  # too deep; a NUL byte
        raise StaticReadError(f"not valid Python: {str(exc) or 'nested too deeply'}") from None
    if _depth(tree) > MAX_SYNTAX_DEPTH:
        raise StaticReadError(f"nested more than {MAX_SYNTAX_DEPTH} levels deep: not read")
    try:
        return cst.parse_module(data)
    except cst.ParserSyntaxError as exc:
        raise StaticReadError(f"not valid Python: line {exc.raw_line}: {exc.message}") from None
    except Exception as exc:  # noqa: BLE001 - libcst must never crash the listing
        raise StaticReadError(f"cannot be parsed: {type(exc).__name__}: {exc}") from None


def _depth(tree: ast.AST) -> int:
    """Levels of the syntax tree, counted without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level <= MAX_SYNTAX_DEPTH:
            stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


def read_rules_statically(path: Path) -> list[StaticRule]:
    """The rule classes of one Python file, read with libcst: nothing is imported or run."""
    module = parse_source(read_source(path))
    try:
        return _rules_of(module, path)
    except RecursionError:
        raise StaticReadError("nested too deeply to be read") from None


def _rules_of(module: cst.Module, path: Path) -> list[StaticRule]:
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    imports = _import_names(module)
    later = _assigned_later(module)
    defaults = {name: getattr(Rule, name) for name in ATTRIBUTES}
    rules_here: dict[str, _Class] = {}
    out: list[StaticRule] = []
    for stmt in module.body:
        if not isinstance(stmt, cst.ClassDef):
            continue
        parent: _Class | None = None
        for arg in stmt.bases:
            name = _dotted(arg.value)
            if name is None:
                continue
            head, _, rest = name.partition(".")
            full = imports.get(head, head) + (f".{rest}" if rest else "")
            if full in RULE_BASES or full == "Rule":
                parent = _Class(dict(defaults), None, set())
            elif name in rules_here:
                parent = rules_here[name]
            if parent is not None:
                break
        if parent is None:
            continue
        attrs, methods = _class_attributes(stmt, module)
        # As at run time, a class's __doc__ is its own docstring: it is not inherited.
        here = _Class({**parent.attrs, **attrs}, stmt.get_docstring(clean=False),
                      parent.methods | methods)
        for name in later.get(stmt.name.value, ()):
            marker = Unknown(f"{stmt.name.value}.{name} = ... after the class")
            if name in ATTRIBUTES:
                here.attrs[name] = marker
            elif name == "__doc__":
                here.doc = marker
        rules_here[stmt.name.value] = here
        if here.attrs["id"] == "":
            continue  # a base class for other rules, as at run time
        out.append(_static_rule(stmt, here, path, positions[stmt].start.line))
    return out


def _static_rule(stmt: cst.ClassDef, info: _Class, path: Path, line: int) -> StaticRule:
    unknown = {k: v.source for k, v in info.attrs.items() if isinstance(v, Unknown)}
    if isinstance(info.doc, Unknown):
        unknown["__doc__"] = info.doc.source

    def known(name: str) -> object:
        value = info.attrs[name]
        return None if isinstance(value, Unknown) else value

    rid = info.attrs["id"]
    return StaticRule(
        id=rid if isinstance(rid, str) else f"<{stmt.name.value}>",
        severity=known("severity"), scope=known("scope"),  # type: ignore[arg-type]
        enabled_by_default=known("enabled_by_default"),  # type: ignore[arg-type]
        fixable=known("fixable"),  # type: ignore[arg-type]
        doc=info.doc if isinstance(info.doc, str) else None,
        plugin=str(path), class_name=stmt.name.value, line=line, unknown=unknown,
        methods=frozenset(info.methods))


def read_dir_statically(directory: Path) -> tuple[list[StaticRule], list[PluginProblem]]:
    """Every rule of a rules directory, and what is wrong with each, without importing any."""
    rules: list[StaticRule] = []
    problems: list[PluginProblem] = []
    if not directory.is_dir():
        return [], [PluginProblem(str(directory), "rules directory does not exist")]
    for path in rule_files(directory):
        try:
            found = read_rules_statically(path)
        except StaticReadError as exc:
            problems.append(PluginProblem(str(path), str(exc)))
            continue
        if not found:
            problems.append(PluginProblem(str(path), "defines no Rule subclass with an id "
                                          "(name helper modules _like_this.py)"))
        for rule in found:
            problems += [PluginProblem(str(path), p) for p in rule.problems()]
        rules += found
    return rules, problems


# -- rules new --------------------------------------------------------------------------
