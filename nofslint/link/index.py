"""The whole-tree index: every file's facts, linked.

Built only when a whole-tree rule runs. Static functions resolve within
their own file; other definitions are global by name (a v6.10+ ``foo`` call
also reaches ``foo_noprof``, the alloc-tagging definition behind the macro).
Indirect calls ``x->field(...)`` reach the functions stored in that field of
an ops table, but only when every table with that field has the same struct
type (a field name shared by unrelated structs would link unrelated code)
and the table's function lives in the calling file's own directory: a
dispatch in generic code (mm/, fs/notify/) reaches every implementation,
which is no chain at all. Walks that know where their chain started may
ask for more (``callees(site, origin)``): the VFS core's file operations
dispatch back into the filesystem the chain started in, or into every
filesystem for a storage backend or the writeback worker.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from itertools import compress
from pathlib import Path
from typing import TypeVar

from nofslint.extract.guards import FileGuards
from nofslint.frontend.source import SourceError, read_regular
from nofslint.kernel.areas import (
    ANY,
    DEFAULT_ARCH,
    DISPATCH_FIELDS,
    GENERIC_DIRS,
    USERSPACE_AREAS,
    USERSPACE_DIRS,
)
from nofslint.kernel.tree import KernelTree
from nofslint.link.reads import Reads, Ref
from nofslint.model.facts import (
    Allocation,
    Call,
    FileFacts,
    Function,
    Guards,
    OpsEntry,
    ScopeEvent,
    call_columns,
    function_heads,
    ops_heads,
    scope_at,
)
from nofslint.model.findings import TraceStep
from nofslint.model.flow import Flow

T = TypeVar("T")
_GUARD_FILES = 128  # parsed files kept for the path check (each holds its syntax tree)

CallRef = tuple[int, int]  # (file index, call index)
_NOPROF = "_noprof"


@dataclass
class IndexedFile:
    facts: FileFacts
    tree: KernelTree
    file: Path


@dataclass
class TreeIndex:
    files: list[IndexedFile] = field(default_factory=list)
    # name -> definitions that are not static
    globals: dict[str, list[Ref]] = field(default_factory=lambda: defaultdict(list))
    # (file index, name) -> function index, for static definitions
    statics: dict[tuple[int, str], int] = field(default_factory=dict)
    # (arch or userspace area, name) -> definitions visible only from that area
    areas: dict[tuple[str, str], list[Ref]] = field(default_factory=lambda: defaultdict(list))
    # The architecture whose arch/ code the generic kernel links against.
    arch: str = DEFAULT_ARCH
    _file_area: list[str | None] = field(default_factory=list)
    _userspace: list[bool] = field(default_factory=list)
    _home: list[str] = field(default_factory=list)  # each file's directory
    # Names with a static or area-private definition somewhere: where a call
    # to one of these lands depends on the calling file.
    _shadowed: set[str] = field(default_factory=set)

    # Per file, built when a walk first asks: its calls by callee name and by function.
    _by_file: list[tuple[dict[str, list[int]], dict[int, list[int]]] | None] = field(
        default_factory=list)

    _allocs_by_call: dict[int, dict[int, Allocation]] = field(default_factory=dict)
    _guards: dict[Ref, Guards | None] = field(default_factory=dict)
    _guard_files: dict[int, FileGuards | None] = field(default_factory=dict)  # recent ones
    _memo: dict[str, tuple[object, Reads | None]] = field(default_factory=dict)
    # What the running whole-tree rule reads (reads.py); None when nobody asks.
    reads: Reads | None = None

    def memo(self, key: str, build: Callable[[], T]) -> T:
        """Compute an analysis (a summary) once per run, shared by the rules; each
        rule that uses it also read what building it read."""
        if key not in self._memo:
            outer = self.reads
            self.reads = Reads() if outer is not None else None
            try:
                self._memo[key] = (build(), self.reads)
            finally:
                self.reads = outer
        value, reads = self._memo[key]
        if self.reads is not None and reads is not None:
            self.reads.merge(reads)
        return value  # type: ignore[return-value]

    @contextmanager
    def _unnoted(self) -> Iterator[None]:
        """Reads that are not the running rule's (or that it already made)."""
        reads, self.reads = self.reads, None
        try:
            yield
        finally:
            self.reads = reads

    def scan(self, *kinds: str) -> Iterator[tuple[int, IndexedFile]]:
        """Every file, for a walk's seeds: the rule depends on these kinds of facts
        (FileFacts fields) in every file."""
        if self.reads is not None:
            self.reads.kinds.update(kinds)
        return enumerate(self.files)

    def area(self, path: str) -> str | None:
        """None for code linked into the kernel being analysed; else the area it is private to.

        Like a build, the graph links one architecture: other arch/ trees and
        userspace code (tools/, scripts/...) only see their own definitions.
        """
        if path.startswith(USERSPACE_DIRS):
            return path.split("/", 1)[0]
        if path.startswith("arch/"):
            arch = path.split("/", 2)[1] if path.count("/") >= 2 else ""
            return None if arch == self.arch else f"arch/{arch}"
        return None

    def add(self, facts: FileFacts, tree: KernelTree, file: Path) -> None:
        fidx = len(self.files)
        self.files.append(IndexedFile(facts, tree, file))
        area = self.area(facts.path)
        self._file_area.append(area)
        self._userspace.append(area in USERSPACE_AREAS)
        self._home.append(posixpath.dirname(facts.path))
        header = facts.path.endswith(".h")
        for i, (name, static) in enumerate(function_heads(facts.functions)):
            if static and not header:
                self.statics.setdefault((fidx, name), i)
                self._shadowed.add(name)
            elif area is not None:
                self.areas[(area, name)].append((fidx, i))
                self._shadowed.add(name)
            else:
                # A static inline in a header belongs to every file that includes it.
                self.globals[name].append((fidx, i))

    # -- symbols -----------------------------------------------------------------------
    def resolve(self, file_index: int, name: str) -> list[Ref]:
        """Definitions a direct call to ``name`` from the given file may reach."""
        if self.reads is not None:
            self.reads.defs.update((name, name + _NOPROF))
        area = self._file_area[file_index]
        for candidate in (name, name + _NOPROF):
            local = self.statics.get((file_index, candidate))
            if local is not None:
                return [(file_index, local)]
            if area is not None:
                found = self.areas.get((area, candidate))
                if found:
                    return list(found)
                if area in USERSPACE_AREAS:
                    continue  # userspace never calls into the kernel
            found = self.globals.get(candidate)
            if found:
                return list(found)
        return []

    def function(self, ref: Ref) -> Function:
        if self.reads is not None:
            self.reads.functions.add(ref)
        return self.files[ref[0]].facts.functions[ref[1]]

    def function_name(self, ref: Ref) -> str:
        """A function's name, not counted as a read (for saving reads)."""
        return self.files[ref[0]].facts.functions[ref[1]].name

    def call(self, ref: CallRef) -> Call:
        if self.reads is not None:
            self.reads.functions.add(self.enclosing(ref))
        return self.files[ref[0]].facts.calls[ref[1]]

    def enclosing(self, site: CallRef) -> Ref:
        """The function a call is made in, without building the Call (walks ask millions)."""
        ref = site[0], self._call_tables[2][site[0]][site[1]]
        if self.reads is not None and ref[1] >= 0:
            self.reads.functions.add(ref)
        return ref

    def path(self, file_index: int) -> str:
        return self.files[file_index].facts.path

    def step(self, site: CallRef, note: str = "") -> TraceStep:
        """The chain step a call is: the function it is made in, where, and ``note``
        (default: what it calls, ``->field`` for a call through an ops table)."""
        call = self.call(site)
        function = self.enclosing(site)
        name = self.function(function).name if function[1] >= 0 else None
        if not note:
            note = (f"calls {call.callee}() (an ops-table or function pointer)"
                    if call.callee.startswith("->") else f"calls {call.callee}()")
        return TraceStep(name, self.path(site[0]), call.line, call.column, note)

    def home(self, file_index: int) -> str:
        """The file's directory (what ops dispatch and chain origins go by)."""
        return self._home[file_index]

    # -- what else a rule may know of a file ------------------------------------------
    # Rules and analyses reach facts only through these and the accessors above
    # (scan, function, call, calls_in...): each notes the function it reads. Where a
    # file is and which tree it belongs to are not facts: not noted.
    def file(self, file_index: int) -> Path:
        """Where the file is on disk (findings and fixes point there)."""
        return self.files[file_index].file

    def tree(self, file_index: int) -> KernelTree:
        """The tree the file belongs to: its version and its config's tables."""
        return self.files[file_index].tree

    def trees(self) -> list[KernelTree]:
        """Every tree linked, in file order, once each."""
        return list(dict.fromkeys(f.tree for f in self.files))

    def paths(self) -> list[str]:
        """Every file's path, by file index (to filter a scan's seeds)."""
        return [f.facts.path for f in self.files]

    def allocation(self, site: CallRef) -> Allocation | None:
        """The allocation a call site makes, if it is one (reads its function)."""
        self.enclosing(site)
        return self._allocations(site[0]).get(site[1])

    def scope_at(self, site: CallRef) -> str | None:
        """The NOFS/NOIO scope open at a call site, in its function's source order
        (model.facts.scope_at; analysis.scopes answers per path)."""
        fidx = self.enclosing(site)[1]
        facts = self.files[site[0]].facts
        return scope_at(facts.scopes, fidx, facts.calls[site[1]].start)

    def scopes_in(self, ref: Ref) -> list[ScopeEvent]:
        """The scope events (memalloc_*_save/restore, PF_MEMALLOC_* flag changes) of
        one function, in source order."""
        if self.reads is not None:
            self.reads.functions.add(ref)
        return [e for e in self.files[ref[0]].facts.scopes if e.function == ref[1]]

    def flow(self, ref: Ref) -> Flow | None:
        """One function's control flow, when extraction built one (scope calls,
        transaction starts)."""
        if self.reads is not None:
            self.reads.functions.add(ref)
        return next((f for f in self.files[ref[0]].facts.flows if f.function == ref[1]), None)

    def guards(self, ref: Ref) -> Guards | None:
        """What decides whether one function reaches its calls and returns
        (model.facts.Guards), for the path check; None when nothing does, or
        when the file is no longer what its facts were made from.

        A second tier of facts, built from the file on first use: the path
        check asks for a few thousand functions, not every file's. The parsed
        files are kept only for the last few files asked about."""
        if self.reads is not None:
            self.reads.functions.add(ref)
        if ref in self._guards:
            return self._guards[ref]
        source = self._guard_files.pop(ref[0], False)
        if source is False:
            source = self._file_guards(ref[0])
        self._guard_files[ref[0]] = source  # the most recent last
        while len(self._guard_files) > _GUARD_FILES:
            del self._guard_files[next(iter(self._guard_files))]
        built = self._guards[ref] = source.get(ref[1]) if source is not None else None
        return built

    def _file_guards(self, file_index: int) -> FileGuards | None:
        entry = self.files[file_index]
        try:
            raw = read_regular(entry.file)
        except (OSError, SourceError):
            return None
        if hashlib.sha256(raw).hexdigest() != entry.facts.sha256:
            return None  # edited since: guards from other text would be wrong
        return FileGuards(raw, [f.start for f in entry.facts.functions],
                          entry.tree.extras.kconfig)

    def _allocations(self, file_index: int) -> dict[int, Allocation]:
        cached = self._allocs_by_call.get(file_index)
        if cached is None:
            allocations = self.files[file_index].facts.allocations
            cached = self._allocs_by_call[file_index] = {a.call: a for a in allocations}
        return cached

    # -- ops tables --------------------------------------------------------------------
    @cached_property
    def _ops_tables(self) -> tuple[dict[str, list[tuple[int, int, str]]], dict[str, set[str]]]:
        """One pass over every ops-table store (plain records): field -> (file index,
        entry index, function stored) in tree order, and field -> the struct types
        whose tables store it."""
        where: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        structs: dict[str, set[str]] = defaultdict(set)
        for fi, f in enumerate(self.files):
            for oi, (name, struct, target) in enumerate(ops_heads(f.facts.ops)):
                where[name].append((fi, oi, target))
                if struct:
                    structs[name].add(struct)
        return where, structs

    @property
    def _ops_by_field(self) -> dict[str, list[tuple[int, int, str]]]:
        return self._ops_tables[0]

    @property
    def _field_structs(self) -> dict[str, set[str]]:
        return self._ops_tables[1]

    def ops_with_field(self, name: str) -> list[tuple[int, OpsEntry]]:
        """The tree's ops-table stores into field ``name``, in tree order."""
        self._read_field(name)
        return [(fi, self.files[fi].facts.ops[oi])
                for fi, oi, _ in self._ops_by_field.get(name, ())]

    @cached_property
    def ops(self) -> list[tuple[int, OpsEntry]]:
        """Every ops-table store of the tree (plugin API; built-in rules ask by field)."""
        return [(fi, op) for fi, f in enumerate(self.files) for op in f.facts.ops]

    def field_struct(self, name: str) -> str | None:
        """The one struct type tables store ``name`` in, or None if ambiguous/unknown."""
        self._read_field(name)
        structs = self._field_structs.get(name, set())
        return next(iter(structs)) if len(structs) == 1 else None

    def _field_usable(self, name: str, untyped: bool) -> bool:
        """Calls through this field can be linked: one struct type owns it.

        ``untyped``: also a field only ever stored by assignment
        (``cmd->execute_cmd = fn``), whose struct type is unknown, matched by
        name within one directory. Short walks (backing-io-noio) ask for it;
        long ones would link a subsystem core to every driver of its directory.
        """
        self._read_field(name)
        structs = len(self._field_structs.get(name, ()))
        return structs == 1 or (untyped and structs == 0)

    def _read_field(self, name: str) -> None:
        """Note a read of an ops field: its tables, and the functions they store
        (a new definition of one changes where calls through the field go)."""
        reads = self.reads
        if reads is not None and name not in reads.fields:
            reads.fields.add(name)
            reads.defs.update(target for _, _, target in self._ops_by_field.get(name, ()))

    @cached_property
    def _fields_storing(self) -> dict[str, set[str]]:
        """Function name -> the fields tables store it in (called through or not)."""
        out: dict[str, set[str]] = defaultdict(set)
        for fld, stores in self._ops_by_field.items():
            for _, _, target in stores:
                out[target].add(fld)
        return out

    @cached_property
    def _stored_in(self) -> dict[Ref, set[str]]:
        """Functions stored in ops-table fields: ref -> field names."""
        out: dict[Ref, set[str]] = defaultdict(set)
        called = self._call_tables[0]
        with self._unnoted():  # the whole tree's: callers() notes its part
            for fld, stores in self._ops_by_field.items():
                if "->" + fld not in called:
                    continue  # never called through a pointer: no edge to make
                for fi, _, target in stores:
                    for ref in self.resolve(fi, target):
                        out[ref].add(fld)
        return out

    @cached_property
    def _stored_by_field(self) -> dict[str, dict[str, list[Ref]]]:
        """field -> directory -> functions stored in that field there (callees' lookup)."""
        out: dict[str, dict[str, list[Ref]]] = defaultdict(lambda: defaultdict(list))
        for ref, fields in sorted(self._stored_in.items()):
            home = self._home[ref[0]]
            for fld in fields:
                out[fld][home].append(ref)
        return out

    # -- call graph --------------------------------------------------------------------
    @cached_property
    def _call_tables(self) -> tuple[dict[str, list[int]], list[list[str]], list[list[int]]]:
        """Every file's calls as two columns, callee names and enclosing functions, and
        callee name -> the files that call it from a function, in tree order.

        Built at C speed (no Python step per call: a tree has five million);
        which calls of a file go where is worked out only for the files a walk
        asks about (_file_calls).
        """
        files_calling: dict[str, list[int]] = defaultdict(list)
        names: list[list[str]] = []
        owners: list[list[int]] = []
        for fi, f in enumerate(self.files):
            callees, functions = call_columns(f.facts.calls)
            names.append(callees)
            owners.append(functions)
            # A set's order does not matter: each name's list still grows in file order.
            for name in set(compress(callees, map((0).__le__, functions))):
                files_calling[name].append(fi)
        self._by_file = [None] * len(self.files)
        return files_calling, names, owners

    def _file_calls(self, fi: int) -> tuple[dict[str, list[int]], dict[int, list[int]]]:
        """One file's calls made in functions: by callee name, and by function."""
        _, names, owners = self._call_tables
        found = self._by_file[fi]
        if found is None:
            by_name: dict[str, list[int]] = {}
            by_function: dict[int, list[int]] = {}
            for ci, (name, function) in enumerate(zip(names[fi], owners[fi], strict=True)):
                if function >= 0:
                    by_name.setdefault(name, []).append(ci)
                    by_function.setdefault(function, []).append(ci)
            found = self._by_file[fi] = (by_name, by_function)
        return found

    def _sites(self, name: str) -> Iterator[tuple[int, list[int]]]:
        """(file index, its calls to ``name``) for every file calling it, in tree order."""
        if self.reads is not None:
            self.reads.callers.add(name)
        for fi in self._call_tables[0].get(name, ()):
            yield fi, self._file_calls(fi)[0][name]

    def sites_calling(self, name: str) -> list[CallRef]:
        """Call sites whose callee is ``name`` (``->field`` for calls through a pointer)."""
        return [(fi, ci) for fi, cis in self._sites(name) for ci in cis]

    def calls_in(self, ref: Ref) -> list[int]:
        """Indexes of the calls made inside one function, in source order."""
        if self.reads is not None:
            self.reads.functions.add(ref)
        return self._file_calls(ref[0])[1].get(ref[1], [])

    def callees(self, site: CallRef, origin: str | None = None,
                untyped: bool = False) -> list[Ref]:
        """Functions a call site may reach: direct by name, or through an ops field.

        An ops call reaches the tables of its own directory; with ``origin``
        (see chain_origin), one in generic code reaches the origin's tables for
        the dispatch fields; for any other field, when the origin fills the slot
        itself (gfs2's ->kill_sb), the generic default there (kill_anon_super)
        is not what the call reaches.
        """
        callee = self._call_tables[1][site[0]][site[1]]
        if not callee.startswith("->"):
            return self.resolve(site[0], callee)
        fld = callee[2:]
        if not self._field_usable(fld, untyped):
            return []
        want = self._home[site[0]]
        by_dir = self._stored_by_field.get(fld, {})
        if origin is not None and want in GENERIC_DIRS and fld in DISPATCH_FIELDS:
            want = origin
        elif origin not in (None, ANY, want) and want in GENERIC_DIRS and origin in by_dir:
            # The VFS calling back into the filesystem the chain started in, which
            # fills this slot itself: the generic default stored there is not called.
            return []
        if want == ANY:  # any filesystem's files (not a character device's)
            return sorted(ref for home, refs in by_dir.items() if home.startswith("fs/")
                          for ref in refs)
        return list(by_dir.get(want, ()))

    def distances(self, starts: dict[Ref, int], limit: int, *, dispatch: bool = False,
                  untyped: bool = False,
                  follow: Callable[[CallRef], bool] | None = None,
                  within: dict[Ref, int] | None = None) -> dict[Ref, int]:
        """Calls from each function to the nearest start, up to ``limit`` (callers, backwards).

        Whole-tree walks use it to go forward only through functions that can
        still reach their target. ``follow`` can refuse a call site (one made
        inside a scope); ``dispatch``/``untyped`` are as for callers().
        ``within`` (from reachable()) bounds the walk to functions the forward
        walks can get to: a caller ``c`` is kept only while ``within[c]`` plus
        its distance stays within ``limit``. Every function such a walk can
        use keeps its exact distance (the functions on its shortest path meet
        the same bound), so the result for them is the same as without it.

        With ``within``, the walk reads nothing (reads.py) that reachable() did
        not: a caller counts only when its distance in ``within`` is below the
        limit, and reachable() read the calls, callees and definitions of each
        such function. A call added elsewhere (a ``kmalloc()`` in a new helper)
        changes nothing here.
        """
        if within is not None and self.reads is not None:
            with self._unnoted():
                return self.distances(starts, limit, dispatch=dispatch, untyped=untyped,
                                      follow=follow, within=within)
        dist = dict(starts)
        queue = deque(sorted(dist))
        while queue:
            ref = queue.popleft()
            d = dist[ref]
            if d >= limit:
                continue
            for site in self.callers(ref, dispatch=dispatch, untyped=untyped):
                caller = self.enclosing(site)
                if caller in dist:
                    continue
                if within is not None and within.get(caller, limit) + d + 1 > limit:
                    continue
                if follow is None or follow(site):
                    dist[caller] = d + 1
                    queue.append(caller)
        return dist

    def reachable(self, starts: Iterable[Ref], limit: int) -> dict[Ref, int]:
        """Calls from the nearest start to each function, up to ``limit`` (callees, forwards).

        Over every edge a walk from any origin may take (callees() with no
        origin and with ANY; typed ops fields only, as callees() by default), so
        no such walk from these starts gets anywhere sooner.
        """
        dist = dict.fromkeys(starts, 0)
        queue = deque(sorted(dist))
        names = self._call_tables[1]
        while queue:
            ref = queue.popleft()
            d = dist[ref] + 1
            if d > limit:
                continue
            for ci in self.calls_in(ref):
                site = (ref[0], ci)
                found = self.callees(site)
                if names[ref[0]][ci].startswith("->"):
                    found = found + self.callees(site, ANY)
                for callee in found:
                    if callee not in dist:
                        dist[callee] = d
                        queue.append(callee)
        return dist

    def callers(self, ref: Ref, dispatch: bool = False,
                untyped: bool = False, generic: bool = False) -> Iterator[CallRef]:
        """Call sites that may call the function ``ref`` (directly or through a table).

        ``dispatch``: also ops calls in generic code (a superset of callees()
        with an origin, for walks that go backwards). ``generic``: also generic
        code's calls through any field a filesystem's table stores ``ref`` in
        (the VFS's ->alloc_inode reaching btrfs_alloc_inode), for walks that
        follow a chain out of a filesystem and back.
        """
        func = self.function(ref)
        names = [func.name]
        if func.name.endswith(_NOPROF):
            names.append(func.name[: -len(_NOPROF)])
        if self.reads is not None:
            # Which calls land here depends on the name's other definitions (a
            # static of the same name takes its file's calls), and on the tables
            # storing it, even those whose field nobody calls through yet.
            self.reads.defs.update(names)
            for name in names:
                for fld in self._fields_storing.get(name, ()):
                    self._read_field(fld)
        for name in names:
            if (name == func.name and name not in self._shadowed
                    and ref in self.globals.get(name, ())):
                # Every kernel file's call to a name defined only globally lands
                # on its definitions; userspace code never calls the kernel.
                userspace = self._userspace
                for fi, cis in self._sites(name):
                    if not userspace[fi]:
                        yield from ((fi, ci) for ci in cis)
                continue
            for fi, cis in self._sites(name):
                if ref in self.resolve(fi, name):
                    yield from ((fi, ci) for ci in cis)
        home = self._home[ref[0]]
        for fld in self._stored_in.get(ref, ()):
            if self._field_usable(fld, untyped):
                for fi, cis in self._sites("->" + fld):
                    where = self._home[fi]
                    if where == home or (dispatch and where in GENERIC_DIRS
                                         and fld in DISPATCH_FIELDS) or (
                            generic and where in GENERIC_DIRS and home not in GENERIC_DIRS):
                        yield from ((fi, ci) for ci in cis)
