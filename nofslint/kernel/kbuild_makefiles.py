"""Which C files a kernel config builds, read from the Kbuild Makefiles as data.

Kbuild descends from the top: the root ``Kbuild`` names the top directories
(``obj-y += kernel/``, ``obj-$(CONFIG_NET) += net/``, ``arch/$(SRCARCH)/`` and the
arch Makefile's ``core-y``/``libs-y``/``drivers-y``), and each directory's ``Kbuild`` or
``Makefile`` lists its objects: ``obj-y``, ``obj-m``, ``obj-$(CONFIG_X)``, ``lib-y``,
composite objects (``foo-y``, ``foo-objs``, ``foo-$(CONFIG_X)``) and subdirectories.

Nothing from the tree runs: a Makefile is read as text, its variables are expanded by a
small evaluator (``$(VAR)``, ``$(CONFIG_X)``, ``addprefix``, ``addsuffix``, ``subst``,
``patsubst``, ``if``, ``filter``, ``filter-out``, ``strip``, ``sort``, ``firstword``)
and ``ifeq``/``ifneq``/``ifdef``/``ifndef`` are decided when they can be. Anything else
(``$(shell ...)``, ``$(call ...)``, an ``include``, a variable set elsewhere) is not
evaluated: an object list it touches counts as built, a condition it decides keeps both
branches, and ``notes`` names the place. Costs are bounded: Makefile size, directories,
descent depth, expansion depth and length; paths never leave the tree.

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
import stat
from dataclasses import dataclass, field
from pathlib import Path

from nofslint.kernel.kconfig import Kconfig

MAX_MAKEFILE_BYTES = 1024 * 1024
MAX_DIRECTORIES = 20000
MAX_DEPTH = 32
_MAX_EXPANSION_DEPTH = 24
_MAX_EXPANSION_BYTES = 256 * 1024

_COND = re.compile(r"(ifeq|ifneq|ifdef|ifndef)\b\s*(.*)")
_OBJ_VAR = re.compile(r"(obj|lib|subdir)-([ymn]?)")
# Programs built to run on the build machine: their C files are not the kernel's.
_HOST_VARS = re.compile(r"(?:hostprogs|userprogs)(?:-always)?(?:-[ym])?")
_FUNCS = {"addprefix", "addsuffix", "subst", "patsubst", "if", "filter", "filter-out", "strip",
          "sort", "firstword", "or", "and", "findstring", "notdir", "dir", "basename"}


class _Unevaluable(Exception):
    """A construct the evaluator does not model."""


@dataclass
class _Makefile:
    """One directory's Makefile, evaluated."""

    vars: dict[str, list[str]] = field(default_factory=dict)  # raw values, in order
    simple: dict[str, bool] = field(default_factory=dict)
    guessed: set[str] = field(default_factory=set)  # variables set in an undecided branch
    dead: list[str] = field(default_factory=list)  # object lists in branches not taken


@dataclass
class KbuildMap:
    """What the config builds; ``is_built`` answers for one tree-relative C file."""

    arch: str
    built: set[str] = field(default_factory=set)  # C files named as built objects
    mentioned: set[str] = field(default_factory=set)  # C files named under any condition
    visited: set[str] = field(default_factory=set)  # directories whose Makefile was read
    pruned: set[str] = field(default_factory=set)  # subdirectories the config does not build
    notes: list[str] = field(default_factory=list)  # constructs not evaluated

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


class _Reader:
    def __init__(self, root: Path, config: Kconfig, arch: str) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.config = config
        self.map = KbuildMap(arch)
        self.lenient = False
        self.includes = 0  # files read by include, over the whole walk
        bits = "64" if config.values.get("CONFIG_64BIT") == "y" else "32"
        self.specials = {"srctree": ".", "objtree": ".", "SRCARCH": arch, "ARCH": arch,
                         "BITS": bits, "CONFIG_SHELL": "sh", "Q": "", "quiet": ""}

    # -- reading -------------------------------------------------------------------
    def text(self, directory: str) -> tuple[str, str] | None:
        """(name, text) of the directory's Kbuild or Makefile, read safely."""
        for name in ("Kbuild", "Makefile"):
            rel = posixpath.join(directory, name) if directory else name
            path = os.path.join(self.root, rel)
            real = os.path.realpath(path)
            if not (real + "/").startswith(self.real_root.rstrip("/") + "/"):
                continue  # a symlink out of the tree: not the tree's Makefile
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                data = fh.read(MAX_MAKEFILE_BYTES + 1)
            if len(data) > MAX_MAKEFILE_BYTES:
                self.note(rel, 0, f"larger than {MAX_MAKEFILE_BYTES // 1024} KiB; not read")
                return None
            return rel, data.decode("utf-8", "replace")
        return None

    def note(self, rel: str, line: int, what: str) -> None:
        if len(self.map.notes) < 10000:
            self.map.notes.append(f"{rel}:{line}: {what}" if line else f"{rel}: {what}")

    # -- evaluating ----------------------------------------------------------------
    def evaluate(self, rel: str, text: str, base: dict[str, list[str]] | None = None
                 ) -> _Makefile:
        mk = _Makefile()
        if base:
            mk.vars.update({k: list(v) for k, v in base.items()})
        self.lines(rel, _logical_lines(text), mk, frozenset({rel}))
        return mk

    def lines(self, rel: str, lines: list[tuple[int, str]], mk: _Makefile,
              seen: frozenset[str]) -> None:
        """Evaluate one file's lines into ``mk``; an in-tree ``include`` is read in place
        (bounded: 8 levels, 64 files, each a regular file inside the tree)."""
        # Each open conditional: (taking this branch: True/False/None undecided,
        # whether an earlier branch was taken)
        stack: list[tuple[bool | None, bool]] = []
        for number, line in lines:
            word = line.split(None, 1)[0] if line.split() else ""
            if word in ("ifeq", "ifneq", "ifdef", "ifndef"):
                stack.append(self.condition(mk, rel, number, line))
                continue
            if word == "else":
                if stack:
                    taking, taken = stack.pop()
                    rest = line[4:].strip()
                    value: bool | None
                    if taking is None:
                        value = None  # after an undecided branch: undecided too
                    elif taken or taking:
                        value = False
                    elif rest:
                        value = self.condition(mk, rel, number, rest)[0]
                    else:
                        value = True
                    stack.append((value, taken or bool(taking)))
                continue
            if word == "endif":
                if stack:
                    stack.pop()
                continue
            if any(t is False for t, _ in stack):
                parts = _assignment(line)
                if parts is not None and self.names_list(mk, parts[0]):
                    mk.dead.append(parts[2])  # named, but not built with this config
                continue
            if word in ("include", "-include", "sinclude"):
                self.include(rel, number, line[len(word):], mk, seen)
                continue
            parts = _assignment(line)
            if parts is not None:
                self.assign(mk, rel, number, *parts, any(t is None for t, _ in stack))

    def names_list(self, mk: _Makefile, lhs: str) -> bool:
        """Whether an assignment's target is an object list (obj-y, foo-$(CONFIG_X)...)."""
        try:
            return self.expand(mk, lhs).strip().endswith(_LISTS)
        except _Unevaluable:
            return False

    def include(self, rel: str, number: int, names_text: str, mk: _Makefile,
                seen: frozenset[str]) -> None:
        self.lenient = True
        try:
            names = self.expand(mk, names_text).split()
        except _Unevaluable:
            names = []
        finally:
            self.lenient = False
        if not names:
            self.note(rel, number, "include not evaluated")
        for name in names:
            path = _join("", name) or ""
            text = self.plain(path) if path and path not in seen and len(seen) < 8 else None
            if text is None or self.includes >= 64 * 1024:
                self.note(rel, number, f"include {name} not followed")
                continue
            self.includes += 1
            self.lines(path, _logical_lines(text), mk, seen | {path})

    def plain(self, rel: str) -> str | None:
        """A tree file's text for an include: a regular file inside the tree, bounded."""
        path = os.path.join(self.root, rel)
        real = os.path.realpath(path)
        if not real.startswith(self.real_root.rstrip("/") + "/"):
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            data = fh.read(MAX_MAKEFILE_BYTES + 1)
        return None if len(data) > MAX_MAKEFILE_BYTES else data.decode("utf-8", "replace")

    def condition(self, mk: _Makefile, rel: str, number: int, line: str
                  ) -> tuple[bool | None, bool]:
        m = _COND.match(line)
        if m is None:
            return None, False
        kind, arg = m.group(1), m.group(2).strip()
        self.lenient = True  # a variable set nowhere here is empty, as in a default build
        try:
            if kind in ("ifdef", "ifndef"):
                value = bool(self.expand(mk, f"$({self.expand(mk, arg)})").strip())
                result = value if kind == "ifdef" else not value
            else:
                a, b = _cond_args(arg)
                same = self.expand(mk, a).strip() == self.expand(mk, b).strip()
                result = same if kind == "ifeq" else not same
        except _Unevaluable as exc:
            self.note(rel, number, f"{kind} not evaluated ({exc}): both branches read")
            return None, False
        finally:
            self.lenient = False
        return result, result

    def assign(self, mk: _Makefile, rel: str, number: int, lhs: str, op: str, rhs: str,
               guessed: bool) -> None:
        try:
            name = self.expand(mk, lhs).strip()
        except _Unevaluable as exc:
            obj = re.match(r"(obj|lib)-", lhs)
            if obj is None:
                return
            name = f"{obj.group(1)}-y"
            self.note(rel, number, f"{lhs} not evaluated ({exc}): counted as built")
        if not name or " " in name:
            return
        if op in (":=", "::="):
            try:
                value = [self.expand(mk, rhs)]
            except _Unevaluable:
                value = [rhs]
            mk.vars[name] = list(mk.vars.get(name, [])) + value if guessed else value
            mk.simple[name] = True
        elif op == "=" and not guessed:
            mk.vars[name] = [rhs]
        elif op == "?=" and name in mk.vars:
            return
        else:
            mk.vars.setdefault(name, []).append(rhs)
        if guessed:
            mk.guessed.add(name)

    def value(self, mk: _Makefile, name: str, depth: int) -> str:
        if name.startswith("CONFIG_"):
            return self.config.values.get(name, "")
        if name in mk.vars:
            return " ".join(self._expand(mk, v, depth + 1) for v in mk.vars[name])
        if name in self.specials:
            return self.specials[name]
        if name in ("obj", "src"):
            return self.specials.get("_dir", ".")
        if _OBJ_VAR.fullmatch(name) or name.endswith(("-y", "-m", "-objs")) or self.lenient:
            return ""  # an object list not set here is empty; so is W=, V=... in a condition
        raise _Unevaluable(f"$({name}) is not set in this Makefile")

    def expand(self, mk: _Makefile, text: str) -> str:
        return self._expand(mk, text, 0)

    def _expand(self, mk: _Makefile, text: str, depth: int) -> str:
        if depth > _MAX_EXPANSION_DEPTH:
            raise _Unevaluable("expansion nested too deeply")
        if "$" not in text:
            return text
        out: list[str] = []
        i = 0
        size = 0
        while i < len(text):
            ch = text[i]
            if ch != "$":
                j = text.find("$", i)
                j = len(text) if j < 0 else j
                out.append(text[i:j])
                size += j - i
                i = j
                continue
            if i + 1 >= len(text):
                break
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt not in "({":
                out.append(self.value(mk, nxt, depth))
                i += 2
                continue
            end = _closing(text, i + 1)
            if end < 0:
                raise _Unevaluable("unbalanced $(")
            inner = text[i + 2:end]
            piece = self.reference(mk, inner, depth)
            size += len(piece)
            if size > _MAX_EXPANSION_BYTES:
                raise _Unevaluable("expansion too long")
            out.append(piece)
            i = end + 1
        return "".join(out)

    def reference(self, mk: _Makefile, inner: str, depth: int) -> str:
        head = re.match(r"([\w.-]+)(\s+|:|$)", inner)
        if head and head.group(2).strip() == "" and head.group(2) and head.group(1) in _FUNCS:
            return self.function(mk, head.group(1), inner[head.end():], depth)
        if head and head.group(2) == ":" and "=" in inner:  # $(var:.o=.c)
            name = self._expand(mk, head.group(1), depth + 1)
            pat, rep = inner[head.end():].split("=", 1)
            return " ".join(w[: -len(pat)] + rep if pat and w.endswith(pat) else w
                            for w in self.value(mk, name, depth).split())
        if head and head.group(2) == "" and head.end() == len(inner):
            return self.value(mk, inner, depth)
        if " " not in inner and "$" in inner:  # a computed name: $(obj-$(CONFIG_X))
            return self.value(mk, self._expand(mk, inner, depth + 1), depth)
        raise _Unevaluable(f"$({inner.split()[0] if inner.split() else inner})")

    def function(self, mk: _Makefile, name: str, args_text: str, depth: int) -> str:
        args = _split_args(args_text)
        if name == "if":
            cond = self._expand(mk, args[0], depth + 1).strip()
            branch = args[1] if cond else (args[2] if len(args) > 2 else "")
            return self._expand(mk, branch, depth + 1)
        values = [self._expand(mk, a, depth + 1) for a in args]
        if name == "or":
            return next((v.strip() for v in values if v.strip()), "")
        if name == "and":
            return values[-1].strip() if all(v.strip() for v in values) else ""
        if name == "strip":
            return " ".join(values[0].split())
        if name in ("sort", "firstword", "notdir", "dir", "basename"):
            words = values[0].split()
            if name == "sort":
                return " ".join(sorted(set(words)))
            if name == "firstword":
                return words[0] if words else ""
            if name == "notdir":
                return " ".join(posixpath.basename(w) for w in words)
            if name == "dir":
                return " ".join(posixpath.dirname(w) + "/" if "/" in w else "./" for w in words)
            return " ".join(posixpath.splitext(w)[0] for w in words)
        if len(values) < 2:
            raise _Unevaluable(f"$({name}) with too few arguments")
        if name == "addprefix":
            return " ".join(values[0].strip() + w for w in values[1].split())
        if name == "addsuffix":
            return " ".join(w + values[0].strip() for w in values[1].split())
        if name == "findstring":
            return values[0] if values[0] in values[1] else ""
        if name in ("filter", "filter-out"):
            pats = values[0].split()
            keep = [w for w in values[1].split() if any(_pattern(p, w) is not None
                                                         for p in pats)]
            if name == "filter-out":
                keep = [w for w in values[1].split() if w not in keep]
            return " ".join(keep)
        if len(values) < 3:
            raise _Unevaluable(f"$({name}) with too few arguments")
        if name == "subst":
            return values[2].replace(values[0], values[1]) if values[0] else values[2]
        if name == "patsubst":
            out = []
            for w in values[2].split():
                stem = _pattern(values[0].strip(), w)
                out.append(w if stem is None else values[1].strip().replace("%", stem, 1))
            return " ".join(out)
        raise _Unevaluable(f"$({name})")

    # -- walking the tree ---------------------------------------------------------------
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
        found = self.text(directory)
        if found is None:
            return []
        rel, text = found
        self.specials["_dir"] = directory or "."
        mk = self.evaluate(rel, text)
        subdirs: list[str] = []
        composites: dict[str, bool] = {}
        for name in list(mk.vars):
            obj = _OBJ_VAR.fullmatch(name)
            host = _HOST_VARS.fullmatch(name) is not None
            if obj is None and not host:
                continue
            built = obj is not None and obj.group(2) in ("y", "m")
            try:
                words = self.value(mk, name, 0).split()
            except _Unevaluable as exc:
                self.note(rel, 0, f"{name} not evaluated ({exc}): its objects count as built")
                continue
            for word in words:
                if word.endswith("/"):
                    path = _join(directory, word)
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
            except _Unevaluable:
                continue
            for word in words:
                if word.endswith("/"):  # a subdirectory only an untaken branch descends into
                    path = _join(directory, word)
                    if path is not None and path not in self.map.visited:
                        self.map.pruned.add(path)
                    continue
                path = _join(directory, word[:-2] + ".c") if word.endswith(".o") else None
                if path is not None:
                    self.map.mentioned.add(path)
        return subdirs

    def objects(self, mk: _Makefile, rel: str, directory: str, base: str, built: bool,
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
            except _Unevaluable as exc:
                self.note(rel, 0, f"{name} not evaluated ({exc}): its parts count as built")
        off = [n for n in (f"{base}-", f"{base}-n") if n in mk.vars]  # foo-$(CONFIG_X), X unset
        if found or off:
            for name in off:
                try:
                    for word in self.value(mk, name, 0).split():
                        if word.endswith(".o") and depth < 4:
                            self.objects(mk, rel, directory, word[:-2], False, depth + 1)
                except _Unevaluable:
                    continue
            for word in parts:
                if word.endswith(".o") and word[:-2] != base and depth < 4:
                    self.objects(mk, rel, directory, word[:-2], built, depth + 1)
            if found:
                return
        path = _join(directory, base + ".c")
        if path is None:
            return
        self.map.mentioned.add(path)
        if built:
            self.map.built.add(path)

    def arch_dirs(self) -> list[str]:
        """The arch Makefile's core-y, libs-y, drivers-y/m directories."""
        arch = self.map.arch
        found = self.text(f"arch/{arch}")
        if found is None:
            return []
        rel = f"arch/{arch}/Makefile"
        self.specials["_dir"] = f"arch/{arch}"
        # The arch Makefile is read for its directory lists only, never as Kbuild.
        text = found[1] if found[0].endswith("Makefile") else _read_plain(self, rel)
        mk = self.evaluate(rel, text)
        out: list[str] = []
        for name in ("core-y", "libs-y", "drivers-y", "drivers-m", "core-", "libs-",
                     "drivers-", "drivers-n"):
            if name not in mk.vars:
                continue
            try:
                words = self.value(mk, name, 0).split()
            except _Unevaluable as exc:
                self.note(rel, 0, f"{name} not evaluated ({exc})")
                continue
            dirs = [p for d in words if d.endswith("/") and (p := _join("", d)) is not None]
            if name.endswith(("-y", "-m")):
                out += dirs
            else:  # drivers-$(CONFIG_MATH_EMULATION) with the option unset
                self.map.pruned.update(dirs)
        return out


def _read_plain(reader: _Reader, rel: str) -> str:
    path = os.path.join(reader.root, rel)
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_MAKEFILE_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


def _join(directory: str, word: str) -> str | None:
    """A tree-relative path for a Makefile word; None when it would leave the tree."""
    if word.startswith("/") or "$" in word:
        return None
    path = posixpath.normpath(posixpath.join(directory, word)) if directory else \
        posixpath.normpath(word)
    if path == ".." or path.startswith("../") or path == ".":
        return None
    return path


_LISTS = ("-y", "-m", "-objs", "-")  # object lists: obj-y, foo-objs, foo-$(CONFIG_X)...
_OPS = ("::=", ":=", "+=", "?=", "!=", "=")


def _assignment(line: str) -> tuple[str, str, str] | None:
    """(name, operator, value) of a variable assignment line, else None (rules too)."""
    depth = 0
    for i, ch in enumerate(line):
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif depth == 0 and ch in ":+?!=":
            op = next((o for o in _OPS if line.startswith(o, i)), None)
            if op is None or op == "!=":
                return None  # a rule (target: prerequisites) or a shell assignment
            name = line[:i].strip()
            for prefix in ("export ", "override "):
                if name.startswith(prefix):
                    name = name[len(prefix):].strip()
            return (name, op, line[i + len(op):].strip()) if name else None
    return None


def _pattern(pattern: str, word: str) -> str | None:
    """The stem when ``word`` matches a make ``%`` pattern (or equals it), else None."""
    if "%" not in pattern:
        return "" if pattern == word else None
    head, tail = pattern.split("%", 1)
    if word.startswith(head) and word.endswith(tail) and len(word) >= len(head) + len(tail):
        return word[len(head):len(word) - len(tail)]
    return None


def _closing(text: str, open_pos: int) -> int:
    opener = text[open_pos]
    closer = ")" if opener == "(" else "}"
    depth = 0
    for i in range(open_pos, len(text)):
        if text[i] == opener:
            depth += 1
        elif text[i] == closer:
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_args(text: str) -> list[str]:
    args, depth, last = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[last:i])
            last = i + 1
    args.append(text[last:])
    return args


def _cond_args(arg: str) -> tuple[str, str]:
    """``(a,b)`` or ``"a" "b"`` / ``'a' 'b'``."""
    arg = arg.strip()
    if arg.startswith("(") and arg.endswith(")"):
        parts = _split_args(arg[1:-1])
        if len(parts) == 2:
            return parts[0], parts[1]
    m = re.fullmatch(r"""(["'])(.*?)\1\s+(["'])(.*?)\3""", arg)
    if m:
        return m.group(2), m.group(4)
    raise _Unevaluable("condition syntax")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with continuations joined, comments and recipes dropped."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, line in enumerate(text.split("\n"), 1):
        if not pending:
            start = number
            if line.startswith("\t"):
                continue  # a recipe line
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        hash_at = _comment_at(full)
        if hash_at >= 0:
            full = full[:hash_at]
        full = full.strip()
        if full:
            out.append((start, full))
    return out


def _comment_at(line: str) -> int:
    i = line.find("#")
    while i > 0 and line[i - 1] == "\\":
        i = line.find("#", i + 1)
    return i


def build_map(root: Path, config: Kconfig) -> KbuildMap:
    """Which C files under ``root`` the config builds (see the module docstring)."""
    arch = config.arch or "x86"
    reader = _Reader(root, config, arch)
    if config.arch is None:
        reader.note("", 0, "no architecture symbol set in the config; arch/x86 assumed")
    arch_dirs = reader.arch_dirs()
    found = reader.text("")
    seeds: list[str] = []
    if found is not None and found[0] == "Kbuild":
        lib = _top_libs(reader)
        reader.specials["_dir"] = "."
        base = {"ARCH_CORE": [" ".join(d + "/" for d in arch_dirs)], "ARCH_LIB": [""],
                "ARCH_DRIVERS": [""]}
        mk = reader.evaluate(found[0], found[1], base)
        for name in [n for n in mk.vars if _OBJ_VAR.fullmatch(n)]:
            obj = _OBJ_VAR.fullmatch(name)
            try:
                words = reader.value(mk, name, 0).split()
            except _Unevaluable as exc:
                reader.note("Kbuild", 0, f"{name} not evaluated ({exc})")
                continue
            for word in words:
                path = _join("", word) if word.endswith("/") else None
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


def _top_libs(reader: _Reader) -> list[str]:
    """``libs-y := lib/`` of the top Makefile (read for that one line)."""
    text = _read_plain(reader, "Makefile")
    m = _LIBS.search(text)
    words = m.group(1).split() if m else ["lib/"]
    return [p for w in words if w.endswith("/") and (p := _join("", w)) is not None]
