"""NOFS/NOIO scopes along paths: which scopes are open at each point of a function.

One stack discipline for every rule: a save (or ``current->flags |= PF_MEMALLOC_*``)
pushes, the restore of the same variable (or the matching ``&= ~``) pops
the innermost entry it matches. A path-sensitive walk over the function's
flow gives the stacks each call can see.
"""

from __future__ import annotations

from collections.abc import Iterable

from nofslint.analysis.paths import Walk
from nofslint.model.facts import FileFacts, ScopeEvent
from nofslint.model.flow import Flow

Stack = tuple[tuple[str, str], ...]  # (variable or "<pflags>", kind), innermost last


def apply(stack: Stack, ev: ScopeEvent) -> Stack:
    if ev.op in ("save", "set"):
        key = ev.target if ev.op == "save" and ev.target else "<pflags>"
        # Saving into a variable that already holds an open scope of the same kind
        # (a save inside a loop) adds nothing: without this a walk around the loop
        # never meets the same state twice and runs to its budget.
        return stack if (key, ev.kind) in stack else (*stack, (key, ev.kind))
    key = ev.target if ev.op == "restore" and ev.target else "<pflags>"
    for i in range(len(stack) - 1, -1, -1):
        name, kind = stack[i]
        if name == key or (ev.op == "clear" and kind == ev.kind):
            return stack[:i] + stack[i + 1:]
    return stack


def active(stack: Stack) -> str | None:
    """'noio' when a NOIO scope is open, 'nofs' for a NOFS one, else None."""
    kinds = {kind for _, kind in stack}
    return "noio" if "noio" in kinds else "nofs" if "nofs" in kinds else None


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
