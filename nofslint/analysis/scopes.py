"""NOFS/NOIO scopes along paths: which scopes are open at each point of a function.

The stack discipline is model.scopes (written once, shared with the source-order
replay of extraction); a path-sensitive walk over the function's flow gives the
stacks each call can see.
"""

from __future__ import annotations

from collections.abc import Iterable

from nofslint.analysis.paths import Walk
from nofslint.model import scopes
from nofslint.model.facts import FileFacts, ScopeEvent
from nofslint.model.flow import Flow
from nofslint.model.scopes import Stack, active

__all__ = ["Stack", "active", "apply", "scope_walk"]

def apply(stack: Stack, ev: scopes.Event, merge_repeats: bool = True) -> Stack:
    """The stack after one event, as a path walk needs it: a repeated save merges, so a
    save inside a loop meets the same state again (model.scopes.apply says why)."""
    return scopes.apply(stack, ev, merge_repeats)


def scope_walk(facts: FileFacts, flow: Flow,
               points: Iterable[int] = ()) -> Walk[Stack, ScopeEvent | None] | None:
    """Stacks reaching each scope event and each offset in ``points`` (walk.at).

    None when the walk gave up on the function (too many paths).
    """
    events: list[tuple[int, ScopeEvent | None]] = [
        (e.start, e) for e in facts.scopes if e.function == flow.function]
    events += [(p, None) for p in points]
    events.sort(key=lambda x: x[0])
    walk: Walk[Stack, ScopeEvent | None] = Walk(
        flow, events, lambda st, ev: apply(st, ev) if ev is not None else st)
    walk.run(())
    return walk if walk.complete else None
