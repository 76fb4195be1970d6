"""Make, read as data: the subset of GNU make that Kbuild Makefiles use to list objects.

``Evaluator`` reads a Makefile's logical lines (continuations joined, comments and
recipes dropped), its assignments (``=``, ``:=``, ``+=``, ``?=``), its conditionals
(``ifeq``/``ifneq``/``ifdef``/``ifndef``/``else``/``endif``, decided when they can be,
both branches read when not) and in-tree ``include`` files, and expands variables on use:
``$(VAR)``, ``$(CONFIG_X)``, ``$(var:.o=.c)`` and the functions ``addprefix``,
``addsuffix``, ``subst``, ``patsubst``, ``if``, ``filter``, ``filter-out``, ``strip``,
``sort``, ``firstword``, ``or``, ``and``, ``findstring``, ``notdir``, ``dir``,
``basename``. Anything else (``$(shell ...)``, ``$(call ...)``, a variable set
elsewhere) raises ``Unevaluable``; nothing is ever executed.

Costs are bounded: Makefile size, include depth and count, expansion depth and length;
files are read only when they are regular files inside the tree.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

MAX_MAKEFILE_BYTES = 1024 * 1024
_MAX_EXPANSION_DEPTH = 24
_MAX_EXPANSION_BYTES = 256 * 1024
# Bytes all expansions of one walk may produce: a Makefile whose variables nest
# filtered copies of each other grows each level's cost, not its length.
_MAX_WALK_EXPANSION = 256 * 1024 * 1024
_MAX_INCLUDES = 64  # files read by include over a whole walk

_COND = re.compile(r"(ifeq|ifneq|ifdef|ifndef)\b\s*(.*)")
# Object lists: obj-y, obj-m, obj- (an unset option), lib-y, subdir-y.
OBJ_VAR = re.compile(r"(obj|lib|subdir)-([ymn]?)")
_FUNCS = {"addprefix", "addsuffix", "subst", "patsubst", "if", "filter", "filter-out", "strip",
          "sort", "firstword", "or", "and", "findstring", "notdir", "dir", "basename"}


class Unevaluable(Exception):
    """A construct the evaluator does not model."""


@dataclass
class Makefile:
    """One directory's Makefile, evaluated: its variables' raw values."""

    vars: dict[str, list[str]] = field(default_factory=dict)  # raw values, in order
    simple: dict[str, bool] = field(default_factory=dict)
    guessed: set[str] = field(default_factory=set)  # variables set in an undecided branch
    dead: list[str] = field(default_factory=list)  # object lists in branches not taken


class Evaluator:
    """Evaluates Makefiles of the tree at ``root`` with the config's ``values``
    (``CONFIG_X`` -> ``y``, ``m``, a value; unset: empty) and a few fixed variables."""

    def __init__(self, root: Path, values: dict[str, str], specials: dict[str, str]) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.values = values
        self.specials = specials
        self.notes: list[str] = []  # constructs not evaluated, for --verbose
        self.lenient = False  # in a condition, a variable set nowhere here is empty
        self.includes = 0  # files read by include, over the whole walk
        self.expanded = 0  # bytes every expansion of the walk produced (_MAX_WALK_EXPANSION)
        self.inputs: dict[str, tuple[int, int] | None] = {}  # every file read or looked for

    # -- reading -------------------------------------------------------------------
    def read_makefile(self, directory: str) -> tuple[str, str] | None:
        """(name, text) of the directory's Kbuild or Makefile, read safely."""
        for name in ("Kbuild", "Makefile"):
            rel = posixpath.join(directory, name) if directory else name
            text = self.plain(rel)
            if text is not None:
                return rel, text
            if self.inputs.get(rel) is not None:
                return None  # there, but too large: noted
        return None

    def note(self, rel: str, line: int, what: str) -> None:
        if len(self.notes) < 10000:
            self.notes.append(f"{rel}:{line}: {what}" if line else f"{rel}: {what}")

    # -- evaluating ----------------------------------------------------------------
    def evaluate(self, rel: str, text: str, base: dict[str, list[str]] | None = None
                 ) -> Makefile:
        mk = Makefile()
        if base:
            mk.vars.update({k: list(v) for k, v in base.items()})
        self.lines(rel, logical_lines(text), mk, frozenset({rel}))
        return mk

    def lines(self, rel: str, lines: list[tuple[int, str]], mk: Makefile,
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

    def names_list(self, mk: Makefile, lhs: str) -> bool:
        """Whether an assignment's target is an object list (obj-y, foo-$(CONFIG_X)...)."""
        try:
            return self.expand(mk, lhs).strip().endswith(_LISTS)
        except Unevaluable:
            return False

    def include(self, rel: str, number: int, names_text: str, mk: Makefile,
                seen: frozenset[str]) -> None:
        self.lenient = True
        try:
            names = self.expand(mk, names_text).split()
        except Unevaluable:
            names = []
        finally:
            self.lenient = False
        if not names:
            self.note(rel, number, "include not evaluated")
        for name in names:
            path = tree_path("", name) or ""
            text = (self.plain(path) if path and path not in seen and len(seen) < 8
                    and self.includes < _MAX_INCLUDES else None)
            if text is None:
                self.note(rel, number, f"include {name} not followed")
                continue
            self.includes += 1
            self.lines(path, logical_lines(text), mk, seen | {path})

    def plain(self, rel: str) -> str | None:
        """A tree file's text: a regular file inside the tree, bounded. Its size and mtime
        (None: not there, not regular, outside the tree) go to ``inputs``, so a saved
        reading of the tree can be checked with a stat per file (``unchanged``)."""
        self.inputs[rel] = None
        path = os.path.join(self.root, rel)
        if not _inside(self.real_root, path):
            return None
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                return None  # checked before opening: opening a device has effects
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            self.inputs[rel] = (st.st_size, st.st_mtime_ns)
            data = fh.read(MAX_MAKEFILE_BYTES + 1)
        if len(data) > MAX_MAKEFILE_BYTES:
            self.note(rel, 0, f"larger than {MAX_MAKEFILE_BYTES // 1024} KiB; not read")
            return None
        return data.decode("utf-8", "replace")

    def condition(self, mk: Makefile, rel: str, number: int, line: str
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
        except Unevaluable as exc:
            self.note(rel, number, f"{kind} not evaluated ({exc}): both branches read")
            return None, False
        finally:
            self.lenient = False
        return result, result

    def assign(self, mk: Makefile, rel: str, number: int, lhs: str, op: str, rhs: str,
               guessed: bool) -> None:
        try:
            name = self.expand(mk, lhs).strip()
        except Unevaluable as exc:
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
            except Unevaluable:
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

    def value(self, mk: Makefile, name: str, depth: int) -> str:
        if name.startswith("CONFIG_"):
            return self.values.get(name, "")
        if name in mk.vars:
            return " ".join(self._expand(mk, v, depth + 1) for v in mk.vars[name])
        if name in self.specials:
            return self.specials[name]
        if name in ("obj", "src"):
            return self.specials.get("_dir", ".")
        if OBJ_VAR.fullmatch(name) or name.endswith(("-y", "-m", "-objs")) or self.lenient:
            return ""  # an object list not set here is empty; so is W=, V=... in a condition
        raise Unevaluable(f"$({name}) is not set in this Makefile")

    def expand(self, mk: Makefile, text: str) -> str:
        return self._expand(mk, text, 0)

    def _expand(self, mk: Makefile, text: str, depth: int) -> str:
        if depth > _MAX_EXPANSION_DEPTH:
            raise Unevaluable("expansion nested too deeply")
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
                raise Unevaluable("unbalanced $(")
            inner = text[i + 2:end]
            piece = self.reference(mk, inner, depth)
            size += len(piece)
            self.expanded += len(piece)
            if size > _MAX_EXPANSION_BYTES:
                raise Unevaluable("expansion too long")
            if self.expanded > _MAX_WALK_EXPANSION:
                raise Unevaluable("the Makefiles' expansions exceed their budget")
            out.append(piece)
            i = end + 1
        return "".join(out)

    def reference(self, mk: Makefile, inner: str, depth: int) -> str:
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
        raise Unevaluable(f"$({inner.split()[0] if inner.split() else inner})")

    def function(self, mk: Makefile, name: str, args_text: str, depth: int) -> str:
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
            raise Unevaluable(f"$({name}) with too few arguments")
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
            raise Unevaluable(f"$({name}) with too few arguments")
        if name == "subst":
            return values[2].replace(values[0], values[1]) if values[0] else values[2]
        if name == "patsubst":
            out = []
            for w in values[2].split():
                stem = _pattern(values[0].strip(), w)
                out.append(w if stem is None else values[1].strip().replace("%", stem, 1))
            return " ".join(out)
        raise Unevaluable(f"$({name})")


def _inside(real_root: str, path: str) -> bool:
    return os.path.realpath(path).startswith(real_root.rstrip("/") + "/")


def unchanged(root: Path, inputs: dict[str, tuple[int, int] | None]) -> bool:
    """Whether every file a reading looked at is as it was (same size and mtime, or still
    not there): one stat per file instead of reading them all again."""
    real_root = os.path.realpath(root)
    for rel, was in inputs.items():
        path = os.path.join(root, rel)
        now = None
        try:
            st = os.stat(path)
            if stat.S_ISREG(st.st_mode) and _inside(real_root, path):
                now = (st.st_size, st.st_mtime_ns)
        except OSError:
            pass
        if now != (tuple(was) if was is not None else None):
            return False
    return True


def tree_path(directory: str, word: str) -> str | None:
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
    raise Unevaluable("condition syntax")


def logical_lines(text: str) -> list[tuple[int, str]]:
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
