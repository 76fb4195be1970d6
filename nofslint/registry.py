"""Finding the rules: the built-in ones shipped as ``nofslint.rules``.

In the wheel, the repository's top-level ``rules/`` directory *is* the
``nofslint.rules`` package. In a source checkout it is loaded from that
directory under the same name, so rules import the same way in both.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

from nofslint.rule import DOC_SECTIONS, SEVERITIES, Rule, iter_rule_classes


class RuleError(Exception):
    """A rule that cannot be used: clash, bad metadata, import failure."""


def _builtin_package() -> ModuleType:
    try:
        return importlib.import_module("nofslint.rules")
    except ModuleNotFoundError:
        init = Path(__file__).resolve().parent.parent / "rules" / "__init__.py"
        spec = importlib.util.spec_from_file_location(
            "nofslint.rules", init, submodule_search_locations=[str(init.parent)])
        if spec is None or spec.loader is None:
            raise RuleError(f"built-in rules not found at {init.parent}") from None
        module = importlib.util.module_from_spec(spec)
        sys.modules["nofslint.rules"] = module
        spec.loader.exec_module(module)
        return module


def validate(cls: type[Rule]) -> None:
    if cls.severity not in SEVERITIES:
        raise RuleError(f"rule {cls.id}: severity {cls.severity!r} is not one of {SEVERITIES}")
    if cls.scope not in ("local", "tree"):
        raise RuleError(f"rule {cls.id}: scope must be 'local' or 'tree'")
    missing = [s for s in DOC_SECTIONS if s not in cls.docs()]
    if missing:
        raise RuleError(f"rule {cls.id}: docstring lacks section(s) {', '.join(missing)}")


def builtin_rules() -> dict[str, type[Rule]]:
    package = _builtin_package()
    rules: dict[str, type[Rule]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        name = f"{package.__name__}.{info.name}"
        module = importlib.import_module(name)
        for cls in iter_rule_classes(vars(module), name):
            validate(cls)
            if cls.id in rules:
                raise RuleError(f"rule id {cls.id} defined twice ({rules[cls.id].__module__}, "
                                f"{name})")
            rules[cls.id] = cls
    return rules


def select_rules(available: dict[str, type[Rule]], select: list[str] | None,
                 ignore: list[str] | None) -> list[Rule]:
    """Instances of the rules to run; unknown ids are a usage error."""
    for rid in (select or []) + (ignore or []):
        if rid not in available and rid != "ALL":
            known = ", ".join(sorted(available))
            raise RuleError(f"unknown rule {rid!r} (known rules: {known})")
    if select:
        ids = set(available) if "ALL" in select else set(select)
    else:
        ids = {rid for rid, cls in available.items() if cls.enabled_by_default}
    ids -= set(ignore or [])
    return [available[rid]() for rid in sorted(ids)]
