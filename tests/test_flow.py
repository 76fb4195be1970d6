"""Control flow per function and the path-sensitive walk every scope rule uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from nofslint.analysis.paths import Walk
from nofslint.extract.facts import extract
from nofslint.extract.flow import build
from nofslint.frontend.parse import parse_source
from nofslint.kernel.tree import tree_for
from nofslint.model.facts import FileFacts
from nofslint.model.flow import Flow, condition_key


def _flow(body: str) -> tuple[bytes, Flow]:
    raw = ("void f(int a, int b)\n{\n" + body + "\n}\n").encode()
    _, tree = parse_source(raw)
    func = tree.root_node.named_children[0]
    return raw, build(0, func.child_by_field_name("body"), raw)


def _paths(body: str, budget: int = 40000) -> tuple[set[tuple[tuple[str, ...], int]], bool]:
    """(calls made in order, exit line) for every path; the calls are the events."""
    raw, flow = _flow(body)
    events = []
    pos = raw.find(b"{")
    while True:
        pos = raw.find(b"(", pos + 1)
        if pos < 0:
            break
        start = pos
        while start > 0 and (raw[start - 1:start].isalnum() or raw[start - 1:start] == b"_"):
            start -= 1
        name = raw[start:pos].decode()
        if name.startswith("ev"):
            events.append((start, name))
    # The last four events: loops must not make the state space infinite.
    walk: Walk[tuple[str, ...], str] = Walk(flow, events, lambda st, ev: (*st, ev)[-4:], budget)
    walk.run(())
    return {(e.state, e.line) for e in walk.exits}, walk.complete


def test_if_else_and_early_return() -> None:
    paths, _ = _paths("ev_a();\nif (a)\n\treturn;\nelse\n\tev_b();\nev_c();")
    assert paths == {(("ev_a",), 5), (("ev_a", "ev_b", "ev_c"), 9)}


def test_goto_skips_to_the_label() -> None:
    paths, _ = _paths("ev_a();\nif (a)\n\tgoto out;\nev_b();\nout:\nev_c();")
    assert {p for p, _ in paths} == {("ev_a", "ev_c"), ("ev_a", "ev_b", "ev_c")}


def test_switch_falls_through_and_breaks() -> None:
    paths, _ = _paths("switch (a) {\ncase 1:\n\tev_a();\ncase 2:\n\tev_b();\n\tbreak;\n"
                      "default:\n\tev_c();\n}\nev_d();")
    assert {p for p, _ in paths} == {("ev_a", "ev_b", "ev_d"), ("ev_b", "ev_d"),
                                     ("ev_c", "ev_d")}


def test_loops_run_zero_or_more_times_do_while_0_once() -> None:
    paths, _ = _paths("while (a) {\n\tev_a();\n\tif (b)\n\t\tbreak;\n}\ndo {\n\tev_b();\n"
                      "} while (0);")
    seqs = {p for p, _ in paths}
    assert ("ev_b",) in seqs and ("ev_a", "ev_b") in seqs and ("ev_a", "ev_a", "ev_b") in seqs


def test_same_condition_same_answer_until_written() -> None:
    paths, _ = _paths("if (a)\n\tev_s();\nev_x();\nif (a)\n\tev_r();")
    assert {p for p, _ in paths} == {("ev_s", "ev_x", "ev_r"), ("ev_x",)}
    paths, _ = _paths("if (a)\n\tev_s();\na = ev_x();\nif (a)\n\tev_r();")
    assert ("ev_s", "ev_x") in {p for p, _ in paths}  # a was assigned: both answers again


def test_conditional_expression_and_noreturn() -> None:
    paths, _ = _paths("int x = a ? ev_a() : ev_b();\nif (b)\n\tBUG();\nev_c();")
    assert {p for p, _ in paths} == {("ev_a", "ev_c"), ("ev_b", "ev_c")}


def test_condition_keys_and_writes() -> None:
    assert condition_key("(!(gfp & __GFP_FS))") == ("gfp & __GFP_FS", False)
    assert condition_key("(unlikely(!ret))") == ("ret", False)
    assert condition_key("(!IS_ERR(trans))") == ("IS_ERR(trans)", False)
    assert condition_key("(!f(a) && b)") == ("!f(a) && b", True)
    assert condition_key("(a) && (b)") == ("(a) && (b)", True)
    _, flow = _flow("x = a & b;\nc |= 1;\nev(&d);\nif (e && f)\n\tev_g();")
    writes = set(flow.blocks[0].writes)
    assert {"x", "c", "d"} <= writes and not {"a", "b", "e", "f"} & writes


def test_the_walk_gives_up_rather_than_explode() -> None:
    body = "\n".join(f"if (c{i})\n\tev_{i}();\nif (c{i})\n\tev_x{i}();" for i in range(14))
    _, complete = _paths(body, budget=2000)
    assert not complete


def test_flows_survive_the_cache_format() -> None:
    _, flow = _flow("if (a)\n\treturn;\nev_b();")
    assert Flow.from_data(flow.to_data()) == flow


def test_a_constant_assignment_answers_the_condition() -> None:
    paths, _ = _paths("bool s = false;\nif (a) {\n\ts = true;\n\tev_save();\n}\n"
                      "if (s)\n\tev_restore();")
    assert {p for p, _ in paths} == {("ev_save", "ev_restore"), ()}


def test_a_conjunction_cannot_hold_when_one_part_is_known_false() -> None:
    paths, _ = _paths("bool s = false;\nif (a) {\n\ts = true;\n\tev_save();\n}\n"
                      "if (!s && b) {\n\ts = true;\n\tev_save2();\n}\nif (s)\n\tev_restore();")
    seqs = {p for p, _ in paths}
    assert ("ev_save", "ev_save2", "ev_restore") not in seqs
    assert seqs == {("ev_save", "ev_restore"), ("ev_save2", "ev_restore"), ()}


def test_a_damaged_flow_in_the_cache_is_refused() -> None:
    raw = b"int f(int a)\n{\n\tunsigned int x = memalloc_nofs_save();\n\tif (a)\n\t\treturn 1;\n" \
          b"\tmemalloc_nofs_restore(x);\n\treturn 0;\n}\n"
    data = extract(raw, "f.c", tree_for(Path("/nonexistent/f.c"), None)).to_data()
    FileFacts.check_data(data)
    assert data[12], "a function with a scope has a flow"
    broken = (*data[:12], [(0, [("not", "a", "block")], {})])
    with pytest.raises(ValueError):
        FileFacts.check_data(broken)
