"""The stable surface for rules: built-in rules and plugins import only from here.

A rule is a class with an ``id``, a ``severity`` and a docstring in fixed
sections (``Rule``). A local rule sees one file's facts (``FileContext``); a
whole-tree rule sees the linked ``TreeIndex`` and the analyses built on it.
Both report ``Finding``s; a fix is a ``FixBuilder`` returning byte ``Edit``s.
Names not exported here are internal and may move between releases.

May import: fixing, analysis, link, extract, frontend, kernel, model.
"""

from nofslint.analysis.conditions import NONZERO
from nofslint.analysis.feasible import IN_RECLAIM, PathCheck
from nofslint.analysis.paths import Exit, Walk
from nofslint.analysis.reclaim import reclaim_entries
from nofslint.analysis.scopes import Stack, active, apply, scope_walk
from nofslint.analysis.summaries import (
    ALWAYS,
    MAX_CHAIN,
    FsReclaimSummary,
    NofailSummary,
    nofail_states,
)
from nofslint.analysis.workqueues import Key, Queue, Registry
from nofslint.api.rule import (
    DOC_SECTIONS,
    SEVERITIES,
    FileContext,
    FixBuilder,
    Rule,
)
from nofslint.fixing.fixes import FixSource
from nofslint.fixing.rewrite import KernelToNofs, NofsToKernel, ScopeWrap, SectionWrap
from nofslint.kernel.allocators import allocator_names, scope_call_names
from nofslint.kernel.areas import chain_origin, next_origin, serves_io
from nofslint.kernel.gfp import GfpTable
from nofslint.kernel.reclaim import EntryPoint
from nofslint.kernel.transactions import Table, failed, table
from nofslint.kernel.workqueue_api import RECLAIM
from nofslint.link.index import CallRef, Ref, TreeIndex
from nofslint.model.facts import (
    Allocation,
    Call,
    FileFacts,
    Function,
    OpsEntry,
    ScopeEvent,
    WqQueue,
    WqUse,
    scope_at,
)
from nofslint.model.findings import Edit, Finding, TraceStep, chain_text
from nofslint.model.flow import Flow
from nofslint.model.gfp import DIRECT_RECLAIM, FS, IO, NOFAIL, Mask

__all__ = [
    "ALWAYS", "DIRECT_RECLAIM", "DOC_SECTIONS", "FS", "IO", "MAX_CHAIN", "NOFAIL", "NONZERO",
    "RECLAIM",
    "SEVERITIES", "Allocation", "Call", "CallRef", "Edit", "EntryPoint", "Exit", "FileContext",
    "FileFacts", "Finding", "FixBuilder", "FixSource", "Flow", "FsReclaimSummary", "Function",
    "GfpTable", "IN_RECLAIM", "KernelToNofs", "Key", "Mask", "NofailSummary", "NofsToKernel",
    "OpsEntry",
    "PathCheck", "Queue", "Ref",
    "Registry", "Rule", "ScopeEvent", "ScopeWrap", "SectionWrap", "Stack", "Table", "TraceStep",
    "TreeIndex", "Walk", "WqQueue", "WqUse", "active", "allocator_names", "apply",
    "chain_origin", "chain_text",
    "failed",
    "next_origin", "nofail_states", "reclaim_entries", "scope_at", "scope_call_names",
    "scope_walk", "serves_io",
    "table",
]
