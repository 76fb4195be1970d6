"""A kernel configuration (``.config`` or ``include/config/auto.conf``) and what it decides.

smatch and sparse see one configuration because they run inside kbuild; nofslint reads the
config as data instead: ``CONFIG_X=y|m|"text"|123|0x1f`` lines and ``# CONFIG_X is not set``.
An ``.xz`` or ``.gz`` file is decompressed with the standard library (Debian ships its
configs so). Reading is bounded: a config is a few hundred KiB.

``condition`` evaluates an ``#if``/``#elif`` expression over the config, three-valued: True,
False, or None when it depends on anything but config symbols (that group keeps today's
handling). ``IS_ENABLED`` counts ``=m`` as enabled; ``IS_REACHABLE`` of an ``=m`` symbol
depends on whether the file is built as a module, so it is unknown.

The config travels with every task to the worker processes; it pickles as its path and
digest, and a worker reads it once (forked workers inherit the parent's copy).
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from nofslint.model.flow import balanced_outer, split_top

# A Debian config is 280 KB; anything beyond this is not a config.
MAX_CONFIG_BYTES = 8 * 1024 * 1024
# Tokens one #if expression may have before it counts as unknown.
_MAX_TOKENS = 400

_LINE = re.compile(r"(CONFIG_\w+)=(.*)")
_UNSET = re.compile(r"# (CONFIG_\w+) is not set")
_TOKEN = re.compile(r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_]\w*)|(&&|\|\||==|!=|<=|>=|"
                    r"<<|>>|[()!<>+\-*/%?:,~&|^]))")
_MACROS = ("IS_ENABLED", "IS_BUILTIN", "IS_MODULE", "IS_REACHABLE")
# Where a file mentions config symbols that decide its facts: conditional directives
# (continuations included) and the IS_* macros in code.
_DIRECTIVE = re.compile(rb"^[ \t]*#[ \t]*(?:if|ifdef|ifndef|elif|elifdef|elifndef)\b"
                        rb"(?:[^\n\\]|\\.)*", re.M | re.S)
_CALL = re.compile(rb"\bIS_(?:ENABLED|BUILTIN|MODULE|REACHABLE)\s*\(\s*(CONFIG_\w+)\s*\)")
_SYMBOL = re.compile(rb"\bCONFIG_\w+")
_DEFINES = re.compile(rb"^[ \t]*#[ \t]*(?:define|undef)[ \t]+(CONFIG_\w+)", re.M)

# The architecture directory each arch's own symbol selects (arch/<dir>/Kconfig).
_ARCHES = (("CONFIG_X86", "x86"), ("CONFIG_ARM64", "arm64"), ("CONFIG_ARM", "arm"),
           ("CONFIG_RISCV", "riscv"), ("CONFIG_PPC", "powerpc"), ("CONFIG_S390", "s390"),
           ("CONFIG_MIPS", "mips"), ("CONFIG_LOONGARCH", "loongarch"),
           ("CONFIG_SPARC", "sparc"), ("CONFIG_PARISC", "parisc"), ("CONFIG_M68K", "m68k"),
           ("CONFIG_SUPERH", "sh"), ("CONFIG_ALPHA", "alpha"), ("CONFIG_ARC", "arc"),
           ("CONFIG_CSKY", "csky"), ("CONFIG_HEXAGON", "hexagon"),
           ("CONFIG_MICROBLAZE", "microblaze"), ("CONFIG_NIOS2", "nios2"),
           ("CONFIG_OPENRISC", "openrisc"), ("CONFIG_UML", "um"), ("CONFIG_XTENSA", "xtensa"),
           ("CONFIG_IA64", "ia64"))


class KconfigError(Exception):
    """A config file that cannot be used; the message names the file."""


class Kconfig:
    """The symbols a config sets, by full name (``CONFIG_X`` -> ``y``/``m``/value text)."""

    __slots__ = ("path", "digest", "values", "_keys")

    def __init__(self, path: str, digest: str, values: dict[str, str]) -> None:
        self.path = path
        self.digest = digest
        self.values = values
        self._keys: dict[frozenset[str], bytes] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Kconfig) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"Kconfig({self.path!r}, {self.digest})"

    def __reduce__(self) -> tuple:
        return (_restore, (self.path, self.digest))

    @property
    def arch(self) -> str | None:
        """The arch/ directory this config builds (None: no arch symbol set)."""
        return next((d for sym, d in _ARCHES if self.values.get(sym) == "y"), None)

    def tristate(self, name: str) -> str:
        """``y``, ``m`` or ``n`` (unset, or a non-tristate value)."""
        value = self.values.get(name, "n")
        return value if value in ("y", "m") else "n"

    def key_of(self, raw: bytes) -> bytes:
        """What a file's facts depend on in the config: the values of the symbols its
        conditionals and IS_* calls mention (part of its cache key)."""
        names = mentioned(raw)
        if not names:
            return b""
        key = self._keys.get(names)
        if key is None:
            # CONFIG_X_MODULE is defined by CONFIG_X=m: its key is CONFIG_X's value.
            text = "\0".join(f"{n}={self.values.get(n, '')}/"
                             f"{self.values.get(n[:-7], '') if n.endswith('_MODULE') else ''}"
                             for n in sorted(names))
            key = self._keys[names] = hashlib.sha256(text.encode()).digest()
        return key

    def condition(self, text: str, local: Iterable[str] = ()) -> bool | None:
        """An #if expression's value under this config, or None when it depends on
        anything else (``local``: CONFIG_ names the file itself defines)."""
        tokens = tokenize(text)
        if tokens is None or len(tokens) > _MAX_TOKENS:
            return None
        parser = _Parser(tokens, self, frozenset(local))
        try:
            value = parser.expr()
        except (_Unknown, RecursionError):  # deep nesting from the file: not decided
            return None
        if parser.pos != len(tokens) or value is None:
            return None
        return value != 0

    def call_value(self, macro: str, name: str) -> int | None:
        """IS_ENABLED(CONFIG_X) and friends as 0/1, or None (IS_REACHABLE of a module)."""
        state = self.tristate(name)
        if macro == "IS_ENABLED":
            return int(state != "n")
        if macro == "IS_BUILTIN":
            return int(state == "y")
        if macro == "IS_MODULE":
            return int(state == "m")
        if macro == "IS_REACHABLE":
            return None if state == "m" else int(state == "y")
        return None

    def macro_value(self, name: str) -> int | None:
        """A bare CONFIG_ name in #if, as autoconf.h defines it (0 when undefined)."""
        value = self.values.get(name)
        if value is None and name.endswith("_MODULE"):
            return int(self.values.get(name[:-7]) == "m")
        if value is None or value == "m":
            return 0
        if value == "y":
            return 1
        try:
            return int(value, 0)
        except ValueError:
            return None  # a string option compared in #if: not ours to decide

    def is_defined(self, name: str) -> bool:
        value = self.values.get(name)
        if value is None and name.endswith("_MODULE"):
            return self.values.get(name[:-7]) == "m"
        return value is not None and value != "m"


_LOADED: dict[str, Kconfig] = {}


def _restore(path: str, digest: str) -> Kconfig:
    """A config sent to a worker: the one already read, else read again (and checked)."""
    known = _LOADED.get(digest)
    if known is not None:
        return known
    config = read(Path(path))
    if config.digest != digest:
        raise KconfigError(f"{path}: changed while nofslint was running")
    return config


def _bytes_of(path: Path) -> bytes:
    """The config's text, decompressed, bounded."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before opening: a device has effects
            raise KconfigError(f"{path}: not a regular file, not a kernel config")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)  # a FIFO: no hang
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise KconfigError(f"{path}: not a regular file, not a kernel config")
            head = fh.read(6)
            fh.seek(0)
            if head.startswith(b"\xfd7zXZ"):
                with lzma.open(fh) as stream:
                    data = stream.read(MAX_CONFIG_BYTES + 1)
            elif head.startswith(b"\x1f\x8b"):
                with gzip.open(fh) as stream:
                    data = stream.read(MAX_CONFIG_BYTES + 1)
            else:
                data = fh.read(MAX_CONFIG_BYTES + 1)
    except (OSError, lzma.LZMAError, EOFError, gzip.BadGzipFile) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise KconfigError(f"{path}: cannot read the kernel config: {why}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise KconfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024 ** 2} MiB, "
                           "not a kernel config")
    return data


def read(path: Path) -> Kconfig:
    """The config at ``path``; KconfigError when it is not readable or not a config."""
    if os.path.isdir(path):
        raise KconfigError(f"{path}: a directory, not a kernel config")
    data = _bytes_of(path)
    text = data.decode("utf-8", "replace")
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        m = _LINE.fullmatch(line)
        if m:
            value = m.group(2)  # strings keep their quotes: never a number or a tristate
            if value != "n":
                values[m.group(1)] = value
        elif _UNSET.fullmatch(line) is None and line and not line.startswith("#"):
            # The line number, not the line: the file may be anything a config names.
            raise KconfigError(f"{path}: not a kernel config (line {number} is not "
                               "CONFIG_X=value or a comment)")
    if not values:
        raise KconfigError(f"{path}: no CONFIG_ symbol set; not a kernel config")
    digest = hashlib.sha256(data).hexdigest()[:16]
    config = _LOADED.setdefault(digest, Kconfig(str(path), digest, values))
    return config


def mentioned(raw: bytes) -> frozenset[str]:
    """The config symbols a file's conditionals and IS_* calls mention."""
    if b"CONFIG_" not in raw:
        return frozenset()
    names = {m.group(1).decode() for m in _CALL.finditer(raw)}
    for d in _DIRECTIVE.finditer(raw):
        names.update(s.decode() for s in _SYMBOL.findall(d.group()))
    return frozenset(names)


def local_defines(raw: bytes) -> frozenset[str]:
    """CONFIG_ names the file defines or undefines itself: never decided by the config."""
    if b"CONFIG_" not in raw:
        return frozenset()
    return frozenset(m.group(1).decode() for m in _DEFINES.finditer(raw))


def tokenize(text: str) -> list[str] | None:
    """An #if expression's tokens; None for anything else (strings, characters)."""
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            return None
        out.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
    return out


class _Unknown(Exception):
    """The expression depends on something besides the config."""


# Binary operators by precedence (C's, lowest first); ?: is handled apart.
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="),
    ("<<", ">>"), ("+", "-"), ("*", "/", "%"),
)


class _Parser:
    """C preprocessor expression over the config. Values are ints or None (unknown);
    ``&&``/``||``/``?:`` short-circuit, so a known side can decide alone."""

    def __init__(self, tokens: list[str], config: Kconfig, local: frozenset[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.config = config
        self.local = local

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise _Unknown
        self.pos += 1
        return tok

    def expr(self) -> int | None:
        cond = self.binary(0)
        if self.peek() != "?":
            return cond
        self.take("?")
        a = self.expr()
        self.take(":")
        b = self.expr()
        if cond is None:
            return a if a == b and a is not None else None
        return a if cond else b

    def binary(self, level: int) -> int | None:
        if level == len(_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in _LEVELS[level]:
            op = self.take()
            right = self.binary(level + 1)
            left = _apply(op, left, right)
        return left

    def unary(self) -> int | None:
        tok = self.peek()
        if tok in ("!", "-", "+", "~"):
            self.take()
            value = self.unary()
            if value is None:
                return None
            return {"!": int(not value), "-": -value, "+": value, "~": ~value}[tok]
        return self.primary()

    def primary(self) -> int | None:
        tok = self.take()
        if tok == "(":
            value = self.expr()
            self.take(")")
            return value
        if tok[0].isdigit():
            return int(tok, 0)
        if tok == "defined":
            paren = self.peek() == "("
            if paren:
                self.take("(")
            name = self.take()
            if paren:
                self.take(")")
            if not name.startswith("CONFIG_") or name in self.local:
                return None
            return int(self.config.is_defined(name))
        if tok in _MACROS:
            self.take("(")
            name = self.take()
            self.take(")")
            if not name.startswith("CONFIG_") or name in self.local:
                return None
            return self.config.call_value(tok, name)
        if tok.startswith("CONFIG_") and tok not in self.local and self.peek() != "(":
            return self.config.macro_value(tok)
        if tok[0].isalpha() or tok[0] == "_":
            if self.peek() == "(":  # a function-like macro: skip its arguments
                depth = 0
                while True:
                    t = self.take()
                    depth += t == "("
                    depth -= t == ")"
                    if depth == 0:
                        break
            return None
        raise _Unknown


def _apply(op: str, a: int | None, b: int | None) -> int | None:
    if op == "&&":
        if a == 0 or b == 0:
            return 0
        return None if a is None or b is None else 1
    if op == "||":
        if (a is not None and a != 0) or (b is not None and b != 0):
            return 1
        return None if a is None or b is None else 0
    if a is None or b is None:
        return None
    try:
        return {
            "|": lambda: a | b, "^": lambda: a ^ b, "&": lambda: a & b,
            "==": lambda: int(a == b), "!=": lambda: int(a != b), "<": lambda: int(a < b),
            ">": lambda: int(a > b), "<=": lambda: int(a <= b), ">=": lambda: int(a >= b),
            "<<": lambda: a << min(b, 64) if b >= 0 else None,
            ">>": lambda: a >> min(b, 64) if b >= 0 else None,
            "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
            "/": lambda: int(a / b) if b else None, "%": lambda: a % b if b else None,
        }[op]()
    except (OverflowError, ValueError):
        return None


_BODY_CALL = re.compile(r"\b(IS_(?:ENABLED|BUILTIN|MODULE|REACHABLE))\s*\(\s*(CONFIG_\w+)\s*\)")


def body_condition(text: str, config: Kconfig) -> bool | None:
    """An ``if`` condition in a function body under the config: decided only when it is
    IS_*(CONFIG_X) calls, negated or joined by a top-level ``&&``/``||`` with anything
    (a false operand of ``&&`` decides it whatever the rest is; so does a true one of ``||``)."""
    if "IS_" not in text:
        return None
    try:
        return _body_condition(text, config)
    except RecursionError:  # nesting deeper than any real condition: not decided
        return None


def _body_condition(text: str, config: Kconfig) -> bool | None:
    text = text.strip()
    while text.startswith("(") and balanced_outer(text):
        text = text[1:-1].strip()
    for op, decisive in (("||", True), ("&&", False)):
        parts = split_top(text, op)
        if len(parts) > 1:
            values = [_body_condition(p, config) for p in parts]
            if decisive in values:
                return decisive
            return None if None in values else not decisive
    if text.startswith("!") and not text.startswith("!="):
        value = _body_condition(text[1:], config)
        return None if value is None else not value
    for wrap in ("likely(", "unlikely("):
        if text.startswith(wrap) and balanced_outer(text[len(wrap) - 1:]):
            return _body_condition(text[len(wrap) - 1:], config)
    m = _BODY_CALL.fullmatch(text)
    if m is None:
        return None
    value = config.call_value(m.group(1), m.group(2))
    return None if value is None else bool(value)
