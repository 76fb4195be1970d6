"""The call graph's walks: the forward bound on backward distances changes nothing
a forward walk can use (wq-flush-reclaim relies on it to skip most of the tree)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nofslint.extract.facts import extract
from nofslint.kernel.tree import KernelTree
from nofslint.link.index import Ref, TreeIndex
from nofslint.model.facts import FileFacts

TREE = KernelTree(None, (6, 12), "default")


def _index(files: dict[str, str]) -> TreeIndex:
    index = TreeIndex()
    for rel, text in sorted(files.items()):
        facts = FileFacts.from_data(extract(text.encode(), rel, TREE).to_data())
        index.add(facts, TREE, Path("/t") / rel)
    return index


def _graph_source(edges: list[list[int]], ops: list[int]) -> dict[str, str]:
    """Functions f0..fN calling each other; the ``ops`` ones are stored in a table and
    called through ``->run`` by f0 (in fs/a/, so the dispatch is local)."""
    body = []
    for i, callees in enumerate(edges):
        calls = "".join(f"f{j}(); " for j in callees)
        if i == 0 and ops:
            calls += "o->run(); "
        body.append(f"void f{i}(struct ops *o) {{ {calls}}}\n")
    table = ", ".join(f".run = f{j}" for j in ops[:1])
    if table:
        body.append(f"static const struct ops tbl = {{ {table} }};\n")
    return {"fs/a/a.c": "".join(body)}


def _by_name(index: TreeIndex, dist: dict[Ref, int]) -> dict[str, int]:
    return {index.function(ref).name: d for ref, d in dist.items()}


def test_bounded_distances_on_a_chain() -> None:
    # f0 -> f1 -> f2 -> f3 (the target); f4 -> f3 but f4 is not reachable from f0.
    index = _index(_graph_source([[1], [2], [3], [], [3]], []))
    ref = {index.function((0, i)).name: (0, i) for i in range(5)}
    ahead = index.reachable([ref["f0"]], 10)
    assert _by_name(index, ahead) == {"f0": 0, "f1": 1, "f2": 2, "f3": 3}
    full = index.distances({ref["f3"]: 0}, 10)
    assert _by_name(index, full) == {"f3": 0, "f2": 1, "f4": 1, "f1": 2, "f0": 3}
    bounded = index.distances({ref["f3"]: 0}, 10, within=ahead)
    assert _by_name(index, bounded) == {"f3": 0, "f2": 1, "f1": 2, "f0": 3}
    # A limit too short for the whole chain keeps only what a walk can still use.
    assert _by_name(index, index.distances({ref["f3"]: 0}, 2, within=index.reachable(
        [ref["f0"]], 2))) == {"f3": 0}


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=2, max_value=9).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.integers(0, n - 1), max_size=3), min_size=n, max_size=n),
    st.lists(st.integers(0, n - 1), max_size=1),
    st.integers(0, n - 1), st.integers(1, 6))))
def test_bounded_distances_agree_where_a_walk_can_use_them(
        case: tuple[list[list[int]], list[int], int, int]) -> None:
    edges, ops, target, limit = case
    index = _index(_graph_source(edges, ops))
    refs = [(0, i) for i in range(len(index.files[0].facts.functions))]
    start = refs[0]
    ahead = index.reachable([start], limit)
    full = index.distances({refs[target]: 0}, limit, dispatch=True)
    bounded = index.distances({refs[target]: 0}, limit, dispatch=True, within=ahead)
    assert set(bounded) <= set(full)
    for ref, d in full.items():
        if ref in ahead and ahead[ref] + d <= limit:
            assert bounded.get(ref) == d, (ref, d)
