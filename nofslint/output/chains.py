"""A finding's chain as the reports draw and print it: steps, the kind of each hop,
and what happens at the end (the allocation, the flush, the IO).

A trace step is a function with the line where it calls the next one; the first
step may be where the chain enters instead: an ops-table slot reclaim calls
(``super_operations.evict_inode``), a queueing (``queue_work(w) on q``) or a work
item's or kthread's start (``work function``, ``kthread``). The last step's line is
the sink's. A step's ``note`` (when the rule wrote one) says what happens at its line:
the call to the next step, or the sink itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nofslint.model.findings import Finding, TraceStep

_OPS_SLOT = re.compile(r"^([A-Za-z_]\w*)\.([A-Za-z_]\w*)$")
_QUEUEING = re.compile(r"^(\w+)\((.*)\) on (.+)$")
_CALL = re.compile(r"(?:->)?[A-Za-z_]\w*\(\)")
# What the chain ends in, from the rule's message (the trace has no record of it).
_SINKS = {
    "nofail-in-reclaim": re.compile(r"(__GFP_NOFAIL allocation (?:->)?\w+\(\))"),
    "nofail-high-order": re.compile(r"(__GFP_NOFAIL .*?(?:->)?\w+\(\))"),
    "wq-flush-reclaim": re.compile(r"flushing (!WQ_MEM_RECLAIM \S+): ((?:->)?\w+\(\))"),
    "backing-io-noio": re.compile(r"does (file IO with (?:->)?\w+\(\))"),
    "alloc-in-transaction": re.compile(r"allocates with (a \S+ mask) \(((?:->)?\w+\(\))"),
    "prefer-nofs-scope": re.compile(r"(GFP_NOFS in (?:->)?\w+\(\))|pass (GFP_NOFS)"),
    "vmalloc-nofs": re.compile(r"((?:->)?\w+\(\)) with (\S*NOFS\S*|\S*NOIO\S*)"),
}


@dataclass(frozen=True)
class Step:
    label: str  # the function, or the entry as the rule names it
    path: str
    line: int
    kind: str  # "ops", "queue", "work", "kthread" (entry points), "function"
    note: str = ""


@dataclass(frozen=True)
class Hop:
    kind: str  # "ops", "queue", "work", "kthread", "call", "pointer", "same"
    label: str  # short, as mails print it
    note: str = ""  # the rule's own words for this hop, when it wrote them


def steps(f: Finding) -> list[Step]:
    """The chain's steps; a finding without a trace is one step: its own site."""
    trace = f.trace or [TraceStep(f.function, f.path, f.line)]
    return [Step(t.function or f"{t.path}:{t.line}", t.path, t.line, _kind(t, i),
                 t.note) for i, t in enumerate(trace)]


def _kind(step: TraceStep, index: int) -> str:
    name = step.function or ""
    if index == 0 and _OPS_SLOT.match(name):
        return "ops"
    if index == 0 and _QUEUEING.match(name):
        return "queue"
    if index == 0 and name == "work function":
        return "work"
    if index == 0 and name == "kthread":
        return "kthread"
    return "function"


def hops(chain: list[Step]) -> list[Hop]:
    """The hop from each step to the next, labelled."""
    out = []
    for here, there in zip(chain, chain[1:], strict=False):
        if here.kind == "ops":
            slot = _OPS_SLOT.match(here.label)
            hop = Hop("ops", f"reclaim calls ->{slot.group(2) if slot else '?'}()")
        elif here.kind == "queue":
            queued = _QUEUEING.match(here.label)
            hop = Hop("queue", f"work runs on {queued.group(3) if queued else '?'}")
        elif here.kind == "work":
            hop = Hop("work", "runs as a work item")
        elif here.kind == "kthread":
            hop = Hop("kthread", "runs as a kernel thread")
        elif here.label == there.label:
            hop = Hop("same", "then, in the same function")
        elif "function pointer" in here.note or "->" in here.note.split("(")[0]:
            hop = Hop("pointer", "calls through a function pointer")
        else:
            hop = Hop("call", "calls")
        out.append(Hop(hop.kind, hop.label, here.note))
    return out


def sink(f: Finding) -> str:
    """What the chain ends in, as short text: the allocation, flush or IO (the last
    step's note when the rule wrote one, else read from the message)."""
    last = f.trace[-1] if f.trace else None
    if last is not None and last.note:
        return last.note
    pattern = _SINKS.get(f.rule)
    found = pattern.search(f.message) if pattern else None
    if found:
        return " ".join(g for g in found.groups() if g)
    call = _CALL.search(f.message)
    return call.group() if call else f.rule
