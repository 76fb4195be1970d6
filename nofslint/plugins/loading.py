"""Where rules come from: built-ins, installed plugins, and rule directories.

Installed plugins are distributions with entry points in the group
``nofslint.rules``; an entry point names a module (its rules) or one Rule
class. A rules directory (``--rules-dir DIR``, or ``plugins`` in the user's
config) holds one module per plugin file.

Trust: code is imported only from places the user chose. Installed
distributions are code the user installed, and a rules directory is one the
user named. Nothing is imported from the paths being linted: a plugin
distribution or module found there (only possible when the tree is on
sys.path, as with ``python -m nofslint`` run inside it) is refused. Listing
and explaining rules (nofslint.plugins.scaffold) read rule directories with libcst
and import nothing from them.

A plugin that fails to import, clashes, or declares bad metadata becomes a
PluginProblem naming it; every other rule still loads.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TypeGuard

from nofslint.api.rule import Rule, iter_rule_classes
from nofslint.plugins.registry import (
    BUILTIN,
    PluginProblem,
    RuleError,
    RuleInfo,
    add_rule,
    builtin_package,
    builtin_rules,
    plugin_of,
    rule_files,
)

GROUP = "nofslint.rules"


def _summary(exc: BaseException) -> str:
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    """Realpaths on both sides: a symlink or ``..`` must not hide a linted path."""
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(os.path.realpath(root)) for root in roots)


class _Loader:
    def __init__(self) -> None:
        self.rules: dict[str, type[Rule]] = {}
        self.problems: list[PluginProblem] = []

    def problem(self, plugin: str, message: str) -> None:
        self.problems.append(PluginProblem(plugin, message))

    def add(self, classes: Iterable[object], plugin: str) -> None:
        for cls in classes:
            if not _is_rule_class(cls):
                self.problem(plugin, f"{cls!r} is listed as a rule but is not a Rule subclass")
                continue
            try:
                add_rule(self.rules, cls, plugin)
            except RuleError as exc:
                self.problem(plugin, str(exc))

    def builtins(self) -> None:
        try:
            self.rules.update(builtin_rules())
        except Exception as exc:  # noqa: BLE001 - a broken install still lists plugins
            self.problem(BUILTIN, _summary(exc))

    def entry_points(self, untrusted: Sequence[Path]) -> None:
        found = importlib.metadata.entry_points(group=GROUP)
        for ep in sorted(found, key=lambda e: (e.dist.name if e.dist else "", e.name)):
            plugin = ep.dist.name if ep.dist else f"entry point {ep.name}"
            where = _refused_location(ep, untrusted)
            if where is not None:
                self.problem(plugin, f"entry point {ep.name} = {ep.value} resolves inside "
                             f"the linted paths ({where}); not imported")
                continue
            try:
                target = ep.load()
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - report, load the rest
                self.problem(plugin, f"entry point {ep.name} = {ep.value}: import failed: "
                             f"{_summary(exc)}")
                continue
            classes = _entry_point_rules(target)
            if classes is None:
                self.problem(plugin, f"entry point {ep.name} = {ep.value} is neither a Rule "
                             "subclass nor a module of rules (whose RULES, if any, is a list)")
            elif not classes:
                self.problem(plugin, f"entry point {ep.name} = {ep.value} has no rules")
            else:
                self.add(classes, plugin)

    def directory(self, directory: Path) -> None:
        if not directory.is_dir():
            self.problem(str(directory), "rules directory does not exist")
            return
        package = _directory_package(directory)
        for path in rule_files(directory):
            name = f"{package}.{path.stem}"
            try:
                module = importlib.import_module(name)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - report, load the rest
                self.problem(str(path), f"import failed: {_summary(exc)}")
                continue
            classes = list(iter_rule_classes(vars(module), name))
            if not classes:
                self.problem(str(path), "defines no Rule subclass with an id "
                             "(name helper modules _like_this.py)")
            self.add(classes, str(path))


def _refused_location(ep: importlib.metadata.EntryPoint, untrusted: Sequence[Path]) -> str | None:
    """Where an entry point would be imported from, when that is inside ``untrusted``."""
    if not untrusted:
        return None
    if ep.dist is not None:
        home = Path(str(ep.dist.locate_file("")))
        if _inside(home, untrusted):
            return str(home)
    top = ep.module.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None  # ep.load() reports it
    if spec is None:
        return None
    places = [spec.origin] if spec.origin and spec.has_location else []
    places += list(spec.submodule_search_locations or ())
    return next((p for p in places if _inside(Path(p), untrusted)), None)


def _entry_point_rules(target: object) -> list[object] | None:
    """A Rule class, or a module's rules: its ``RULES`` list when it has one, else the
    Rule subclasses it defines or re-exports from its own submodules. None: neither."""
    if _is_rule_class(target):
        return [target]
    if not isinstance(target, ModuleType):
        return None
    listed = getattr(target, "RULES", None)
    if listed is not None:
        return list(listed) if isinstance(listed, list | tuple) else None
    prefix = target.__name__ + "."
    found: list[type[Rule]] = []
    for v in vars(target).values():
        if (_is_rule_class(v) and v.id and v not in found
                and (v.__module__ == target.__name__ or v.__module__.startswith(prefix))):
            found.append(v)
    return found


def _is_rule_class(value: object) -> TypeGuard[type[Rule]]:
    return isinstance(value, type) and issubclass(value, Rule) and value is not Rule


def _directory_package(directory: Path) -> str:
    """A private package whose path is the directory: its modules import without the
    directory on sys.path, and two directories with the same file names do not clash."""
    resolved = directory.resolve()
    name = "nofslint_plugin_" + hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    if name not in sys.modules:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(resolved)]
        sys.modules[name] = importlib.util.module_from_spec(spec)
    return name


def load_rules(rules_dirs: Sequence[Path] = (), entry_points: bool = True,
               linted: Sequence[Path] = ()) -> tuple[dict[str, type[Rule]], list[PluginProblem]]:
    """Built-ins, then installed plugins, then rule directories, in that order.

    The first definition of an id wins; a later one is a problem naming both
    plugins. Rule directories are imported (the caller passes only directories
    the user named); ``linted`` are the paths being linted, never imported from.
    Each rule class gets ``plugin``: "built-in", the distribution, or its file.
    """
    loader = _Loader()
    loader.builtins()
    if entry_points:
        loader.entry_points(linted)
    for directory in rules_dirs:
        loader.directory(directory)
    return loader.rules, loader.problems


def list_rules(rules_dirs: Sequence[Path] = (), entry_points: bool = True
               ) -> tuple[dict[str, RuleInfo], list[PluginProblem]]:
    """What ``nofslint rules`` and ``explain`` show: built-ins and installed plugins
    (imported), and the rule directories read from source, never imported."""
    # libcst takes longer to import than a small lint run: only listing pays for it.
    from nofslint.plugins.static import read_dir_statically

    loaded, problems = load_rules((), entry_points, linted=rules_dirs)
    rules: dict[str, RuleInfo] = dict(loaded)
    for directory in rules_dirs:
        found, trouble = read_dir_statically(directory)
        problems += trouble
        for rule in found:
            known = rules.get(rule.id)
            if known is not None:
                problems.append(PluginProblem(rule.plugin, f"rule id {rule.id} "
                                              f"({rule.class_name}) is already defined by "
                                              f"{plugin_of(known)}"))
            else:
                rules[rule.id] = rule
    return rules, problems


def _sources(rule: type[Rule]) -> Iterator[Path]:
    """The files a rule's code comes from: every module beside its own."""
    module = sys.modules.get(rule.__module__)
    file = getattr(module, "__file__", None)
    if file:
        yield from sorted(Path(file).parent.glob("*.py"))


def rules_fingerprint(rules: Iterable[Rule | type[Rule]]) -> str:
    """A hash of the plugin rules' code, for keys of saved results.

    Built-in rules are covered by nofslint's own code hash; a plugin edited
    between two runs must not be answered with the old code's findings.
    """
    digest = hashlib.sha256()
    classes = {r if isinstance(r, type) else type(r) for r in rules}
    builtin_dir = Path(builtin_package().__path__[0]).resolve()
    for cls in sorted(classes, key=lambda c: c.id):
        if plugin_of(cls) == BUILTIN:
            continue
        digest.update(f"{cls.id}\0{plugin_of(cls)}\0".encode())
        for path in _sources(cls):
            if path.resolve().parent == builtin_dir:
                continue
            try:
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
            except OSError:
                digest.update(path.name.encode() + b"\0?")
    return digest.hexdigest()[:16]
