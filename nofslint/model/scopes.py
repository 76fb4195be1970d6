"""The NOFS/NOIO scope stack, written once: what a save, restore or flag change does
to the scopes a task has open, and which kind wins.

A save (or ``current->flags |= PF_MEMALLOC_*``) pushes; the restore of the same
variable (or the matching ``&= ~``) pops the innermost entry it matches. NOIO
implies NOFS, so an open NOIO scope wins over a NOFS one. Facts replay it in
source order (``scope_at``); analysis.scopes walks it along paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

PFLAGS = "<pflags>"  # the key of a scope opened by setting current->flags directly

Stack = tuple[tuple[str | None, str], ...]  # (saved into, or PFLAGS; kind), innermost last


class Event(Protocol):
    op: str  # 'save' | 'restore' | 'set' | 'clear'
    kind: str  # 'nofs' | 'noio' | 'other'
    target: str | None  # the variable saved into / restored from; None when discarded


def apply(stack: Stack, ev: Event, merge_repeats: bool = False) -> Stack:
    """The stack after one event.

    ``merge_repeats``: a save into a variable that already holds an open scope of
    the same kind adds nothing. Path walks need it (a save inside a loop would
    otherwise never meet the same state twice and run the walk to its budget);
    a source-order replay keeps both, as the kernel does (the second save returns
    flags that still hold the scope, so one restore leaves it open).
    """
    if ev.op in ("save", "set"):
        entry = (ev.target if ev.op == "save" else PFLAGS, ev.kind)
        return stack if merge_repeats and entry in stack else (*stack, entry)
    key = ev.target if ev.op == "restore" else PFLAGS
    for i in range(len(stack) - 1, -1, -1):
        name, kind = stack[i]
        if name == key or (ev.op == "clear" and kind == ev.kind):
            return stack[:i] + stack[i + 1:]
    return stack


def active(stack: Iterable[tuple[str | None, str]]) -> str | None:
    """'noio' when a NOIO scope is open, 'nofs' for a NOFS one, else None."""
    kinds = {kind for _, kind in stack}
    return "noio" if "noio" in kinds else "nofs" if "nofs" in kinds else None
