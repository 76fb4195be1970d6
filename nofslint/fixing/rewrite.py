"""Scope rewrites: put one statement inside memalloc_{nofs,noio}_save()/restore().

The rewrite is balanced by construction: the scope covers exactly one
statement with no way out of it (no return, goto, break or continue inside),
so the restore runs on every path. Where that cannot be guaranteed no fix is
offered. Kernel style: the flag is declared with the function's other
declarations, tabs are kept, and a one-line comment says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tree_sitter import Node

from nofslint.fixing.fixes import FixSource
from nofslint.frontend.parse import captures
from nofslint.model.findings import Edit

_BRACELESS_PARENTS = {"if_statement", "else_clause", "while_statement", "for_statement",
                      "do_statement"}
_EXITS = "(return_statement) @x (goto_statement) @x (break_statement) @x (continue_statement) @x"
_COMMENT_TAIL = re.compile(rb"[ \t]*(?:/\*[^\n]*?\*/[ \t]*|//[^\n]*)?(?=\n|$)")


def _exact(root: Node, start: int, end: int, kind: str) -> Node | None:
    node: Node | None = root.descendant_for_byte_range(start, end)
    while node is not None:
        if node.type == kind and node.start_byte == start and node.end_byte == end:
            return node
        if node.start_byte < start or node.end_byte > end:
            return None
        node = node.parent
    return None


def _ancestor(node: Node, kind: str) -> Node | None:
    cur = node.parent
    while cur is not None and cur.type != kind:
        cur = cur.parent
    return cur


def _line_start(raw: bytes, pos: int) -> int:
    return raw.rfind(b"\n", 0, pos) + 1


def _indent(raw: bytes, pos: int) -> str:
    start = _line_start(raw, pos)
    m = re.match(rb"[ \t]*", raw[start:pos + 1])
    return m.group(0).decode() if m else ""


def _starts_line(raw: bytes, pos: int) -> bool:
    return raw[_line_start(raw, pos):pos].strip() == b""


def _stmt_end(raw: bytes, end: int) -> int:
    """End of a statement including a trailing comment on its line."""
    m = _COMMENT_TAIL.match(raw, end)
    return m.end() if m else end


def _has_exit(node: Node) -> bool:
    return bool(captures(_EXITS, node))


_LOOPS = ("while_statement", "for_statement", "do_statement")


def _unique(base: str, used: set[str]) -> str:
    name, n = base, 2
    while name in used:
        name, n = f"{base}{n}", n + 1
    return name


def _return_type(func: Node, raw: bytes) -> str | None:
    """Spelling of the function's return type ('void *', 'struct foo *')."""
    type_node = func.child_by_field_name("type")
    if type_node is None:
        return None
    quals = [raw[c.start_byte:c.end_byte].decode() for c in func.children
             if c.type == "type_qualifier"]
    stars = 0
    decl = func.child_by_field_name("declarator")
    while decl is not None and decl.type != "function_declarator":
        if decl.type == "pointer_declarator":
            stars += 1
        decl = decl.child_by_field_name("declarator")
    base = " ".join([*quals, raw[type_node.start_byte:type_node.end_byte].decode()])
    if base == "void" and stars == 0:
        return None
    return base + (" " + "*" * stars if stars else "")


@dataclass
class ScopeWrap:
    """Fix: run the statement holding a call inside a NOFS/NOIO scope.

    ``mask`` is the byte span of the gfp argument and ``new_mask`` its
    replacement (e.g. GFP_KERNEL with the original modifiers), or None to
    leave the arguments as they are.
    """

    call_start: int
    call_end: int
    kind: str  # 'nofs' or 'noio'
    comment: str
    mask: tuple[int, int] | None = None
    new_mask: str | None = None
    around_loop: bool = False  # wrap the outermost loop holding the call (a worker's loop)

    def build(self, source: FixSource) -> list[Edit] | None:
        raw = source.raw
        root = source.tree.root_node
        call = _exact(root, self.call_start, self.call_end, "call_expression")
        if call is None:
            return None
        func = _ancestor(call, "function_definition")
        body = func.child_by_field_name("body") if func is not None else None
        if func is None or body is None:
            return None
        used = self._start(source, func)

        stmt = call.parent
        while stmt is not None and not (stmt.type.endswith("_statement")
                                        or stmt.type == "declaration"):
            stmt = stmt.parent
        if stmt is None or stmt.parent is None:
            return None
        if self.around_loop:
            loop = _outermost_loop(stmt, body)
            if loop is not None and not _escapes(loop):
                edits = self._wrap(raw, loop, [raw[loop.start_byte:_stmt_end(
                    raw, loop.end_byte)].decode("utf-8", "replace")])
                return [*edits, *self._decl_edits(raw, body)] if edits is not None else None
        if stmt.type == "expression_statement":
            if _has_exit(stmt):
                return None
            edits = self._wrap(raw, stmt, [self._patched(raw, stmt.start_byte,
                                                        _stmt_end(raw, stmt.end_byte))])
        elif stmt.type == "return_statement":
            edits = self._return(raw, func, stmt, used)
        elif stmt.type == "declaration":
            edits = self._declaration(raw, body, stmt, call)
        elif stmt.type == "if_statement":
            edits = self._hoist_condition(raw, stmt, call)
        else:
            return None
        if edits is None:
            return None
        return [*edits, *self._decl_edits(raw, body)]

    # -- pieces -------------------------------------------------------------------
    def _start(self, source: FixSource, func: Node) -> set[str]:
        """Pick the flag's name and the save/restore lines; the names now in use."""
        used = set(re.findall(r"[A-Za-z_]\w*", source.text(func.start_byte, func.end_byte)))
        flag = _unique(f"{self.kind}_flag", used)
        used.add(flag)
        self._decls: list[str] = [f"unsigned int {flag};"]
        self._body_lines: list[str] | None = None
        self._save = f"{flag} = memalloc_{self.kind}_save();"
        self._restore = f"memalloc_{self.kind}_restore({flag});"
        return used

    def _patched(self, raw: bytes, start: int, end: int) -> str:
        """Source text of [start, end) with the mask argument replaced."""
        if self.mask and self.new_mask is not None and start <= self.mask[0] < self.mask[1] <= end:
            s, e = self.mask
            return (raw[start:s] + self.new_mask.encode() + raw[e:end]).decode()
        return raw[start:end].decode("utf-8", "replace")

    def _scoped(self, inner: list[str]) -> list[str]:
        return [f"/* {self.comment} */", self._save, *inner, self._restore]

    def _wrap(self, raw: bytes, stmt: Node, inner: list[str],
              after: list[str] | None = None) -> list[Edit] | None:
        """Replace ``stmt`` by the scoped lines, adding braces where C needs them."""
        lines = [*self._scoped(inner), *(after or [])]
        end = _stmt_end(raw, stmt.end_byte)
        if stmt.parent is not None and stmt.parent.type in _BRACELESS_PARENTS:
            header = stmt.prev_sibling
            if header is None:
                return None
            outer = _indent(raw, header.end_byte - 1)
            inner_ind = _indent(raw, stmt.start_byte) if _starts_line(raw, stmt.start_byte) \
                else outer + "\t"
            text = " {\n" + "\n".join(inner_ind + ln for ln in lines) + "\n" + outer + "}"
            other = stmt.next_sibling
            while other is not None and other.type == "comment":
                other = other.next_sibling
            if other is None or other.type != "else_clause":
                return [Edit(header.end_byte, end, text)]
            # Kernel style: "} else", and braces on both arms once one has them.
            edits = [Edit(header.end_byte, other.start_byte, text + " ")]
            arm = other.named_children[-1] if other.named_children else None
            keyword = other.children[0]
            if arm is not None and arm.type not in ("compound_statement", "if_statement"):
                arm_end = _stmt_end(raw, arm.end_byte)
                arm_ind = _indent(raw, arm.start_byte) if _starts_line(raw, arm.start_byte) \
                    else outer + "\t"
                edits.append(Edit(keyword.end_byte, arm_end, " {\n" + arm_ind
                                  + raw[arm.start_byte:arm_end].decode("utf-8", "replace")
                                  + "\n" + outer + "}"))
            return edits
        if not _starts_line(raw, stmt.start_byte):
            return None
        ind = _indent(raw, stmt.start_byte)
        return [Edit(stmt.start_byte, end, ("\n" + ind).join(lines))]

    def _return(self, raw: bytes, func: Node, stmt: Node, used: set[str]) -> list[Edit] | None:
        expr = next((c for c in stmt.named_children if c.type != "comment"), None)
        if expr is None or _has_exit(expr):
            return None
        left = expr.child_by_field_name("left") if expr.type == "assignment_expression" else None
        op = expr.child_by_field_name("operator") if left is not None else None
        if left is not None and op is not None and op.text == b"=":
            value = raw[left.start_byte:left.end_byte].decode()
            inner = [self._patched(raw, expr.start_byte, expr.end_byte) + ";"]
        else:
            rtype = _return_type(func, raw)
            if rtype is None:
                return None
            value = _unique("ptr", used)
            sep = "" if rtype.endswith("*") else " "
            self._decls.append(f"{rtype}{sep}{value};")
            inner = [f"{value} = {self._patched(raw, expr.start_byte, expr.end_byte)};"]
        tail = raw[stmt.end_byte:_stmt_end(raw, stmt.end_byte)].decode("utf-8", "replace")
        return self._wrap(raw, stmt, inner, [f"return {value};{tail}"])

    def _declaration(self, raw: bytes, body: Node, decl: Node, call: Node) -> list[Edit] | None:
        inits = [c for c in decl.named_children if c.type == "init_declarator"]
        if len(inits) != 1 or _has_exit(decl):
            return None
        init = inits[0]
        value = init.child_by_field_name("value")
        declarator = init.child_by_field_name("declarator")
        if value is None or declarator is None or not (
                value.start_byte <= call.start_byte and call.end_byte <= value.end_byte):
            return None
        name_node = declarator
        while name_node is not None and name_node.type == "pointer_declarator":
            name_node = name_node.child_by_field_name("declarator")
        if name_node is None or name_node.type != "identifier":
            return None
        name = raw[name_node.start_byte:name_node.end_byte].decode()
        block = decl.parent
        if block is None or block.type != "compound_statement":
            return None
        # The initialisation moves below the block's declarations; later
        # declarations must not read the variable before it is set.
        run = _leading_declarations(block)
        if decl not in run:
            last = decl
            later: list[Node] = []
        else:
            last = run[-1]
            later = run[run.index(decl) + 1:]
        for other in later:
            word = rb"\b" + re.escape(name.encode()) + rb"\b"
            if re.search(word, raw[other.start_byte:other.end_byte]):
                return None
        strip = Edit(declarator.end_byte, value.end_byte, "")
        inner = [f"{name} = {self._patched(raw, value.start_byte, value.end_byte)};"]
        lines = self._scoped(inner)
        ind = _indent(raw, decl.start_byte)
        at = _stmt_end(raw, last.end_byte)
        if block == body:
            # Same place as the flag declaration: one edit keeps the order.
            self._body_lines = lines
            return [strip]
        text = "\n\n" + "\n".join(ind + ln for ln in lines)
        return [strip, Edit(at, at, text)]

    def _hoist_condition(self, raw: bytes, ifs: Node, call: Node) -> list[Edit] | None:
        cond = ifs.child_by_field_name("condition")
        if cond is None or not (cond.start_byte <= call.start_byte < cond.end_byte):
            return None
        node = call.parent
        while node is not None and node.type == "parenthesized_expression":
            node = node.parent
        if node is None or node.type != "assignment_expression":
            return None
        op = node.child_by_field_name("operator")
        left = node.child_by_field_name("left")
        if op is None or op.text != b"=" or left is None:
            return None
        # Only when the assignment is the first thing the condition evaluates.
        replace = node
        cur = node.parent
        while cur is not None and cur != cond:
            if cur.type == "parenthesized_expression":
                if cur.parent is not None and cur.parent.type == "unary_expression":
                    replace = cur
            elif cur.type == "unary_expression" and cur.child(0) and cur.child(0).text == b"!":
                pass
            elif cur.type == "binary_expression" and cur.child_by_field_name("operator") and \
                    cur.child_by_field_name("operator").text in (b"==", b"!="):
                other = cur.child_by_field_name("right")
                if other is None or other.type not in ("null", "identifier", "number_literal"):
                    return None
            else:
                return None
            cur = cur.parent
        if ifs.parent is None or ifs.parent.type not in ("compound_statement", "case_statement"):
            return None
        if not _starts_line(raw, ifs.start_byte):
            return None
        left_text = raw[left.start_byte:left.end_byte].decode()
        ind = _indent(raw, ifs.start_byte)
        lines = self._scoped([self._patched(raw, node.start_byte, node.end_byte) + ";"])
        return [Edit(ifs.start_byte, ifs.start_byte, ("\n" + ind).join(lines) + "\n" + ind),
                Edit(replace.start_byte, replace.end_byte, left_text)]

    def _decl_edits(self, raw: bytes, body: Node) -> list[Edit]:
        """The flag (and temporaries) declared with the function's declarations."""
        run = _leading_declarations(body)
        first = next((c for c in body.named_children if c.type != "comment"), None)
        ind = _indent(raw, first.start_byte) if first is not None else "\t"
        if run:
            at = _stmt_end(raw, run[-1].end_byte)
            edits = [Edit(at, at, f"\n{ind}{d}") for d in self._decls]
        else:
            at = body.start_byte + 1
            edits = [Edit(at, at, f"\n{ind}{d}") for d in self._decls]
            edits.append(Edit(at, at, "\n", order=1))
        if self._body_lines:
            text = "\n\n" + "\n".join(ind + ln for ln in self._body_lines)
            edits.append(Edit(at, at, text, order=2))
        return edits


def _outermost_loop(stmt: Node, body: Node) -> Node | None:
    found = None
    cur: Node | None = stmt
    while cur is not None and cur != body:
        if cur.type in _LOOPS:
            found = cur
        cur = cur.parent
    return found


def _leading_declarations(block: Node) -> list[Node]:
    run: list[Node] = []
    for child in block.named_children:
        if child.type == "comment":
            continue
        if child.type != "declaration":
            break
        run.append(child)
    return run


@dataclass
class SectionWrap(ScopeWrap):
    """Fix: one scope over the statements holding several calls, masks rewritten inside.

    The statements are the children of the innermost block holding every call,
    from the first to the last. No fix when the range declares variables (the
    scope would put code before declarations) or can leave the range other
    than at its end (return, goto, a break or continue to a loop outside it).
    """

    calls: list[tuple[int, int]] = field(default_factory=list)
    nofs_masks: list[tuple[int, int]] = field(default_factory=list)  # GFP_NOFS -> GFP_KERNEL

    def build(self, source: FixSource) -> list[Edit] | None:
        raw = source.raw
        root = source.tree.root_node
        nodes = [_exact(root, s, e, "call_expression") for s, e in self.calls]
        if not nodes or any(n is None for n in nodes):
            return None
        func = _ancestor(nodes[0], "function_definition")  # type: ignore[arg-type]
        body = func.child_by_field_name("body") if func is not None else None
        if func is None or body is None:
            return None
        block = _common_block(nodes)  # type: ignore[arg-type]
        if block is None:
            return None
        tops = [_child_of(n, block) for n in nodes]  # type: ignore[arg-type]
        kids = [c for c in block.named_children if c.type != "comment"]
        if any(t is None or t not in kids for t in tops):
            return None
        first = min(kids.index(t) for t in tops)  # type: ignore[arg-type]
        last = max(kids.index(t) for t in tops)  # type: ignore[arg-type]
        section = kids[first:last + 1]
        if any(s.type in ("declaration", "labeled_statement") or _escapes(s)
               for s in section) or not _starts_line(raw, section[0].start_byte):
            return None
        self._start(source, func)
        start, end = section[0].start_byte, _stmt_end(raw, section[-1].end_byte)
        ind = _indent(raw, start)
        edits = [Edit(start, start, f"/* {self.comment} */\n{ind}{self._save}\n{ind}"),
                 Edit(end, end, f"\n{ind}{self._restore}")]
        for s, e in self.nofs_masks:
            swap = NofsToKernel(s, e).build(source)
            if swap is None or not start <= s < e <= end:
                return None
            edits.extend(swap)
        return [*edits, *self._decl_edits(raw, body)]


@dataclass
class NofsToKernel:
    """Fix: the mask's one ``GFP_NOFS`` becomes ``GFP_KERNEL`` (a scope covers it)."""

    start: int
    end: int

    def build(self, source: FixSource) -> list[Edit] | None:
        text = source.text(self.start, self.end)
        found = list(re.finditer(r"\bGFP_NOFS\b", text))
        if len(found) != 1 or "__GFP_FS" in text:
            return None
        at = self.start + len(text[:found[0].start()].encode())
        return [Edit(at, at + len("GFP_NOFS"), "GFP_KERNEL")]


@dataclass
class KernelToNofs:
    """Fix: the mask's one ``GFP_KERNEL`` becomes ``GFP_NOFS``, where the mask is written
    (every path to the allocation needs it: the one-line change a reviewer asks for)."""

    start: int
    end: int

    def build(self, source: FixSource) -> list[Edit] | None:
        text = source.text(self.start, self.end)
        found = list(re.finditer(r"\bGFP_KERNEL\b", text))
        if len(found) != 1:
            return None
        at = self.start + len(text[:found[0].start()].encode())
        return [Edit(at, at + len("GFP_KERNEL"), "GFP_NOFS")]


def _common_block(nodes: list[Node]) -> Node | None:
    chains = []
    for n in nodes:
        chain, cur = [], n.parent
        while cur is not None:
            if cur.type == "compound_statement":
                chain.append(cur)
            cur = cur.parent
        chains.append(chain)
    for block in chains[0]:
        if all(any(b.id == block.id for b in c) for c in chains[1:]):
            return block
    return None


def _child_of(node: Node, block: Node) -> Node | None:
    cur: Node | None = node
    while cur is not None and cur.parent is not None and cur.parent.id != block.id:
        cur = cur.parent
    return cur


def _escapes(stmt: Node) -> bool:
    """Can control leave ``stmt`` other than by falling through its end?"""
    for node in captures(_EXITS, stmt).get("x", []):
        if node.type in ("return_statement", "goto_statement"):
            return True
        owners = _LOOPS + (("switch_statement",) if node.type == "break_statement" else ())
        cur = node.parent
        while cur is not None and cur.id != stmt.id and cur.type not in owners:
            cur = cur.parent
        if cur is None or cur.id == stmt.id and stmt.type not in owners:
            return True
    return False
