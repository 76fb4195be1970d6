"""Tests for nofslint.frontend.mask: offsets are preserved and kernel idioms parse cleanly."""

from __future__ import annotations

import random

import pytest

from nofslint.frontend.mask import mask
from nofslint.frontend.parse import captures, function_error_counts, parse_masked, parse_source


def _check_invariants(raw: bytes, masked: bytes) -> None:
    """Same length, and newlines exactly where they were."""
    assert len(masked) == len(raw)
    assert [i for i, b in enumerate(raw) if b == 10] == [i for i, b in enumerate(masked) if b == 10]


def _has_error(src: bytes) -> bool:
    return parse_masked(src).root_node.has_error


def _masked_ok(src: bytes) -> bytes:
    """Mask, check invariants and that the result parses without errors."""
    masked = mask(src)
    _check_invariants(src, masked)
    assert not _has_error(masked), masked.decode()
    return masked


# Each case is broken for raw tree-sitter-c and must parse once masked.
BROKEN_RAW = {
    "list_for_each_entry_braces": b"""
void f(struct list_head *head)
{
\tstruct foo *pos;

\tlist_for_each_entry(pos, head, list) {
\t\tpos->x = 1;
\t}
}
""",
    "for_each_single_statement": b"""
int f(void)
{
\tint cpu, n = 0;

\tfor_each_possible_cpu(cpu)
\t\tn += g(cpu);
\treturn n;
}
""",
    "nested_iterators_else": b"""
void f(int c)
{
\tint i, j;

\tif (c)
\t\tg();
\telse
\t\tfor_each_thing(i)
\t\t\tfor_each_other_thing(j, i) {
\t\t\t\th(i, j);
\t\t\t}
}
""",
    "scoped_guard": b"""
void f(struct foo *p)
{
\tscoped_guard(spinlock_irqsave, &p->lock) {
\t\tp->n++;
\t}
}
""",
    "scoped_cond_guard": b"""
int f(struct foo *p)
{
\tscoped_cond_guard(mutex_intr, return -EINTR, &p->lock) {
\t\tp->n++;
\t}
\treturn 0;
}
""",
    "do_each_thread": b"""
void f(void)
{
\tstruct task_struct *g, *t;

\tdo_each_thread(g, t) {
\t\tcount(t);
\t} while_each_thread(g, t);
}
""",
    "annotations": b"""
static int __init __must_check foo_init(void __user *p, u32 __iomem *r)
{
\treturn g((__force u32)*r, p);
}
""",
    "annotation_with_args": b"""
static __printf(2, 3) __cold void note(struct x *x, const char *fmt, ...)
{
\tstruct y *y __free(kfree) = NULL;
}
""",
    "acquires": b"""
static void lock_it(struct foo *f) __acquires(&f->lock)
{
\tspin_lock(&f->lock);
}
""",
    "container_of": b"""
static void work_fn(struct work_struct *work)
{
\tstruct foo *foo = container_of(work, struct foo, work);

\tfoo->n = min_t(unsigned int, foo->n, 4);
}
""",
    "va_arg_pointer": b"""
void f(int n, ...)
{
\tva_list ap;
\tchar *s = va_arg(ap, char *);
}
""",
    "ifdef_splits_if": b"""
int f(int a, int b)
{
#ifdef CONFIG_FOO
\tif (a) {
#else
\tif (b) {
#endif
\t\treturn 1;
\t}
\treturn 0;
}
""",
    "ifdef_splits_signature": b"""
static int f(int a,
#ifdef CONFIG_FOO
\t     int b)
#else
\t     int c)
#endif
{
\treturn a;
}
""",
    "if_zero_with_prose": b"""
#if 0
this is not C at all ( {
#endif
int f(void)
{
\treturn 0;
}
""",
    "case_range": b"""
int f(int x)
{
\tswitch (x) {
\tcase 0 ... 4:
\t\treturn 1;
\t}
\treturn 0;
}
""",
    "printk_level": b"""
void f(int x)
{
\tprintk(KERN_INFO DRV_NAME ": value %" PRIu64 " here\\n", x);
}
""",
    "offsetof_member_path": b"""
unsigned long f(void)
{
\treturn offsetof(struct foo, a.b[2]);
}
""",
    "bare_macro_line": b"""
static const int prot[2] = { 1, 2 };
DECLARE_VM_GET_PAGE_PROT

void setup(void)
{
\tg();
}
""",
    "unknown_specifier_macro": b"""
static unsigned int INIT get_bits(struct bunzip_data *bd, char n)
{
\treturn n;
}

static __cpuidle int idle_enter(int index)
{
\treturn index;
}
""",
    "iterator_without_each": b"""
void f(struct sk_buff_head *q)
{
\tstruct sk_buff *skb, *tmp;

\tskb_queue_walk_safe(q, skb, tmp) {
\t\tg(skb);
\t}
}
""",
    "xfs_static": b"""
STATIC int
xfs_thing(
\tstruct xfs_mount\t*mp)
{
\treturn 0;
}
""",
}


@pytest.mark.parametrize("name", sorted(BROKEN_RAW))
def test_broken_raw_parses_after_masking(name: str) -> None:
    src = BROKEN_RAW[name]
    assert _has_error(src), "snippet should break raw tree-sitter-c"
    _masked_ok(src)


def test_loop_becomes_while() -> None:
    src = b"void f(void)\n{\n\tlist_for_each_entry(p, h, m) {\n\t\tg(p);\n\t}\n}\n"
    masked = _masked_ok(src)
    assert b"while" + b" " * (len("list_for_each_entry") - 5) + b"(p, h, m)" in masked
    loops = captures("(while_statement) @w", parse_masked(masked).root_node).get("w", [])
    assert len(loops) == 1


def test_loop_name_not_rewritten_at_definition_or_call() -> None:
    src = (
        b"static void my_for_each_thing(int x)\n{\n\tfor_each_thing_do(x);\n"
        b"\tn = count_for_each(x) + 1;\n}\n"
    )
    assert mask(src) == src


def test_define_lines_untouched() -> None:
    src = (
        b"#define GFP_FOO (__GFP_NOFS | __GFP_NOWARN)\n"
        b"#define it(x) list_for_each_entry(x, h, m) __user\n"
        b"void *f(void) { return __vmalloc(10, GFP_FOO); }\n"
    )
    assert mask(src) == src


def test_keeps_meaningful_identifiers() -> None:
    src = (
        b"void f(struct work_struct *w)\n{\n"
        b"\tstruct foo *foo = container_of(w, struct foo, work);\n"
        b"\tvoid *p = __kmalloc(sizeof(struct foo), __GFP_NOFAIL | GFP_NOFS);\n"
        b"\tpr_info(\"%s\\n\", __func__);\n"
        b"\tif (__builtin_expect(!p, 0))\n\t\treturn;\n}\n"
    )
    masked = _masked_ok(src)
    for word in (b"__kmalloc", b"__GFP_NOFAIL", b"GFP_NOFS", b"__func__", b"__builtin_expect",
                 b"sizeof(struct foo)", b"foo, work)", b"container_of("):
        assert word in masked
    assert b"struct foo, work" not in masked


def test_specifier_rule_keeps_typedef_return_type() -> None:
    src = b"\nMEM_STATIC size_t count(void)\n{\n\treturn 0;\n}\n"
    masked = _masked_ok(src)
    assert b"size_t count" in masked and b"MEM_STATIC" not in masked


def test_casts_and_sizeof_untouched() -> None:
    src = (
        b"void f(void *v)\n{\n\tunsigned int a = (unsigned int)g(v);\n"
        b"\tstruct foo *p = (struct foo *)v;\n\tn = sizeof(struct foo) + sizeof(unsigned long);\n"
        b"\th((struct foo){ .a = 1 });\n}\n"
    )
    assert mask(src) == src


def test_prototypes_keep_types() -> None:
    src = b"int f(int, char *);\nvoid g(struct foo, union bar);\n"
    assert mask(src) == src


def test_comments_and_strings_untouched() -> None:
    src = (
        b"void f(void)\n{\n"
        b"\t/* list_for_each_entry(p, h, m) { __user } */\n"
        b"\t// for_each_cpu(c) __iomem container_of(x, struct y, z)\n"
        b"\ts = \"list_for_each(a, b) __user struct foo, min_t(int, a, b)\";\n"
        b"\tc = '{';\n}\n"
    )
    masked = _masked_ok(src)
    for line_no in (2, 3, 4, 5):
        assert masked.split(b"\n")[line_no] == src.split(b"\n")[line_no]


def test_conditional_keeps_first_branch() -> None:
    src = b"int f(void)\n{\n#ifdef A\n\treturn 1;\n#else\n\treturn 2;\n#endif\n}\n"
    masked = _masked_ok(src)
    assert b"return 1;" in masked
    assert b"return 2;" not in masked
    assert b"#" not in masked


def test_if_zero_keeps_else_branch() -> None:
    src = b"int f(void)\n{\n#if 0\n\treturn 1;\n#else\n\treturn 2;\n#endif\n}\n"
    masked = _masked_ok(src)
    assert b"return 1;" not in masked
    assert b"return 2;" in masked


def test_top_level_alternatives_both_kept() -> None:
    """Header stubs: both complete branches stay so no function definition is lost."""
    src = (
        b"#ifdef CONFIG_FOO\nint foo(void);\n#else\n"
        b"static inline int foo(void)\n{\n\treturn 0;\n}\n#endif\n"
    )
    masked = _masked_ok(src)
    assert masked == src
    assert function_error_counts(parse_masked(masked)) == (1, 0)


def test_directive_with_multiline_comment() -> None:
    src = b"int f(void)\n{\n#ifdef A /* a\n  b */\n\treturn 1;\n#endif\n\treturn 0;\n}\n"
    masked = _masked_ok(src)
    assert b"b */" not in masked


def test_nested_conditionals() -> None:
    src = (
        b"int f(int a)\n{\n#ifdef A\n#ifdef B\n\tif (a) {\n#else\n\tif (!a) {\n#endif\n"
        b"#else\n\twhile (a) {\n#endif\n\t\ta--;\n\t}\n\treturn a;\n}\n"
    )
    masked = _masked_ok(src)
    assert b"if (a) {" in masked
    assert b"if (!a)" not in masked and b"while" not in masked


def test_crlf_and_continuations() -> None:
    src = (
        b"int f(void)\r\n{\r\n#if defined(A) && \\\r\n    defined(B)\r\n"
        b"\treturn 1;\r\n#endif\r\n}\r\n"
    )
    masked = mask(src)
    _check_invariants(src, masked)
    assert b"defined(B)" not in masked


@pytest.mark.parametrize(
    "src",
    [
        b"",
        b"\n",
        b"/* unterminated comment { list_for_each(",
        b'"unterminated string\nlist_for_each(a) {',
        b"'",
        b"#if\n#else\n#endif\n#endif\n#else\n",
        b"for_each(",
        b"x; for_each_x(a) ",
        b"__aligned(",
        b"\x00\xff\xfe{}(#if 0\n",
        b"f(a, struct",
        b"\"abc\" X",
        b"offsetof(",
    ],
)
def test_edge_inputs_never_raise(src: bytes) -> None:
    _check_invariants(src, mask(src))


def test_random_bytes_invariants() -> None:
    rng = random.Random(1234)
    alphabet = b"\n\r\t #(){};,\"'/*\\abcdefxyz_019 ifdefelsendstructfor_each__user."
    for _ in range(500):
        n = rng.randrange(0, 400)
        if rng.random() < 0.5:
            src = bytes(rng.choice(alphabet) for _ in range(n))
        else:
            src = bytes(rng.randrange(256) for _ in range(n))
        _check_invariants(src, mask(src))


def test_property_random_bytes() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(st.binary(max_size=500))
    def check(src: bytes) -> None:
        _check_invariants(src, mask(src))

    check()


def test_property_c_like_text() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    pieces = st.sampled_from(
        [b"\n", b"#if 0\n", b"#ifdef A\n", b"#else\n", b"#endif\n", b"{", b"}", b"(", b")", b";",
         b",", b"for_each_cpu(c) ", b"struct foo", b"/*", b"*/", b"//", b'"', b"'", b"\\\n",
         b"__user ", b"__aligned(8) ", b"container_of(p, struct x, m)", b"x", b" ", b"...",
         b"KERN_INFO \"a\" ", b"offsetof(struct s, a.b)", b"scoped_cond_guard(a, return 1, b)"]
    )

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(st.lists(pieces, max_size=60))
    def check(parts: list[bytes]) -> None:
        src = b"".join(parts)
        _check_invariants(src, mask(src))

    check()


def test_parse_source_uses_mask() -> None:
    masked, tree = parse_source(BROKEN_RAW["list_for_each_entry_braces"])
    assert function_error_counts(tree) == (1, 0)
    assert masked == mask(BROKEN_RAW["list_for_each_entry_braces"])
