"""Workqueue facts of one file: queues created, works bound, queued and flushed, each
named by a place key (``g:name``, ``s:name``, ``f:struct.field``) that links them
across files.

A part of the extractor (extract.facts), kept apart because place keys are a job
of their own: where a queue is stored, and what type the expression it goes
through has.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from nofslint.extract.syntax import declarator_name, matches, node_text, unwrap
from nofslint.kernel.workqueue_api import CREATORS, DECLARE_WORK, GENERIC_TYPES, SYSTEM, WORK_CALLS
from nofslint.model.facts import WqQueue, WqUse

_DECLS_QUERY = """
(parameter_declaration type: (_) @type declarator: (_) @decl)
(declaration type: (_) @type declarator: (_) @decl)
"""
_ALIAS_QUERY = """
(assignment_expression left: (_) @left right: (identifier) @right)
"""
# Field names a queue or work accessor macro may end in.
_ACCESSOR_FIELD = re.compile(r"->\s*\w*(?:wq|work|queue)\w*\s*\)*\s*$")
_CAST = re.compile(r"^\(*\s*\(\s*struct\s+(\w+)\s*\*\s*\)")


_FUNCTION_MACRO = re.compile(
    rb"^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^()\n]*)\)((?:[^\n\\]|\\.|\\\n)*)", re.M)


def macro_accessors(raw: bytes) -> dict[str, str]:
    """Function-like macros that name a queue's or work's place, every definition
    read (one under ``#ifdef``, another under ``#else``): a name defined two ways
    maps to ``?`` (nothing for sure)."""
    out: dict[str, str] = {}
    if b"#define" not in raw or b"->" not in raw:
        return out
    for m in _FUNCTION_MACRO.finditer(raw):
        body = m.group(3).decode("utf-8", "replace").replace("\\\n", " ").strip()
        if "->" not in body or _ACCESSOR_FIELD.search(body) is None:
            continue
        name, key = m.group(1).decode(), _macro_place(body)
        if key is not None:
            out[name] = key if out.get(name, key) == key else "?"
    return out


def _macro_place(body: str) -> str | None:
    """``f:struct.field`` for a macro body that ends in a field access, the struct
    read from a cast of the base (``((struct foo *)(x)->data)->wq``), else ``?``."""
    text = body.strip()
    while text.startswith("(") and text.endswith(")") and _wrapped(text):
        text = text[1:-1].strip()
    m = re.fullmatch(r"(.*?)\s*->\s*(\w+)", text, re.S)
    if m is None:
        return None
    base, field = m.group(1).strip(), m.group(2)
    while base.startswith("(") and base.endswith(")") and _wrapped(base):
        base = base[1:-1].strip()
    cast = _CAST.match(base)
    if cast is not None:
        return f"f:{cast.group(1)}.{field}"
    return f"f:?.{field}"


def _wrapped(text: str) -> bool:
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return i == len(text) - 1
    return False


# File-scope statics: a key for them is private to the file.
_STATIC_NAME = re.compile(
    rb"^static[ \t]+(?:const[ \t]+)?(?:struct[ \t]+)?\w+[ \t*]*(\w+)", re.M)


class WorkqueuePlaces:
    """Mixed into the extractor: its ``raw``, ``facts``, ``func_nodes`` and caches."""

    def _declared_works(self) -> None:
        """``DECLARE_WORK(name, fn)`` at file scope (a macro tree-sitter cannot see as a call)."""
        for m in DECLARE_WORK.finditer(self.raw):
            name, fn = m.group(2).decode(), m.group(3).decode()
            line = self.raw.count(b"\n", 0, m.start()) + 1
            key = ("s:" if m.group(1) else "g:") + name
            self.facts.wq_uses.append(WqUse("DECLARE_WORK", "bind", -1, -1, line, key, None, fn))

    def _workqueue_call(self, index: int, args: Node) -> None:
        facts = self.facts
        call = facts.calls[index]
        nodes = [a for a in args.named_children if a.type != "comment"]
        creator = CREATORS.get(call.callee)
        if creator is not None:
            if any(arg is not None and arg >= len(nodes)
                   for arg in (creator.flags_arg, creator.fmt_arg)):
                return  # a macro of the same name with other arguments: not the API
            flags = nodes[creator.flags_arg] if creator.flags_arg is not None else None
            fmt = nodes[creator.fmt_arg] if creator.fmt_arg is not None else None
            name = None
            if fmt is not None and fmt.type == "string_literal":
                name = node_text(self.raw, fmt)[1:-1]
            facts.wq_queues.append(WqQueue(
                call.callee, index, self._stored_at(args.parent, call.function), name,
                node_text(self.raw, flags) if flags is not None else None,
                flags.start_byte if flags is not None else call.end,
                flags.end_byte if flags is not None else call.end, call.line))
            return
        api = WORK_CALLS[call.callee]
        needed = max((a for a in (api.work_arg, api.queue_arg, api.fn_arg) if isinstance(a, int)),
                     default=-1)
        if needed >= len(nodes):
            return
        work = self._place(nodes[api.work_arg], call.function) if api.work_arg is not None \
            else None
        if api.queue_arg == SYSTEM:
            queue: str | None = "g:system_wq"
        elif isinstance(api.queue_arg, int):
            queue = self._place(nodes[api.queue_arg], call.function)
        else:
            queue = None
        target = None
        if api.fn_arg is not None:
            fn = unwrap(nodes[api.fn_arg])
            target = node_text(self.raw, fn) if fn.type == "identifier" else None
        if work is None and queue is None and target is None:
            return
        facts.wq_uses.append(WqUse(call.callee, api.role, index, call.function, call.line,
                                   work, queue, target))

    def _accessors(self) -> None:
        """Accessors defined in this file that name a queue's or work's place: function-like
        macros (``#define foo_wq(h) (((struct foo_attrs *)(h)->shost_data)->wq)``) and
        static inline functions that return one (``return f->wq;``). Uses elsewhere
        name them ``a:NAME``; the registry looks them up across the tree."""
        out = dict(self.facts.wq_accessors)
        for fidx, node in enumerate(self.func_nodes):
            func = self.facts.functions[fidx]
            if not func.static or func.end - func.start > 400:
                continue
            head = self.raw[func.start:func.body_start]
            if b"work" not in head:
                continue  # returns a workqueue_struct, work_struct or delayed_work
            body = node.child_by_field_name("body")
            kids = [c for c in body.named_children if c.type != "comment"] if body else []
            if len(kids) == 1 and kids[0].type == "return_statement" and kids[0].named_children:
                key = self._place(kids[0].named_children[0], fidx)
                if key is not None and not key.startswith("a:"):
                    out[func.name] = key
        self.facts.wq_accessors = out

    def _place(self, node: Node, fidx: int) -> str | None:
        """The key of the storage an expression names: a global, a static, a struct field,
        or an accessor (``a:NAME``: a macro or inline the registry resolves)."""
        node = unwrap(node)
        if node.type == "call_expression":
            fn = node.child_by_field_name("function")
            if fn is not None and fn.type == "identifier":
                name = node_text(self.raw, fn)
                if not name.startswith("container_of"):
                    return "a:" + name
            return None
        if node.type == "subscript_expression":
            inner = node.child_by_field_name("argument")
            return self._place(inner, fidx) if inner is not None else None
        if node.type == "identifier":
            name = node_text(self.raw, node)
            if fidx >= 0 and name in self._declarations(fidx):
                return None  # a local or a parameter: names no particular item
            return ("s:" if name in self._static_names() else "g:") + name
        if node.type != "field_expression":
            return None
        base = node.child_by_field_name("argument")
        field_node = node.child_by_field_name("field")
        op = node.child_by_field_name("operator")
        if base is None or field_node is None:
            return None
        name = node_text(self.raw, field_node)
        if name == "work" and op is not None and op.type == ".":
            # The work_struct inside a delayed_work/rcu_work: the same item.
            return self._place(base, fidx)
        struct = self._type_of(base, fidx)
        if struct in GENERIC_TYPES:
            return None
        return f"f:{struct or '?'}.{name}"

    def _type_of(self, node: Node, fidx: int) -> str | None:
        """The struct type of an expression, when a declaration or container_of() says it."""
        node = unwrap(node)
        if node.type == "pointer_expression":
            arg = node.child_by_field_name("argument")
            return self._type_of(arg, fidx) if arg is not None else None
        if node.type == "identifier" and fidx >= 0:
            return self._declarations(fidx).get(node_text(self.raw, node))
        if node.type == "call_expression":
            fn = node.child_by_field_name("function")
            args = node.child_by_field_name("arguments")
            if fn is not None and args is not None and node_text(self.raw, fn).startswith(
                    "container_of"):
                parts = [a for a in args.named_children if a.type != "comment"]
                if len(parts) == 3:
                    # Masking blanks the ``struct`` of a type argument.
                    words = node_text(self.raw, parts[1]).split()
                    if words and words[0] == "struct":
                        words = words[1:]
                    if len(words) == 1 and words[0].isidentifier():
                        return words[0]
        return None

    def _declarations(self, fidx: int) -> dict[str, str | None]:
        """Parameters and locals of a function: name -> struct (or typedef) name."""
        decls = self._decls.get(fidx)
        if decls is None:
            decls = self._decls[fidx] = {}
            for _, caps in matches(_DECLS_QUERY, self.func_nodes[fidx]):
                name = declarator_name(caps["decl"][0])
                if name is None:
                    continue
                type_node = caps["type"][0]
                if type_node.type == "struct_specifier":
                    tname = type_node.child_by_field_name("name")
                    decls[name] = node_text(self.raw, tname) if tname is not None else None
                elif type_node.type == "type_identifier":
                    decls[name] = node_text(self.raw, type_node)
                else:
                    decls[name] = None
        return decls

    def _static_names(self) -> set[str]:
        if self._statics is None:
            self._statics = {m.group(1).decode() for m in _STATIC_NAME.finditer(self.raw)}
            self._statics.update(m.group(2).decode() for m in DECLARE_WORK.finditer(self.raw)
                                 if m.group(1))
        return self._statics

    def _stored_at(self, call: Node | None, fidx: int) -> str | None:
        """Where a created queue goes: ``x->wq = alloc_workqueue(...)``, or via a local."""
        node = call
        while node is not None and node.parent is not None and node.parent.type in (
                "parenthesized_expression", "cast_expression"):
            node = node.parent
        parent = node.parent if node is not None else None
        if parent is None:
            return None
        local: str | None = None
        if parent.type == "assignment_expression":
            left = parent.child_by_field_name("left")
            if left is None:
                return None
            left = unwrap(left)
            if left.type == "identifier" and fidx >= 0 and \
                    node_text(self.raw, left) in self._declarations(fidx):
                local = node_text(self.raw, left)
            else:
                return self._place(left, fidx)
        elif parent.type == "init_declarator":
            local = declarator_name(parent.child_by_field_name("declarator"))
        if local is None or fidx < 0 or node is None:
            return None
        # wq = alloc_workqueue(...); ...; x->wq = wq;
        for _, caps in matches(_ALIAS_QUERY, self.func_nodes[fidx]):
            right = caps["right"][0]
            if right.start_byte > node.end_byte and node_text(self.raw, right) == local:
                left = unwrap(caps["left"][0])
                if left.type != "identifier" or node_text(self.raw, left) != local:
                    return self._place(left, fidx)
        return None
