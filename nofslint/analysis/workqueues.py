"""Workqueues and work items over the whole tree (the link stage's queue/work tables).

Queues and works are keyed by where they are stored, as in the per-file
facts: a global, a file's static, or a struct field (``xfs_mount.m_sync_workqueue``).
A field whose struct type the extractor could not see (``f:?.x``) takes the
one struct type every typed key gives that field name; when several structs
have such a field it names nothing, rather than linking unrelated drivers.

Flags are evaluated as flag sets: ``WQ_*`` names are atoms, macros come from
the file itself, then from headers (its own directory first), and the
function-like ones are expanded (``XFS_WQFLAGS(WQ_FREEZABLE)``).
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from nofslint.kernel.gfp import FlagResolver, evaluate, tokenize
from nofslint.kernel.workqueue_api import CREATORS, LEGACY, RECLAIM, SYSTEM_QUEUES, WQ_ATOM
from nofslint.link.index import Ref, TreeIndex
from nofslint.model.facts import FileFacts, WqQueue, WqUse
from nofslint.model.gfp import UNKNOWN, Mask

Key = tuple[str, ...]
Macro = tuple[str | None, str]
MAX_EXPANSION = 8
# Tokens a flags expression may grow to through function-like macros: (x | x) nested
# eight deep is already 256 copies; past this the flags are unknown.
MAX_EXPANDED_TOKENS = 4096
# printf conversions in a queue's name format: "%s" alone says nothing, so the key stands in
_SPECIFIER = re.compile(r"%[-+ #0-9.*lhzjt]*[a-zA-Z%]")


@dataclass
class Queue:
    """One creation of a queue (or a system queue the tree does not define)."""

    key: Key
    name: str  # as the kernel prints it: the format string, or the key
    file: int | None  # None: a built-in system queue
    fact: WqQueue | None
    reclaim: bool | None  # WQ_MEM_RECLAIM set on every path / on none / cannot tell
    legacy: bool | None
    literal: bool  # flags written as WQ_* names and | only: a fix can edit them
    bh: bool | None = False  # WQ_BH: softirq queues take no WQ_MEM_RECLAIM (alloc fails)

    @property
    def system(self) -> bool:
        return self.key[0] == "g" and self.key[1] in SYSTEM_QUEUES


@dataclass
class Registry:
    index: TreeIndex
    queues: dict[Key, list[Queue]] = field(default_factory=lambda: defaultdict(list))
    binds: dict[Key, list[tuple[int, WqUse]]] = field(default_factory=lambda: defaultdict(list))
    queued: dict[Key, list[tuple[int, WqUse]]] = field(default_factory=lambda: defaultdict(list))
    flushes: list[tuple[int, WqUse, list[Key], Key | None]] = field(default_factory=list)
    _field_structs: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _header_macros: dict[str, list[tuple[str, Macro]]] = field(
        default_factory=lambda: defaultdict(list))
    _accessors: dict[str, list[tuple[int, str]]] = field(
        default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, index: TreeIndex) -> Registry:
        reg = cls(index)
        reg._collect()
        return reg

    # -- keys ------------------------------------------------------------------------
    def key(self, file_index: int, raw: str | None) -> Key | None:
        """Normalise a fact's place key; None when it names nothing for sure.

        An accessor (``a:NAME``) stands for the place its definition names, when
        the tree defines it one way only (a macro defined differently per
        architecture or config names nothing for sure)."""
        if raw is None:
            return None
        kind, _, rest = raw.partition(":")
        if kind == "a":
            found = {self.key(fi, place) if place != "?" else None
                     for fi, place in self._accessors.get(rest, ()) if not place.startswith("a:")}
            return found.pop() if len(found) == 1 and None not in found else None
        if kind == "s":
            return ("s", str(file_index), rest)
        if kind == "g":
            return ("g", rest)
        struct, _, name = rest.partition(".")
        if struct != "?":
            return ("f", struct, name)
        structs = self._field_structs.get(name, set())
        if len(structs) > 1:
            return None
        return ("f", next(iter(structs)) if structs else "?", name)

    @staticmethod
    def describe(key: Key) -> str:
        if key[0] == "f":
            return f"{key[1]}.{key[2]}" if key[1] != "?" else f"->{key[2]}"
        return key[-1]

    # -- building ----------------------------------------------------------------------
    def _collect(self) -> None:
        # Accessors are file-level facts: an edit that changes one is never a move
        # (relocation), so it needs no kind of its own among the reads.
        for fi, entry in self.index.scan("wq_queues", "wq_uses"):
            facts = entry.facts
            for name, place in facts.wq_accessors.items():
                self._accessors[name].append((fi, place))
            for raw in [q.store for q in facts.wq_queues] + [
                    k for u in facts.wq_uses for k in (u.work, u.queue)]:
                if raw and raw.startswith("f:") and not raw.startswith("f:?."):
                    struct, _, name = raw[2:].partition(".")
                    self._field_structs[name].add(struct)
            if facts.path.endswith(".h"):
                for name, macro in facts.wq_macros.items():
                    self._header_macros[name].append((posixpath.dirname(facts.path), macro))
        flushes: list[tuple[int, WqUse, Key | None, Key | None]] = []
        for fi, entry in self.index.scan("wq_queues", "wq_uses"):
            facts = entry.facts
            for q in facts.wq_queues:
                key = self.key(fi, q.store)
                if key is not None:
                    self.queues[key].append(self._queue(fi, facts, key, q))
            for use in facts.wq_uses:
                work, queue = self.key(fi, use.work), self.key(fi, use.queue)
                if use.role == "bind" and work is not None and use.target:
                    self.binds[work].append((fi, use))
                elif use.role == "queue" and work is not None and queue is not None:
                    self.queued[work].append((fi, use))
                elif use.role == "flush" and use.function >= 0:
                    flushes.append((fi, use, work, queue))
        # A flushed work holds back the queues it is queued on (any of them).
        for fi, use, work, queue in flushes:
            targets = [queue] if queue is not None else []
            if use.queue is None and work is not None:
                targets = [k for k in (self.key(qi, q.queue) for qi, q in self.queued_on(work))
                           if k is not None]
            if targets:
                self.flushes.append((fi, use, targets, work))
        for name, (label, flags) in SYSTEM_QUEUES.items():
            key = ("g", name)
            if key not in self.queues:
                reclaim, legacy, bh = self._flag_states(flags, {}, "")
                self.queues[key].append(Queue(key, label, None, None, reclaim, legacy, False, bh))

    def queued_on(self, work: Key) -> list[tuple[int, WqUse]]:
        return self.queued.get(work, [])

    def _queue(self, fi: int, facts: FileFacts, key: Key, q: WqQueue) -> Queue:
        """The queue a creation makes; ``facts`` are its file's, as the scan gave them
        (its macros spell the flags: a change to them relinks, see relocation)."""
        implicit = CREATORS[q.api].implicit
        text = " | ".join(t for t in (q.flags_text and f"({q.flags_text})", implicit) if t)
        reclaim, legacy, bh = self._flag_states(text or "0", facts.wq_macros,
                                            posixpath.dirname(facts.path))
        literal = q.flags_text is not None and _literal(q.flags_text)
        name = q.name if q.name and re.search(r"[A-Za-z]", _SPECIFIER.sub("", q.name)) else None
        return Queue(key, name or self.describe(key), fi, q, reclaim, legacy, literal, bh)

    # -- flags -------------------------------------------------------------------------
    def _flag_states(self, text: str, local: dict[str, Macro],
                     home: str) -> tuple[bool | None, bool | None, bool | None]:
        def macro(name: str) -> Macro | None:
            if name in local:
                return local[name]
            found = self._header_macros.get(name)
            if not found:
                return None
            return next((m for d, m in found if d == home), found[0][1])

        def body(name: str) -> str | None:
            m = macro(name)
            return m[1] if m is not None and m[0] is None else None

        resolve = FlagResolver(body, fixed=_wq_atom, expand=lambda t: _expand(t, macro))
        expanded = _expand(text, macro)
        masks = evaluate(expanded, resolve) if expanded is not None else (UNKNOWN,)
        return (_all(m.has(RECLAIM) for m in masks), _all(m.has(LEGACY) for m in masks),
                _all(m.has("WQ_BH") for m in masks))

    # -- questions the rule asks -------------------------------------------------------
    def runs_reclaim(self, key: Key) -> Queue | None:
        """A creation of this queue that is WQ_MEM_RECLAIM and not legacy: it can flush-warn."""
        return next((q for q in self.queues.get(key, ()) if q.reclaim is True
                     and q.legacy is False), None)

    def lacks_reclaim(self, key: Key) -> Queue | None:
        """A creation of this queue without WQ_MEM_RECLAIM (for sure)."""
        return next((q for q in self.queues.get(key, ()) if q.reclaim is False), None)

    def work_functions(self, work: Key, queued: tuple[int, WqUse] | None = None
                       ) -> list[tuple[Ref, int, WqUse]]:
        """The functions a work item runs, with the bind that says so.

        With ``queued`` (where it is queued): a bind of the same work earlier in the
        same function is the one that runs there (``INIT_WORK(&w, fn);
        queue_work(q, &w);``), whatever other functions are bound to the same
        field elsewhere."""
        binds = self.binds.get(work, [])
        if queued is not None:
            qi, q = queued
            local = [(fi, use) for fi, use in binds
                     if fi == qi and use.function == q.function and use.function >= 0
                     and use.line <= q.line]
            if local:
                binds = [max(local, key=lambda b: b[1].line)]
        out = []
        for fi, use in binds:
            for ref in self.index.resolve(fi, use.target or ""):
                out.append((ref, fi, use))
        return out

    def workers(self) -> list[tuple[Ref, int, WqUse]]:
        """Every function a kworker or a kthread runs, with the call that says so.

        Work functions count whatever their work item is keyed by (a work on
        the stack names no place, its function still runs in a worker).
        """
        out = []
        for fi, entry in self.index.scan("wq_uses"):
            for use in entry.facts.wq_uses:
                if use.role in ("bind", "thread") and use.target:
                    out.extend((ref, fi, use) for ref in self.index.resolve(fi, use.target))
        return out


def _all(values: object) -> bool | None:
    seen = set(values)  # type: ignore[call-overload]
    if seen == {True}:
        return True
    if seen == {False}:
        return False
    return None


_LITERAL = re.compile(r"[\s|()]*(?:(?:_*[A-Z][A-Z0-9_]*|0)[\s|()]*)+")


def _literal(text: str) -> bool:
    """Flags written with constants and | only (``XFS_WQFLAGS(WQ_FREEZABLE)`` too):
    no variable, no condition, so ``| WQ_MEM_RECLAIM`` can be appended."""
    return bool(_LITERAL.fullmatch(text))


def _wq_atom(name: str) -> tuple[Mask, ...] | None:
    return (Mask(frozenset({name})),) if WQ_ATOM.fullmatch(name) else None


def _expand(text: str, macro: Callable[[str], Macro | None], depth: int = 0) -> str | None:
    """Expand function-like macros in a flags expression (object-like ones resolve lazily);
    None when the expansion outgrows MAX_EXPANDED_TOKENS (too complex to model)."""
    tokens = tokenize(text)
    if tokens is None or depth > MAX_EXPANSION:
        return text
    out: list[str] = []
    size = 0  # tokens in out, counting an argument as its own tokens
    i = 0
    changed = False
    while i < len(tokens):
        tok = tokens[i]
        m = macro(tok) if (tok[0].isalpha() or tok[0] == "_") else None
        if m is not None and m[0] is not None and i + 1 < len(tokens) and tokens[i + 1] == "(":
            args, j = _arguments(tokens, i + 1)
            params = [p.strip() for p in m[0].split(",") if p.strip()]
            if args is not None and len(args) == len(params):
                subst = dict(zip(params, args, strict=True))
                body = tokenize(m[1]) or []
                size += 2 + sum(subst[t].count(" ") + 1 if t in subst else 1 for t in body)
                if size > MAX_EXPANDED_TOKENS:
                    return None
                out.append("(" + " ".join(subst.get(t, t) for t in body) + ")")
                i = j
                changed = True
                continue
        size += 1
        if size > MAX_EXPANDED_TOKENS:
            return None
        out.append(tok)
        i += 1
    result = " ".join(out)
    return _expand(result, macro, depth + 1) if changed else result


def _arguments(tokens: list[str], open_at: int) -> tuple[list[str] | None, int]:
    depth, args, current = 0, [], []
    for j in range(open_at, len(tokens)):
        tok = tokens[j]
        if tok == "(":
            depth += 1
            if depth == 1:
                continue
        elif tok == ")":
            depth -= 1
            if depth == 0:
                args.append(" ".join(current))
                return args, j + 1
        elif tok == "," and depth == 1:
            args.append(" ".join(current))
            current = []
            continue
        current.append(tok)
    return None, len(tokens)
