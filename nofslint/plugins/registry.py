"""The rule registry: built-in rules, what every rule must declare, and choosing rules to run.

In the wheel, the repository's top-level ``rules/`` directory *is* the
``nofslint.rules`` package. In a source checkout it is loaded from that
directory under the same name, so rules import the same way in both.
Third-party rules come through nofslint.plugins.loading, which registers them here
with the same checks.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import pkgutil
import re
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

from nofslint.api.rule import DOC_SECTIONS, SEVERITIES, Rule, iter_rule_classes

BUILTIN = "built-in"
# Rule ids are lowercase words joined by hyphens: vmalloc-nofs, wq-flush-reclaim.
RULE_ID = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")


class RuleError(Exception):
    """A rule that cannot be used: clash, bad metadata, import failure."""


@dataclass(frozen=True)
class PluginProblem:
    """A plugin, or one rule of it, that cannot be used; the other rules still run."""

    plugin: str  # "built-in", a distribution name, or a rule file's path
    message: str

    def __str__(self) -> str:
        return f"plugin {one_line(self.plugin)}: {one_line(self.message)}"


def one_line(text: str) -> str:
    """Text from a rules directory (a file name, an id) for one line of output: each
    non-printable character as ``\\xNN`` (``\\uNNNN``), so a newline cannot forge a line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256
                   else f"\\u{ord(ch):04x}" for ch in text)


class RuleInfo(Protocol):
    """What is known about a rule without running it: a Rule class, or one read from source.

    A rule read from source has None where an attribute is not a literal.
    """

    @property
    def id(self) -> str: ...
    @property
    def severity(self) -> str | None: ...
    @property
    def scope(self) -> str | None: ...
    @property
    def enabled_by_default(self) -> bool | None: ...
    @property
    def fixable(self) -> bool | None: ...
    def summary(self) -> str: ...
    def docs(self) -> dict[str, str]: ...


def plugin_of(rule: RuleInfo | Rule) -> str:
    """Which plugin a rule (class, instance or source reading) comes from, for messages."""
    return getattr(rule, "plugin", BUILTIN)


def rule_problems(info: RuleInfo, unknown: Collection[str] = ()) -> list[str]:
    """Everything wrong with a rule's declarations; attributes in ``unknown`` are not checked."""
    out: list[str] = []
    if not RULE_ID.match(info.id):
        out.append(f"rule id {info.id!r} is not lowercase words joined by hyphens")
    if "severity" not in unknown and info.severity not in SEVERITIES:
        out.append(f"rule {info.id}: severity {info.severity!r} is not one of {SEVERITIES}")
    if "scope" not in unknown and info.scope not in ("local", "tree"):
        out.append(f"rule {info.id}: scope {info.scope!r} must be 'local' or 'tree'")
    triggers = getattr(info, "triggers", None)  # a rule read from source: not checked
    if "triggers" not in unknown and triggers is not None and (
            not isinstance(triggers, (tuple, list, frozenset)) or not triggers
            or not all(isinstance(t, str) and t for t in triggers)):
        out.append(f"rule {info.id}: triggers must be None or a non-empty tuple of "
                   "non-empty strings")
    for name in ("enabled_by_default", "fixable"):
        if name not in unknown and not isinstance(getattr(info, name), bool):
            out.append(f"rule {info.id}: {name} must be True or False")
    if "__doc__" not in unknown:
        if not info.summary():
            out.append(f"rule {info.id}: docstring has no summary line")
        missing = [s for s in DOC_SECTIONS if s not in info.docs()]
        if missing:
            out.append(f"rule {info.id}: docstring lacks section(s) {', '.join(missing)}")
    return out


def validate(cls: RuleInfo) -> None:
    problems = rule_problems(cls)
    if problems:
        raise RuleError("; ".join(problems))


def add_rule(rules: dict[str, type[Rule]], cls: type[Rule], plugin: str) -> None:
    """Register a validated rule class as coming from ``plugin``; an id clash names both."""
    validate(cls)
    known = rules.get(cls.id)
    if known is cls:
        return
    if known is not None:
        raise RuleError(f"rule id {cls.id} ({cls.__module__}.{cls.__qualname__}) is already "
                        f"defined by {plugin_of(known)} ({known.__module__}.{known.__qualname__})")
    cls.plugin = plugin  # type: ignore[attr-defined]
    rules[cls.id] = cls


def rule_files(directory: Path) -> list[Path]:
    """The modules of a rules directory: ``*.py`` not starting with ``_`` (helpers)."""
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))


def builtin_package() -> ModuleType:
    try:
        return importlib.import_module("nofslint.rules")
    except ModuleNotFoundError:
        # Running from a source checkout: the top-level rules/ beside the package.
        init = Path(__file__).resolve().parents[2] / "rules" / "__init__.py"
        spec = importlib.util.spec_from_file_location(
            "nofslint.rules", init, submodule_search_locations=[str(init.parent)])
        if spec is None or spec.loader is None:
            raise RuleError(f"built-in rules not found at {init.parent}") from None
        module = importlib.util.module_from_spec(spec)
        sys.modules["nofslint.rules"] = module
        spec.loader.exec_module(module)
        return module


def builtin_rules() -> dict[str, type[Rule]]:
    """The rules shipped with nofslint; any problem is a bug in nofslint itself (raises)."""
    package = builtin_package()
    rules: dict[str, type[Rule]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        name = f"{package.__name__}.{info.name}"
        module = importlib.import_module(name)
        for cls in iter_rule_classes(vars(module), name):
            add_rule(rules, cls, BUILTIN)
    return rules


def unknown_rules(ids: Collection[str], known: Collection[str]) -> str:
    """"unknown rule 'x' (did you mean 'y'?)" for ids not in ``known``; the known list
    when no id is close to one (a misspelt id must not silently turn a rule off)."""
    parts = []
    for rid in ids:
        names = {name.lower(): name for name in [*known, "ALL"]}
        close = difflib.get_close_matches(rid.lower(), names, n=1, cutoff=0.6)
        parts.append(f"{rid!r}" + (f" (did you mean {names[close[0]]!r}?)" if close else ""))
    text = f"unknown rule{'s' if len(parts) != 1 else ''} {', '.join(parts)}"
    if not all("did you mean" in p for p in parts):
        text += f" (known rules: {', '.join(sorted(known))})"
    return text


def select_rules(available: dict[str, type[Rule]], select: list[str] | None,
                 ignore: list[str] | None) -> list[Rule]:
    """Instances of the rules to run; unknown ids are a usage error, and so is ``ALL``
    in ``ignore``: it would ignore every rule, and a run that checks nothing must not
    pass for a clean one (to lint nothing, do not run nofslint)."""
    for rid in (select or []) + (ignore or []):
        if rid not in available and rid != "ALL":
            raise RuleError(unknown_rules([rid], available))
    if "ALL" in (ignore or []):
        raise RuleError("no rules selected: ignoring ALL (--ignore or the config's ignore) "
                        "ignores every rule; ignore rules by id")
    if select:
        ids = set(available) if "ALL" in select else set(select)
    else:
        ids = {rid for rid, cls in available.items() if cls.enabled_by_default}
    ids -= set(ignore or [])
    return [available[rid]() for rid in sorted(ids)]
