"""Kernel trees: where their root is and which kernel version they are.

The root is the nearest directory above a file whose ``Makefile`` sets
``VERSION``/``PATCHLEVEL`` (the kernel's top-level Makefile; subdirectory
Makefiles never do). Rules follow that version's semantics.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from nofslint.kernel.gfp import GfpTable
from nofslint.kernel.kconfig import Kconfig
from nofslint.kernel.reclaim import EntryPoint
from nofslint.kernel.transactions import Transaction


@dataclass(frozen=True)
class Extras:
    """Tables a tree adds to nofslint's built-in ones; part of what facts depend on."""

    reclaim: tuple[EntryPoint, ...] = ()
    transactions: tuple[Transaction, ...] = ()
    # The kernel config in force (None: every #if alternative, every file). Not part of
    # the fingerprint: each file's cache key holds the values of the symbols it mentions.
    kconfig: Kconfig | None = None

    def fingerprint(self) -> str:
        if not self.reclaim and not self.transactions:
            return ""
        text = repr((self.reclaim, [(t.filesystem, sorted(t.opens), sorted(t.closes), t.returns,
                                     t.handle) for t in self.transactions]))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


NO_EXTRAS = Extras()

# Loose files (no tree above them) get the newest semantics we model.
NEWEST = (6, 12)

SOURCE_SUFFIXES = (".c", ".h")
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".pc", "__pycache__"})

_VERSION = re.compile(rb"^VERSION\s*=\s*(\d+)\s*$", re.M)
_PATCHLEVEL = re.compile(rb"^PATCHLEVEL\s*=\s*(\d+)\s*$", re.M)


def parse_version(text: str) -> tuple[int, int]:
    """'5.10' or '5.10.3' or 'v6.1' -> (5, 10); ValueError with a usable message."""
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:-\S*)?", text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a kernel version; use MAJOR.MINOR, e.g. 5.10")
    return int(m.group(1)), int(m.group(2))


@lru_cache(maxsize=4096)
def makefile_version(makefile: Path) -> tuple[int, int] | None:
    try:
        with open(makefile, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    v, p = _VERSION.search(head), _PATCHLEVEL.search(head)
    return (int(v.group(1)), int(p.group(1))) if v and p else None


@dataclass(frozen=True)
class KernelTree:
    """A tree root (None for loose files) and the version rules must follow."""

    root: Path | None
    version: tuple[int, int]
    version_source: str  # "Makefile", "--kernel-version" or "default"
    extras: Extras = NO_EXTRAS  # the tree's config tables (reclaim entries, transactions)

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    def relpath(self, path: Path | str) -> str:
        base = self.root if self.root is not None else Path.cwd()
        text, prefix = str(path), _dir_prefix(base)
        if text.startswith(prefix) and "/." not in text:  # the usual case, without pathlib
            return text[len(prefix):]
        path = Path(path)
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            return path.as_posix()

    def gfp_table(self) -> GfpTable:
        return _gfp_table(self.root)


@cache
def _gfp_table(root: Path | None) -> GfpTable:
    return GfpTable.for_tree(root)


@lru_cache(maxsize=4096)
def find_root(directory: Path) -> Path | None:
    """Nearest ancestor (or self) holding the kernel's top-level Makefile."""
    if makefile_version(directory / "Makefile") is not None:
        return directory
    parent = directory.parent
    return None if parent == directory else find_root(parent)


def enclosing_roots(path: Path | str) -> list[str]:
    """Every kernel root holding ``path`` (self included), each as its realpath.

    Not only the nearest: a tree can plant a fake root (a subdirectory whose
    Makefile sets VERSION/PATCHLEVEL) whose config points one level up, at
    code in the real tree. Both the path as written and its realpath are
    walked, so neither a symlink nor ``..`` hides a root.
    """
    found: list[str] = []
    for start in {os.path.abspath(path), os.path.realpath(path)}:
        directory = start if os.path.isdir(start) else os.path.dirname(start)
        while True:
            if makefile_version(Path(directory, "Makefile")) is not None:
                real = os.path.realpath(directory)
                if real not in found:
                    found.append(real)
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
    return found


@lru_cache(maxsize=64)
def _dir_prefix(base: Path) -> str:
    text = str(base)
    return text if text.endswith("/") else text + "/"


def tree_for(path: Path, override: tuple[int, int] | None,
             extras: Extras = NO_EXTRAS) -> KernelTree:
    """The tree a file (or directory) belongs to."""
    return tree_for_dir(path if path.is_dir() else path.parent, override, extras)


@lru_cache(maxsize=4096)
def tree_for_dir(directory: Path, override: tuple[int, int] | None,
                  extras: Extras) -> KernelTree:
    root = find_root(directory)
    if override is not None:
        return KernelTree(root, override, "--kernel-version", extras)
    if root is not None:
        version = makefile_version(root / "Makefile")
        if version is not None:
            return KernelTree(root, version, "Makefile", extras)
    return KernelTree(root, NEWEST, "default", extras)


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Source files under the given paths, each once, in a stable order.

    Explicitly named files are linted whatever their suffix; directories are
    walked for .c/.h files without following symlinked directories (no loops).
    A directory that cannot be listed is yielded itself, so reading it reports
    why (its files are not silently left out).
    """
    seen: set[str] = set()

    def new(path: Path) -> bool:
        key = os.path.abspath(path)  # ./a.c, a.c and /abs/a.c are one file
        if key in seen:
            return False
        seen.add(key)
        return True

    for top in paths:
        if not top.is_dir():
            if new(top):
                yield top
            continue
        unlisted: list[OSError] = []
        for dirpath, dirnames, filenames in os.walk(top, onerror=unlisted.append):
            yield from _unlisted(unlisted, new)
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            for name in sorted(filenames):
                if name.endswith(SOURCE_SUFFIXES):
                    path = Path(dirpath, name)
                    if new(path):
                        yield path
            # A directory named like a source file is still a directory: report it.
            for name in dirnames:
                if name.endswith(SOURCE_SUFFIXES):
                    path = Path(dirpath, name)
                    if new(path):
                        yield path
        yield from _unlisted(unlisted, new)


def _unlisted(errors: list[OSError], new: Callable[[Path], bool]) -> Iterator[Path]:
    for error in errors:
        if error.filename is not None and new(Path(error.filename)):
            yield Path(error.filename)
    errors.clear()
