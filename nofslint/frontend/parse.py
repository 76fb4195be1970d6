"""tree-sitter-c parsing of masked kernel C.

One parser per process: tree-sitter parsers are not thread safe, and worker
processes each build their own on first use.
"""

from __future__ import annotations

from functools import lru_cache

import tree_sitter_c
from tree_sitter import Language, Node, Parser, Query, QueryCursor, Tree

from nofslint.frontend.mask import mask
from nofslint.kernel.kconfig import Kconfig

C_LANGUAGE = Language(tree_sitter_c.language())


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(C_LANGUAGE)


@lru_cache(maxsize=64)
def query(source: str) -> Query:
    """Compile a query once per process; compiling is far slower than running."""
    return Query(C_LANGUAGE, source)


def captures(pattern: str, node: Node) -> dict[str, list[Node]]:
    return QueryCursor(query(pattern)).captures(node)


def parse_masked(masked: bytes) -> Tree:
    return _parser().parse(masked)


def parse_source(raw: bytes, config: Kconfig | None = None) -> tuple[bytes, Tree]:
    """Mask kernel macros (offsets unchanged) and parse; returns (masked, tree).

    With a kernel ``config``, conditionals keep the branch it compiles (mask.mask).
    """
    masked = mask(raw, config)
    return masked, parse_masked(masked)


def function_error_counts(tree: Tree) -> tuple[int, int]:
    """(function definitions, those containing an ERROR or MISSING node)."""
    funcs = captures("(function_definition) @f", tree.root_node).get("f", [])
    return len(funcs), sum(1 for f in funcs if f.has_error)
