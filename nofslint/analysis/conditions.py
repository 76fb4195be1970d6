"""A three-valued evaluator for C conditions, against what a path knows.

The path check (analysis.feasible) knows a few values: constants a caller
passed or stored (``inode->i_size`` is 0, ``remove`` is false, ``behavior`` is
``EVICT_SHOULD_DEFER_DELETE``) and flags the context sets (``current->flags``
has ``PF_MEMALLOC`` in reclaim). ``evaluate`` answers True, False or None
(unknown) for a condition's text; anything it does not understand is unknown,
so a chain is only ever dropped on a condition it can decide.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from nofslint.extract.guards import c_int


@dataclass(frozen=True)
class Bits:
    """A flags word of which some bits are known to be set."""

    set: frozenset[str]


@dataclass(frozen=True)
class NonZero:
    """A value known not to be zero (or NULL): a live handle, say."""


NONZERO = NonZero()


@dataclass(frozen=True)
class Lin:
    """A sum of named constants and a number: ``EXT_MAX_BLOCKS - 1``. Two of them
    compare when their difference is a plain number."""

    terms: frozenset[tuple[str, int]]
    const: int = 0

    @staticmethod
    def of(value: object) -> Lin | None:
        if isinstance(value, Lin):
            return value
        if isinstance(value, int):
            return Lin(frozenset(), value)
        if isinstance(value, str) and _SYMBOL.fullmatch(value):
            return Lin(frozenset({(value, 1)}))
        return None

    def plus(self, other: Lin, sign: int = 1) -> Lin:
        terms = dict(self.terms)
        for name, k in other.terms:
            terms[name] = terms.get(name, 0) + sign * k
        return Lin(frozenset((n, k) for n, k in terms.items() if k),
                   self.const + sign * other.const)


Value = int | str | Bits | NonZero | Lin  # a number, a named constant, flag bits, a sum
Env = Mapping[str, Value]

_TOKEN = re.compile(r"\s*(->|<<|>>|<=|>=|==|!=|&&|\|\||[A-Za-z_]\w*|0[xX][0-9a-fA-F]+[uUlL]*"
                    r"|0[bB][01]+[uUlL]*|\d+[uUlL]*|'(?:\\.|[^'])*'|\"(?:\\.|[^\"])*\"|\S)")
_BINARY = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, ">": 7,
           "<=": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}
# Calls that are their argument, as far as a condition is concerned.
_TRANSPARENT = {"likely", "unlikely", "WARN_ON", "WARN_ON_ONCE", "READ_ONCE", "data_race",
                "WARN", "WARN_ONCE"}
# Accessors that read one field of their argument.
_FIELD_READERS = {"i_size_read": "i_size"}
_TYPE_WORDS = {"struct", "union", "enum", "unsigned", "signed", "int", "long", "short", "char",
               "bool", "void", "const", "volatile", "u8", "u16", "u32", "u64", "s8", "s16",
               "s32", "s64", "size_t", "loff_t", "gfp_t", "__u32", "__u64"}
_SYMBOL = re.compile(r"[A-Z][A-Z0-9_]+")
_LITERALS = {"NULL": 0, "false": 0, "true": 1}
_MAX_TOKENS = 120


@functools.lru_cache(maxsize=1 << 16)
def _tokens(text: str) -> list[str]:
    """A condition's tokens (the same conditions are evaluated many times along chains)."""
    return _TOKEN.findall(text)


class _Unknown(Exception):
    pass


class _Parser:
    def __init__(self, tokens: list[str], env: Env) -> None:
        self.t = tokens
        self.i = 0
        self.env = env

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if tok is None or want is not None and tok != want:
            raise _Unknown
        self.i += 1
        return tok

    def expr(self, floor: int = 0) -> Value | None:
        left = self.unary()
        while True:
            op = self.peek()
            if op == "?":
                self.take()
                self.expr()
                self.take(":")
                self.expr()
                left = None
                continue
            prec = _BINARY.get(op or "")
            if prec is None or prec <= floor:
                return left
            self.take()
            right = self.expr(prec)
            left = _binary(op or "", left, right)

    def unary(self) -> Value | None:
        tok = self.peek()
        if tok in ("!", "~", "-", "+"):
            self.take()
            value = self.unary()
            if tok == "!":
                truth = _truth(value)
                return None if truth is None else int(not truth)
            if isinstance(value, int):
                return {"~": ~value, "-": -value, "+": value}[tok or ""]
            return None
        if tok in ("*", "&"):
            self.take()
            self.unary()
            return None
        if tok == "(":
            if self._cast():
                return self.unary()
            self.take("(")
            value = self.expr()
            self.take(")")
            return value
        return self.primary()

    def _cast(self) -> bool:
        """Step over ``(type)`` when the parentheses hold a type name."""
        j, words = self.i + 1, []
        while j < len(self.t) and self.t[j] != ")":
            words.append(self.t[j])
            j += 1
        if j >= len(self.t) or not words:
            return False
        plain = [w for w in words if w != "*"]
        typed = bool(plain) and all(re.fullmatch(r"[A-Za-z_]\w*", w) for w in plain) and (
            plain[0] in _TYPE_WORDS or words[-1] == "*" or plain[-1].endswith("_t"))
        if typed and j + 1 < len(self.t) and self.t[j + 1] not in _BINARY and \
                self.t[j + 1] not in (")", "?", ":"):
            self.i = j + 1
            return True
        return False

    def primary(self) -> Value | None:
        tok = self.take()
        if tok[0].isdigit():
            return c_int(tok)
        if tok[0] in "'\"":
            return None
        if not (tok[0].isalpha() or tok[0] == "_"):
            raise _Unknown
        if tok in _LITERALS and self.peek() not in ("->", ".", "[", "("):
            return _LITERALS[tok]
        path, known = tok, True
        while self.peek() in ("->", ".", "[", "("):
            op = self.take()
            if op == "(":
                args = self._args()
                if tok in _TRANSPARENT and args and path == tok:
                    return args[0]
                if tok in _FIELD_READERS and path == tok and len(args) == 1 and \
                        isinstance(self._last_path, str):
                    path = f"{self._last_path}->{_FIELD_READERS[tok]}"
                    continue
                known = False
            elif op == "[":
                depth = 1
                while depth:
                    t = self.take()
                    depth += {"[": 1, "]": -1}.get(t, 0)
                known = False
            else:
                path += op + self.take()
        if not known:
            return None
        if path in self.env:
            return self.env[path]
        if path == tok and _SYMBOL.fullmatch(tok):
            return tok
        return None

    _last_path: str | None = None

    def _args(self) -> list[Value | None]:
        out: list[Value | None] = []
        self._last_path = None
        if self.peek() == ")":
            self.take()
            return out
        while True:
            start = self.i
            out.append(self.expr())
            span = self.t[start:self.i]
            if len(out) == 1 and span and all(re.fullmatch(r"[A-Za-z_]\w*|->|\.", s) for s in span):
                self._last_path = "".join(span)
            if self.peek() == ",":
                self.take()
                continue
            self.take(")")
            return out


def _truth(value: Value | None) -> bool | None:
    if isinstance(value, int):
        return value != 0
    if isinstance(value, NonZero):
        return True
    return None


def _binary(op: str, a: Value | None, b: Value | None) -> Value | None:
    if op in ("&&", "||"):
        ta, tb = _truth(a), _truth(b)
        if op == "&&":
            if ta is False or tb is False:
                return 0
            return 1 if ta and tb else None
        if ta or tb:
            return 1
        return 0 if ta is False and tb is False else None
    if op == "&":
        if a == 0 or b == 0:
            return 0
        for flags, bit in ((a, b), (b, a)):
            if isinstance(flags, Bits) and isinstance(bit, str) and bit in flags.set:
                return 1  # non-zero: only its truth is used
    if op in ("+", "-") and (isinstance(a, Lin) or isinstance(b, Lin) or
                             isinstance(a, str) or isinstance(b, str)):
        la, lb = Lin.of(a), Lin.of(b)
        if la is None or lb is None:
            return None
        out = la.plus(lb, 1 if op == "+" else -1)
        return out.const if not out.terms else out
    if op in ("<", ">", "<=", ">=", "==", "!=") and (isinstance(a, Lin) or isinstance(b, Lin)):
        la, lb = Lin.of(a), Lin.of(b)
        diff = la.plus(lb, -1) if la is not None and lb is not None else None
        if diff is None or diff.terms:
            return None
        d = diff.const
        return int({"<": d < 0, ">": d > 0, "<=": d <= 0, ">=": d >= 0, "==": d == 0,
                    "!=": d != 0}[op])
    if op in ("==", "!="):
        same: bool | None = None
        if isinstance(a, int) and isinstance(b, int):
            same = a == b
        elif isinstance(a, NonZero) and b == 0 or isinstance(b, NonZero) and a == 0:
            same = False
        elif isinstance(a, str) and isinstance(b, str):
            same = True if a == b else None if not (_SYMBOL.fullmatch(a) and
                                                      _SYMBOL.fullmatch(b)) else False
        if same is None:
            return None
        return int(same if op == "==" else not same)
    if isinstance(a, int) and isinstance(b, int):
        try:
            return {"|": a | b, "^": a ^ b, "&": a & b, "<": int(a < b), ">": int(a > b),
                    "<=": int(a <= b), ">=": int(a >= b), "<<": a << min(b, 64),
                    ">>": a >> min(b, 64), "+": a + b, "-": a - b, "*": a * b,
                    "/": a // b if b else None, "%": a % b if b else None}[op]
        except (KeyError, ValueError):
            return None
    return None


def evaluate(text: str, env: Env) -> bool | None:
    """Whether a condition holds, given what is known; None when it cannot be told.

    ``env`` may hold whole conditions known to hold or not (``?PageChecked(page)``:
    0), as the path check passes a caller's tests down to its callee."""
    known = env.get("?" + text)
    if isinstance(known, int):
        return bool(known)
    return _truth(compute(text, env))


def compute(text: str, env: Env) -> Value | None:
    """The value of an expression, given what is known (nothing, for a constant
    expression such as ``EXT_MAX_BLOCKS - 1``); None when it cannot be told."""
    tokens = _tokens(text)
    if not tokens or len(tokens) > _MAX_TOKENS:
        return None
    parser = _Parser(tokens, env)
    try:
        value = parser.expr()
    except (_Unknown, ValueError, RecursionError):
        return None
    return value if parser.i == len(tokens) else None
