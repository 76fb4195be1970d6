"""Facts extraction: one tree-sitter query per file, closer looks only where needed.

Extraction is the hot path (tens of thousands of files), so it runs one
tree-sitter query per file and only looks closer (gfp_t variables, scope
flags) in functions that need it. The records it fills are model.facts.
"""

from __future__ import annotations

import bisect
import hashlib
import re

from tree_sitter import Node

from nofslint.extract.flow import build
from nofslint.extract.syntax import back_regions, declarator_name, matches, node_text
from nofslint.extract.workqueue_places import WorkqueuePlaces, macro_accessors
from nofslint.frontend.parse import parse_source
from nofslint.kernel.allocators import ALLOCATORS, SCOPE_CALLS
from nofslint.kernel.gfp import GfpTable, read_defines, read_macros
from nofslint.kernel.kconfig import Kconfig
from nofslint.kernel.transactions import Table, table
from nofslint.kernel.tree import KernelTree
from nofslint.kernel.workqueue_api import CREATORS, WORK_CALLS
from nofslint.model.facts import (
    Allocation,
    Call,
    FileFacts,
    Function,
    OpsEntry,
    ScopeEvent,
    scope_at,
)
from nofslint.model.gfp import UNKNOWN, Mask

_MAIN_QUERY = """
(function_definition declarator: (_) @decl body: (compound_statement) @body) @func
(call_expression function: (identifier) @callee arguments: (argument_list) @args) @call
(call_expression function: (field_expression field: (field_identifier) @callee)
  arguments: (argument_list) @args) @call
(initializer_pair designator: (field_designator (field_identifier) @field)
  value: [(identifier) @fn (pointer_expression argument: (identifier) @fn)]) @pair
(assignment_expression left: (field_expression field: (field_identifier) @field)
  right: [(identifier) @fn (pointer_expression argument: (identifier) @fn)]) @assign
"""
# Files with neither a function body nor an initializer list hold nothing but
# declarations and macros (43% of v6.12's bytes: generated register headers):
# their macros are read from the text and they are not parsed at all.
_HAS_CODE = re.compile(rb"\)\s*\{|=\s*\{")
_GFPISH = re.compile(r"\bGFP_|\b__GFP_")
# Longer arguments are not mask expressions (they are whole nested calls or
# statement expressions, which evaluate to unknown); evaluating each level of a
# deeply nested call would be quadratic in the file.
_MAX_MASK_TEXT = 1024
_GFP_VAR_QUERY = """
(declaration type: (type_identifier) @type
  declarator: (init_declarator declarator: (identifier) @name value: (_) @value))
(declaration type: (type_identifier) @type declarator: (identifier) @name)
(parameter_declaration type: (type_identifier) @type declarator: (identifier) @name)
(assignment_expression left: (identifier) @name right: (_) @value) @assign
"""
_PFLAGS_QUERY = """
(assignment_expression left: (field_expression) @left right: (_) @value) @assign
"""


def _is_static(func: Node) -> bool:
    return any(c.type == "storage_class_specifier" and c.text == b"static" for c in func.children)


_PF_KIND = (("PF_MEMALLOC_NOIO", "noio"), ("PF_MEMALLOC_NOFS", "nofs"))


def _pf_kind(text: str) -> str:
    for token, kind in _PF_KIND:
        if token in text:
            return kind
    return "other"


def _save_target(call: Node, raw: bytes) -> str | None:
    parent = call.parent
    while parent is not None and parent.type == "parenthesized_expression":
        parent = parent.parent
    if parent is None or parent.type == "expression_statement":
        return None
    if parent.type == "assignment_expression":
        left = parent.child_by_field_name("left")
        return node_text(raw, left) if left is not None else "?"
    if parent.type == "init_declarator":
        return declarator_name(parent.child_by_field_name("declarator")) or "?"
    return "?"


class _Extractor(WorkqueuePlaces):
    def __init__(self, raw: bytes, rel: str, table: GfpTable, transactions: Table,
                 config: Kconfig | None = None) -> None:
        self.config = config
        self.raw = raw
        self.table = table
        self.transactions = transactions
        self.facts = FileFacts(rel, hashlib.sha256(raw).hexdigest())
        self.func_nodes: list[Node] = []
        self._gfp_vars: dict[int, list[tuple[int, str, str, str, bool]] | None] = {}
        self._regions: dict[int, list[tuple[int, int]]] = {}
        self._names: dict[int, set[str]] = {}
        self._decls: dict[int, dict[str, str | None]] = {}
        self._statics: set[str] | None = None
        self._has_gfp_vars = b"gfp_t" in raw  # once: asked for every allocation

    def run(self) -> FileFacts:
        facts = self.facts
        if b"GFP" in self.raw:
            # From the raw text: masking may blank a #define in an #else branch.
            defines = read_defines(self.raw, lambda n: True)
            facts.gfp_macros = {k: v for k, v in defines.items() if "GFP" in v or "gfp" in v}
        if b"WQ_" in self.raw:
            facts.wq_macros = read_macros(self.raw, lambda name, body: "WQ_" in body)
        if b"DECLARE_" in self.raw:
            self._declared_works()
        if b"work" in self.raw or b"wq" in self.raw or b"queue" in self.raw:
            facts.wq_accessors = macro_accessors(self.raw)  # headers hold most of them
        if not _HAS_CODE.search(self.raw):
            return facts
        _masked, tree = parse_source(self.raw, self.config)
        root = tree.root_node
        funcs: list[tuple[int, Node]] = []
        raw_calls: list[tuple[Node, Node, Node]] = []
        raw_ops: list[tuple[Node, Node, Node, bool]] = []
        for pattern, caps in matches(_MAIN_QUERY, root):
            if pattern == 0:
                funcs.append((caps["func"][0].start_byte, caps["func"][0]))
            elif pattern in (1, 2):
                raw_calls.append((caps["call"][0], caps["callee"][0], caps["args"][0]))
            else:
                node = caps["pair"][0] if pattern == 3 else caps["assign"][0]
                raw_ops.append((node, caps["field"][0], caps["fn"][0], pattern == 3))
        funcs.sort(key=lambda x: x[0])
        for _, node in funcs:
            body = node.child_by_field_name("body")
            facts.functions.append(Function(
                name=declarator_name(node.child_by_field_name("declarator")) or "?",
                static=_is_static(node), start=node.start_byte, end=node.end_byte,
                line=node.start_point[0] + 1, end_line=node.end_point[0] + 1,
                body_start=body.start_byte if body is not None else node.start_byte,
                has_error=node.has_error))
            self.func_nodes.append(node)
        facts.functions_with_errors = sum(1 for f in facts.functions if f.has_error)
        starts = [f.start for f in facts.functions]
        raw_calls.sort(key=lambda c: c[0].start_byte)
        pending_allocs: list[tuple[int, Node, Node]] = []
        pending_wq: list[tuple[int, Node]] = []
        for call, callee_node, args in raw_calls:
            callee = callee_node.text.decode("utf-8", "replace") if callee_node.text else ""
            if callee_node.type == "field_identifier":
                callee = "->" + callee  # an indirect call through a struct field
            fidx = self._function_index(starts, call.start_byte)
            sp, ep = call.start_point, call.end_point
            record = Call(callee, fidx, call.start_byte, call.end_byte, sp[0] + 1, sp[1] + 1,
                          ep[0] + 1, ep[1] + 1)
            workqueue = callee in WORK_CALLS or callee in CREATORS
            interesting = callee in ALLOCATORS or callee in SCOPE_CALLS or workqueue
            if interesting or (fidx >= 0 and self._carries_gfp(fidx, args)):
                record.args = [(a.start_byte, a.end_byte) for a in args.named_children
                               if a.type != "comment"]
            facts.calls.append(record)
            if not interesting and record.args is not None:
                self._gfp_arguments(record)
            if callee in SCOPE_CALLS:
                op, kind = SCOPE_CALLS[callee]
                if kind == "flags":
                    kind = _pf_kind(node_text(self.raw, args)) if op == "save" else "other"
                target = (_save_target(call, self.raw) if op == "save" else
                          (self._arg_text(record, 0) or "?"))
                facts.scopes.append(ScopeEvent(fidx, call.start_byte, sp[0] + 1, op, kind, target))
            elif callee in ALLOCATORS:
                pending_allocs.append((len(facts.calls) - 1, call, args))
            elif workqueue:
                pending_wq.append((len(facts.calls) - 1, args))
        if b"PF_MEMALLOC_NO" in self.raw:
            self._pflag_events(root, starts)
        facts.scopes.sort(key=lambda e: e.start)
        for index, call, _args in pending_allocs:
            self._allocation(index, call)
        for index, args in pending_wq:
            self._workqueue_call(index, args)
        if b"work" in self.raw:
            self._accessors()  # adds static inline accessors to the macros
        facts.wq_uses.sort(key=lambda u: u.line)
        self._flows()
        raw_ops.sort(key=lambda o: o[0].start_byte)
        for node, field_node, fn_node, initializer in raw_ops:
            sp = fn_node.start_point
            struct = _initialized_struct(node) if initializer else None
            fidx = self._function_index(starts, node.start_byte)
            facts.ops.append(OpsEntry(struct, node_text(self.raw, field_node),
                                      node_text(self.raw, fn_node),
                                      fidx if not initializer else -1, sp[0] + 1, sp[1] + 1))
        return facts

    def _flows(self) -> None:
        facts = self.facts
        wanted = {e.function for e in facts.scopes}
        opens: dict[int, list[int]] = {}
        trans = self.transactions
        for c in facts.calls:
            if c.callee in trans.opens or c.callee in trans.closes:
                wanted.add(c.function)
            if c.callee in trans.opens:
                opens.setdefault(c.function, []).append(c.start)
        for fidx in sorted(f for f in wanted if f >= 0):
            body = self.func_nodes[fidx].child_by_field_name("body")
            if body is not None:
                facts.flows.append(build(fidx, body, self.raw, opens.get(fidx, ()),
                                         self.config))

    # -- workqueues -----------------------------------------------------------------
    def _carries_gfp(self, fidx: int, args: Node) -> bool:
        """Whether a call's arguments mention a mask or one of the function's gfp_t names."""
        text = self.raw[args.start_byte:args.end_byte]
        if b"GFP" in text:
            return True
        names = self._gfp_names(fidx)
        return bool(names) and any(n.encode() in text for n in names)

    def _gfp_names(self, fidx: int) -> set[str]:
        names = self._names.get(fidx)
        if names is None:
            func = self.facts.functions[fidx]
            has = self.raw.find(b"gfp_t", func.start, func.end) >= 0
            names = self._names[fidx] = {e[1] for e in self._gfp_events(fidx)} if has else set()
        return names

    def _gfp_arguments(self, call: Call) -> None:
        names = self._gfp_names(call.function)
        out: list[tuple[int, list[Mask]]] = []
        for i, (s, e) in enumerate(call.args or []):
            if e - s > _MAX_MASK_TEXT:
                continue
            text = self.raw[s:e].decode("utf-8", "replace")
            if not (_GFPISH.search(text) or any(re.search(rf"\b{re.escape(n)}\b", text)
                                                for n in names)):
                continue
            variables = self._variables_at(call.function, call.start, text)
            masks = self.table.eval(text, extra=self.facts.gfp_macros, variables=variables)
            if any(m.flags or m.cleared for m in masks):
                out.append((i, list(masks)))
        call.gfp_args = out or None

    def _function_index(self, starts: list[int], offset: int) -> int:
        i = bisect.bisect_right(starts, offset) - 1
        return i if i >= 0 and offset < self.facts.functions[i].end else -1

    def _arg_text(self, call: Call, index: int) -> str | None:
        if call.args is None or not -len(call.args) <= index < len(call.args):
            return None
        s, e = call.args[index]
        return self.raw[s:e].decode("utf-8", "replace")

    def _pflag_events(self, root: Node, starts: list[int]) -> None:
        for _, caps in matches(_PFLAGS_QUERY, root):
            assign = caps["assign"][0]
            left = node_text(self.raw, caps["left"][0]).replace(" ", "")
            if left not in ("current->flags", "tsk->flags", "task->flags", "p->flags"):
                continue
            op_node = assign.child_by_field_name("operator")
            op = op_node.text.decode() if op_node is not None and op_node.text else ""
            kind = _pf_kind(node_text(self.raw, caps["value"][0]))
            if kind == "other" or op not in ("|=", "&="):
                continue
            self.facts.scopes.append(ScopeEvent(
                self._function_index(starts, assign.start_byte), assign.start_byte,
                assign.start_point[0] + 1, "set" if op == "|=" else "clear", kind, left))

    def _allocation(self, index: int, call_node: Node) -> None:
        facts = self.facts
        call = facts.calls[index]
        spec = ALLOCATORS[call.callee]
        arg: int | None = None
        if spec.mask_arg is None:
            text, masks = None, list(self.table.eval(spec.implicit or "GFP_KERNEL"))
        else:
            nargs = len(call.args or [])
            arg = spec.mask_arg if spec.mask_arg >= 0 else nargs + spec.mask_arg
            text = self._arg_text(call, arg)
            if text is None:
                return  # a macro of the same name with other arguments: not the API
            variables = self._variables_at(call.function, call.start, text)
            masks = list(self.table.eval(text, extra=facts.gfp_macros, variables=variables))
        order = None
        if spec.order_arg is not None:
            order_text = self._arg_text(call, spec.order_arg)
            order = _constant(order_text, facts.gfp_macros, self.raw) if order_text else None
        facts.allocations.append(Allocation(index, call.callee, spec.family, arg, text, masks,
                                            scope_at(facts.scopes, call.function, call.start),
                                            order))

    def _variables_at(self, fidx: int, offset: int, text: str) -> dict[str, tuple[Mask, ...]]:
        """Values the function's gfp_t variables named in ``text`` may hold at ``offset``.

        All variables are replayed together in source order, so ``a = b | X``
        sees what ``b`` holds there (parameters are symbolic ``$pN`` atoms).
        """
        if fidx < 0 or not self._has_gfp_vars:
            return {}
        events = self._gfp_events(fidx)
        names = set(re.findall(r"[A-Za-z_]\w*", text))
        if not events or not names & {e[1] for e in events}:
            return {}
        env: dict[str, list[Mask]] = {}
        self._replay(env, [e for e in events if e[0] < offset], straight=True)
        # A loop or a backward goto around the call brings later assignments back
        # to it (``retry: ... gfp |= __GFP_NOFAIL; goto retry;``): iterate the
        # region to a fixpoint, merging (the way back may or may not be taken).
        for lo, hi in self._back_regions(fidx):
            if not lo <= offset < hi:
                continue
            for _ in range(4):
                around = {k: list(v) for k, v in env.items()}
                self._replay(around, [e for e in events if offset <= e[0] < hi], False)
                self._replay(around, [e for e in events if lo <= e[0] < offset], False)
                merged = {k: _merge(env.get(k, []), tuple(v)) for k, v in around.items()}
                if merged == env:
                    break
                env = merged
        return {k: tuple(v) or (UNKNOWN,) for k, v in env.items() if k in names}

    def _replay(self, env: dict[str, list[Mask]], events: list[tuple[int, str, str, str, bool]],
                straight: bool) -> None:
        """Apply gfp_t assignments in order; ``straight``: straight-line ones replace."""
        macros = self.facts.gfp_macros
        for _start, var, op, value, definite in events:
            if op == "param":
                env[var] = [Mask(frozenset({value}), True)]
                continue
            if op == "decl":
                env.setdefault(var, [])
                continue
            current = {k: tuple(v) or (UNKNOWN,) for k, v in env.items()}
            expr = f"({value})" if op == "=" else f"({var}) {op[0]} ({value})"
            new = self.table.eval(expr, extra=macros, variables=current)
            values = env.get(var, [])
            # Straight-line code replaces the value; a branch may or may not run.
            env[var] = list(new) if straight and definite or not values else _merge(values, new)

    def _back_regions(self, fidx: int) -> list[tuple[int, int]]:
        """Spans control can come back into (extract.syntax.back_regions)."""
        found = self._regions.get(fidx)
        if found is None:
            found = self._regions[fidx] = back_regions(self.func_nodes[fidx], self.raw)[0]
        return found

    def _gfp_events(self, fidx: int) -> list[tuple[int, str, str, str, bool]]:
        if fidx in self._gfp_vars:
            return self._gfp_vars[fidx] or []
        node = self.func_nodes[fidx]
        declared: set[str] = set()
        events: list[tuple[int, str, str, str, bool]] = []
        for pattern, caps in matches(_GFP_VAR_QUERY, node):
            name = node_text(self.raw, caps["name"][0])
            if pattern in (0, 1, 2):
                if node_text(self.raw, caps["type"][0]) != "gfp_t":
                    continue
                declared.add(name)
                at = caps["name"][0].start_byte
                if pattern == 2:
                    index = _param_index(caps["name"][0], node)
                    if index is None:
                        continue
                    events.append((at, name, "param", f"$p{index}", True))
                else:
                    events.append((at, name, "decl", "", True))
                    if pattern == 0:
                        value = caps["value"][0]
                        events.append((value.start_byte, name, "=", node_text(self.raw, value),
                                       _straight_line(value, node)))
            else:
                assign = caps["assign"][0]
                op_node = assign.child_by_field_name("operator")
                op = op_node.text.decode() if op_node is not None and op_node.text else "="
                if op in ("=", "|=", "&="):
                    rhs = node_text(self.raw, caps["value"][0])
                    events.append((assign.start_byte, name, op, rhs,
                                   _straight_line(assign, node)))
        events = sorted(e for e in events if e[1] in declared)
        self._gfp_vars[fidx] = events
        return events


def _constant(text: str, macros: dict[str, str], raw: bytes) -> int | None:
    """A small integer constant: a literal or a file-local #define of one."""
    text = text.strip().strip("()").strip()
    for _ in range(3):
        try:
            return int(text.rstrip("uUlL"), 0)
        except ValueError:
            pass
        if not re.fullmatch(r"[A-Za-z_]\w*", text):
            return None
        m = re.search(rb"^[ \t]*#[ \t]*define[ \t]+" + text.encode() + rb"[ \t]+\(?(\w+)\)?[ \t]*$",
                      raw, re.M)
        if m is None:
            return None
        text = m.group(1).decode()
    return None


def _initialized_struct(pair: Node) -> str | None:
    """The struct type a designated initializer fills, when it is written there."""
    lst = pair.parent
    holder = lst.parent if lst is not None else None
    if holder is None:
        return None
    if holder.type == "init_declarator":
        holder = holder.parent
        type_node = holder.child_by_field_name("type") if holder is not None else None
    elif holder.type == "compound_literal_expression":
        desc = holder.child_by_field_name("type")
        type_node = desc.child_by_field_name("type") if desc is not None else None
    else:
        return None
    if type_node is None or type_node.type != "struct_specifier":
        return None
    name = type_node.child_by_field_name("name")
    return name.text.decode("utf-8", "replace") if name is not None and name.text else None


def _param_index(name: Node, func: Node) -> int | None:
    """Position of a parameter of ``func`` itself (not of a nested function pointer)."""
    param = name.parent
    plist = param.parent if param is not None else None
    if plist is None or plist.type != "parameter_list":
        return None
    decl = plist.parent
    if decl is None or decl.type != "function_declarator":
        return None
    cur = decl.parent
    while cur is not None and cur.type in ("pointer_declarator", "parenthesized_declarator",
                                          "attributed_declarator"):
        cur = cur.parent
    if cur != func:
        return None
    params = [c for c in plist.named_children if c.type in ("parameter_declaration",
                                                             "variadic_parameter")]
    return next((i for i, c in enumerate(params) if c == param), None)


_STRAIGHT = frozenset({"expression_statement", "compound_statement", "declaration",
                       "init_declarator", "assignment_expression", "parenthesized_expression",
                       "comma_expression"})


def _straight_line(node: Node, func: Node) -> bool:
    """True when nothing between node and the function body is a branch or loop."""
    body = func.child_by_field_name("body")
    cur = node.parent
    while cur is not None and cur != body:
        if cur.type not in _STRAIGHT:
            return False
        cur = cur.parent
    return cur is not None


def _merge(values: list[Mask], new: tuple[Mask, ...]) -> list[Mask]:
    out = list(values)
    for m in new:
        if m not in out:
            out.append(m)
    return out[:8]


def extract(raw: bytes, rel: str, tree: KernelTree) -> FileFacts:
    return _Extractor(raw, rel, tree.gfp_table(), table(tree.extras.transactions),
                      tree.extras.kconfig).run()

