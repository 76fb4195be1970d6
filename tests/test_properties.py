"""Property tests: random bytes, random C and mutated fixtures through the whole
front end (read_source -> mask -> parse -> extract), every local rule, every
whole-tree rule and the fix stage. No exception may escape (SourceError is how
unreadable input is refused; RecursionError is reported as too deeply nested),
and every offset, line and column stays inside the file."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from fixture_support import FIXTURES, fixture_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nofslint.analysis.paths import Walk
from nofslint.api.rule import FileContext, Rule
from nofslint.extract.facts import extract
from nofslint.fixing.fixes import build_fixes
from nofslint.frontend.mask import mask
from nofslint.frontend.parse import parse_source
from nofslint.frontend.source import SourceError, read_source
from nofslint.kernel.tree import KernelTree
from nofslint.link.index import TreeIndex
from nofslint.model.facts import FileFacts
from nofslint.model.findings import Finding
from nofslint.plugins.registry import builtin_rules, select_rules

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TREES = [KernelTree(None, (5, 10), "--kernel-version"), KernelTree(None, (6, 12), "default")]
# Companions in the whole-tree index: files with reclaim entry points, queues,
# transactions and workers, so the tree rules have chains to walk into.
COMPANIONS = ["nofail-in-reclaim", "wq-flush-reclaim", "alloc-in-transaction", "backing-io-noio"]


@pytest.fixture(autouse=True, scope="module")
def _small_walk_budget() -> Iterator[None]:
    """Path walks give up after 4,000 block visits instead of 40,000 here: random
    functions are small, and a walk that never converges (test_hostile has the case)
    would cost seconds per example. Giving up is still exercised."""
    real = Walk.__init__

    def small(self: Walk, *args: object, **kw: object) -> None:
        kw.setdefault("budget", 4000)
        real(self, *args, **kw)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Walk, "__init__", small)
        yield


@cache
def rules() -> tuple[Rule, ...]:
    return tuple(select_rules(builtin_rules(), ["ALL"], None))


@cache
def companions() -> tuple[tuple[str, Path, tuple], ...]:
    out = []
    for rule in COMPANIONS:
        for path in sorted((FIXTURES / rule).rglob("*.c"))[:3]:
            raw = path.read_bytes()
            rel = f"companion/{rule}/{path.name}"
            out.append((rel, path, extract(raw, rel, TREES[1]).to_data()))
    return tuple(out)


# -- inputs --------------------------------------------------------------------------

_TOKENS = [
    "{", "}", "(", ")", ";", ",", "=", "|", "&", "~", "!", "?", ":", "*", "->", ".", "[", "]",
    "if", "else", "while", "for", "do", "switch", "case 1:", "default:", "return", "goto out;",
    "out:", "break;", "continue;", "static", "void", "int", "gfp_t", "unsigned int", "struct",
    "f", "g", "x", "n", "p", "gfp", "flags", "fl", "trans", "wq", "work", "kmalloc", "__vmalloc",
    "kvmalloc", "alloc_pages", "GFP_KERNEL", "GFP_NOFS", "GFP_NOIO", "__GFP_NOFAIL", "__GFP_FS",
    "memalloc_nofs_save", "memalloc_nofs_restore", "memalloc_noio_save", "btrfs_start_transaction",
    "btrfs_end_transaction", "alloc_workqueue", "WQ_MEM_RECLAIM", "flush_work", "INIT_WORK",
    "queue_work", "kthread_run", "vfs_iter_write", ".evict_inode", "= {", "IS_ERR", "0", "1",
    "3", "\n", "#define", "#if 0", "#ifdef X", "#else", "#endif", "/*", "*/", "//", "\"", "'",
    "\\", "\t", "  ", "\r\n", "\x0c", "list_for_each_entry", "__user", "é",
]
c_soup = st.lists(st.sampled_from(_TOKENS), max_size=300).map(" ".join)

_EXPR = st.sampled_from(["x", "n", "0", "1", "gfp", "GFP_NOFS", "GFP_KERNEL | __GFP_NOFAIL",
                         "gfp & ~__GFP_FS", "flags ? GFP_NOIO : GFP_KERNEL", "IS_ERR(trans)"])
_CALL = st.builds(
    "{}({}, {});".format,
    st.sampled_from(["p = kmalloc", "p = __vmalloc", "p = kvmalloc", "alloc_pages",
                     "flush_work", "queue_work", "vfs_iter_write", "g", "trans = "
                     "btrfs_start_transaction", "btrfs_end_transaction", "wq = alloc_workqueue"]),
    _EXPR, _EXPR)
_SIMPLE = st.one_of(_CALL, st.sampled_from([
    "fl = memalloc_nofs_save();", "memalloc_nofs_restore(fl);", "fl = memalloc_noio_save();",
    "memalloc_noio_restore(fl);", "return 0;", "return;", "goto out;", "break;", "continue;",
    "x++;", "gfp = GFP_NOFS;", "gfp |= __GFP_NOFAIL;", "current->flags |= PF_MEMALLOC_NOFS;",
    "INIT_WORK(&w->work, f0);", "kthread_run(f1, NULL, \"t\");", ";"]))
_STATEMENT = st.recursive(_SIMPLE, lambda inner: st.one_of(
    st.builds("if ({}) {{ {} }}".format, _EXPR, inner),
    st.builds("if ({}) {} else {}".format, _EXPR, inner, inner),
    st.builds("while ({}) {{ {} }}".format, _EXPR, inner),
    st.builds("do {{ {} }} while ({});".format, inner, _EXPR),
    st.builds("switch ({}) {{ case 1: {} default: {} }}".format, _EXPR, inner, inner),
    st.builds("{{ {} {} }}".format, inner, inner)), max_leaves=25)
_FUNCTION = st.builds(
    "static int f{}(int n, gfp_t gfp)\n{{\n\tunsigned int fl;\n\t{}\nout:\n\treturn 0;\n}}\n"
    .format, st.integers(0, 3), st.lists(_STATEMENT, max_size=6).map("\n\t".join))
structured_c = st.lists(_FUNCTION, min_size=1, max_size=4).map("".join).map(
    lambda text: "static const struct super_operations ops = { .evict_inode = f0 };\n" + text)


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    files = fixture_files()
    raw = bytearray(files[draw(st.integers(0, len(files) - 1))].read_bytes())
    for _ in range(draw(st.integers(1, 8))):
        a, b = sorted(draw(st.tuples(st.integers(0, len(raw)), st.integers(0, len(raw)))))
        how = draw(st.sampled_from(["delete", "duplicate", "insert", "byte", "truncate"]))
        if how == "delete":
            del raw[a:b]
        elif how == "duplicate":
            raw[b:b] = raw[a:b]
        elif how == "insert":
            raw[a:a] = draw(st.sampled_from(_TOKENS)).encode()
        elif how == "byte" and a < len(raw):
            raw[a] = draw(st.integers(0, 255))
        elif how == "truncate":
            del raw[a:]
    return bytes(raw)


# -- the properties --------------------------------------------------------------------

def lines_of(raw: bytes) -> list[int]:
    """Byte length of each line (1-based lines; the last may lack a newline)."""
    return [len(line) for line in raw.split(b"\n")]


def check_span(raw: bytes, start: int, end: int) -> None:
    assert 0 <= start <= end <= len(raw), (start, end, len(raw))


def check_position(lengths: list[int], line: int, column: int) -> None:
    assert 1 <= line <= len(lengths), (line, len(lengths))
    assert 1 <= column <= lengths[line - 1] + 1, (line, column, lengths[line - 1])


def check_facts(raw: bytes, facts: FileFacts) -> None:
    lengths = lines_of(raw)
    for f in facts.functions:
        check_span(raw, f.start, f.end)
        assert f.start <= f.body_start <= f.end
        assert 1 <= f.line <= f.end_line <= len(lengths)
    for c in facts.calls:
        check_span(raw, c.start, c.end)
        check_position(lengths, c.line, c.column)
        check_position(lengths, c.end_line, c.end_column)
        assert -1 <= c.function < len(facts.functions)
        for s, e in c.args or []:
            check_span(raw, s, e)
            assert c.start <= s <= e <= c.end
    for a in facts.allocations:
        assert 0 <= a.call < len(facts.calls)
    for e in facts.scopes:
        check_span(raw, e.start, e.start)
        assert 1 <= e.line <= len(lengths)
    for o in facts.ops:
        check_position(lengths, o.line, o.column)
    for q in facts.wq_queues:
        check_span(raw, q.flags_start, q.flags_end)
        assert 1 <= q.line <= len(lengths)
    for u in facts.wq_uses:
        assert -1 <= u.call < len(facts.calls) and 1 <= u.line <= len(lengths)
    for flow in facts.flows:
        assert 0 <= flow.function < len(facts.functions)
        for block in flow.blocks:
            for s, e in block.spans:
                check_span(raw, s, e)
            assert all(0 <= succ < len(flow.blocks) for succ, _, _ in block.succs)


def check_findings(findings: list[Finding], raw_of: dict[str, bytes]) -> None:
    for f in findings:
        assert f.path in raw_of, f.path
        lengths = lines_of(raw_of[f.path])
        check_position(lengths, f.line, f.column)
        check_position(lengths, f.end_line, f.end_column)
        assert (f.line, f.column) <= (f.end_line, f.end_column)
        for step in f.trace:
            if step.path in raw_of:
                assert 1 <= step.line <= len(lines_of(raw_of[step.path]))
        for e in f.edits:
            check_span(raw_of[f.fix_path or f.path], e.start, e.end)


def run_everything(raw: bytes) -> None:
    """The whole pipeline on one file plus the companions; asserts the properties."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.c"
        path.write_bytes(raw)
        try:
            data = read_source(path)
        except SourceError:
            assert b"\0" in raw or not _utf8(raw)
            return
        assert data == raw
        masked = mask(raw)
        assert len(masked) == len(raw)
        assert [i for i, b in enumerate(masked) if b == 10] == [
            i for i, b in enumerate(raw) if b == 10]  # lines stay where they were
        parse_source(raw)
        for tree in TREES:
            try:
                facts = extract(raw, "random.c", tree)
            except RecursionError:  # reported as "nesting too deep to analyse"
                continue
            check_facts(raw, facts)
            facts = FileFacts.from_data(facts.to_data())  # as the cache returns it
            findings: list[Finding] = []
            ctx = FileContext(facts, tree, path)
            index = TreeIndex()
            index.add(facts, tree, path)
            raw_of = {"random.c": raw}
            for rel, file, companion in companions():
                index.add(FileFacts.from_data(companion), tree, file)
                raw_of[rel] = file.read_bytes()
            for rule in rules():
                if rule.scope == "local":
                    findings.extend(rule.check_file(ctx))
                else:
                    findings.extend(rule.check_tree(index))
            fixes, _ = build_fixes(findings)
            check_findings(findings, raw_of)
            for fix in fixes:
                assert fix.path == path or fix.path in {c[1] for c in companions()}


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@SETTINGS
@given(st.binary(max_size=3000))
def test_random_bytes(raw: bytes) -> None:
    run_everything(raw)


@SETTINGS
@given(c_soup)
def test_random_c_tokens(text: str) -> None:
    run_everything(text.encode())


@SETTINGS
@given(structured_c)
def test_random_c_functions(text: str) -> None:
    run_everything(text.encode())


@SETTINGS
@given(mutated_fixture())
def test_mutated_fixtures(raw: bytes) -> None:
    run_everything(raw)

