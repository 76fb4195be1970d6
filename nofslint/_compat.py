"""Old import paths of 0.1.0 (``nofslint.rule``, ``nofslint.facts``...) for plugins.

They keep working for one release: importing one warns (DeprecationWarning) and
gives a module whose names come from their new homes, mostly ``nofslint.api``.
Nothing inside nofslint imports these paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

# old module -> the modules its names now live in, searched in order
MOVED: dict[str, tuple[str, ...]] = {
    "rule": ("nofslint.api", "nofslint.api.rule", "nofslint.model.findings"),
    "facts": ("nofslint.model.facts", "nofslint.extract.facts"),
    "flow": ("nofslint.model.flow", "nofslint.analysis.paths", "nofslint.extract.flow"),
    "gfp": ("nofslint.model.gfp", "nofslint.kernel.gfp"),
    "index": ("nofslint.link.index", "nofslint.kernel.areas"),
    "fixes": ("nofslint.fixing.fixes",),
    "rewrite": ("nofslint.fixing.rewrite",),
    "reclaim": ("nofslint.kernel.reclaim", "nofslint.analysis.reclaim"),
    "scopes": ("nofslint.analysis.scopes",),
    "summaries": ("nofslint.analysis.summaries",),
    "workqueues": ("nofslint.analysis.workqueues",),
    "workqueue_api": ("nofslint.kernel.workqueue_api",),
    "transactions": ("nofslint.kernel.transactions",),
    "tree": ("nofslint.kernel.tree",),
}


class _Moved(types.ModuleType):
    def __init__(self, name: str, targets: tuple[str, ...]) -> None:
        super().__init__(name, f"Moved: import from {targets[0]} instead.")
        self._targets = targets

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        for target in self._targets:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        old = spec.name.rpartition(".")[2]
        warnings.warn(f"{spec.name} is deprecated and goes away in the next release: import "
                      f"from {MOVED[old][0]}", DeprecationWarning, stacklevel=3)
        return _Moved(spec.name, MOVED[old])

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        package, _, old = fullname.rpartition(".")
        if package != "nofslint" or old not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader())


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
