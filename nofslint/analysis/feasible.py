"""The path check: can a reported chain's calls all happen, in the context it starts in?

Whole-tree rules find chains breadth-first over the call graph, which knows
nothing of values. Along one chain the check carries what is known (the
context's flags and what the entry's caller always passes, constants a caller
passed or stored before the call and values computed from them, the constant a
callee returns in this context, the caller's own tests that hold at the call)
and, at each step, evaluates the conditions the function's Guards say must
hold to reach the next call. A chain with a condition that cannot hold is
dropped; rules then look for another chain to the same place.

Knowledge only ever removes a chain when a condition is decided: anything
the evaluator does not understand stays possible. Writes the guards cannot
see precisely (``x |= ...``, ``&x`` passed to a call, a write later in a loop)
forget what was known about ``x``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from nofslint.analysis.conditions import NONZERO, Bits, Env, Value, compute, evaluate
from nofslint.extract.guards import NOFAIL_WRITE, constant
from nofslint.link.index import CallRef, Ref, TreeIndex
from nofslint.model.flow import implied
from nofslint.model.flow import words as _words

# The context of the reclaim entry points: the task runs with PF_MEMALLOC set.
IN_RECLAIM: dict[str, Value] = {"current->flags": Bits(frozenset({"PF_MEMALLOC"}))}
_RETURN_DEPTH = 1  # a callee's result is looked into one call deep (its own calls' results are not)


_PLAIN = re.compile(r"[a-z_]\w*")


@functools.lru_cache(maxsize=1 << 16)
def words(text: str) -> frozenset[str]:
    return frozenset(_words(text))


def _root(path: str) -> str:
    return path.split("->", 1)[0].split(".", 1)[0]


def _value(text: str) -> Value | None:
    if text.startswith("="):  # a constant expression (extract.guards.expression)
        return compute(text[1:], {})
    return int(text) if text.lstrip("-").isdigit() else text


def _forget(env: dict[str, Value], lhs: str) -> None:
    root = _root(lhs)
    for key in [k for k in env if k == lhs or k.startswith((lhs + "->", lhs + "."))
                or k.startswith("?") and root in words(k)]:
        del env[key]


_TOKENS = re.compile(r"->|\.|[A-Za-z_]\w*|\s+|.")


def _renamed(cond: str, names: dict[str, str]) -> str | None:
    """A caller's condition in the callee's terms: each variable it reads renamed
    to the parameter it was passed as; None when it reads anything else."""
    out, tokens = [], _TOKENS.findall(cond)
    for i, tok in enumerate(tokens):
        plain = (tok[0].isalpha() or tok[0] == "_") and not tok.isupper()
        after = next((t for t in tokens[i + 1:] if not t.isspace()), "")
        before = next((t for t in reversed(tokens[:i]) if not t.isspace()), "")
        if plain and after != "(" and before not in ("->", ".") and tok != "current":
            if tok not in names:
                return None
            tok = names[tok]
        out.append(tok)
    return "".join(out)


class PathCheck:
    """Feasibility of chains in one context (``IN_RECLAIM``, or none)."""

    def __init__(self, index: TreeIndex, context: Mapping[str, Value] | None = None) -> None:
        self.index = index
        self.context = dict(context or {})
        self._returns: dict[tuple[Ref, frozenset[tuple[str, Value]]], str | None] = {}
        self._rel: dict[Ref, dict[int, int]] = {}
        self._states: dict[tuple, dict[str, Value] | None] = {}

    # -- one function ------------------------------------------------------------------
    def _offset(self, site: CallRef) -> int:
        return self.index.call(site).start

    def _site_at(self, ref: Ref, rel: int) -> CallRef | None:
        table = self._rel.get(ref)
        if table is None:
            table = self._rel[ref] = {self.index.call((ref[0], ci)).start: ci
                                      for ci in self.index.calls_in(ref)}
        ci = table.get(rel)
        return None if ci is None else (ref[0], ci)

    def state_at(self, ref: Ref, rel: int, env: Env, depth: int = 0) -> dict[str, Value] | None:
        """What is known just before offset ``rel`` of the function, entered with
        ``env``; None when a condition on the way there cannot hold."""
        key = (ref, rel, frozenset(env.items()), depth)
        if key not in self._states:
            self._states[key] = self._state_at(ref, rel, env, depth)
        found = self._states[key]
        return None if found is None else dict(found)

    def _state_at(self, ref: Ref, rel: int, env: Env, depth: int) -> dict[str, Value] | None:
        guards = self.index.guards(ref)
        known = dict(env)
        if guards is None:
            return known
        events: list[tuple[int, int, object]] = []
        loops = [(s, e) for s, e in guards.loops if s <= rel < e]
        def back(at: int) -> int | None:
            """Where a write after ``rel`` comes back around: the start of the
            outermost loop holding both (a write later in it reaches here on the
            next round, after whatever was stored before the loop)."""
            heads = [s for s, e in loops if s <= at < e]
            return min(heads) if heads else None

        conds = [(at, cond, value) for at, start, end, cond, value in guards.conds
                 if start <= rel < end]
        # A callee's result is looked into only when something here reads it: a
        # condition on the way, or the call at ``rel`` (its arguments).
        wanted = {w for _, cond, _ in conds for w in words(cond)}
        wanted.update(_root(text.lstrip("&")) for at, args in guards.args if at == rel
                      for _, text in args)
        for at, scope_end, lhs, value, call in guards.sets:
            if at < rel and rel < scope_end:
                events.append((at, 0, (lhs, value, call)))
            elif at < rel:
                # A write in a branch that does not hold ``rel`` forgets the value,
                # unless that branch cannot run on this path (it needs ``x > 0``
                # where x is 0): then it writes nothing.
                if _root(lhs) not in wanted or self.state_at(ref, at, env, depth) is not None:
                    events.append((at, 0, (lhs, None, -1)))
            elif (head := back(at)) is not None:
                events.append((head, 0, (lhs, None, -1)))
        for at, cond, value in conds:
            events.append((at, 1, (cond, value)))
        for at, args in guards.args:
            for _, text in args:
                if not text.startswith("&") or text == "&":
                    continue
                if at < rel:
                    events.append((at, 0, (text[1:], None, -1)))
                elif (head := back(at)) is not None:
                    events.append((head, 0, (text[1:], None, -1)))
        events.sort(key=lambda e: (e[0], e[1]))
        for _, kind, payload in events:
            if kind == 0:
                lhs, value, call = payload  # type: ignore[misc]
                _forget(known, lhs)
                if value == "call":
                    value = self._result(ref, call, known, depth) \
                        if _root(lhs) in wanted else None
                elif value == NOFAIL_WRITE:
                    value = None
                if value is not None and value.startswith("~"):
                    found = compute(value[1:], known) if _root(lhs) in wanted else None
                else:
                    found = _value(value) if value is not None else None
                if found is not None:
                    known[lhs] = found
            else:
                cond, want = payload  # type: ignore[misc]
                found = evaluate(cond, known)
                if found is (not want):
                    return None
                if found is None:  # holds from here on: callees may test it, or its parts
                    known["?" + cond] = int(want)
                    for part, value in implied(cond, want):
                        known["?" + part] = int(value)
        return known

    def _result(self, ref: Ref, rel: int, known: Env, depth: int) -> str | None:
        """The constant a call returns here, when every function it reaches says so."""
        if depth >= _RETURN_DEPTH:
            return None
        site = self._site_at(ref, rel)
        if site is None:
            return None
        callees = self.index.callees(site)
        values = {self.returns(c, self.enter(ref, rel, known, c), depth + 1) for c in callees}
        if len(values) != 1:
            return None
        return values.pop()

    def returns(self, ref: Ref, env: Env, depth: int = 0) -> str | None:
        """The one constant the function can return when entered with ``env``; else None."""
        key = (ref, frozenset(env.items()))
        if key in self._returns:
            return self._returns[key]
        self._returns[key] = None  # recursion: unknown
        guards = self.index.guards(ref)
        out: str | None = None
        if guards is not None and guards.returns:
            values = set()
            for at, value in guards.returns:
                if self.state_at(ref, at, env, depth) is None:
                    continue
                values.add(value)
            if len(values) == 1:
                out = values.pop()
        self._returns[key] = out
        return out

    def enter(self, ref: Ref, rel: int, known: Env, callee: Ref) -> dict[str, Value]:
        """What the callee knows on entry, from the call at ``rel`` in ``ref``."""
        out: dict[str, Value] = {k: v for k, v in self.context.items()}
        guards = self.index.guards(ref)
        target = self.index.guards(callee)
        if guards is None or target is None:
            return out
        args = next((a for at, a in guards.args if at == rel), ())
        names = {text: target.params[j] for j, text in args
                 if j < len(target.params) and target.params[j] and _PLAIN.fullmatch(text)}
        for key, value in known.items():
            if key.startswith("?") and names:
                cond = _renamed(key[1:], names)
                if cond is not None:
                    out["?" + cond] = value
        for j, text in args:
            if j >= len(target.params) or not target.params[j]:
                continue
            param = target.params[j]
            value = constant(text) or (text if text.startswith("=") else None)
            if value is not None:
                found = _value(value)
                if found is not None:
                    out[param] = found
                continue
            if text.startswith("&"):
                out[param] = NONZERO  # an address is never NULL
            if text == "&":
                continue
            source, deref = (text[1:], ".") if text.startswith("&") else (text, "->")
            for key, value in known.items():
                if key == source and deref == "->":
                    out[param] = value
                elif key.startswith(source + deref):
                    out[param + "->" + key[len(source) + len(deref):]] = value
        return out

    # -- chains ------------------------------------------------------------------------
    def entry(self, ref: Ref | None = None,
              knows: tuple[tuple[int, str, int | str], ...] = ()) -> dict[str, Value]:
        """What a chain knows where it starts: the context, and what the caller of
        the entry function always passes (``knows``: parameter index, field, value)."""
        out = dict(self.context)
        guards = self.index.guards(ref) if ref is not None and knows else None
        for index, fld, value in knows:
            if guards is not None and index < len(guards.params) and guards.params[index]:
                out[f"{guards.params[index]}->{fld}"] = value
        return out

    def step(self, ref: Ref, site: CallRef, env: Env) -> dict[str, Value] | None:
        """What is known at a call site of ``ref``, entered with ``env``; None: unreachable."""
        return self.state_at(ref, self._offset(site), env)

    def follow(self, ref: Ref, site: CallRef, env: Env, callee: Ref) -> dict[str, Value] | None:
        """The callee's entry knowledge through ``site``; None when the site cannot be reached."""
        rel = self._offset(site)
        known = self.state_at(ref, rel, env)
        if known is None:
            return None
        return self.enter(ref, rel, known, callee)

    def feasible(self, chain: list[tuple[Ref, CallRef]], env: Env | None = None) -> bool:
        """Whether every step of a chain (function, the call it makes) can happen."""
        return self.last_entry(chain, env) is not None

    def last_entry(self, chain: list[tuple[Ref, CallRef]],
                   env: Env | None = None) -> dict[str, Value] | None:
        """What the chain's last function knows on entry; None when a step cannot happen."""
        entries = self.entries(chain, env)
        return entries[-1] if entries else None

    def entries(self, chain: list[tuple[Ref, CallRef]],
                env: Env | None = None) -> list[dict[str, Value]] | None:
        """What each function of the chain knows on entry; None when a step cannot happen."""
        known: Env | None = self.entry() if env is None else env
        out: list[dict[str, Value]] = []
        for i, (ref, site) in enumerate(chain):
            if known is None:
                return None
            out.append(dict(known))
            if i + 1 < len(chain):
                known = self.follow(ref, site, known, chain[i + 1][0])
            elif self.step(ref, site, known) is None:
                return None
        return out

    def argument(self, ref: Ref, site: CallRef, index: int) -> str | None:
        """The name a call passes as its argument ``index``, when it is a plain variable."""
        guards = self.index.guards(ref)
        rel = self._offset(site)
        args = next((a for at, a in guards.args if at == rel), ()) if guards else ()
        text = next((t for j, t in args if j == index), None)
        return text if text is not None and _PLAIN.fullmatch(text) else None

    def writes_nofail(self, ref: Ref, site: CallRef, var: str, env: Env) -> bool | None:
        """Whether a write that puts __GFP_NOFAIL into ``var`` can run before the call at
        ``site`` (or later in a loop around it) when the function is entered with ``env``;
        None when the function has no such write (the flag comes from elsewhere)."""
        guards = self.index.guards(ref)
        if guards is None:
            return None
        rel = self._offset(site)
        loops = [(s, e) for s, e in guards.loops if s <= rel < e]
        adds = [at for at, _, lhs, value, _ in guards.sets
                if lhs == var and value == NOFAIL_WRITE
                and (at < rel or any(s <= at < e for s, e in loops))]
        if not adds:
            return None
        return any(self.state_at(ref, at, env) is not None for at in adds)
