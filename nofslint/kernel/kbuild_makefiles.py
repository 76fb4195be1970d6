"""Which C files a kernel config builds, read from the Kbuild Makefiles as data.

Kbuild descends from the top: the root ``Kbuild`` names the top directories
(``obj-y += kernel/``, ``obj-$(CONFIG_NET) += net/``, ``arch/$(SRCARCH)/`` and the
arch Makefile's ``core-y``/``libs-y``/``drivers-y``), and each directory's ``Kbuild`` or
``Makefile`` lists its objects: ``obj-y``, ``obj-m``, ``obj-$(CONFIG_X)``, ``lib-y``,
composite objects (``foo-y``, ``foo-objs``, ``foo-$(CONFIG_X)``) and subdirectories.

Nothing from the tree runs: the Makefiles are read as data by ``kernel.makefile``
(variables, conditionals, in-tree includes, a few make functions). Anything it cannot
evaluate (``$(shell ...)``, ``$(call ...)``, a variable set elsewhere) is not guessed: an
object list it touches counts as built, a condition it cannot decide keeps both branches,
and ``notes`` names the place. Costs are bounded: Makefile size, directories, descent
depth, include depth, expansion depth and length; paths never leave the tree.

A C file counts as not built only when the Makefiles say so: an object named with a
condition that is false, a composite object that is not built, a subdirectory or an
architecture the config does not descend into, a host program, or a top-level
directory the root Kbuild does not name. A file a read Makefile does not name at all
(``#include``d C files, constructs not evaluated) counts as built.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from nofslint.kernel.kconfig import Kconfig
from nofslint.kernel.makefile import OBJ_VAR, Evaluator, Makefile, Unevaluable, tree_path

MAX_DIRECTORIES = 20000
MAX_DEPTH = 32
# Programs built to run on the build machine: their C files are not the kernel's.
_HOST_VARS = re.compile(r"(?:hostprogs|userprogs)(?:-always)?(?:-[ym])?")


@dataclass
class KbuildMap:
    """What the config builds; ``is_built`` answers for one tree-relative C file."""

    arch: str
    built: set[str] = field(default_factory=set)  # C files named as built objects
    mentioned: set[str] = field(default_factory=set)  # C files named under any condition
    visited: set[str] = field(default_factory=set)  # directories whose Makefile was read
    pruned: set[str] = field(default_factory=set)  # subdirectories the config does not build
    notes: list[str] = field(default_factory=list)  # constructs not evaluated
    # Every file the reading looked at: (size, mtime) or None (see makefile.unchanged).
    inputs: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    def to_data(self) -> dict:
        """Plain data (JSON) to keep the reading between runs."""
        return {"arch": self.arch, "built": sorted(self.built),
                "mentioned": sorted(self.mentioned), "visited": sorted(self.visited),
                "pruned": sorted(self.pruned), "notes": self.notes,
                "inputs": sorted([k, v] for k, v in self.inputs.items())}

    @staticmethod
    def from_data(data: dict) -> KbuildMap:
        """The reading to_data kept; ValueError/TypeError/KeyError when it is not one."""
        inputs = {}
        for rel, value in data["inputs"]:
            if not isinstance(rel, str) or not (value is None or (
                    isinstance(value, list) and len(value) == 2
                    and all(isinstance(v, int) for v in value))):
                raise ValueError("not a saved Kbuild reading")
            inputs[rel] = tuple(value) if value is not None else None
        strings = {k: [v for v in data[k] if isinstance(v, str)]
                   for k in ("built", "mentioned", "visited", "pruned", "notes")}
        return KbuildMap(str(data["arch"]), set(strings["built"]), set(strings["mentioned"]),
                         set(strings["visited"]), set(strings["pruned"]), strings["notes"],
                         inputs)

    def is_built(self, rel: str) -> bool:
        if not rel.endswith(".c"):
            return True  # headers: linked as before
        if rel in self.built:
            return True
        if rel in self.mentioned:
            return False
        directory = posixpath.dirname(rel)
        while directory:
            if directory in self.visited:
                return True  # a read Makefile does not name it: counted as built
            if directory in self.pruned:
                return False
            directory = posixpath.dirname(directory)
        return False  # a top-level directory the root Kbuild does not name

    def unnamed(self, rel: str) -> bool:
        """Built only because no Makefile read names it (what --verbose lists)."""
        return rel.endswith(".c") and rel not in self.built and self.is_built(rel)


class _Walker(Evaluator):
    """Descends the tree's Kbuild Makefiles as kbuild does, filling a KbuildMap."""

    def __init__(self, root: Path, config: Kconfig, arch: str) -> None:
        bits = "64" if config.values.get("CONFIG_64BIT") == "y" else "32"
        super().__init__(root, config.values,
                         {"srctree": ".", "objtree": ".", "SRCARCH": arch, "ARCH": arch,
                          "BITS": bits, "CONFIG_SHELL": "sh", "Q": "", "quiet": ""})
        self.map = KbuildMap(arch)
        self.map.notes = self.notes
        self.map.inputs = self.inputs

    def walk(self, seeds: list[str]) -> None:
        todo = [(d, 0) for d in seeds]
        while todo:
            directory, depth = todo.pop()
            if directory in self.map.visited or len(self.map.visited) >= MAX_DIRECTORIES:
                continue
            if depth > MAX_DEPTH:
                self.note(directory, 0, "descent deeper than the limit; not read")
                continue
            self.map.visited.add(directory)
            self.map.pruned.discard(directory)
            todo.extend((d, depth + 1) for d in self.directory(directory))

    def directory(self, directory: str) -> list[str]:
        """Read one directory's Makefile; returns the subdirectories it builds."""
        found = self.read_makefile(directory)
        if found is None:
            return []
        rel, text = found
        self.specials["_dir"] = directory or "."
        mk = self.evaluate(rel, text)
        subdirs: list[str] = []
        composites: dict[str, bool] = {}
        for name in list(mk.vars):
            obj = OBJ_VAR.fullmatch(name)
            host = _HOST_VARS.fullmatch(name) is not None
            if obj is None and not host:
                continue
            built = obj is not None and obj.group(2) in ("y", "m")
            try:
                words = self.value(mk, name, 0).split()
            except Unevaluable as exc:
                self.note(rel, 0, f"{name} not evaluated ({exc}): its objects count as built")
                continue
            for word in words:
                if word.endswith("/"):
                    path = tree_path(directory, word)
                    if path is None or host:
                        continue
                    if built:
                        subdirs.append(path)
                    elif path not in self.map.visited:
                        self.map.pruned.add(path)
                elif word.endswith(".o"):
                    base = word[:-2]
                    composites[base] = composites.get(base, False) or (built and not host)
                elif host:
                    composites.setdefault(word, False)
        for base, built in composites.items():
            self.objects(mk, rel, directory, base, built, 0)
        for text in mk.dead:
            try:
                words = self.expand(mk, text).split()
            except Unevaluable:
                continue
            for word in words:
                if word.endswith("/"):  # a subdirectory only an untaken branch descends into
                    path = tree_path(directory, word)
                    if path is not None and path not in self.map.visited:
                        self.map.pruned.add(path)
                    continue
                path = tree_path(directory, word[:-2] + ".c") if word.endswith(".o") else None
                if path is not None:
                    self.map.mentioned.add(path)
        return subdirs

    def objects(self, mk: Makefile, rel: str, directory: str, base: str, built: bool,
                depth: int) -> None:
        """Mark ``base``.c, or a composite's parts, built or not."""
        parts: list[str] = []
        found = False
        for suffix in ("y", "objs", "m"):
            name = f"{base}-{suffix}"
            if name not in mk.vars:
                continue
            found = True
            try:
                parts += self.value(mk, name, 0).split()
            except Unevaluable as exc:
                self.note(rel, 0, f"{name} not evaluated ({exc}): its parts count as built")
        off = [n for n in (f"{base}-", f"{base}-n") if n in mk.vars]  # foo-$(CONFIG_X), X unset
        if found or off:
            for name in off:
                try:
                    for word in self.value(mk, name, 0).split():
                        if word.endswith(".o") and depth < 4:
                            self.objects(mk, rel, directory, word[:-2], False, depth + 1)
                except Unevaluable:
                    continue
            for word in parts:
                if word.endswith(".o") and word[:-2] != base and depth < 4:
                    self.objects(mk, rel, directory, word[:-2], built, depth + 1)
            if found:
                return
        path = tree_path(directory, base + ".c")
        if path is None:
            return
        self.map.mentioned.add(path)
        if built:
            self.map.built.add(path)

    def arch_dirs(self) -> list[str]:
        """The arch Makefile's core-y, libs-y, drivers-y/m directories."""
        arch = self.map.arch
        found = self.read_makefile(f"arch/{arch}")
        if found is None:
            return []
        rel = f"arch/{arch}/Makefile"
        self.specials["_dir"] = f"arch/{arch}"
        # The arch Makefile is read for its directory lists only, never as Kbuild.
        text = found[1] if found[0].endswith("Makefile") else self.plain(rel) or ""
        mk = self.evaluate(rel, text)
        out: list[str] = []
        for name in ("core-y", "libs-y", "drivers-y", "drivers-m", "core-", "libs-",
                     "drivers-", "drivers-n"):
            if name not in mk.vars:
                continue
            try:
                words = self.value(mk, name, 0).split()
            except Unevaluable as exc:
                self.note(rel, 0, f"{name} not evaluated ({exc})")
                continue
            dirs = [p for d in words if d.endswith("/") and (p := tree_path("", d)) is not None]
            if name.endswith(("-y", "-m")):
                out += dirs
            else:  # drivers-$(CONFIG_MATH_EMULATION) with the option unset
                self.map.pruned.update(dirs)
        return out


def build_map(root: Path, config: Kconfig) -> KbuildMap:
    """Which C files under ``root`` the config builds (see the module docstring)."""
    arch = config.arch or "x86"
    reader = _Walker(root, config, arch)
    if config.arch is None:
        reader.note("", 0, "no architecture symbol set in the config; arch/x86 assumed")
    arch_dirs = reader.arch_dirs()
    found = reader.read_makefile("")
    seeds: list[str] = []
    if found is not None and found[0] == "Kbuild":
        lib = _top_libs(reader)
        reader.specials["_dir"] = "."
        base = {"ARCH_CORE": [" ".join(d + "/" for d in arch_dirs)], "ARCH_LIB": [""],
                "ARCH_DRIVERS": [""]}
        mk = reader.evaluate(found[0], found[1], base)
        for name in [n for n in mk.vars if OBJ_VAR.fullmatch(n)]:
            obj = OBJ_VAR.fullmatch(name)
            try:
                words = reader.value(mk, name, 0).split()
            except Unevaluable as exc:
                reader.note("Kbuild", 0, f"{name} not evaluated ({exc})")
                continue
            for word in words:
                path = tree_path("", word) if word.endswith("/") else None
                if path is None:
                    continue
                if obj is not None and obj.group(2) in ("y", "m"):
                    seeds.append(path)
                else:
                    reader.map.pruned.add(path)
        seeds += lib
    else:
        reader.note("Kbuild", 0, "no root Kbuild file: every top-level directory read")
        seeds = [d for d in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, d))
                 and d not in ("arch", "tools", "scripts", "Documentation")]
        seeds.append(f"arch/{arch}")
    seeds += arch_dirs
    reader.walk(sorted(set(seeds), reverse=True))
    return reader.map


_LIBS = re.compile(r"^libs-y\s*:?=\s*(.*)$", re.M)


def _top_libs(reader: _Walker) -> list[str]:
    """``libs-y := lib/`` of the top Makefile (read for that one line)."""
    text = reader.plain("Makefile") or ""
    m = _LIBS.search(text)
    words = m.group(1).split() if m else ["lib/"]
    return [p for w in words if w.endswith("/") and (p := tree_path("", w)) is not None]
