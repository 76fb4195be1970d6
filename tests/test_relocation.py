"""Reusing whole-tree findings across an edit that only moves code.

The layout of positions in relocation.py is checked on every fixture file by
moving all of its code; the engine's reuse is checked against a run from
scratch after moving each file of every fixture tree, one edit at a time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fixture_support import FIXTURES, fixture_files

import nofslint.run.engine as engine
from nofslint.analysis.summaries import SEED_KINDS
from nofslint.extract.facts import extract
from nofslint.incremental.relocation import Delta, Moves, relocate
from nofslint.incremental.saved_reads import touched
from nofslint.kernel.tree import tree_for
from nofslint.link.index import TreeIndex
from nofslint.link.reads import Reads
from nofslint.model.findings import Finding, TraceStep
from nofslint.plugins.registry import builtin_rules, select_rules
from nofslint.run.engine import run


def _moved(text: str) -> tuple[str, int]:
    """The text with a comment line on top and a blank line in the middle (never after
    a line continued with a backslash), and the old line the blank goes before."""
    lines = text.split("\n")
    middle = len(lines) // 2
    while middle < len(lines) and middle > 0 and lines[middle - 1].endswith("\\"):
        middle += 1
    lines.insert(middle, "")
    return "/* moved */\n" + "\n".join(lines), middle + 1


def _moves(old: tuple, new: tuple) -> Moves | None:
    """How an edit moved a file's facts; None when it did more than move them."""
    delta = Delta.between(old, new)
    return delta.moves if delta.moved_only else None


def _facts(path: Path, text: str) -> tuple:
    tree = tree_for(path, None)
    return extract(text.encode(), tree.relpath(path), tree).to_data()


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_moving_all_code_keeps_the_facts(path: Path) -> None:
    text = path.read_text()
    moved, blank_before = _moved(text)
    moves = _moves(_facts(path, text), _facts(path, moved))
    assert moves is not None
    for old, new in moves.lines.items():
        assert new == old + (1 if old < blank_before else 2)
    for (line, column), (new_line, new_column) in moves.pairs.items():
        assert (new_line, new_column) == (moves.lines[line], column)


def test_a_new_call_or_a_reordering_is_not_a_move(tmp_path: Path) -> None:
    path = tmp_path / "a.c"
    text = ("void f(void)\n{\n\tunsigned int flags = memalloc_nofs_save();\n"
            "\tg();\n\tmemalloc_nofs_restore(flags);\n\th();\n}\n")
    before = _facts(path, text)
    indented = _moves(before, _facts(path, text.replace("\th();", "\t  h();")))
    assert indented is not None and indented.pairs[(6, 2)] == (6, 4)
    assert _moves(before, _facts(path, text.replace("h();", "h(); k();"))) is None
    swapped = text.replace("\tg();\n\tmemalloc_nofs_restore(flags);\n",
                           "\tmemalloc_nofs_restore(flags);\n\tg();\n")
    assert _moves(before, _facts(path, swapped)) is None
    # The same records, in another order relative to each other.
    func, table = "void f(void)\n{\n}\n", "static const struct s_ops o = {\n\t.a = f,\n};\n"
    assert _moves(_facts(path, func + table), _facts(path, table + func)) is None
    assert _moves(_facts(path, func + table), _facts(path, func + "\n" + table))


def test_a_delta_names_what_changed_and_moves_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "a.c"
    text = ("static void a(void)\n{\n\tx();\n}\n\n"
            "static void b(struct s *p)\n{\n\tp->op(p);\n}\n\n"
            "void c(void)\n{\n\tkmalloc(8, GFP_KERNEL);\n}\n")
    before = _facts(path, text)
    # A new function on top, and a call added in b: a and c move by five lines.
    edited = ("void n(void)\n{\n\ty();\n}\n\n"
              + text.replace("\tp->op(p);", "\tp->op(p);\n\tz();"))
    delta = Delta.between(before, _facts(path, edited))
    assert not delta.whole and not delta.moved_only
    assert delta.functions == {"n", "b"} and delta.defs == {"n"}
    assert delta.callers == {"y", "->op", "z"} and delta.fields == {"op"}
    assert delta.kinds == {"functions", "calls"}  # the allocation in c is where it was
    assert delta.moves.lines == {1: 6, 3: 8, 4: 9, 11: 17, 13: 19, 14: 20}
    assert 8 not in delta.moves.lines  # b's call: b changed
    # The allocation's mask changed: that kind of fact differs.
    masked = Delta.between(before, _facts(path, text.replace("GFP_KERNEL", "GFP_NOFS")))
    assert masked.functions == {"c"} and "allocations" in masked.kinds
    # Static no more: the definition changed.
    assert Delta.between(before, _facts(path, text.replace("static void a", "void a"))).defs \
        == {"a"}


def test_seed_kinds_see_only_the_allocations_that_seed(tmp_path: Path) -> None:
    """A new GFP_KERNEL allocation cannot seed the NOFAIL summary; a NOFAIL one can,
    and both can seed the GFP_KERNEL-class one (scan kinds, summaries.SEED_KINDS)."""
    path = tmp_path / "a.c"
    text = "static void a(void)\n{\n\tkfree(NULL);\n}\n"
    before = _facts(path, text)

    def seeded(mask: str, kind: str) -> bool:
        added = text + f"static void *b(void)\n{{\n\treturn kmalloc(8, {mask});\n}}\n"
        delta = Delta.between(before, _facts(path, added))
        reads = {"functions": {}, "defs": [], "callers": [], "fields": [], "kinds": [kind]}
        return touched(reads, {"fs/a/a.c": delta}, SEED_KINDS)

    assert not seeded("GFP_KERNEL", "nofail-allocations")
    assert seeded("GFP_KERNEL | __GFP_NOFAIL", "nofail-allocations")
    assert seeded("GFP_KERNEL", "kernel-allocations")
    assert not seeded("GFP_NOFS", "kernel-allocations")
    assert seeded("GFP_NOFS", "allocations")  # the whole kind: any allocation
    # A scan of some directories' files only.
    assert seeded("GFP_KERNEL", "kernel-allocations@fs/a,fs/b")
    assert not seeded("GFP_KERNEL", "kernel-allocations@fs/b")


def test_a_change_outside_functions_or_a_reordering_keeps_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.c"
    fa, fb = "static void a(void)\n{\n\tx();\n}\n", "static void b(void)\n{\n\ty();\n}\n"
    table = "static const struct super_operations ops = {\n\t.evict_inode = a,\n};\n"
    before = _facts(path, fa + fb + table)
    assert Delta.between(before, _facts(path, fb + fa + table)).whole
    assert Delta.between(before, _facts(path, fa + fb + table.replace("= a", "= b"))).whole
    assert Delta.between(before, _facts(path, fa + fb + table)).moved_only


def test_rules_sharing_a_summary_share_its_reads() -> None:
    tree = FIXTURES / "backing-io-noio" / "linux-6.12"
    index = TreeIndex()
    for path in sorted(p for p in tree.rglob("*") if p.suffix in (".c", ".h")):
        kernel = tree_for(path, None)
        index.add(extract(path.read_bytes(), kernel.relpath(path), kernel), kernel, path)
    reads = {}
    rules = {r.id: r for r in select_rules(builtin_rules(), ["ALL"], None)}
    for rule in (rules["wq-flush-reclaim"], rules["backing-io-noio"]):
        index.reads = Reads()
        list(rule.check_tree(index))
        reads[rule.id] = index.reads
    # The workqueue registry was built for wq-flush-reclaim; backing-io-noio used it too.
    assert {"wq_queues", "wq_uses"} <= reads["backing-io-noio"].kinds
    assert reads["wq-flush-reclaim"].kinds == {"wq_queues", "wq_uses"}
    assert reads["backing-io-noio"].functions and reads["backing-io-noio"].callers


def _finding(**changes: object) -> Finding:
    base = dict(rule="r", severity="error", path="fs/a.c", line=4, column=2, end_line=4,
                end_column=9, function="f", message="m",
                trace=[TraceStep("s.f", "fs/b.c", 9), TraceStep("f", "fs/a.c", 4)])
    return Finding(**{**base, **changes})  # type: ignore[arg-type]


def test_relocate_moves_span_trace_and_references() -> None:
    moves = {"fs/a.c": Moves({4: 6, 7: 9}, {(4, 2): (6, 2), (4, 9): (6, 9)})}
    finding = _finding(message="queue made at fs/a.c:7, not at xfs/a.c:7 or fs/a.c.bak:7")
    assert relocate(finding, moves)
    assert (finding.line, finding.column, finding.end_line, finding.end_column) == (6, 2, 6, 9)
    assert [t.line for t in finding.trace] == [9, 6]
    assert finding.message == "queue made at fs/a.c:9, not at xfs/a.c:7 or fs/a.c.bak:7"
    # What no fact says, or a fix whose context changed, cannot be moved.
    assert not relocate(_finding(message="see fs/a.c:5"), moves)
    opened = _finding(message="opened at line 7")  # a line of its own file
    assert relocate(opened, moves) and opened.message == "opened at line 9"
    assert not relocate(_finding(message="opened at line 8"), moves)
    assert not relocate(_finding(column=3), moves)
    assert not relocate(_finding(fix="--- a/fs/a.c\n+++ b/fs/a.c\n@@ ..."), moves)
    assert relocate(_finding(path="fs/c.c", trace=[], fix="--- a/fs/c.c\n"), moves)


# -- the engine --------------------------------------------------------------------

TREES = sorted(p.parent for p in FIXTURES.glob("*/linux-*/Makefile"))
ALL = select_rules(builtin_rules(), ["ALL"], None)


def _findings(tree: Path, cache: Path | None) -> list[dict]:
    result = run([tree], ALL, jobs=1, cache_root=cache, reuse_results=cache is not None)
    assert not result.errors
    return [f.to_json() for f in result.findings]


@pytest.mark.parametrize("fixture", TREES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_moving_each_file_gives_a_fresh_runs_findings(fixture: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "linux"
    shutil.copytree(fixture, tree, ignore=shutil.ignore_patterns("*.fixed"))
    cache = tmp_path / "cache"
    _findings(tree, cache)
    relinks: list[int] = []
    analyse = engine._analyse
    monkeypatch.setattr(engine, "_analyse", lambda *a: relinks.append(1) or analyse(*a))
    files = sorted(p for p in tree.rglob("*") if p.suffix in (".c", ".h"))
    relinked = 0
    for path in files:
        path.write_text(_moved(path.read_text())[0])
        fresh = _findings(tree, None)
        relinks.clear()
        assert _findings(tree, cache) == fresh, path
        relinked += len(relinks)
    # A fix diff in the moved file is the only reason to relink here.
    fixed = {f["path"] for f in fresh if f["fix"]}
    assert relinked <= len(fixed)


def test_an_edit_that_changes_the_link_relinks(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "linux"
    shutil.copytree(FIXTURES / "nofail-in-reclaim" / "linux-6.12", tree)
    cache = tmp_path / "cache"
    first = _findings(tree, cache)
    relinks: list[list[str]] = []  # the rules each link ran
    analyse = engine._analyse
    monkeypatch.setattr(engine, "_analyse",
                        lambda *a: relinks.append([r.id for r in a[1]]) or analyse(*a))
    super_c = tree / "fs" / "demofs" / "super.c"
    super_c.write_text("/* one more line */\n" + super_c.read_text())
    moved = _findings(tree, cache)
    assert not relinks and len(moved) == len(first)
    assert any(t["path"] == "fs/demofs/super.c" and t["line"] > 1
               for f in moved for t in f["trace"])
    assert _findings(tree, cache) == moved and not relinks  # nothing changed since
    inode_c = tree / "fs" / "demofs" / "inode.c"
    inode_c.write_text(inode_c.read_text().replace("kmalloc(64, gfp);", "kmalloc(64, GFP_NOFS);"))
    edited = _findings(tree, cache)
    # Only the rule that read the mask runs again; the others keep their findings.
    assert relinks == [["nofail-in-reclaim"]]
    assert edited == _findings(tree, None) and len(edited) == len(first) - 1


def test_two_trees_in_one_run_relink_on_an_edit(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    trees = [tmp_path / "a" / "linux", tmp_path / "b" / "linux"]
    for dest in trees:  # the same paths in both trees: traces cannot tell them apart
        shutil.copytree(FIXTURES / "nofail-in-reclaim" / "linux-6.12", dest)
    cache = tmp_path / "cache"

    def both(cache: Path | None) -> list[dict]:
        result = run(trees, ALL, jobs=1, cache_root=cache, reuse_results=cache is not None)
        return [f.to_json() for f in result.findings]

    both(cache)
    relinks: list[int] = []
    analyse = engine._analyse
    monkeypatch.setattr(engine, "_analyse", lambda *a: relinks.append(1) or analyse(*a))
    super_c = trees[1] / "fs" / "demofs" / "super.c"
    super_c.write_text("/* one more line */\n" + super_c.read_text())
    assert both(cache) == both(None) and len(relinks) == 2


def _partners(tree: Path) -> list[str]:
    """Calls an edit can add: every function of the tree, and every ops field called
    through (as ``p->field(p)``)."""
    names: set[str] = set()
    fields: set[str] = set()
    for path in sorted(p for p in tree.rglob("*") if p.suffix in (".c", ".h")):
        data = _facts(path, path.read_text())
        names.update(f[0] for f in data[4])
        fields.update(o[1] for o in data[8])
    return sorted(names) + [f"p->{f}(p)" for f in sorted(fields)]


def _edits(path: Path, partners: list[str], start: int) -> list[str]:
    """Edits that change the call graph: a call added at the top of (up to four of) the
    file's functions, and a new function that calls and allocates (with __GFP_NOFAIL,
    and without)."""
    text = path.read_text()
    raw = text.encode()
    bodies = sorted({f[6] for f in _facts(path, text)[4]})
    out = []
    for k, body in enumerate(bodies[:: max(1, len(bodies) // 4)][:4]):
        call = partners[(start + k) % len(partners)]
        call = call if "->" in call else call + "()"
        out.append((raw[:body + 1] + f" {call};".encode() + raw[body + 1:]).decode())
    call = partners[(start + 7) % len(partners)]
    call = call if "->" in call else call + "()"
    for mask in ("GFP_KERNEL | __GFP_NOFAIL", "GFP_KERNEL"):
        out.append(text + f"\nstatic void nofslint_added(void)\n{{\n\t{call};\n"
                   f"\tkmalloc(8, {mask});\n}}\n")
    return out


@pytest.mark.parametrize("fixture", TREES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_each_call_graph_edit_gives_a_fresh_runs_findings(
        fixture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls added anywhere, then taken back: whether the saved findings are kept
    (the rules never read what changed) or the tree is relinked, the answer is a
    fresh run's."""
    tree = tmp_path / "linux"
    shutil.copytree(fixture, tree, ignore=shutil.ignore_patterns("*.fixed"))
    cache = tmp_path / "cache"
    _findings(tree, cache)
    partners = _partners(tree)
    linked: list[int] = []  # how many rules each link of this edit ran
    analyse = engine._analyse
    monkeypatch.setattr(engine, "_analyse",
                        lambda *a: linked.append(len(a[1])) or analyse(*a))
    edits = kept = partly = 0
    for n, path in enumerate(sorted(p for p in tree.rglob("*") if p.suffix in (".c", ".h"))):
        original = path.read_text()
        for text in [*_edits(path, partners, n), original]:
            path.write_text(text)
            linked.clear()
            reused = _findings(tree, cache)
            kept += not linked
            partly += bool(linked) and linked[0] < sum(r.scope == "tree" for r in ALL)
            edits += 1
            assert reused == _findings(tree, None), (path, text)
        path.write_text(original)
    print(f"{fixture.relative_to(FIXTURES)}: of {edits} edits, {kept} kept the findings and "
          f"{partly} ran only some whole-tree rules again (those that read what changed)")


def test_a_new_static_that_takes_over_calls_relinks(tmp_path: Path) -> None:
    """The chain below an entry comes from the NOFAIL summary's walk over callers; a
    static of the same name in a caller's file takes that caller's calls away."""
    tree = tmp_path / "linux"
    (tree / "fs" / "demofs").mkdir(parents=True)
    (tree / "lib").mkdir()
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\n")
    (tree / "fs" / "demofs" / "super.c").write_text(
        "static void demofs_evict_inode(struct inode *inode)\n{\n\tlib_release(inode);\n}\n\n"
        "static const struct super_operations demofs_sops = {\n"
        "\t.evict_inode = demofs_evict_inode,\n};\n")
    (tree / "lib" / "alloc.c").write_text(
        "void *lib_alloc(void)\n{\n\treturn kmalloc(8, GFP_KERNEL | __GFP_NOFAIL);\n}\n")
    release = tree / "lib" / "release.c"
    release.write_text("void lib_release(struct inode *inode)\n{\n\tlib_alloc();\n}\n")
    cache = tmp_path / "cache"
    assert len(_findings(tree, cache)) == 1
    release.write_text("static void *lib_alloc(void)\n{\n\treturn NULL;\n}\n\n"
                       + release.read_text())
    assert _findings(tree, cache) == _findings(tree, None) == []


def test_relocation_unpacks_records_in_the_stored_layout() -> None:
    """relocation._units takes every stored record apart by position: its unpacking must
    name the fields in the order model.facts stores them (fields_of)."""
    import inspect

    from nofslint.incremental import relocation
    from nofslint.model.facts import (
        Allocation,
        Call,
        Function,
        OpsEntry,
        ScopeEvent,
        WqQueue,
        WqUse,
        fields_of,
    )

    source = inspect.getsource(relocation._units)
    unpacked = {
        Function: "(_, _, start, end, line, end_line, body_start, has_error)",
        Call: "callee, function, start, end, line, column, end_line, end_column, args, gfp",
        OpsEntry: "struct, fld, target, function, line, column",
        WqQueue: "api, call, store, name, flags_text, flags_start, flags_end, line",
    }
    renamed = {"fld": "field", "gfp": "gfp_args", "_": None}
    for record, names in unpacked.items():
        assert names in source, names
        got = [renamed.get(n, n) for n in names.strip("()").replace(" ", "").split(",")]
        want = list(fields_of(record))
        assert [g for g, w in zip(got, want, strict=True) if g is not None and g != w] == []
    # Partly unpacked records: the leading fields, then the rest as stored.
    assert "for call, *rest in allocs" in source and fields_of(Allocation)[0] == "call"
    assert "for function, start, line, *rest in scopes" in source
    assert fields_of(ScopeEvent)[:3] == ("function", "start", "line")
    assert "for api, role, call, function, line, *rest in uses" in source
    assert fields_of(WqUse)[:5] == ("api", "role", "call", "function", "line")
