"""A path-sensitive walk over one function's control flow (model.flow records).

Scope balance, transaction windows and "is a NOIO scope active at this call"
are questions about paths, not about source order: a walk keeps "the same
condition, the same answer" along a path until a block writes a variable the
condition reads.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from nofslint.model.flow import Flow, implied, words

S = TypeVar("S", bound=Hashable)
E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Exit(Generic[S]):
    state: S
    line: int  # the return (or closing brace) the path leaves by


class Walk(Generic[S, E]):
    """Every state reachable at each event and each exit, following feasible paths.

    ``step(state, event)`` returns the state after the event. Conditions seen on
    two or more branches are remembered along a path (until a block writes a
    variable they read), so correlated branches are not mixed. The walk gives
    up (``complete`` is False) past ``budget`` block visits; rules then stay
    silent about the function rather than guess.
    """

    def __init__(self, flow: Flow, events: list[tuple[int, E]],
                 step: Callable[[S, E], S], budget: int = 40000,
                 branch: Callable[[S, str, bool], S] | None = None) -> None:
        self.flow = flow
        self.step = step
        self.budget = budget
        self.branch = branch  # what taking a branch says about the state (an error check)
        offsets = [off for off, _ in events]
        self._events: list[list[tuple[int, E]]] = []
        for block in flow.blocks:
            found: list[tuple[int, E]] = []
            for s, e in block.spans:
                lo, hi = bisect.bisect_left(offsets, s), bisect.bisect_left(offsets, e)
                found.extend(events[lo:hi])
            self._events.append(found)
        counts: dict[str, int] = {}
        for block in flow.blocks:
            for cond in {c for _, c, _ in block.succs if c is not None}:
                counts[cond] = counts.get(cond, 0) + 1
        assigned = {name for block in flow.blocks for name, _ in block.sets}
        self._tracked = {c for c, n in counts.items() if n > 1 or c in assigned}
        self._implied = {(c, v): implied(c, v) for block in flow.blocks
                         for _, c, v in block.succs if c is not None}
        self._reads = {c: set(words(c)) for c in self._tracked}
        self.at: dict[int, set[S]] = {}  # event offset -> states just before it
        self.exits: list[Exit[S]] = []
        self.complete = True

    def run(self, init: S) -> Walk[S, E]:
        Assume = frozenset[tuple[str, bool]]
        seen: set[tuple[int, S, Assume]] = set()
        todo: list[tuple[int, S, Assume]] = [(0, init, frozenset())]
        exits: set[Exit[S]] = set()
        while todo:
            item = todo.pop()
            if item in seen:
                continue
            seen.add(item)
            if len(seen) > self.budget:
                self.complete = False
                return self
            index, state, assumed = item
            for offset, event in self._events[index]:
                self.at.setdefault(offset, set()).add(state)
                state = self.step(state, event)
            block = self.flow.blocks[index]
            if block.writes and assumed:
                written = set(block.writes)
                assumed = frozenset(a for a in assumed if not self._reads[a[0]] & written)
            for name, value in block.sets:
                if name in self._tracked:
                    assumed = assumed | {(name, value)}
            if block.exit:
                exits.add(Exit(state, block.exit))
            for dst, cond, value in block.succs:
                nxt = assumed
                if cond is not None and assumed and any(
                        (key, not v) in assumed for key, v in self._implied[(cond, value)]):
                    continue  # "!suspend && x" cannot hold where suspend is known true
                if cond is not None and cond in self._tracked:
                    if (cond, not value) in assumed:
                        continue
                    nxt = assumed | {(cond, value)}
                after = self.branch(state, cond, value) if self.branch and cond else state
                todo.append((dst, after, nxt))
        self.exits = sorted(exits, key=lambda x: x.line)
        return self
