"""Offset-preserving masking of kernel C so tree-sitter-c parses it cleanly.

tree-sitter-c knows nothing about the preprocessor's effect, so kernel idioms
(``__user`` annotations, ``list_for_each_entry(...) {}`` iterators,
``container_of(p, struct foo, m)``, ``#ifdef`` splitting a statement) produce
ERROR nodes.  ``mask`` rewrites only such spots, replacing bytes by spaces or by
same-length text, so every byte offset, line and column of the masked text is
the same as in the raw file and later analysis can report raw positions.

Conditional compilation: a group is collapsed to one configuration when its
branches would confuse the parser (it starts inside braces/parentheses, i.e.
inside a function, struct or initializer, or a branch is unbalanced or does not
end in ';' or '}'): its directive lines are blanked and only the first branch
survives (the second branch for ``#if 0`` and ``#ifdef __ASSEMBLY__`` /
``__cplusplus``; nothing for a lone ``#if 0``).  Top-level groups whose branches
are each complete and balanced are left for tree-sitter (it models them), so
inline stubs in ``#else`` branches of headers and top-level ``#if 0`` functions
still yield function definitions, as in a raw parse.

Other rewrites: annotation macros (``__user``, ``__init``, ``__aligned(8)``)
are blanked; iterator/scope macros in statement position become ``while``
(``do``/``while`` for ``do_each_*``/``while_each_*``); ``struct``/``union``/
``enum`` keywords in macro arguments are blanked (the tag name stays) and
primitive type arguments of ``min_t``-like macros become ``___``; GNU case
ranges ``...`` become ``+0+``; a second identifier glued to a string literal
becomes a same-length string; column-0 macro lines without ';' and unknown
words among top-level declaration specifiers are blanked; xfs ``STATIC``
becomes ``static``.  ``#define`` lines, comments and literals are never
rewritten.

(Comments and literals are only blanked wholesale as part of an inactive
``#if`` branch or a blanked conditional directive line.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from nofslint.kernel.kconfig import Kconfig, local_defines

# Translation table: every byte becomes a space except newlines.
_BLANK = bytes(10 if b == 10 else 32 for b in range(256))
# Comments/literals in the detection view: spaces, newlines hidden as \r so a
# multi-line comment on a directive line belongs to that (logical) line.
_HIDE = bytes(13 if b == 10 else 32 for b in range(256))

_COMMENT = rb"//(?:[^\n\\]+|\\.)*|/\*(?:[^*]+|\*+(?!/))*(?:\*/|\Z)"
# Runs of comments are one match: header files with a comment per line would
# otherwise cost one Python callback per line.
_LEXICAL = re.compile(
    rb"(?:" + _COMMENT + rb")(?:[ \t\r\n]*(?:" + _COMMENT + rb"))*"
    rb'|"(?:[^"\\\n]+|\\.)*"?'
    rb"|'(?:[^'\\\n]+|\\.)*'?",
    re.S,
)
# A directive line (with continuations).  Starting at the literal newline lets
# the regex engine use its fast prefix search; offset 0 is matched separately.
_DIRECTIVE_BODY = rb"[ \t]*#[ \t]*(\w*)(?:[^\n\\]+|\\\r?\n|\\.)*"
_DIRECTIVE_LINE = rb"#[ \t]*\w*(?:[^\n\\]+|\\\r?\n|\\.)*"
# Runs of directive (and blank) lines are one match, again to save callbacks.
_DIRECTIVE = re.compile(
    rb"\n[ \t]*" + _DIRECTIVE_LINE + rb"(?:\n[ \t]*(?:" + _DIRECTIVE_LINE + rb")?)*", re.S
)
_COND_IN_RUN = re.compile(
    rb"#[ \t]*(if|ifdef|ifndef|elif|else|elifdef|elifndef|endif)\b(?:[^\n\\]+|\\\r?\n|\\.)*"
)
_DIRECTIVE_AT_START = re.compile(_DIRECTIVE_BODY, re.S)
_COND_ALL = {b"if", b"ifdef", b"ifndef", b"elif", b"else", b"elifdef", b"elifndef", b"endif"}
_COND_OPEN = {b"if", b"ifdef", b"ifndef"}
_COND_MID = {b"elif", b"else", b"elifdef", b"elifndef"}
_PREFER_ELSE = re.compile(
    rb"#\s*(?:if\s+(?:0|defined\s*\(?\s*(?:__ASSEMBLY__|__ASSEMBLER__|__cplusplus)\s*\)?)"
    rb"|ifdef\s+(?:__ASSEMBLY__|__ASSEMBLER__|__cplusplus))\s*$"
)

# Annotation macros expanding to attributes/qualifiers/sections: blanked.
_ANNOT_WORDS = [
    "__user", "__iomem", "__rcu", "__percpu", "__force", "__bitwise", "__kernel", "__nocast",
    "__safe", "__private", "__init", "__exit", "__initdata", "__initconst", "__exitdata",
    "__refdata", "__refconst", "__ref", "__meminit", "__meminitdata", "__devinit", "__devexit",
    "__cpuinit", "__read_mostly", "__ro_after_init", "__must_check", "__always_inline",
    "__maybe_unused", "__always_unused", "__used", "__always_used", "noinline",
    "noinline_for_stack", "notrace", "asmlinkage", "__visible", "__cold", "__hot", "__weak",
    "__packed", "__pure", "__latent_entropy", "__randomize_layout", "__no_randomize_layout",
    "noinstr", "__noreturn", "__naked", "__flatten", "__malloc", "__nonstring", "__noclone",
    "__noipa", "__noscs", "__nocfi", "__noretpoline", "__gnu_inline", "__inline_maybe_unused",
    "__attribute_const__", "__designated_init", "__kprobes", "__nosavedata", "__page_aligned_bss",
    "__page_aligned_data", "__no_kcsan", "__no_kmsan_checks", "__no_profile",
    "__no_sanitize_address", "__no_sanitize_coverage", "__no_sanitize_thread",
    "__no_sanitize_undefined", "__no_sanitize_or_inline", "__no_kasan_or_inline",
    "__no_stack_protector", "__no_caller_saved_registers", "__preserve_most", "__signed_wrap",
    "__uninitialized", "__retain", "__overloadable", "__pass_object_size",
    "__pass_dynamic_object_size", "__fix_address", "__function_aligned", "__exit_call",
    "__exitused", "__cacheline_aligned", "__cacheline_aligned_in_smp", "____cacheline_aligned",
    "____cacheline_aligned_in_smp", "____cacheline_internodealigned_in_smp",
    "__cacheline_internodealigned_in_smp", "__aligned_largest", "__randomize_layout",
    "__percpu_seg", "__initdata_or_module", "__init_or_module", "__exit_p", "__sched",
    "__lockfunc", "__irq_entry", "__softirq_entry", "__bpf_kfunc", "__diag_ignore_all",
    "__net_init", "__net_exit", "__net_initdata", "__iomem_fixme", "__ksym", "__weak_ref",
    "__kfunc", "__tracepoint_string", "__rcu_bh", "__data_racy", "__nocapture", "__must_be_array",
    "__aligned_u64", "__mlock_user", "__user_pasid", "__counted_by_le",
    "__percpu_cacheline_aligned", "__always_inline_hint", "__noinline", "__cpuidle", "__xipram",
    "__exception_irq_entry", "__head", "__nostackprotector", "__efiapi", "__section_aligned",
    "__percpu_cacheline_aligned", "__attribute_used__", "__compiletime_object_size",
    "__capability", "__ro_after_init_scope"
]
_ANNOT_ARG_WORDS = [
    "__aligned", "__printf", "__scanf", "__acquires", "__releases", "__must_hold", "__counted_by",
    "__counted_by_le", "__counted_by_be", "__free", "__section", "__cleanup", "__alloc_size",
    "__assume_aligned", "__copy", "__mode", "__diagnose_as", "__cond_acquires", "__cond_releases",
    "__alias", "__compiletime_error", "__compiletime_warning", "__nonnull", "__access",
    "__aligned_attr", "__guarded_by", "__pt_guarded_by", "__diag_ignore", "__no_sanitize",
    "__sized_by", "__attribute_alloc_size__", "__percpu_attr", "__cacheline_group_begin",
    "__cacheline_group_end", "__cacheline_group_begin_aligned", "__cacheline_group_end_aligned",
    "__exclusive_locks_required", "__shared_locks_required", "__stringify_label",
    "__deprecated_msg", "__diag_ignore_all"
]
_STRING_MACROS = {b"__stringify", b"__inst_arm", b"__inst_thumb16", b"__inst_thumb32",
                  b"__inst_arm_thumb16", b"__inst_arm_thumb32"}
_ANNOT_SET = frozenset(w.encode() for w in _ANNOT_WORDS)
_ANNOT_ARG_SET = frozenset(w.encode() for w in _ANNOT_ARG_WORDS)
# Scans start with a literal so the regex engine can use its fast prefix
# search; a leading \b or alternation makes it try every byte (10x slower).
_DUNDER = re.compile(rb"__\w+")
_WORD_ANNOTS = tuple(
    re.compile(rx)
    for rx in (rb"no(?:inline(?:_for_stack)?|trace|instr)\b", rb"asmlinkage\b", rb"forceinline\b",
               rb"EXPORT_FOR_TESTS\b", rb"INDIRECT_CALLABLE_SCOPE\b", rb"TC_INDIRECT_SCOPE\b",
               rb"nokprobe_inline\b", rb"debug_noinline\b")
)
_OPEN_PAREN = re.compile(rb"[ \t\r\n]*\(")
_WORD = re.compile(rb"\w*")

# Loop/scope macros used like `for`: `name(args) body`.
_LOOP_SCANS = tuple(re.compile(w) for w in (rb"each", rb"scoped", rb"walk", rb"until", rb"with_"))
_LOOP_NAME = re.compile(
    rb"\w*(?:for_?each\w*|_for_each|scoped_\w*guard\w*|while_each_\w+|do_each_\w+|_scoped"
    rb"|_walk(?:_\w+)?|_until_\w+|with_\w+)\Z"
)
_WORD_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
_STMT_WORDS = {b"else", b"do"}
_PAREN = re.compile(rb"[()]")
_ARG_SPLIT = re.compile(rb"[(),\[\]{}]")

# `struct foo` / primitive types passed as macro arguments (container_of,
# min_t, sizeof_field, va_arg ...).
_TAGGED_ARGS = tuple(
    re.compile(kw + rb"(?=[ \t\r\n]+[A-Za-z_]\w*[ \t\r\n]*\**[ \t\r\n]*[,)])")
    for kw in (rb"struct", rb"union", rb"enum")
)
_TAG_TAIL = re.compile(rb"[ \t\r\n]+[A-Za-z_]\w*([ \t\r\n]*\**[ \t\r\n]*)[,)]")
_PRIM = rb"(?:unsigned|signed|short|long|int|char|float|double|void|_Bool|bool|const|volatile)"
_PRIM_ARG = re.compile(
    rb"[ \t\r\n]*(" + _PRIM + rb"(?:[ \t\r\n]+" + _PRIM + rb")*)([ \t\r\n]*\**[ \t\r\n]*)\Z"
)
_TAG_PTR_ARG = re.compile(
    rb"[ \t\r\n]*(?:const[ \t\r\n]+)?(?:struct|union|enum)[ \t\r\n]+\w+([ \t\r\n]*\*+[ \t\r\n]*)\Z"
)
# Macros whose arguments include bare types: scanned by literal suffix/name.
_TYPE_MACRO_SCANS = (re.compile(rb"_t\("), re.compile(rb"va_arg\("), re.compile(rb"PER_CPU\w*\("),
                     re.compile(rb"typecheck\("))
_NOT_MACRO_CALL = {
    b"sizeof", b"typeof", b"__typeof__", b"__typeof", b"_Alignof", b"__alignof__", b"alignof",
    b"offsetof", b"if", b"while", b"for", b"switch", b"return", b"_Generic", b"__attribute__",
    b"__builtin_offsetof", b"__builtin_types_compatible_p", b"typeof_unqual", b"__auto_type",
    b"_Static_assert", b"static_assert", b"__alignof", b"asm", b"__asm__", b"__asm", b"va_start",
    b"__attribute",
}
_ELLIPSIS = re.compile(rb"\.\.\.")
# In the detection view literals keep their quotes: '"' is an opening or closing quote.
_WORD_QUOTE = re.compile(rb'"(?<=\w")|"(?<=\w ")|"(?<=\w\t")')
_STRING_PREFIX_OK = {
    b"L", b"u", b"U", b"u8", b"extern", b"return", b"case", b"asm", b"__asm__", b"__asm",
    b"volatile", b"__volatile__", b"goto", b"inline", b"__inline__", b"else", b"do",
}
_OFFSETOF = re.compile(rb"offsetof[ \t]*\(")
_STATIC_MACRO = re.compile(rb"STATIC(?=[ \t]+\w)")


def _blank_spans(buf: bytearray, spans: Iterable[tuple[int, int]]) -> None:
    """Replace every byte but newlines in each span by a space."""
    for s, e in spans:
        if e > s:
            buf[s:e] = bytes(buf[s:e]).translate(_BLANK)


def _hide_lexical(raw: bytes) -> bytes:
    """Detection view: comments and literals turned into blanks (offsets kept)."""

    def hide(m: re.Match[bytes]) -> bytes:
        text = m[0]
        q = text[:1]
        if q == b"/":
            return text.translate(_HIDE)
        if text[-1:] == q and len(text) > 1:
            return q + text[1:-1].translate(_HIDE) + q
        return q + text[1:].translate(_HIDE)

    return _LEXICAL.sub(hide, raw)


def _last_sig(seg: bytes) -> bytes:
    """Last non-blank byte of seg, or b'' if it is blank."""
    stripped = seg.rstrip()
    return stripped[-1:]


class _Group:
    """One #if ... #endif group during the conditional scan."""

    __slots__ = ("start_b", "start_p", "dirs", "branches", "cur_start", "cur_db", "cur_dp",
                 "cur_last", "prefer_else", "conds")

    def __init__(self, start_b: int, start_p: int, span: tuple[int, int], prefer_else: bool,
                 cond: bool | None = None):
        self.start_b = start_b
        self.start_p = start_p
        self.dirs = [span]
        # (start, end, brace delta, paren delta, last significant byte)
        self.branches: list[tuple[int, int, int, int, bytes]] = []
        self.cur_start = span[1]
        self.cur_db = 0
        self.cur_dp = 0
        self.cur_last = b""
        self.prefer_else = prefer_else
        # Each branch's condition under the config: True, False or None (not decided).
        self.conds: list[bool | None] = [cond]

    def decided(self) -> tuple[bool, int | None]:
        """(whether the config decides the group, the branch it keeps or None)."""
        for i, cond in enumerate(self.conds):
            if cond is None:
                return False, None
            if cond:
                return True, i
        return True, None

    def close_branch(self, end: int) -> None:
        self.branches.append((self.cur_start, end, self.cur_db, self.cur_dp, self.cur_last))
        self.cur_db = self.cur_dp = 0
        self.cur_last = b""


def _blank_directives(code: bytes) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """Blank every directive line in the detection view; return it and the conditionals.

    Conditionals are returned as (start, end, keyword).  One regex callback per
    run of directive lines: define-heavy register headers have hundreds of
    thousands of lines.
    """
    conds: list[tuple[int, int, bytes]] = []

    def blank(m: re.Match[bytes]) -> bytes:
        run = m[0]
        base = m.start()
        for c in _COND_IN_RUN.finditer(run):
            ls = run.rfind(b"\n", 0, c.start()) + 1
            if not run[ls:c.start()].strip(b" \t"):
                conds.append((base + ls, base + c.end(), c[1]))
        return run.translate(_BLANK)

    head = _DIRECTIVE_AT_START.match(code)
    if head:
        if head[1] in _COND_ALL:
            conds.append((0, head.end(), head[1]))
        code = head[0].translate(_BLANK) + code[head.end():]
    return _DIRECTIVE.sub(blank, code), conds


Decide = Callable[[bytes, bytes], "bool | None"]


def _conditionals(
    code: bytes, view: bytes, conds: list[tuple[int, int, bytes]], decide: Decide | None = None
) -> list[tuple[int, int]]:
    """Decide which conditional branches to blank; return spans to blank.

    view has all directive lines blanked, so brace/paren depth between
    conditionals is tracked with bytes.count and the Python loop runs once per
    conditional directive, not per byte.
    """
    blanks: list[tuple[int, int]] = []
    stack: list[_Group] = []
    depth_b = depth_p = 0
    prev_end = 0

    def account(seg: bytes) -> None:
        nonlocal depth_b, depth_p
        db = seg.count(b"{") - seg.count(b"}")
        dp = seg.count(b"(") - seg.count(b")")
        depth_b += db
        depth_p += dp
        if stack:
            g = stack[-1]
            g.cur_db += db
            g.cur_dp += dp
            last = _last_sig(seg)
            if last:
                g.cur_last = last

    def close(g: _Group, end: int) -> None:
        nonlocal depth_b, depth_p
        g.close_branch(end)
        kept: int | None = 0
        if g.prefer_else:
            kept = 1 if len(g.branches) > 1 else None
        collapse = (
            g.start_b > 0 or g.start_p > 0
            or any(db or dp or (last and last not in b";}") for _, _, db, dp, last in g.branches)
        )
        if decide is not None:
            by_config, branch = g.decided()
            if by_config:  # the configured kernel's branch, whatever the syntax
                collapse, kept = True, branch
        if collapse:
            blanks.extend(g.dirs)
            blanks.extend((s, e) for i, (s, e, *_rest) in enumerate(g.branches) if i != kept)
        kb = kp = 0
        klast = b""
        if kept is not None:
            _, _, kb, kp, klast = g.branches[kept]
        depth_b = g.start_b + kb
        depth_p = g.start_p + kp
        if stack:
            parent = stack[-1]
            parent.cur_db += kb
            parent.cur_dp += kp
            if klast:
                parent.cur_last = klast

    for s, e, kw in conds:
        account(view[prev_end:s])
        prev_end = e
        if kw in _COND_OPEN:
            prefer = _PREFER_ELSE.match(code[s:e].strip()) is not None
            cond = decide(kw, code[s:e]) if decide is not None else None
            stack.append(_Group(depth_b, depth_p, (s, e), prefer, cond))
        elif kw in _COND_MID:
            if stack:
                g = stack[-1]
                g.conds.append(True if kw == b"else" else
                               decide(kw, code[s:e]) if decide is not None else None)
                g.close_branch(s)
                g.dirs.append((s, e))
                g.cur_start = e
                depth_b, depth_p = g.start_b, g.start_p
        elif stack:  # endif
            g = stack.pop()
            g.dirs.append((s, e))
            close(g, s)
    account(view[prev_end:])
    while stack:
        close(stack.pop(), len(code))
    return blanks


def _prev_sig(work: bytes | bytearray, pos: int) -> bytes:
    """The significant text right before pos: a word or a single byte ('' at start)."""
    window = 128
    while True:
        lo = max(0, pos - window)
        chunk = bytes(work[lo:pos]).rstrip()
        if chunk or lo == 0:
            break
        window *= 8
    if not chunk:
        return b""
    word = chunk[len(chunk.rstrip(_WORD_CHARS)):]
    return word or chunk[-1:]


def _word_at(work: bytes | bytearray, pos: int) -> tuple[int, int]:
    """Span of the identifier containing pos (pos must be on a word byte)."""
    lo = max(0, pos - 64)
    head = bytes(work[lo:pos])
    return lo + len(head.rstrip(_WORD_CHARS)), _WORD.match(work, pos).end()


def _match_paren(work: bytes | bytearray, open_pos: int) -> int:
    """Index just past the ')' matching the '(' at open_pos, or -1."""
    depth = 0
    for m in _PAREN.finditer(work, open_pos):
        if m.group() == b"(":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return m.end()
    return -1


def _next_sig(work: bytes | bytearray, pos: int) -> bytes:
    """First non-blank byte at or after pos (b'' at end)."""
    n = len(work)
    while pos < n:
        stripped = bytes(work[pos:pos + 256]).lstrip()
        if stripped:
            return stripped[:1]
        pos += 256
    return b""


def _top_level_args(
    work: bytes | bytearray, open_pos: int, close_pos: int
) -> list[tuple[int, int]]:
    """Spans of the comma-separated arguments between '(' at open_pos and ')' before close_pos."""
    args: list[tuple[int, int]] = []
    depth = 0
    start = open_pos + 1
    for m in _ARG_SPLIT.finditer(work, open_pos + 1, close_pos - 1):
        c = m.group()
        if c in b"([{":
            depth += 1
        elif c in b")]}":
            depth -= 1
        elif depth == 0:
            args.append((start, m.start()))
            start = m.end()
    args.append((start, close_pos - 1))
    return args


def _is_statement_position(work: bytes | bytearray, pos: int) -> bool:
    """True if a statement may start at pos (after ; { } ) : else do, or file start)."""
    prev = _prev_sig(work, pos)
    return prev in (b";", b"{", b"}", b")", b":", b"") or prev in _STMT_WORDS


class _Edits:
    """Pending rewrites, applied to both the output and the detection view."""

    __slots__ = ("blanks", "texts")

    def __init__(self) -> None:
        self.blanks: list[tuple[int, int]] = []
        self.texts: list[tuple[int, bytes]] = []

    def apply(self, work: bytearray, out: bytearray) -> None:
        for pos, text in self.texts:
            if b"\n" in out[pos:pos + len(text)]:
                continue  # never move a newline, whatever the detection view said
            out[pos:pos + len(text)] = text
            work[pos:pos + len(text)] = text
        _blank_spans(out, self.blanks)
        _blank_spans(work, self.blanks)


def _annotations(work: bytearray, ed: _Edits) -> None:
    """Blank attribute-like annotation macros, including a parenthesised argument."""
    for m in _DUNDER.finditer(work):
        s, e = m.span()
        if s and (work[s - 1] == 95 or chr(work[s - 1]).isalnum()):
            continue
        word = m.group()
        if word in _ANNOT_SET:
            ed.blanks.append((s, e))
        elif word.startswith(b"__imm") and _OPEN_PAREN.match(work, e):
            ed.texts.append((s, b'"i"'.ljust(e - s)))  # BPF selftest asm operand macros
        elif word.startswith(b"__clobber"):
            ed.texts.append((s, b'"memory"'.ljust(e - s) if e - s >= 8 else b" " * (e - s)))
        elif word in _STRING_MACROS:
            p = _OPEN_PAREN.match(work, e)
            end = _match_paren(work, p.end() - 1) if p else -1
            if end > 0 and b"\n" not in work[s:end]:
                _quote_word(ed, s, end)
        elif word in _ANNOT_ARG_SET:
            p = _OPEN_PAREN.match(work, e)
            if p:
                end = _match_paren(work, p.end() - 1)
                if end > 0:
                    ed.blanks.append((s, end))
    for rx in _WORD_ANNOTS:
        for m in rx.finditer(work):
            s = m.start()
            if s and (work[s - 1] == 95 or chr(work[s - 1]).isalnum()):
                continue
            ed.blanks.append(m.span())


def _loops(work: bytearray, ed: _Edits) -> None:
    """Rewrite iterator/scope macros in statement position into `while (...)` / `do`."""
    seen: set[int] = set()
    for rx in _LOOP_SCANS:
        for m in rx.finditer(work):
            name_s, name_e = _word_at(work, m.start())
            if name_s in seen:
                continue
            seen.add(name_s)
            name = bytes(work[name_s:name_e])
            if not _LOOP_NAME.match(name):
                continue
            p = _OPEN_PAREN.match(work, name_e)
            if not p or not _is_statement_position(work, name_s):
                continue
            open_pos = p.end() - 1
            close_pos = _match_paren(work, open_pos)
            if close_pos < 0:
                continue
            if name.startswith(b"while_each_"):
                ed.texts.append((name_s, b"while".ljust(name_e - name_s)))
                continue
            nxt = _next_sig(work, close_pos)
            if nxt in (b";", b")", b",", b"") or nxt in b"=?+-|&<>.[":
                continue
            if name.startswith(b"do_each_"):
                ed.texts.append((name_s, b"do"))
                ed.blanks.append((name_s + 2, close_pos))
                continue
            ed.texts.append((name_s, b"while".ljust(name_e - name_s)))
            if name.startswith(b"scoped_cond_guard"):
                args = _top_level_args(work, open_pos, close_pos)
                if len(args) >= 2:
                    ed.blanks.append((args[0][1], args[1][1]))


def _type_args(work: bytearray, ed: _Edits) -> None:
    """Make type arguments of macros parse as expressions.

    `struct foo` -> `       foo` (keeps the name), a trailing `*` is blanked;
    in min_t/va_arg/PER_CPU-like macros `unsigned int` -> `____________`.
    Only inside a call-like `name(`: never sizeof, casts, compound literals.
    """
    for m in (m for rx in _TAGGED_ARGS for m in rx.finditer(work)):
        s = m.start()
        if s and (work[s - 1] == 95 or chr(work[s - 1]).isalnum()):
            continue
        if _prev_sig(work, s) not in (b"(", b","):
            continue
        if not _inside_macro_call(work, s):
            continue
        ed.blanks.append((s, m.end()))
        t = _TAG_TAIL.match(work, m.end())
        if t and b"*" in t.group(1):
            ed.blanks.append(t.span(1))
    for rx in _TYPE_MACRO_SCANS:
        for m in rx.finditer(work):
            open_pos = m.end() - 1
            close_pos = _match_paren(work, open_pos)
            if close_pos < 0 or not _inside_macro_call(work, open_pos + 1):
                continue
            for a, b in _top_level_args(work, open_pos, close_pos):
                arg = bytes(work[a:b])
                pm = _PRIM_ARG.match(arg)
                if pm:
                    s1, e1 = pm.span(1)
                    ed.texts.append((a + s1, bytes(10 if c == 10 else 95 for c in arg[s1:e1])))
                    if b"*" in pm.group(2):
                        ed.blanks.append((a + pm.start(2), a + pm.end(2)))
                    continue
                tm = _TAG_PTR_ARG.match(arg)
                if tm:
                    ed.blanks.append((a + tm.start(1), a + tm.end(1)))


def _inside_macro_call(work: bytes | bytearray, pos: int) -> bool:
    """True if pos sits directly in the argument list of `ident(` that is a call expression."""
    lo = max(0, pos - 2000)
    chunk = bytes(work[lo:pos])
    depth = 0
    i = len(chunk)
    while True:
        j = max(chunk.rfind(b"(", 0, i), chunk.rfind(b")", 0, i))
        if j < 0:
            return False
        if chunk[j] == 41:  # ')'
            depth += 1
        elif depth:
            depth -= 1
        else:
            break
        i = j
    open_pos = lo + j
    before = bytes(work[max(0, open_pos - 128):open_pos]).rstrip()
    name_s = len(before.rstrip(_WORD_CHARS))
    name = before[name_s:]
    if not name:
        return False
    if name in _NOT_MACRO_CALL or name[:1].isdigit():
        return False
    # A declaration `type name(`: previous token is a word or '*'.
    prev = _prev_sig(before, name_s)
    keyword = prev in (b"return", b"else", b"case", b"do")
    return not (prev == b"*" or (prev[-1:] in _WORD_CHARS and not keyword))


def _misc(work: bytearray, ed: _Edits) -> None:
    """GNU case ranges, macros glued to string literals, offsetof with a member path."""
    for m in _ELLIPSIS.finditer(work):
        if _prev_sig(work, m.start()) not in (b",", b"(") and _next_sig(work, m.end()) != b")":
            ed.texts.append((m.start(), b"+0+"))
    for m in _WORD_QUOTE.finditer(work):
        # `KERN_INFO XFS_VERSION "..."`: tree-sitter accepts one identifier glued to a
        # string but not two in a row, so the second becomes a same-length string.
        end = len(bytes(work[max(0, m.start() - 64):m.start()]).rstrip()) + max(0, m.start() - 64)
        name_s, _ = _word_at(work, end - 1)
        name = bytes(work[name_s:end])
        if name[:1].isdigit() or name in _STRING_PREFIX_OK:
            continue
        prev = _prev_sig(work, name_s)
        if prev[-1:] in _WORD_CHARS and prev not in _STRING_PREFIX_OK and not prev[:1].isdigit():
            _quote_word(ed, name_s, end)
    for m in _OFFSETOF.finditer(work):
        s = m.start()
        if s and work[s - 1] in _WORD_CHARS:
            continue
        close = _match_paren(work, m.end() - 1)
        if close < 0:
            continue
        args = _top_level_args(work, m.end() - 1, close)
        if len(args) == 2 and any(c in work[args[1][0]:args[1][1]] for c in b".[-"):
            ed.texts.append((s, b"OFFSETOF"))


def _quote_word(ed: _Edits, s: int, e: int) -> None:
    """Turn an identifier glued to string literals into a same-length string (or blank)."""
    if e - s >= 2:
        ed.texts.append((s, b'"' + b"_" * (e - s - 2) + b'"'))
    else:
        ed.blanks.append((s, e))


_BARE_MACRO_LINE = re.compile(rb"\n([A-Z_][A-Z0-9_]*(?:\([^\n;{}]*\))?)[ \t]*(?=\r?\n)")
_HEADER = re.compile(rb"\n([A-Za-z_][\w \t*]*(?:\r?\n[\w \t*]*)?)\(")
_HEADER_WORD = re.compile(rb"[A-Za-z_]\w*")
_C_TYPE_WORDS = {b"unsigned", b"signed", b"short", b"long", b"int", b"char", b"float", b"double",
                 b"void", b"_Bool", b"bool"}
_C_SPEC_WORDS = {b"static", b"inline", b"extern", b"const", b"volatile", b"__inline__",
                 b"__inline", b"register", b"_Noreturn", b"__always_inline", b"typedef",
                 b"__extension__", b"auto", b"restrict", b"__restrict"}
_TAG_WORDS = {b"struct", b"union", b"enum"}


def _top_level(work: bytearray, ed: _Edits) -> None:
    """Column-0 macro lines without ';' and unknown words among declaration specifiers.

    `DECLARE_VM_GET_PAGE_PROT` alone on a line glues onto the next definition;
    `static __cpuidle int f(` / `static unsigned int INIT f(` put an unknown
    macro where tree-sitter wants a type.
    """
    for m in _BARE_MACRO_LINE.finditer(work):
        s, e = m.span(1)
        if _prev_sig(work, s) not in (b";", b"}", b""):
            continue
        nxt = _next_sig(work, e)
        if nxt in (b"{", b";", b",", b"=", b"(", b"[", b"") or nxt in b"*+-|&?:)":
            continue
        if work[s:e] == b"STATIC":
            ed.texts.append((s, b"static"))
        else:
            ed.blanks.append((s, e))
    for m in _HEADER.finditer(work):
        s, e = m.span(1)
        if _prev_sig(work, s) not in (b";", b"}", b""):
            continue
        words = [(w.group(), w.start()) for w in _HEADER_WORD.finditer(work, s, e)]
        if len(words) < 3:
            continue
        idents: list[tuple[bytes, int]] = []
        has_prim = False
        after_tag = False
        for w, ws in words[:-1]:
            if after_tag:
                after_tag = False
            elif w in _TAG_WORDS:
                has_prim, after_tag = True, True
            elif w in _C_TYPE_WORDS:
                has_prim = True
            elif w not in _C_SPEC_WORDS:
                idents.append((w, ws))
        if not idents or (not has_prim and len(idents) < 2):
            continue
        if not has_prim:
            plain = [i for i, (w, _) in enumerate(idents) if not _annotation_like(w)]
            keep = plain[-1] if plain else len(idents) - 1
            idents = idents[:keep] + idents[keep + 1:]
        for w, ws in idents:
            ed.blanks.append((ws, ws + len(w)))


def _annotation_like(word: bytes) -> bool:
    """Macro-looking specifier words: ALL_CAPS, __dunder, or *inline*/*static*."""
    return word.isupper() or word.startswith(b"__") or b"inline" in word or b"static" in word


_DIRECTIVE_HEAD = re.compile(rb"[ \t]*#[ \t]*\w+")
_CONTINUATION = re.compile(rb"\\\r?\n|[\r\n]")


def _decider(config: Kconfig, source: bytes) -> Decide:
    """A conditional directive's value under the config (None: not decided by it)."""
    local = local_defines(source)

    def decide(kw: bytes, line: bytes) -> bool | None:
        head = _DIRECTIVE_HEAD.match(line)
        rest = _CONTINUATION.sub(b" ", line[head.end():] if head else b"").strip()
        text = rest.decode("latin-1")
        if kw in (b"ifdef", b"elifdef", b"ifndef", b"elifndef"):
            name = text.split()[0] if text.split() else ""
            value = config.condition(f"defined({name})", local) if name else None
            return value if value is None or kw in (b"ifdef", b"elifdef") else not value
        return config.condition(text, local)

    return decide


def mask(source: bytes, config: Kconfig | None = None) -> bytes:
    """Return source with kernel macros masked; same length, newlines at the same offsets.

    With a kernel ``config``, every conditional group whose conditions it decides keeps
    only the branch that config compiles (none when all are false).
    """
    if not source:
        return source
    code = _hide_lexical(source)
    view, conds = _blank_directives(code)
    decide = _decider(config, source) if config is not None and b"CONFIG_" in source else None
    cond_blanks = _conditionals(code, view, conds, decide)
    out = bytearray(source)
    _blank_spans(out, cond_blanks)
    work = bytearray(view)
    _blank_spans(work, cond_blanks)
    ed = _Edits()
    _annotations(work, ed)
    ed.apply(work, out)
    ed = _Edits()
    _loops(work, ed)
    _misc(work, ed)
    ed.apply(work, out)
    ed = _Edits()
    _type_args(work, ed)
    for m in _STATIC_MACRO.finditer(work):
        if m.start() == 0 or work[m.start() - 1] == 10:
            ed.texts.append((m.start(), b"static"))
    ed.apply(work, out)
    ed = _Edits()
    _top_level(work, ed)
    ed.apply(work, out)
    return bytes(out)
