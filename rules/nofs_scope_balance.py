"""nofs-scope-balance: a memalloc_*_save() that some path out of the function never restores."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from nofslint.api import FileContext, Finding, Rule, ScopeEvent, TraceStep, Walk, scope_call_names

_LOCAL = re.compile(r"[A-Za-z_]\w*")
MAX_NESTING = 8  # a save in a loop without its restore: stop stacking, the leak is found

Open = tuple[tuple[str, int], ...]  # (variable, offset of the save), innermost last


class NofsScopeBalance(Rule):
    """memalloc_{nofs,noio,flags}_save() not restored on every path out of the function.

    What it does
        Follows every path through a function that saves the allocation scope
        into a local variable (``flags = memalloc_nofs_save()``, the ``_noio_``
        and ``memalloc_flags_save()`` forms) and restores that variable
        somewhere, and reports the save when a path leaves the function
        (``return``, falling off the end) without the matching restore. The
        walk is path-sensitive: ``goto`` to an error label, ``switch``, loops
        and ``break``/``continue`` are followed, and a save and a restore
        guarded by the same condition (``if (nofs) flags = ...; ...
        if (nofs) memalloc_nofs_restore(flags);``) are paired, as long as
        nothing in between assigns what the condition reads.

    Why is this bad
        The scope lives in ``current->flags``. A leaked NOFS/NOIO scope makes
        every later allocation of the task NOFS/NOIO (reclaim becomes much
        weaker, OOM comes early) and a later restore of an outer scope restores
        the wrong state. The classic form is an early ``return`` added between
        save and restore.

    Example
        nofs = memalloc_nofs_save();
        ret = foo_prepare(sb);
        if (ret)
                return ret;          /* the scope stays open */
        ...
        memalloc_nofs_restore(nofs);

    Fix
        Route the early exit through the restore (``goto out;`` with the
        restore under ``out:``), or restore before returning. Saves stored in a
        struct field (restored in another function: jbd2 handles, md) and saves
        whose result is discarded (a thread marking its whole life NOFS) are by
        design and not reported; neither is a save whose variable is never
        restored in the function.

    References
        include/linux/sched/mm.h (memalloc_nofs_save/restore);
        Documentation/core-api/gfp_mask-from-fs-io.rst ("the scope ... should be
        restored ... on all paths").
    """

    id = "nofs-scope-balance"
    severity = "error"
    # Every finding is a memalloc_*_save() called by name (flag writes are not saves).
    triggers = scope_call_names("save")

    def check_file(self, ctx: FileContext) -> Iterator[Finding]:
        facts = ctx.facts
        by_function: dict[int, list[ScopeEvent]] = {}
        for ev in facts.scopes:
            if ev.op in ("save", "restore"):
                by_function.setdefault(ev.function, []).append(ev)
        for flow in facts.flows:
            events = by_function.get(flow.function, [])
            restored = {_norm(e.target) for e in events if e.op == "restore"}
            saves = {e.start: e for e in events if e.op == "save" and e.target is not None
                     and _LOCAL.fullmatch(_norm(e.target)) and _norm(e.target) in restored}
            if not saves:
                continue
            walk: Walk[Open, ScopeEvent] = Walk(
                flow, [(e.start, e) for e in events], functools.partial(_step, saves=saves))
            walk.run(())
            if not walk.complete:
                continue
            leaks: dict[int, int] = {}
            for out in walk.exits:
                for _, start in out.state:
                    leaks.setdefault(start, out.line)  # exits come in line order
            func = facts.function_at(flow.function)
            for start, exit_line in sorted(leaks.items()):
                save = saves[start]
                yield self._finding(ctx, save, exit_line, func.name if func else None,
                                    [e.line for e in events
                                     if e.op == "restore" and _norm(e.target) == _norm(
                                         save.target)])

    def _finding(self, ctx: FileContext, save: ScopeEvent, exit_line: int,
                 function: str | None, restores: list[int]) -> Finding:
        call = next(c for c in ctx.facts.calls if c.start == save.start)
        var = _norm(save.target)
        where = ("line " if len(restores) == 1 else "lines ") + ", ".join(map(str, restores))
        finding = self.finding_at_call(
            ctx, call, f"{call.callee}() saves into '{var}' but the path that leaves the "
            f"function at line {exit_line} does not restore it (restored at {where} on other "
            f"paths): the task keeps the scope after {function or 'the function'} returns",
            key=f"{call.callee}|{var}")
        finding.trace = [TraceStep(function, ctx.facts.path, save.line, call.column,
                                   note=f"{call.callee}() opens the scope into '{var}'"),
                         TraceStep(function, ctx.facts.path, exit_line,
                                   note="this path leaves the function with the scope open")]
        return finding


def _norm(target: str | None) -> str:
    return "".join((target or "").split())


def _step(state: Open, ev: ScopeEvent, saves: dict[int, ScopeEvent]) -> Open:
    if ev.op == "save":
        if ev.start in saves and len(state) < MAX_NESTING:
            return (*state, (_norm(ev.target), ev.start))
        return state
    var = _norm(ev.target)
    for i in range(len(state) - 1, -1, -1):
        if state[i][0] == var:
            return state[:i] + state[i + 1:]
    return state
