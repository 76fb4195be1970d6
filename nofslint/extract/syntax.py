"""Small syntax-tree helpers the extractor's parts share."""

from __future__ import annotations

from tree_sitter import Node, QueryCursor

from nofslint.frontend.parse import query


def node_text(raw: bytes, node: Node) -> str:
    return raw[node.start_byte:node.end_byte].decode("utf-8", "replace")


def declarator_name(node: Node | None) -> str | None:
    while node is not None:
        if node.type in ("identifier", "field_identifier"):
            return node.text.decode("utf-8", "replace") if node.text else None
        nxt = node.child_by_field_name("declarator")
        if nxt is None:
            nxt = next((c for c in node.named_children if c.type.endswith("declarator")
                        or c.type == "identifier"), None)
        node = nxt
    return None


def unwrap(node: Node) -> Node:
    """Look through parentheses, casts and ``&``: they name the same storage."""
    while True:
        if node.type == "parenthesized_expression":
            inner = next((c for c in node.named_children if c.type != "comment"), None)
        elif node.type == "cast_expression":
            inner = node.child_by_field_name("value")
        elif node.type == "pointer_expression" and node.child_by_field_name("operator") is not \
                None and node.child_by_field_name("operator").type == "&":
            inner = node.child_by_field_name("argument")
        else:
            return node
        if inner is None:
            return node
        node = inner


def matches(pattern: str, node: Node) -> list[tuple[int, dict[str, list[Node]]]]:
    return QueryCursor(query(pattern)).matches(node)


_BACK_QUERY = """
[(while_statement) (for_statement) (do_statement)] @loop
(labeled_statement label: (statement_identifier) @label) @labeled
(goto_statement label: (statement_identifier) @target) @goto
"""


def back_regions(func: Node, raw: bytes) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """Spans of a function control can come back into (loop statements, and from a
    label to a later ``goto`` to it), and where each label starts."""
    found: list[tuple[int, int]] = []
    labels: dict[str, int] = {}
    gotos: list[tuple[str, int]] = []
    for _, caps in matches(_BACK_QUERY, func):
        if "loop" in caps:
            loop = caps["loop"][0]
            found.append((loop.start_byte, loop.end_byte))
        elif "label" in caps:
            labels[node_text(raw, caps["label"][0])] = caps["labeled"][0].start_byte
        else:
            gotos.append((node_text(raw, caps["target"][0]), caps["goto"][0].end_byte))
    found += [(labels[name], end) for name, end in gotos if name in labels and labels[name] < end]
    return found, labels
