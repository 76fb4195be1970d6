"""GFP masks as flag sets.

Masks are evaluated symbolically: every single-bit ``__GFP_*`` flag is an atom,
composites (``GFP_KERNEL``, ``GFP_NOFS``...) are unions of atoms. Text never
decides: ``GFP_KERNEL | GFP_NOFS`` is GFP_KERNEL and ``GFP_KERNEL & ~__GFP_FS``
is NOFS. A value we cannot see (a parameter, a struct field, a helper's
result) is *unknown*: we still track the atoms it is known to have or lack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nofslint.model.gfp import UNKNOWN, Mask

# Composites as in include/linux/gfp_types.h of v6.12; used when the linted
# files are not inside a kernel tree (or the tree's header cannot be read).
BUILTIN_DEFINES: dict[str, str] = {
    "__GFP_RECLAIM": "__GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM",
    "GFP_ATOMIC": "__GFP_HIGH | __GFP_KSWAPD_RECLAIM",
    "GFP_KERNEL": "__GFP_RECLAIM | __GFP_IO | __GFP_FS",
    "GFP_KERNEL_ACCOUNT": "GFP_KERNEL | __GFP_ACCOUNT",
    "GFP_NOWAIT": "__GFP_KSWAPD_RECLAIM | __GFP_NOWARN",
    "GFP_NOIO": "__GFP_RECLAIM",
    "GFP_NOFS": "__GFP_RECLAIM | __GFP_IO",
    "GFP_USER": "__GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL",
    "GFP_DMA": "__GFP_DMA",
    "GFP_DMA32": "__GFP_DMA32",
    "GFP_HIGHUSER": "GFP_USER | __GFP_HIGHMEM",
    "GFP_HIGHUSER_MOVABLE": "GFP_HIGHUSER | __GFP_MOVABLE | __GFP_SKIP_KASAN",
    "GFP_TRANSHUGE_LIGHT": (
        "(GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & ~__GFP_RECLAIM"
    ),
    "GFP_TRANSHUGE": "GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM",
}

# Composites a fix may use to spell a mask, largest first.
_SPELLINGS = (
    "GFP_KERNEL_ACCOUNT", "GFP_KERNEL", "GFP_NOFS", "GFP_NOIO", "GFP_ATOMIC", "GFP_NOWAIT",
)

MAX_ALTERNATIVES = 8


@dataclass(frozen=True)
class _Not:
    """The value of ``~expr``: only meaningful as the right side of ``&``."""

    inner: Mask


_Value = Mask | _Not


def _or(a: Mask, b: Mask) -> Mask:
    unknown = a.unknown or b.unknown
    flags = a.flags | b.flags
    if not unknown:
        return Mask(flags)
    ca = a.cleared if a.unknown else None
    cb = b.cleared if b.unknown else None
    if ca is None:
        cleared = cb - a.flags  # type: ignore[operator]
    elif cb is None:
        cleared = ca - b.flags
    else:
        cleared = ca & cb
    return Mask(flags, True, frozenset(cleared) - flags)


def _and(a: _Value, b: _Value) -> Mask:
    if isinstance(a, _Not):
        a, b = b, a
    if isinstance(a, _Not):
        return UNKNOWN
    if isinstance(b, _Not):
        inner = b.inner
        if inner.unknown:
            # Clearing an unknown set: what is surely kept is unknowable.
            return Mask(frozenset(), True, a.cleared if a.unknown else frozenset())
        return Mask(a.flags - inner.flags, a.unknown, (a.cleared | inner.flags) if a.unknown
                    else frozenset())
    if not a.unknown and not b.unknown:
        return Mask(a.flags & b.flags)
    return Mask(a.flags & b.flags, True, a.cleared | b.cleared)


_TOKEN = re.compile(
    r"\s*(?:([A-Za-z_]\w*)|(0[xX][0-9a-fA-F]+|\d+)[uUlL]*"
    r"|(\|\||&&|<<|>>|->|[|&~!^()?:,]|[^\s\w]))")


def tokenize(text: str) -> list[str] | None:
    """Tokens of a mask expression, or None for something we do not model."""
    text = re.sub(r"/\*.*?\*/|//[^\n]*|\\\n", " ", text, flags=re.S)
    pos, out = 0, []
    while True:
        m = _TOKEN.match(text, pos)
        if not m:
            return out if not text[pos:].strip() else None
        out.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()


Resolver = Callable[[str], "tuple[Mask, ...] | None"]
_CAST_WORDS = frozenset({"__force", "gfp_t", "unsigned", "int", "long", "const"})


class _Parser:
    """Recursive descent over ``?: | ^ & ~ () cast``; values are alternative tuples."""

    def __init__(self, tokens: list[str], resolve: Resolver) -> None:
        self.toks, self.i, self.resolve = tokens, 0, resolve

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> tuple[_Value, ...]:
        value = self.cond()
        if self.peek() is not None:
            raise ValueError("trailing tokens")
        return value

    def cond(self) -> tuple[_Value, ...]:
        test = self.bitor()
        if self.peek() != "?":
            return test
        self.take()
        yes = self.cond()
        if self.take() != ":":
            raise ValueError("bad conditional")
        no = self.cond()
        return _cap(yes + no)

    def _binary(self, op: str, sub: Callable[[], tuple[_Value, ...]],
                combine: Callable[[_Value, _Value], _Value]) -> tuple[_Value, ...]:
        left = sub()
        while self.peek() == op:
            self.take()
            right = sub()
            left = _cap(tuple(combine(a, b) for a in left for b in right))
        return left

    def bitor(self) -> tuple[_Value, ...]:
        return self._binary("|", self.bitxor, lambda a, b: _or(_plain(a), _plain(b)))

    def bitxor(self) -> tuple[_Value, ...]:
        return self._binary("^", self.bitand, lambda a, b: UNKNOWN)

    def bitand(self) -> tuple[_Value, ...]:
        return self._binary("&", self.unary, _and)

    def unary(self) -> tuple[_Value, ...]:
        tok = self.peek()
        if tok == "~":
            self.take()
            return tuple(_Not(_plain(v)) for v in self.unary())
        if tok == "(" and self._is_cast():
            while self.take() != ")":
                pass
            return self.unary()
        return self.primary()

    def _skip_postfix(self) -> None:
        while self.peek() in ("->", ".", "["):
            if self.take() == "[":
                depth = 1
                while depth:
                    t = self.take()
                    depth += (t == "[") - (t == "]")
            elif self.peek() is not None:
                self.take()

    def _is_cast(self) -> bool:
        j = self.i + 1
        while j < len(self.toks) and self.toks[j] in _CAST_WORDS:
            j += 1
        return j > self.i + 1 and j < len(self.toks) and self.toks[j] == ")"

    def primary(self) -> tuple[_Value, ...]:
        tok = self.take()
        if tok == "(":
            value = self.cond()
            if self.take() != ")":
                raise ValueError("unbalanced")
            return value
        if tok[0].isdigit():
            return (Mask() if int(tok, 0) == 0 else UNKNOWN,)
        if tok[0].isalpha() or tok[0] == "_":
            if self.peek() == "(":  # a call or function-like macro: opaque
                depth = 0
                while True:
                    t = self.take()
                    depth += (t == "(") - (t == ")")
                    if depth == 0:
                        break
                if self.peek() in ("->", ".", "["):
                    self._skip_postfix()
                return (UNKNOWN,)
            if self.peek() in ("->", ".", "["):  # a field or element: opaque
                self._skip_postfix()
                return (UNKNOWN,)
            resolved = self.resolve(tok)
            return resolved if resolved is not None else (UNKNOWN,)
        raise ValueError(f"unexpected {tok!r}")


def _bit_atom(name: str) -> tuple[Mask, ...] | None:
    """``___GFP_X`` (a bit number's mask in the headers) is the atom ``__GFP_X`` itself."""
    return (Mask(frozenset({name[1:]})),) if name.startswith("___GFP_") else None


def _plain(v: _Value) -> Mask:
    return v if isinstance(v, Mask) else UNKNOWN


def _cap(values: Iterable[_Value]) -> tuple[_Value, ...]:
    out: list[_Value] = []
    for v in values:
        if v not in out:
            out.append(v)
    return tuple(out[:MAX_ALTERNATIVES])


def evaluate(text: str, resolve: Resolver) -> tuple[Mask, ...]:
    """All values an expression may have; (UNKNOWN,) when it cannot be modelled."""
    try:
        return _values(text, resolve)
    except RecursionError:  # nesting too deep for the parser: the whole expression
        return (UNKNOWN,)


def _values(text: str, resolve: Resolver) -> tuple[Mask, ...]:
    """``evaluate`` letting RecursionError through, so that a resolver evaluating macro
    bodies inside one another never memoises a value the recursion limit cut short."""
    tokens = tokenize(text)
    if not tokens:
        return (UNKNOWN,)
    try:
        values = _Parser(tokens, resolve).parse()
    except (ValueError, IndexError):
        return (UNKNOWN,)
    return tuple(_plain(v) for v in values)


# Budgets of one flag-set resolution (FlagResolver): kernel macro chains are under ten
# deep and touch a few dozen names, so these only ever stop hostile macro nests.
MAX_MACRO_DEPTH = 32  # macros being expanded inside one another
MAX_MACRO_NAMES = 256  # macro bodies evaluated for one name the expression uses
MAX_MACRO_TEXT = 64 * 1024  # characters of those bodies


class FlagResolver:
    """Names to flag sets, the one resolver behind GFP masks and workqueue flags.

    A name is looked up in ``fixed`` (variables, atoms), then as a macro
    (``body``, optionally ``expand``-ed, then evaluated), then in ``fallback``
    (also used for a name met again inside its own expansion: a cycle). Each
    macro is evaluated once (memoised), so ``#define M2 (M1 | M1)`` nests cost
    linear time; past the depth or work budget a name is unknown, never a
    guess, so no finding rests on it. Values cut short by the budget are not
    memoised: a name's value never depends on what was asked before it.
    """

    def __init__(self, body: Callable[[str], str | None], *,
                 fixed: Resolver | None = None, fallback: Resolver | None = None,
                 expand: Callable[[str], str | None] | None = None) -> None:
        self.body, self.fixed, self.fallback, self.expand = body, fixed, fallback, expand
        self.memo: dict[str, tuple[Mask, ...]] = {}
        self.active: list[str] = []  # macros being expanded, outermost first
        self.names = self.text = 0  # work spent on the current outermost name
        self.cuts = 0  # budget cut-offs so far

    def __call__(self, name: str) -> tuple[Mask, ...] | None:
        if self.fixed is not None:
            value = self.fixed(name)
            if value is not None:
                return value
        if name in self.memo:
            return self.memo[name]
        body = self.body(name)
        if body is None or name in self.active:
            return self.fallback(name) if self.fallback is not None else None
        if not self.active:
            self.names = self.text = 0
        self.names += 1
        self.text += len(body)
        if self.expand is not None and self._affordable():
            body = self.expand(body)
        if body is None or not self._affordable():
            self.cuts += 1
            return (UNKNOWN,)
        cuts = self.cuts
        self.active.append(name)
        try:
            value = _values(body, self)
        finally:
            self.active.pop()
        if self.cuts == cuts:
            self.memo[name] = value
        return value

    def _affordable(self) -> bool:
        return (len(self.active) < MAX_MACRO_DEPTH and self.names <= MAX_MACRO_NAMES
                and self.text <= MAX_MACRO_TEXT)


@dataclass
class GfpTable:
    """The tree's GFP vocabulary: composite definitions over atoms."""

    defines: dict[str, str] = field(default_factory=lambda: dict(BUILTIN_DEFINES))
    source: str = "built-in (v6.12)"
    _lookup: FlagResolver = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._lookup = FlagResolver(self.defines.get, fixed=_bit_atom, fallback=self._atom)

    def fingerprint(self) -> str:
        """Identifies the definitions (cached facts hold masks evaluated with them)."""
        import hashlib

        text = "\n".join(f"{k}={v}" for k, v in sorted(self.defines.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def lookup(self, name: str) -> tuple[Mask, ...] | None:
        """A name of the tree's table: its definition, an atom, or None (not a GFP name)."""
        return self._lookup(name)

    def _atom(self, name: str) -> tuple[Mask, ...] | None:
        """An undefined ``__GFP_*`` name is a single-bit atom."""
        if name.startswith("__GFP_") and name not in self.defines:
            return (Mask(frozenset({name})),)
        return None

    def resolver(self, extra: Mapping[str, str] | None = None,
                 variables: Mapping[str, tuple[Mask, ...]] | None = None) -> Resolver:
        """Resolve local variables first, then file macros, then the tree's table."""
        macros = extra or {}
        return FlagResolver(macros.get, fixed=variables.get if variables else None,
                            fallback=self.lookup)

    def eval(self, text: str, **kw: Mapping) -> tuple[Mask, ...]:
        return evaluate(text, self.resolver(**kw))

    def spell(self, mask: Mask) -> str | None:
        """Kernel-style text for an exact mask: the largest composite plus modifiers."""
        if mask.unknown:
            return None
        for name in _SPELLINGS:
            (base,) = self.lookup(name) or (UNKNOWN,)
            if not base.unknown and base.flags <= mask.flags:
                rest = sorted(mask.flags - base.flags)
                return " | ".join([name, *rest])
        return " | ".join(sorted(mask.flags)) or "0"

    @classmethod
    def for_tree(cls, root: Path | None) -> GfpTable:
        """The tree's own definitions (gfp_types.h since v6.0, gfp.h before)."""
        if root is not None:
            for rel in ("include/linux/gfp_types.h", "include/linux/gfp.h"):
                path = root / rel
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                defines = read_defines(data, lambda n: n.startswith(("GFP_", "__GFP_")),
                                       follow_aliases=False)
                if "GFP_KERNEL" in defines and "GFP_NOFS" in defines:
                    return cls(defines=defines, source=rel)
        return cls()


_DEFINE = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+(\w+)(?![\w(])[ \t]*((?:[^\n\\]|\\\n|\\)*)", re.M)
_ALIAS = re.compile(r"[A-Za-z_]\w*")


def read_defines(data: bytes, want: Callable[[str], bool],
                 follow_aliases: bool = True) -> dict[str, str]:
    """Object-like ``#define NAME body`` lines (continuations joined). With
    ``follow_aliases``, ``#define A B`` of another define B of ``data`` reads as B's body,
    so a caller keeping only the defines whose body looks like flags keeps A too."""
    out: dict[str, str] = {}
    for m in _DEFINE.finditer(data):
        out[m.group(1).decode()] = m.group(2).decode("utf-8", "replace").replace(
            "\\\n", " ").strip()
    bodies = _follow_aliases(out) if follow_aliases else out
    return {name: body for name, body in bodies.items() if want(name)}


def _follow_aliases(bodies: dict[str, str]) -> dict[str, str]:
    """Each body that is only the name of another macro of ``bodies`` replaced by the
    body that name finally stands for (parenthesised); bounded and cycle-safe."""
    out = dict(bodies)
    for name, body in bodies.items():
        seen = {name}
        while _ALIAS.fullmatch(body) and body in bodies and body not in seen \
                and len(seen) <= MAX_MACRO_DEPTH:
            seen.add(body)
            body = bodies[body]
        if body != bodies[name]:
            # The newline ends a trailing // comment before the closing parenthesis.
            out[name] = body if _ALIAS.fullmatch(body) else f"({body}\n)"
    return out


_MACRO = re.compile(
    rb"^[ \t]*#[ \t]*define[ \t]+(\w+)(\([^)\n]*\))?[ \t]*((?:[^\n\\]|\\\n|\\)*)", re.M)


def read_macros(data: bytes, want: Callable[[str, str], bool]) -> dict[str, tuple[str | None, str]]:
    """Object- and function-like macros: name -> (parameter list or None, body), the
    first wanted definition of each. An object-like alias of another object-like macro
    (``#define A B``) that ``want`` drops reads as B's body when that one is wanted."""
    out: dict[str, tuple[str | None, str]] = {}
    plain: dict[str, str] = {}  # object-like bodies: the first definition of each
    for m in _MACRO.finditer(data):
        name = m.group(1).decode()
        body = m.group(3).decode("utf-8", "replace").replace("\\\n", " ").strip()
        params = m.group(2).decode("utf-8", "replace")[1:-1] if m.group(2) else None
        if params is None:
            plain.setdefault(name, body)
        if want(name, body):
            out.setdefault(name, (params, body))
    # An alias stands for what its target reads as here: the wanted body when there is one.
    bodies = plain | {n: body for n, (params, body) in out.items() if params is None}
    for name, body in _follow_aliases(bodies).items():
        if name not in out and name in plain and body != bodies[name] and want(name, body):
            out[name] = (None, body)
    return out
