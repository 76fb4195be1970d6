"""The path check's parts: the guards built on demand, and the condition evaluator.

The rules' own fixtures (fixtures/nofail-in-reclaim/.../fs/pathfs) show the
check end to end; these pin down each kind of knowledge on its own.
"""

from __future__ import annotations

import pytest

from nofslint.analysis.conditions import Bits, evaluate
from nofslint.extract.facts import extract
from nofslint.extract.guards import FileGuards
from nofslint.kernel.tree import KernelTree
from nofslint.link.index import TreeIndex

RECLAIM = {"current->flags": Bits(frozenset({"PF_MEMALLOC"}))}


@pytest.mark.parametrize(("text", "env", "want"), [
    ("current->flags & PF_MEMALLOC", RECLAIM, True),
    ("WARN_ON_ONCE(current->flags & PF_MEMALLOC)", RECLAIM, True),
    ("!(current->flags & PF_MEMALLOC)", RECLAIM, False),
    ("unlikely(current->flags & PF_MEMALLOC) && busy", RECLAIM, None),
    ("current->flags & PF_MEMALLOC_NOFS", RECLAIM, None),  # another bit: not known
    ("inode->i_size & (inode->i_sb->s_blocksize - 1)", {"inode->i_size": 0}, False),
    ("i_size_read(inode) > 0", {"inode->i_size": 0}, False),
    ("!remove", {"remove": 0}, True),
    ("remove && lookup(x)", {"remove": 0}, False),
    ("lookup(x) || !remove", {"remove": 0}, True),
    ("(unsigned long)remove == 0", {"remove": 0}, True),
    ("verdict == LIB_DEFER", {"verdict": "LIB_DEFER"}, True),
    ("verdict != LIB_SKIP", {"verdict": "LIB_DEFER"}, True),
    ("verdict == LIB_SKIP", {}, None),
    ("x ? 1 : 0", {"x": 1}, None),  # not understood: never decides
    ("a[1] == 0", {"a": 0}, None),
    ("timeout > 0", {"timeout": 0}, False),
    ("mode & 0x4", {"mode": 3}, False),
    ("mode == 0644", {"mode": 420}, True),  # octal, as in C
    ("mode == 089", {"mode": 89}, None),  # not a C literal
])
def test_evaluate(text: str, env: dict, want: bool | None) -> None:
    assert evaluate(text, env) is want


def _guards(code: str) -> dict:
    facts = extract(code.encode(), "fs/x/a.c", KernelTree(None, (6, 12), "test"))
    built = FileGuards(code.encode(), [f.start for f in facts.functions])
    return {f.name: g for i, f in enumerate(facts.functions)
            if (g := built.get(i)) is not None}


def test_guards_keep_what_decides_a_path() -> None:
    code = """
enum v { KEEP, DROP };
static enum v judge(struct inode *inode)
{
	if (WARN_ON_ONCE(current->flags & PF_MEMALLOC))
		return DROP;
	return KEEP;
}
static void evict(struct inode *inode, int n)
{
	enum v verdict;
	if (inode->i_nlink)
		goto out;
	verdict = judge(inode);
	if (verdict == DROP)
		goto out;
	inode->i_size = 0;
	trunc(inode, 0, &n, NULL);
	while (n) { if (n > 3) break; n++; }
out:
	clear(inode);
}
"""
    g = _guards(code)
    judge, evict = g["judge"], g["evict"]
    assert judge.params == ["inode"] and [v for _, v in judge.returns] == ["DROP", "KEEP"]
    assert evict.params == ["inode", "n"]
    label = code.index("out:")
    after_test = [c for c in evict.conds if c[3] == "verdict == DROP" and c[4] is False]
    assert after_test and after_test[0][2] == label  # "goto out": needed until the label
    values = {lhs: (value, call) for _, _, lhs, value, call in evict.sets}
    assert values["inode->i_size"] == ("0", -1)
    assert values["verdict"][0] == "call" and values["verdict"][1] == code.index("judge(inode)")
    assert values["n"] == (None, -1)  # n++: forgotten
    trunc_args = next(a for at, a in evict.args if at == code.index("trunc("))
    assert trunc_args == [(0, "inode"), (1, "0"), (2, "&n"), (3, "0")]
    assert len(evict.loops) == 1


def test_a_function_with_nothing_to_say_has_no_guards() -> None:
    assert _guards("static void f(void)\n{\n\tg(h(), k());\n}\n") == {}


def test_guards_come_from_the_text_the_facts_were_made_from(tmp_path) -> None:
    code = "int f(int x)\n{\n\tif (!x)\n\t\treturn 0;\n\treturn g(x, 1);\n}\n"
    path = tmp_path / "a.c"
    path.write_text(code)
    tree = KernelTree(None, (6, 12), "test")
    facts = extract(code.encode(), "a.c", tree)
    index = TreeIndex()
    index.add(facts, tree, path)
    assert index.guards((0, 0)) is not None
    edited = TreeIndex()
    edited.add(facts, tree, path)
    path.write_text(code.replace("g(x, 1)", "g(x, 2)"))
    assert edited.guards((0, 0)) is None  # the file changed: nothing is known
    path.unlink()
    gone = TreeIndex()
    gone.add(facts, tree, path)
    assert gone.guards((0, 0)) is None
