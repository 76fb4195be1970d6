"""Control flow inside one function, built from its syntax tree (model.flow records).

The graph is built at extraction time and stored with the facts as plain
data, only for the functions that need one; rules walk it (analysis.paths),
they never re-parse. Loops, ``switch``, ``goto``, ``break``/``continue``,
``return``, ``do ... while (0)`` and a conditional expression at the top of a
statement are modelled; calls that never return (``BUG()``, ``panic()``) end a
path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tree_sitter import Node

from nofslint.kernel.kconfig import Kconfig, body_condition
from nofslint.model.flow import Block, Flow, condition_key

NORETURN = frozenset({"BUG", "panic", "do_exit", "kthread_exit", "unreachable",
                      "__builtin_unreachable", "make_task_dead", "machine_halt"})
_IDENT = re.compile(r"[A-Za-z_]\w*")
_CONST_TRUE = {"1", "true"}
_CONST_FALSE = {"0", "false"}


def _text(raw: bytes, node: Node) -> str:
    return raw[node.start_byte:node.end_byte].decode("utf-8", "replace")


class _Builder:
    def __init__(self, raw: bytes, config: Kconfig | None = None) -> None:
        self.raw = raw
        self.config = config
        self.blocks: list[Block] = []
        self.labels: dict[str, int] = {}
        self.breaks: list[int] = []
        self.continues: list[int] = []

    def new(self) -> int:
        self.blocks.append(Block())
        return len(self.blocks) - 1

    def edge(self, src: int | None, dst: int, cond: str | None = None, value: bool = True) -> None:
        if src is not None:
            self.blocks[src].succs.append((dst, cond, value))

    def label(self, name: str) -> int:
        if name not in self.labels:
            self.labels[name] = self.new()
        return self.labels[name]

    def span(self, cur: int, node: Node, start: int | None = None, end: int | None = None) -> None:
        s = node.start_byte if start is None else start
        e = node.end_byte if end is None else end
        if e > s:
            block = self.blocks[cur]
            block.spans.append((s, e))
            written = _writes(node, self.raw, s, e)
            if written:
                block.writes.extend(written)
                block.sets = [v for v in block.sets if v[0] not in written]
                block.sets.extend(_constant_sets(self.raw[s:e]))

    # -- statements ------------------------------------------------------------
    def stmt(self, node: Node, cur: int | None) -> int | None:
        kind = node.type
        if cur is None and kind not in ("labeled_statement", "case_statement"):
            cur = self.new()  # unreachable code still gets a block: labels inside it matter
        handler = getattr(self, "_" + kind, None)
        if handler is not None:
            return handler(node, cur)
        if cur is None:  # a case label outside any switch: what error recovery leaves
            cur = self.new()
        self.span(cur, node)
        return cur

    def seq(self, nodes: Iterable[Node], cur: int | None) -> int | None:
        for child in nodes:
            if child.is_named and child.type != "comment":
                cur = self.stmt(child, cur)
        return cur

    def _compound_statement(self, node: Node, cur: int | None) -> int | None:
        return self.seq(node.children, cur)

    def _expression_statement(self, node: Node, cur: int) -> int | None:
        ternary = _top_ternary(node)
        if ternary is not None:
            return self._ternary(node, ternary, cur)
        self.span(cur, node)
        return None if _noreturn(node, self.raw) else cur

    def _declaration(self, node: Node, cur: int) -> int | None:
        ternary = _top_ternary(node)
        if ternary is not None:
            return self._ternary(node, ternary, cur)
        self.span(cur, node)
        return cur

    def _ternary(self, stmt: Node, ternary: Node, cur: int) -> int | None:
        cond = ternary.child_by_field_name("condition")
        then = ternary.child_by_field_name("consequence")
        other = ternary.child_by_field_name("alternative")
        if cond is None or then is None or other is None:
            self.span(cur, stmt)
            return cur
        self.span(cur, stmt, stmt.start_byte, then.start_byte)
        key, value = condition_key(_text(self.raw, cond))
        join = self.new()
        for branch, when, start, end in ((then, value, then.start_byte, other.start_byte),
                                         (other, not value, other.start_byte,
                                          other.end_byte)):
            block = self.new()
            self.edge(cur, block, key, when)
            self.span(block, branch, start, end)
            self.edge(block, join)
        self.span(join, stmt, ternary.end_byte, stmt.end_byte)
        if stmt.type == "return_statement":
            self.blocks[join].exit = stmt.end_point[0] + 1
            return None
        return join

    def _return_statement(self, node: Node, cur: int) -> None:
        ternary = _top_ternary(node)
        if ternary is not None:
            self._ternary(node, ternary, cur)
            return None
        self.span(cur, node)
        self.blocks[cur].exit = node.start_point[0] + 1
        return None

    def _if_statement(self, node: Node, cur: int) -> int | None:
        cond = node.child_by_field_name("condition")
        then = node.child_by_field_name("consequence")
        other = node.child_by_field_name("alternative")
        key, value = (None, True)
        if cond is not None:
            self.span(cur, cond)
            key, value = condition_key(_text(self.raw, cond))
            if self.config is not None:
                known = body_condition(key, self.config)
                if known is not None:  # IS_ENABLED(CONFIG_X): the config decides the branch
                    key = "1" if known else "0"
        constant = key in _CONST_TRUE and value or key in _CONST_FALSE and not value
        never = key in _CONST_TRUE and not value or key in _CONST_FALSE and value
        then_block, alt = self.new(), self.new()
        if not never:
            self.edge(cur, then_block, key, value)
        if not constant:
            self.edge(cur, alt, key, not value)
        ends = [self.stmt(then, then_block) if then is not None else then_block,
                self.seq(other.children, alt) if other is not None else alt]
        if all(e is None for e in ends):
            return None
        join = self.new()
        for end in ends:
            self.edge(end, join)
        return join

    def _loop(self, cur: int, cond: Node | None, body: Node | None,
              update: Node | None, first_body: bool) -> int | None:
        head, after, step = self.new(), self.new(), self.new()
        key = condition_key(_text(self.raw, cond))[0] if cond is not None else "1"
        forever = cond is None or key in _CONST_TRUE
        once = key in _CONST_FALSE  # do { } while (0)
        if cond is not None:
            self.span(head, cond)
        body_block = self.new()
        self.edge(cur, body_block if first_body else head)
        if not once:
            self.edge(head, body_block)
        if not forever:
            self.edge(head, after)
        self.breaks.append(after)
        self.continues.append(step)
        end = self.stmt(body, body_block) if body is not None else body_block
        self.breaks.pop()
        self.continues.pop()
        self.edge(end, step)
        if update is not None:
            self.span(step, update)
        self.edge(step, head)
        return after

    def _while_statement(self, node: Node, cur: int) -> int | None:
        return self._loop(cur, node.child_by_field_name("condition"),
                          node.child_by_field_name("body"), None, False)

    def _do_statement(self, node: Node, cur: int) -> int | None:
        return self._loop(cur, node.child_by_field_name("condition"),
                          node.child_by_field_name("body"), None, True)

    def _for_statement(self, node: Node, cur: int) -> int | None:
        init = node.child_by_field_name("initializer")
        if init is not None:
            self.span(cur, init)
        return self._loop(cur, node.child_by_field_name("condition"),
                          node.child_by_field_name("body"),
                          node.child_by_field_name("update"), False)

    def _switch_statement(self, node: Node, cur: int) -> int | None:
        cond = node.child_by_field_name("condition")
        if cond is not None:
            self.span(cur, cond)
        body = node.child_by_field_name("body")
        after = self.new()
        self.breaks.append(after)
        prev: int | None = None
        has_default = False
        for child in body.named_children if body is not None else []:
            if child.type == "case_statement":
                block = self.new()
                self.edge(cur, block)
                self.edge(prev, block)  # fall through
                value = child.child_by_field_name("value")
                has_default = has_default or value is None
                prev = self.seq([c for c in child.children if c != value], block)
            elif child.type != "comment":
                prev = self.stmt(child, prev)
        self.breaks.pop()
        self.edge(prev, after)
        if not has_default:
            self.edge(cur, after)
        return after

    def _labeled_statement(self, node: Node, cur: int | None) -> int | None:
        label = node.child_by_field_name("label")
        block = self.label(_text(self.raw, label)) if label is not None else self.new()
        self.edge(cur, block)
        return self.seq([c for c in node.children if c != label], block)

    def _goto_statement(self, node: Node, cur: int) -> None:
        label = node.child_by_field_name("label")
        if label is not None:
            self.edge(cur, self.label(_text(self.raw, label)))
        return None

    def _break_statement(self, node: Node, cur: int) -> None:
        if self.breaks:
            self.edge(cur, self.breaks[-1])
        return None

    def _continue_statement(self, node: Node, cur: int) -> None:
        if self.continues:
            self.edge(cur, self.continues[-1])
        return None


def _top_ternary(stmt: Node) -> Node | None:
    """The conditional expression a statement is made of (``x = c ? a : b;``), if any."""
    node: Node | None = stmt.named_children[0] if stmt.named_children else None
    if stmt.type == "declaration":
        inits = [c for c in stmt.named_children if c.type == "init_declarator"]
        node = inits[-1].child_by_field_name("value") if len(inits) == 1 else None
    while node is not None:
        if node.type == "conditional_expression":
            return node
        if node.type == "parenthesized_expression":
            node = node.named_children[0] if node.named_children else None
        elif node.type == "assignment_expression":
            node = node.child_by_field_name("right")
        else:
            return None
    return None


def _noreturn(stmt: Node, raw: bytes) -> bool:
    expr = stmt.named_children[0] if stmt.named_children else None
    if expr is None or expr.type != "call_expression":
        return False
    fn = expr.child_by_field_name("function")
    return fn is not None and fn.type == "identifier" and _text(raw, fn) in NORETURN


_WRITE_PATTERN = re.compile(
    rb"([A-Za-z_][\w.>-]*)\s*(?:[-+*/%&|^]|<<|>>)?=(?!=)|(?:\+\+|--)\s*([A-Za-z_]\w*)"
    rb"|([A-Za-z_]\w*)\s*(?:\+\+|--)|&\s*([A-Za-z_][\w.>-]*)")


_CONSTANT_SET = re.compile(rb"(?<![\w.>])([A-Za-z_]\w*)\s*=(?!=)\s*(true|false|1|0|NULL)\s*[;,]")


def _constant_sets(text: bytes) -> list[tuple[str, bool]]:
    """``flag = true;`` statements: the value a later ``if (flag)`` will see."""
    out: dict[str, bool] = {}
    for m in _CONSTANT_SET.finditer(text):
        out[m.group(1).decode()] = m.group(2) in (b"true", b"1")
    return list(out.items())


def _writes(node: Node, raw: bytes, start: int, end: int) -> list[str]:
    """Identifiers a span may assign: ``x = ``, ``x |=``, ``x++``, ``&x`` passed out."""
    text = raw[start:end]
    if b"=" not in text and b"++" not in text and b"--" not in text and b"&" not in text:
        return []
    out: set[str] = set()
    for m in _WRITE_PATTERN.finditer(text):
        name = next(g for g in m.groups() if g is not None).decode("utf-8", "replace")
        if m.group(1) is not None and text[m.end(1):m.end()].strip() in (b"<=", b">=", b"!="):
            continue
        if m.group(4) is not None:  # '&x' takes an address; 'a & x' and 'a && x' do not
            before = text[:m.start()].rstrip()[-1:]
            if before and (before.isalnum() or before in b"_)]&"):
                continue
        out.update(_IDENT.findall(name))
    return sorted(out)


def build(function: int, body: Node, raw: bytes, results_of: Iterable[int] = (),
          config: Kconfig | None = None) -> Flow:
    """The graph of one function body (a compound_statement).

    ``results_of``: start offsets of calls whose result variable to record. With a
    kernel ``config``, ``if (IS_ENABLED(CONFIG_X))`` is a constant condition.
    """
    builder = _Builder(raw, config)
    entry = builder.new()
    end = builder.seq(body.children, entry)
    if end is not None:
        builder.blocks[end].exit = body.end_point[0] + 1
    results = {}
    for start in results_of:
        var = _result_variable(body, start, raw)
        if var is not None:
            results[start] = var
    return Flow(function, builder.blocks, results)


def _result_variable(body: Node, start: int, raw: bytes) -> str | None:
    """``x`` in ``x = call(...)`` or ``T x = call(...)``, for the call starting at ``start``."""
    node: Node | None = body.descendant_for_byte_range(start, start + 1)
    while node is not None and not (node.type == "call_expression" and node.start_byte == start):
        node = node.parent
    parent = node.parent if node is not None else None
    while parent is not None and parent.type == "parenthesized_expression":
        parent = parent.parent
    if parent is None:
        return None
    if parent.type == "assignment_expression":
        left = parent.child_by_field_name("left")
        return " ".join(_text(raw, left).split()) if left is not None else None
    if parent.type == "init_declarator":
        decl = parent.child_by_field_name("declarator")
        while decl is not None and decl.type != "identifier":
            decl = decl.child_by_field_name("declarator")
        return _text(raw, decl) if decl is not None else None
    return None


