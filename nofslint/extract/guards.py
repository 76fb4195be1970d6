"""Guards of one function (model.facts.Guards), read from its syntax tree.

A second tier of facts: the path check asks for the functions on the chains
a rule reports (a few thousand of the kernel's half million), so they are
built on demand from the file (``FileGuards``), not with every file's facts.
Statement level only:
``if`` branches and early exits (``if (c) return/goto/break``) give the
conditions a position needs; ``x = CONST;`` and ``x = f(...);`` statements
give the values a later test sees; constant ``return``s give what a caller
can learn from the result. Nothing inside expressions is followed beyond the
call arguments the extractor hands in.
"""

from __future__ import annotations

import bisect
import re

from tree_sitter import Node

from nofslint.extract.flow import NORETURN
from nofslint.extract.syntax import back_regions, matches
from nofslint.frontend.parse import parse_source
from nofslint.kernel.kconfig import Kconfig, body_condition
from nofslint.model.facts import Guards
from nofslint.model.flow import condition_key, words

_INT = re.compile(r"(0[xX][0-9a-fA-F]+|0[bB][01]+|\d+)[uUlL]*")
_SYMBOL = re.compile(r"[A-Z][A-Z0-9_]*")
_NAME = re.compile(r"[A-Za-z_]\w*")
_PATH = re.compile(r"[A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*)*")
_MAX_COND = 200  # longer conditions are not evaluated (and would bloat the facts)


def c_int(text: str) -> int:
    """A C integer literal's value: 0x1f, 0b101, 0644 (octal), 42u."""
    text = text.rstrip("uUlL")
    if len(text) > 1 and text[0] == "0" and text[1].isdigit():
        return int(text, 8)
    return int(text, 0)


def constant(text: str) -> str | None:
    """A literal's normalised value: "0", "1", "42", an UPPER_CASE name; else None."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if text in ("false", "NULL"):
        return "0"
    if text == "true":
        return "1"
    negative = text.startswith("-")
    digits = text[1:].strip() if negative else text
    if _INT.fullmatch(digits):
        try:
            value = c_int(digits)
        except ValueError:  # 089: not a C literal
            return None
        return str(-value if negative else value)
    if _SYMBOL.fullmatch(text) and len(text) > 1:
        return text
    return None


NOFAIL_WRITE = "+NOFAIL"  # a write whose value names __GFP_NOFAIL (it forgets the old value)


def _adds(text: str) -> str | None:
    """What a non-constant write is known to put in: ``__GFP_NOFAIL``, or nothing."""
    return NOFAIL_WRITE if "__GFP_NOFAIL" in text and "~" not in text else None


_CONSTANT_EXPRESSION = re.compile(r"[A-Z0-9_xXa-fA-FuUlL()+\-* \t]+")


def expression(text: str) -> str | None:
    """``=TEXT`` for an expression of numbers and named constants only
    (``EXT_MAX_BLOCKS - 1``): the path check computes with it."""
    text = " ".join(text.split())
    if len(text) <= 80 and _CONSTANT_EXPRESSION.fullmatch(text) and re.search(r"[-+*]", text) \
            and re.search(r"[A-Z0-9]", text):
        return "=" + text
    return None


def _computed(text: str) -> str | None:
    """``~TEXT`` for a short expression the path check may compute from what it
    knows (``from & (PAGE_SIZE - 1)`` where ``from`` is 0)."""
    text = " ".join(text.split())
    return "~" + text if len(text) <= 120 and "(" not in text.split(" ", 1)[0][:1] and \
        re.fullmatch(r"[\w\s()+\-*/%&|^<>!=.~]+", text) and "=" not in text.replace(
            "==", "").replace("!=", "").replace("<=", "").replace(">=", "") else None


def _text(raw: bytes, node: Node) -> str:
    return raw[node.start_byte:node.end_byte].decode("utf-8", "replace")


def _path(text: str) -> str | None:
    """``a->b.c`` with the spaces taken out, or None for anything else."""
    text = "".join(text.split())
    return text if _PATH.fullmatch(text) else None


class _Walk:
    def __init__(self, raw: bytes, end: int) -> None:
        self.raw = raw
        self.end = end  # the function's end, relative
        self.conds: list[tuple[int, int, int, str, bool]] = []
        self.sets: list[tuple[int, int, str, str | None, int]] = []
        self.returns: list[tuple[int, str | None]] = []
        self.loops: list[tuple[int, int]] = []
        self.labels: dict[str, int] = {}
        self.loop_ends: list[int] = []

    def block(self, node: Node, scope_end: int) -> None:
        """The statements of a compound statement (or one statement as a block)."""
        children = [c for c in node.named_children if c.type != "comment"] \
            if node.type == "compound_statement" else [node]
        end = node.end_byte  # what a statement here stores holds until then
        for child in children:
            self.stmt(child, end)

    def stmt(self, node: Node, scope_end: int) -> None:
        kind = node.type
        if kind == "compound_statement":
            self.block(node, scope_end)
        elif kind == "if_statement":
            self._if(node, scope_end)
        elif kind in ("while_statement", "for_statement", "do_statement"):
            body = node.child_by_field_name("body")
            if body is None:
                return
            self.loop_ends.append(body.end_byte)
            cond = node.child_by_field_name("condition")
            if cond is not None and kind != "do_statement":
                key, value = condition_key(_text(self.raw, cond))
                self.conds.append((cond.start_byte, body.start_byte,
                                   body.end_byte, key, value))
            self.block(body, body.end_byte)
            self.loop_ends.pop()
        elif kind == "switch_statement":
            body = node.child_by_field_name("body")
            for case in body.named_children if body is not None else []:
                for child in case.named_children if case.type == "case_statement" else [case]:
                    if child != case.child_by_field_name("value") and child.type != "comment":
                        self.stmt(child, case.end_byte)
        elif kind == "labeled_statement":
            for child in node.named_children:
                if child.type not in ("statement_identifier", "comment"):
                    self.stmt(child, scope_end)
        elif kind == "return_statement":
            value = next((c for c in node.named_children if c.type != "comment"), None)
            self.returns.append((node.start_byte,
                                 constant(_text(self.raw, value)) if value is not None else None))
        elif kind in ("expression_statement", "declaration"):
            self._assignment(node, scope_end)

    def _exit_end(self, node: Node) -> int | None:
        """Where the code that follows an exiting branch stops needing its condition."""
        while node.type == "compound_statement":
            kids = [c for c in node.named_children if c.type != "comment"]
            if not kids:
                return None
            node = kids[-1]
        if node.type == "return_statement":
            return self.end
        if node.type in ("break_statement", "continue_statement"):
            return self.loop_ends[-1] if self.loop_ends else None
        if node.type == "goto_statement":
            label = node.child_by_field_name("label")
            target = self.labels.get(_text(self.raw, label)) if label is not None else None
            if target is not None and target > node.end_byte:
                return target
            return None
        if node.type == "expression_statement":
            call = node.named_children[0] if node.named_children else None
            fn = call.child_by_field_name("function") if call is not None and \
                call.type == "call_expression" else None
            if fn is not None and _text(self.raw, fn) in NORETURN:
                return self.end
        return None

    def _if(self, node: Node, scope_end: int) -> None:
        cond = node.child_by_field_name("condition")
        then = node.child_by_field_name("consequence")
        other = node.child_by_field_name("alternative")
        if cond is None or then is None:
            return
        at = cond.start_byte
        key, value = condition_key(_text(self.raw, cond))
        self.conds.append((at, then.start_byte, then.end_byte, key, value))
        self.block(then, scope_end)
        if other is not None:
            self.conds.append((at, other.start_byte, other.end_byte,
                               key, not value))
            for child in other.named_children:
                if child.type != "comment":
                    self.block(child, scope_end)
        for branch, need in ((then, not value), (other, value)):
            end = self._exit_end(branch) if branch is not None else None
            if end is not None and end > node.end_byte:
                self.conds.append((at, node.end_byte, min(end, self.end), key, need))

    def _assignment(self, node: Node, scope_end: int) -> None:
        at = node.start_byte
        if node.type == "declaration":
            for decl in node.named_children:
                if decl.type != "init_declarator":
                    continue
                name = decl.child_by_field_name("declarator")
                while name is not None and name.type == "pointer_declarator":
                    name = name.child_by_field_name("declarator")  # struct page *page = ...
                value = decl.child_by_field_name("value")
                if name is not None and name.type == "identifier" and value is not None:
                    self._set(at, scope_end, _text(self.raw, name), value)
            return
        expr = node.named_children[0] if node.named_children else None
        if expr is None:
            return
        if expr.type == "assignment_expression":
            left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
            op = expr.child_by_field_name("operator")
            lhs = _path(_text(self.raw, left)) if left is not None else None
            if lhs is None or right is None:
                return
            if op is not None and _text(self.raw, op) != "=":
                self.sets.append((at, scope_end, lhs, _adds(_text(self.raw, right)), -1))
            else:
                self._set(at, scope_end, lhs, right)
        elif expr.type == "update_expression":
            arg = expr.child_by_field_name("argument")
            lhs = _path(_text(self.raw, arg)) if arg is not None else None
            if lhs is not None:
                self.sets.append((at, scope_end, lhs, None, -1))

    def _set(self, at: int, scope_end: int, lhs: str, value: Node) -> None:
        while value.type == "parenthesized_expression" and value.named_children:
            value = value.named_children[0]
        if value.type == "call_expression":
            self.sets.append((at, scope_end, lhs, "call", value.start_byte))
        else:
            text = _text(self.raw, value)
            self.sets.append((at, scope_end, lhs, constant(text) or expression(text)
                              or _adds(text) or _computed(text), -1))


def params_of(declarator: Node | None) -> list[tuple[str, str | None]]:
    """The parameters of a function declarator, in order: (name, the struct a
    pointer parameter points to, or None)."""
    node = declarator
    while node is not None and node.type != "function_declarator":
        node = node.child_by_field_name("declarator")
    plist = node.child_by_field_name("parameters") if node is not None else None
    out: list[tuple[str, str | None]] = []
    for p in plist.named_children if plist is not None else []:
        if p.type != "parameter_declaration":
            continue
        d = p.child_by_field_name("declarator")
        pointer = d is not None and d.type == "pointer_declarator"
        while d is not None and d.type != "identifier":
            d = d.child_by_field_name("declarator") if d.type != "parenthesized_declarator" \
                else next(iter(d.named_children), None)
        kind = p.child_by_field_name("type")
        struct = None
        if pointer and kind is not None and kind.type == "struct_specifier":
            name = kind.child_by_field_name("name")
            struct = name.text.decode("utf-8", "replace") if name is not None and name.text \
                else None
        out.append((d.text.decode("utf-8", "replace") if d is not None and d.text else "",
                    struct))
    return out


class FunctionGuards:
    """Builds one function's Guards; the extractor adds call arguments as it meets them."""

    def __init__(self, function: int, node: Node, raw: bytes,
                 config: Kconfig | None = None) -> None:
        body = node.child_by_field_name("body")
        assert body is not None
        self.raw = raw
        self.config = config
        params = params_of(node.child_by_field_name("declarator"))
        self.params = [name for name, _ in params]
        self.structs = [struct for _, struct in params]
        walk = _Walk(raw, body.end_byte)  # offsets are the file's, like every other fact's
        walk.loops, walk.labels = back_regions(node, raw)
        walk.block(body, walk.end)
        self.names = {p for p in self.params if p} | {
            m.group(0) for m in (_NAME.match(lhs) for _, _, lhs, _, _ in walk.sets) if m}
        self.names.add("current")
        self.walk = walk
        self.function = function
        self.args: list[tuple[int, list[tuple[int, str]]]] = []

    def call(self, start: int, args: Node) -> None:
        """Note a call's arguments that carry knowledge: constants, known names, ``&x``."""
        found: list[tuple[int, str]] = []
        for i, arg in enumerate(a for a in args.named_children if a.type != "comment"):
            if arg.end_byte - arg.start_byte > 80:
                continue
            text = _text(self.raw, arg)
            value = constant(text) or expression(text)
            if value is None:
                address = text.lstrip().startswith("&")
                path = _path(text.lstrip().lstrip("&").strip())
                if path is None or path.split("-", 1)[0].split(".", 1)[0] not in self.names:
                    if not address:
                        continue
                    value = "&"  # the address of something: never NULL
                else:
                    value = ("&" if address else "") + path
            found.append((i, value))
        if found:
            self.args.append((start, found))

    def record(self) -> Guards | None:
        walk = self.walk
        # A label is a way in that skips every test before it: a condition holds only
        # up to the first label inside its region.
        labels = sorted(walk.labels.values())
        conds = []
        for at, start, end, cond, value in walk.conds:
            known = body_condition(cond, self.config) if self.config is not None else None
            if known is not None:  # IS_ENABLED(CONFIG_X): the kernel config decides it
                cond = "1" if known else "0"
            elif len(cond) > _MAX_COND or not self.names & set(words(cond)):
                continue
            cut = bisect.bisect_right(labels, start)
            if cut < len(labels) and labels[cut] < end:
                end = labels[cut]
            conds.append((at, start, end, cond, value))
        returns = walk.returns if any(v is not None for _, v in walk.returns) else []
        if not (conds or walk.sets or returns or self.args or any(self.structs)):
            return None
        return Guards(self.function, self.params, conds, walk.sets, returns, self.args,
                      walk.loops, self.structs)


_FUNCTIONS = "(function_definition body: (compound_statement)) @func"
_CALLS = """
(call_expression function: (identifier) arguments: (argument_list) @args) @call
(call_expression function: (field_expression) arguments: (argument_list) @args) @call
"""


class FileGuards:
    """The guards of one file's functions, built when first asked for.

    ``starts`` are the start offsets of the file's functions as the facts list
    them (FileFacts.functions): the same parse of the same bytes finds the same
    functions, and each is matched by where it starts.
    """

    def __init__(self, raw: bytes, starts: list[int], config: Kconfig | None = None) -> None:
        self.raw = raw
        self.config = config
        _masked, tree = parse_source(raw, config)
        self._tree = tree
        self._index = {s: i for i, s in enumerate(starts)}
        self._nodes: dict[int, Node] = {}
        for _, caps in matches(_FUNCTIONS, tree.root_node):
            node = caps["func"][0]
            i = self._index.get(node.start_byte)
            if i is not None:
                self._nodes[i] = node
        self._built: dict[int, Guards | None] = {}

    def get(self, function: int) -> Guards | None:
        if function not in self._built:
            node = self._nodes.get(function)
            self._built[function] = self._build(function, node) if node is not None else None
        return self._built[function]

    def _build(self, function: int, node: Node) -> Guards | None:
        builder = FunctionGuards(function, node, self.raw, self.config)
        calls = []
        for _, caps in matches(_CALLS, node):
            calls.append((caps["call"][0].start_byte, caps["args"][0]))
        for start, args in sorted(calls, key=lambda c: c[0]):
            builder.call(start, args)
        return builder.record()
