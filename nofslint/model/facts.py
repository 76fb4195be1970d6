"""Per-file facts records: the plain data every rule works from.

Facts are plain, serializable data: they are what a cache stores and what
worker processes send back. ``to_data`` is the one schema of the stored
tuple; everything else reads records through these classes.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from nofslint.model.flow import Flow
from nofslint.model.gfp import Mask
from nofslint.model.scopes import Stack, active, apply


@dataclass(slots=True)
class Function:
    name: str
    static: bool
    start: int
    end: int
    line: int
    end_line: int
    body_start: int
    has_error: bool


@dataclass(slots=True)
class Call:
    callee: str  # "->field" for an indirect call through a struct field
    function: int  # index into FileFacts.functions, -1 outside any function
    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int
    args: list[tuple[int, int]] | None = None  # byte spans, kept for calls rules read
    # Arguments that carry a gfp mask: (index, the values it may have). Masks
    # may hold "$pN" atoms: the caller's N-th parameter flows in unchanged.
    gfp_args: list[tuple[int, list[Mask]]] | None = None


@dataclass(slots=True)
class OpsEntry:
    """A function stored in an ops table: ``.field = fn`` or ``x->field = fn``."""

    struct: str | None  # the initialised struct type, None when not known
    field: str
    target: str  # the function (or whatever identifier) stored
    function: int  # where an assignment happens; -1 for a static initializer
    line: int
    column: int


@dataclass(slots=True)
class Allocation:
    call: int  # index into FileFacts.calls
    allocator: str
    family: str
    mask_arg: int | None  # index of the gfp argument (None: the API takes no mask)
    mask_text: str | None  # the gfp argument as written (None: implicit mask)
    masks: list[Mask]  # every value the mask may have
    scope: str | None  # 'nofs'/'noio' scope active here within the function
    order: int | None = None  # constant page order, for page allocators


@dataclass(slots=True)
class ScopeEvent:
    """A memalloc_*_save/restore call or a direct ``current->flags`` change."""

    function: int
    start: int
    line: int
    op: str  # 'save' | 'restore' | 'set' | 'clear'
    kind: str  # 'nofs' | 'noio' | 'other'
    target: str | None  # variable saved into / restored from; None when discarded


@dataclass(slots=True)
class WqQueue:
    """A workqueue created here: where it is stored and its flags as written.

    ``store`` is a place key: ``g:name`` (a global), ``s:name`` (a static of
    this file), ``f:struct.field`` or ``f:?.field`` when the struct type is not
    known; None when the queue is not stored anywhere we can name.
    """

    api: str
    call: int  # index into FileFacts.calls
    store: str | None
    name: str | None  # the format string, when it is a literal
    flags_text: str | None  # None: the API takes no flags argument
    flags_start: int
    flags_end: int
    line: int


@dataclass(slots=True)
class WqUse:
    """A work bound to its function, queued on a queue, or a flush (place keys)."""

    api: str
    role: str  # 'bind' | 'queue' | 'flush'
    call: int  # index into FileFacts.calls; -1 for DECLARE_WORK()
    function: int
    line: int
    work: str | None
    queue: str | None
    target: str | None = None  # bind: the work function's name


@dataclass(slots=True)
class Guards:
    """What decides, inside one function, whether a call or a return is reached.

    The path check (analysis.feasible) reads it along a reported chain: which
    conditions must hold to reach a call, which constants were stored before it,
    which constants the function returns. A second tier of facts: built on
    demand for the few functions on reported chains (extract.guards), never
    stored with every file's facts. Offsets are the file's.
    """

    function: int  # index into FileFacts.functions
    params: list[str]  # parameter names, in order
    # [start, end) runs only when the condition (a condition_key) has the value;
    # ``at`` is where the condition is tested.
    conds: list[tuple[int, int, int, str, bool]]  # (at, start, end, cond, value)
    # ``lhs = value;`` at ``at``; ``scope_end`` is where the statement's block ends.
    # value: a constant ("0", "1", "NAME"), "call" (the result of the call starting
    # at ``call``), or None (any other write: what was known is forgotten).
    sets: list[tuple[int, int, str, str | None, int]]  # (at, scope_end, lhs, value, call)
    returns: list[tuple[int, str | None]]  # (at, constant or None)
    args: list[tuple[int, list[tuple[int, str]]]]  # call offset -> (index, constant/name/&name)
    loops: list[tuple[int, int]]  # loops and label-to-goto spans: a later write comes back
    # Per parameter, the struct it points to (``struct btrfs_trans_handle *trans``).
    param_structs: list[str | None] = field(default_factory=list)


R = TypeVar("R")


class Lazy(Sequence[R]):
    """Records loaded from the cache, turned into objects only when a rule reads one.

    A warm whole-tree run holds millions of calls and ops-table entries; the
    link stage reads a few fields of each (``raw()``), which stay plain tuples.
    """

    __slots__ = ("_raw", "_make", "_items")

    def __init__(self, raw: list[tuple], make: Callable[[tuple], R]) -> None:
        self._raw = raw
        self._make = make
        self._items: dict[int, R] = {}

    def __len__(self) -> int:
        return len(self._raw)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._raw)))]
        if index < 0:
            index += len(self._raw)
        item = self._items.get(index)
        if item is None:
            item = self._items[index] = self._make(self._raw[index])
        return item

    def raw(self) -> list[tuple]:
        return self._raw


# -- the stored form: one schema ----------------------------------------------------
# A record is stored as the tuple of its dataclass fields, in declaration order
# (masks as plain tuples); a file as the tuple of FactsData's fields. Everything
# that reads stored facts (from_data, check_data, the index's raw columns,
# relocation, seed filters) indexes them through these names.


def fields_of(record: type) -> tuple[str, ...]:
    """The stored layout of one kind of record: its fields, in order."""
    return tuple(f.name for f in dataclasses.fields(record))


def at(record: type, name: str) -> int:
    """Where a field of a record sits in its stored tuple."""
    return fields_of(record).index(name)


class FactsData(NamedTuple):
    """A file's facts as stored (to_data() gives the plain tuple, for marshal)."""

    path: str
    sha256: str
    functions_with_errors: int
    gfp_macros: dict[str, str]
    functions: list[tuple]
    calls: list[tuple]
    allocations: list[tuple]
    scopes: list[tuple]
    ops: list[tuple]
    wq_queues: list[tuple]
    wq_uses: list[tuple]
    wq_macros: dict[str, tuple[str | None, str]]
    flows: list[tuple]
    wq_accessors: dict[str, str]


_CALL_GFP = at(Call, "gfp_args")
_ALLOC_MASKS = at(Allocation, "masks")
_CALLEE, _CALL_FUNCTION = at(Call, "callee"), at(Call, "function")
_FUNCTION_HEAD = operator.itemgetter(at(Function, "name"), at(Function, "static"))
_OPS_HEAD = operator.itemgetter(at(OpsEntry, "field"), at(OpsEntry, "struct"),
                                at(OpsEntry, "target"))
_plain = {kind: operator.attrgetter(*fields_of(kind))
          for kind in (Function, Call, Allocation, ScopeEvent, OpsEntry, WqQueue, WqUse)}


def _call_from(c: tuple) -> Call:
    gfp = c[_CALL_GFP]
    return Call(*c[:_CALL_GFP], None if gfp is None else [(i, masks_from(m)) for i, m in gfp])


def _function_from(f: tuple) -> Function:
    return Function(*f)


def _ops_from(o: tuple) -> OpsEntry:
    return OpsEntry(*o)


def _masks_data(ms: list[Mask]) -> list[tuple]:
    return [(tuple(sorted(m.flags)), m.unknown, tuple(sorted(m.cleared))) for m in ms]


def raw_records(items: Sequence) -> list[tuple] | None:
    """The plain tuples behind records loaded from the cache; None for built objects."""
    return items.raw() if isinstance(items, Lazy) else None


def _all_tuples(items: list, size: int) -> bool:
    return set(map(type, items)) <= {tuple} and set(map(len, items)) <= {size}


def masks_from(ms: list[tuple]) -> list[Mask]:
    """Masks from their stored form (to_data())."""
    return [Mask(frozenset(f), bool(u), frozenset(c)) for f, u, c in ms]


def call_columns(calls: Sequence[Call]) -> tuple[list[str], list[int]]:
    """Every call's callee and enclosing function index, as two lists built at C speed."""
    raw = raw_records(calls)
    if raw is not None:
        return (list(map(operator.itemgetter(_CALLEE), raw)),
                list(map(operator.itemgetter(_CALL_FUNCTION), raw)))
    return [c.callee for c in calls], [c.function for c in calls]


def function_heads(functions: Sequence[Function]) -> Iterator[tuple[str, bool]]:
    """(name, static) of every function, without building Function objects."""
    raw = raw_records(functions)
    if raw is not None:
        return map(_FUNCTION_HEAD, raw)
    return ((f.name, f.static) for f in functions)


def ops_heads(ops: Sequence[OpsEntry]) -> Iterator[tuple[str, str | None, str]]:
    """(field, struct, target) of every ops-table entry, without building OpsEntry objects."""
    raw = raw_records(ops)
    if raw is not None:
        return map(_OPS_HEAD, raw)
    return ((o.field, o.struct, o.target) for o in ops)


@dataclass
class FileFacts:
    path: str  # relative to the tree root
    sha256: str
    functions: Sequence[Function] = field(default_factory=list)
    calls: Sequence[Call] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    scopes: list[ScopeEvent] = field(default_factory=list)
    ops: Sequence[OpsEntry] = field(default_factory=list)
    gfp_macros: dict[str, str] = field(default_factory=dict)
    wq_queues: list[WqQueue] = field(default_factory=list)
    wq_uses: list[WqUse] = field(default_factory=list)
    # Macros that spell workqueue flags: name -> (parameters or None, body).
    wq_macros: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    # Control flow of the functions that need paths: scope calls, transactions.
    flows: list[Flow] = field(default_factory=list)
    # Accessors defined here that name a queue or work's place: a function-like
    # macro or a static inline returning one (name -> place key, as WqUse's).
    wq_accessors: dict[str, str] = field(default_factory=dict)
    functions_with_errors: int = 0

    def function_at(self, index: int) -> Function | None:
        return self.functions[index] if 0 <= index < len(self.functions) else None

    # Plain tuples of str/int/bool only: what the cache stores (marshal, no code).
    def to_data(self) -> tuple:
        plain = _plain
        calls = raw_records(self.calls) or [
            (*plain[Call](c)[:_CALL_GFP],
             None if c.gfp_args is None else [(i, _masks_data(m)) for i, m in c.gfp_args])
            for c in self.calls]
        allocations = [(*plain[Allocation](a)[:_ALLOC_MASKS], _masks_data(a.masks),
                        *plain[Allocation](a)[_ALLOC_MASKS + 1:]) for a in self.allocations]
        return tuple(FactsData(
            self.path, self.sha256, self.functions_with_errors, self.gfp_macros,
            list(map(plain[Function], self.functions)), calls, allocations,
            list(map(plain[ScopeEvent], self.scopes)), list(map(plain[OpsEntry], self.ops)),
            list(map(plain[WqQueue], self.wq_queues)), list(map(plain[WqUse], self.wq_uses)),
            self.wq_macros, [f.to_data() for f in self.flows], self.wq_accessors))

    @staticmethod
    def check_data(data: object) -> None:
        """Raise unless ``data`` has the shape to_data() makes: cache entries are not trusted."""
        if not (isinstance(data, tuple) and len(data) == len(FactsData._fields)):
            raise ValueError("not nofslint facts")
        d = FactsData._make(data)
        if not (isinstance(d.path, str) and isinstance(d.gfp_macros, dict)
                and isinstance(d.wq_macros, dict) and isinstance(d.wq_accessors, dict)
                and set(map(type, (d.functions, d.calls, d.allocations, d.scopes, d.ops,
                                   d.wq_queues, d.wq_uses, d.flows))) == {list}):
            raise ValueError("not nofslint facts")
        # map() over builtins keeps these checks at C speed: a warm whole-tree run
        # checks about five million calls.
        if not (_all_tuples(d.functions, len(fields_of(Function)))
                and _all_tuples(d.calls, len(fields_of(Call)))
                and set(map(type, map(operator.itemgetter(_CALLEE), d.calls))) <= {str}):
            raise ValueError("bad function or call")
        for f in d.flows:
            if not (isinstance(f, tuple) and len(f) == 3 and isinstance(f[1], list)
                    and isinstance(f[2], dict)
                    and all(isinstance(b, tuple) and len(b) == 5 for b in f[1])):
                raise ValueError("bad flow")

    @classmethod
    def from_data(cls, data: tuple) -> FileFacts:
        d = FactsData._make(data)
        out = cls(d.path, d.sha256, functions_with_errors=d.functions_with_errors,
                  gfp_macros=dict(d.gfp_macros))
        out.functions = Lazy(d.functions, _function_from)
        out.calls = Lazy(d.calls, _call_from)
        out.allocations = [Allocation(*a[:_ALLOC_MASKS], masks_from(a[_ALLOC_MASKS]),
                                      *a[_ALLOC_MASKS + 1:]) for a in d.allocations]
        out.scopes = [ScopeEvent(*e) for e in d.scopes]
        out.ops = Lazy(d.ops, _ops_from)
        out.wq_queues = [WqQueue(*q) for q in d.wq_queues]
        out.wq_uses = [WqUse(*u) for u in d.wq_uses]
        out.wq_macros = {k: tuple(v) for k, v in d.wq_macros.items()}  # type: ignore[misc]
        out.flows = [Flow.from_data(f) for f in d.flows]
        out.wq_accessors = dict(d.wq_accessors)
        return out


def scope_at(scopes: list[ScopeEvent], fidx: int, offset: int) -> str | None:
    """The NOFS/NOIO scope open at offset, replaying the function's events in source order.

    Source order, not paths: good enough to ask "is this call inside a scope"
    in a function that opens one around it (analysis.scopes answers per path).
    """
    if fidx < 0:
        return None
    stack: Stack = ()
    for ev in scopes:
        if ev.start >= offset:
            break
        if ev.function == fidx:
            stack = apply(stack, ev)
    return active(stack)
