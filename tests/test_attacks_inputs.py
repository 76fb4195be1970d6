"""Hostile inputs to the commands: every cost they drive is bounded, and bad input is
a message and exit 2 (kbuild: a message and exit 0), never a traceback or a crash.

The CLI cases run the installed console script in a scratch kernel tree, as a user
would; the pure functions behind them are tested directly as well.
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest
from fixture_support import kernel_tree

from nofslint.kernel.gfp import (
    MAX_MACRO_DEPTH,
    FlagResolver,
    GfpTable,
    read_defines,
    read_macros,
)
from nofslint.output.report import escape_path, escape_text
from nofslint.plugins.registry import RuleError, builtin_rules, select_rules
from nofslint.plugins.static import StaticReadError, read_rules_statically
from nofslint.review import patch
from nofslint.run import config

NOFSLINT = Path(sys.executable).parent / "nofslint"
TABLE = GfpTable()

X_C = "void f(int n)\n{\n\tint a;\n\tint b;\n}\n"
VMALLOC_HUNK = (" void f(int n)\n {\n \tint a;\n"
                "+\tvoid *p = __vmalloc(n, GFP_NOFS);\n \tint b;\n }\n")


def cli(*args: str, cwd: Path, stdin: bytes | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(NOFSLINT), *args], cwd=cwd, input=stdin, capture_output=True,
                          timeout=timeout, check=False)
    out = subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(
        errors="replace"), done.stderr.decode(errors="replace"))
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode >= 0, f"killed by signal {-out.returncode}"
    return out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A fake v6.12 kernel tree with fs/n/x.c."""
    return kernel_tree(tmp_path / "linux", {"fs/n/x.c": X_C})


def diff(path: str, hunks: str, *, new: bool = False) -> str:
    old = "/dev/null" if new else f"a/{path}"
    mode = "new file mode 100644\n" if new else ""
    return f"diff --git a/{path} b/{path}\n{mode}--- {old}\n+++ b/{path}\n{hunks}"


def mail(body: str, headers: str = "From: A <a@example.org>\nSubject: [PATCH] x\n") -> str:
    return (f"From 1234567890abcdef Mon Sep 17 00:00:00 2001\n{headers}"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\n\nmessage\n---\n{body}")


def write(tmp_path: Path, text: str | bytes, name: str = "p.patch") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# -- 1. hunk positions are searched in a window ----------------------------------------

@pytest.mark.parametrize("line", [100_000_000, 1_000_000_000_000])
def test_a_huge_hunk_line_number_does_not_apply_at_once(tree: Path, tmp_path: Path,
                                                        line: int) -> None:
    hunk = f"@@ -{line},5 +{line},6 @@\n{VMALLOC_HUNK}"
    done = cli("check-patch", "--no-cache", str(write(tmp_path, diff("fs/n/x.c", hunk))),
                       cwd=tree)
    assert done.returncode == 2
    assert "does not apply" in done.stderr and f"at line {line}" in done.stderr


def _numbered(n: int) -> list[str]:
    return [f"int v{i};\n" for i in range(n)]


def _hunk_at(stated: int, lines: list[str], at: int) -> patch.FilePatch:
    """A hunk changing lines[at+1] that says it starts at line ``stated``."""
    body = [(" ", lines[at]), ("-", lines[at + 1]), ("+", "int w;\n"), (" ", lines[at + 2])]
    hunk = patch.Hunk(stated, 3, stated, 3, f"@@ -{stated},3 +{stated},3 @@", tuple(body))
    return patch.FilePatch("a.c", "a.c", [hunk])


def test_hunks_are_found_within_the_window_only(tmp_path: Path) -> None:
    lines = _numbered(patch.HUNK_WINDOW * 3)
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.c").write_text("".join(lines))
    real = patch.HUNK_WINDOW  # the hunk's lines are at 0-based index `real`

    def apply(stated: int) -> list[str]:
        mails = [patch.PatchMail(None, None, [], None, None, [_hunk_at(stated, lines, real)],
                                 "p")]
        out = patch.apply_patches(mails, tree, tmp_path / f"out{stated}")
        return out["a.c"].read_text().splitlines()  # type: ignore[union-attr]

    assert apply(real + 1 - 100)[real + 1] == "int w;"  # an offset git would take too
    assert apply(real + 1 + patch.HUNK_WINDOW - 1)[real + 1] == "int w;"
    with pytest.raises(patch.PatchError, match="does not apply"):
        apply(real + 1 + patch.HUNK_WINDOW + 10)


# -- 2. one budgeted, memoised flag-set resolver ----------------------------------------

def _nest(prefix: str, base: str, extra: str, depth: int = 20) -> list[str]:
    return [f"#define {prefix}0 {base}"] + [
        f"#define {prefix}{i} ({prefix}{i - 1} | {prefix}{i - 1} | {extra})"
        for i in range(1, depth + 1)]


def test_nested_gfp_macros_cost_linear_time(tree: Path) -> None:
    src = "\n".join(_nest("M", "GFP_KERNEL", "__GFP_ZERO")
                    + ["void f(int n)", "{", "\tvoid *p = kmalloc(n, M20);", "}", ""])
    assert len(src) < 1100
    (tree / "fs" / "n" / "x.c").write_text(src)
    done = cli("check", "--no-cache", "--select", "ALL", "fs", cwd=tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stderr  # the 60 s per-file limit was not hit


def test_nested_gfp_macros_are_still_evaluated_exactly(tree: Path) -> None:
    src = "\n".join(_nest("N", "GFP_NOFS", "__GFP_ZERO")
                    + ["void f(int n)", "{", "\tvoid *p = __vmalloc(n, N20);", "}", ""])
    (tree / "fs" / "n" / "x.c").write_text(src)
    done = cli("check", "--no-cache", "--kernel-version", "5.10", "fs", cwd=tree)
    assert done.returncode == 1 and "[vmalloc-nofs]" in done.stdout


def test_nested_workqueue_macros_cost_linear_time(tree: Path) -> None:
    src = "\n".join(_nest("W", "WQ_UNBOUND", "WQ_FREEZABLE") + [
        "static struct workqueue_struct *q;", "static void g(void)", "{",
        '\tq = alloc_workqueue("q", W20, 0);', "\tflush_workqueue(q);", "}", ""])
    (tree / "fs" / "n" / "x.c").write_text(src)
    done = cli("check", "--no-cache", "--select", "ALL", "fs", cwd=tree)
    assert done.returncode == 0 and "error" not in done.stderr  # no per-file time limit


def test_function_like_workqueue_macros_cannot_blow_up(tree: Path) -> None:
    src = "\n".join(["#define F(x) (x | x | x | x | x | x | x | x)",
                     "static struct workqueue_struct *q;", "static void g(void)", "{",
                     '\tq = alloc_workqueue("q", ' + "F(" * 8 + "WQ_UNBOUND" + ")" * 8 + ", 0);",
                     "}", ""])
    (tree / "fs" / "n" / "x.c").write_text(src)
    done = cli("check", "--no-cache", "--select", "ALL", "fs", cwd=tree)
    assert done.returncode == 0 and "error" not in done.stderr


def test_the_resolver_budget_gives_unknown_and_is_not_memoised() -> None:
    chain = {"D0": "GFP_NOFS", **{f"D{i}": f"(D{i - 1})" for i in range(1, 2 * MAX_MACRO_DEPTH)}}
    resolve = TABLE.resolver(chain)
    (deep,) = resolve(f"D{2 * MAX_MACRO_DEPTH - 1}") or ()
    assert deep.unknown and not deep.flags  # cut off: nothing is claimed about it
    (mid,) = resolve(f"D{MAX_MACRO_DEPTH // 2}") or ()
    assert mid.kind == "nofs"  # the cut-off did not stick to the names it passed through
    wide = {"Z0": "GFP_KERNEL", **{f"Z{i}": " | ".join(f"Z{j}" for j in range(i))
                                   for i in range(1, 400)}}
    looked_up: list[str] = []
    resolver = FlagResolver(lambda name: looked_up.append(name) or wide.get(name),
                            fixed=TABLE.lookup)
    resolver("Z399")
    assert len(looked_up) <= len(wide)  # each body once (memoised), not 2**399


def test_a_nest_of_macros_is_evaluated_once_per_name() -> None:
    """``#define M2 (M1 | M1)``, 20 deep: each body is evaluated once (2**20 without the
    memo), counted, not timed."""
    nest = {"M0": "GFP_KERNEL", **{f"M{i}": f"(M{i - 1} | M{i - 1} | __GFP_ZERO)"
                                   for i in range(1, 21)}}
    looked_up: list[str] = []
    resolver = FlagResolver(lambda name: looked_up.append(name) or nest.get(name),
                            fixed=TABLE.lookup)
    (mask,) = resolver("M20") or ()
    assert mask.kind == "kernel" and mask.has("__GFP_ZERO")
    assert sorted(set(looked_up)) == sorted(nest) and len(looked_up) == len(nest)


class _Counting(list):
    """A list that counts the reads of its items."""

    reads = 0

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        type(self).reads += 1
        return super().__getitem__(index)


@pytest.mark.parametrize("stated", [100_000_000, 1_000_000_000_000, 60])
def test_the_hunk_search_reads_only_its_window(stated: int) -> None:
    """However far the stated line is, the search reads at most the window's lines."""
    lines = [f"int v{i};\n" for i in range(200)]
    fp = _hunk_at(stated, lines, 50)
    (hunk,) = fp.hunks
    old = [patch._key(text) for kind, text in hunk.lines if kind != "+"]
    keys = _Counting(patch._key(line) for line in lines)
    _Counting.reads = 0
    found = patch._find(keys, hunk, old, stated - 1, 0)
    assert found == (50 if stated == 60 else None)
    assert _Counting.reads <= 2 * (2 * patch.HUNK_WINDOW + 1)


def test_a_macro_cycle_stays_unknown() -> None:
    (mask,) = TABLE.eval("A", extra={"A": "B | __GFP_FS", "B": "A"})
    assert mask.has("__GFP_FS") is True and mask.unknown


def test_macro_aliases_are_followed(tree: Path) -> None:
    (tree / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\n")
    (tree / "fs" / "n" / "x.c").write_text(
        "#define MYGFP GFP_NOFS\n#define B GFP_NOFS // the base\n#define A B\n"
        "#define NF (GFP_KERNEL | __GFP_NOFAIL)\n#define NF2 NF\n"
        "void f(int n)\n{\n"
        "\tvoid *p = __vmalloc(n, MYGFP);\n"
        "\tvoid *q = __vmalloc(n, A);\n"
        "\tstruct page *r = alloc_pages(NF2, 3);\n}\n")
    done = cli("check", "--no-cache", "--select", "ALL", "fs", cwd=tree)
    found = {(line.split(":")[1], line.rsplit("[", 1)[-1]) for line in done.stdout.splitlines()
             if line.startswith("fs/")}
    assert found == {("8", "vmalloc-nofs]"), ("9", "vmalloc-nofs]"),
                     ("10", "nofail-high-order]")}, done.stdout


def test_alias_reading() -> None:
    data = (b"#define R WQ_MEM_RECLAIM\n#define A R\n#define C C\n#define X Y\n#define Y X\n"
            b"#define G (GFP_NOFS | __GFP_ZERO) // zero\n#define H G\n")
    assert read_macros(data, lambda n, b: "WQ_" in b)["A"] == (None, "WQ_MEM_RECLAIM")
    defines = read_defines(data, lambda n: True)
    assert defines["C"] == "C" and defines["X"] == "X"  # cycles end, they are not followed
    assert TABLE.eval("H", extra=defines)[0] == TABLE.eval("GFP_NOFS | __GFP_ZERO")[0]
    assert read_defines(data, lambda n: True, follow_aliases=False)["H"] == "G"


# -- 3. tracebacks become messages ------------------------------------------------------

def test_a_file_and_a_file_under_it(tree: Path, tmp_path: Path) -> None:
    text = (diff("fs/n/a.c", "@@ -0,0 +1 @@\n+int a;\n", new=True)
            + diff("fs/n/a.c/b.c", "@@ -0,0 +1 @@\n+int b;\n", new=True))
    done = cli("check-patch", "--no-cache", str(write(tmp_path, text)), cwd=tree)
    assert done.returncode == 2 and "fs/n/a.c is a file, not a directory" in done.stderr


def test_a_file_under_a_file_of_the_tree(tree: Path, tmp_path: Path) -> None:
    text = diff("fs/n/x.c/b.c", "@@ -0,0 +1 @@\n+int b;\n", new=True)
    done = cli("check-patch", "--no-cache", str(write(tmp_path, text)), cwd=tree)
    assert done.returncode == 2 and "fs/n/x.c is a file, not a directory" in done.stderr


def test_a_directory_where_the_patch_changes_a_file(tree: Path, tmp_path: Path) -> None:
    (tree / "fs" / "n" / "d.c").mkdir()
    text = diff("fs/n/d.c", "@@ -1,2 +1,3 @@\n a\n+b\n c\n")
    done = cli("check-patch", "--no-cache", str(write(tmp_path, text)), cwd=tree)
    assert done.returncode == 2 and "fs/n/d.c: is a directory" in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode 000 file")
def test_an_unreadable_file(tree: Path, tmp_path: Path) -> None:
    (tree / "fs" / "n" / "x.c").chmod(0)
    hunk = f"@@ -1,5 +1,6 @@\n{VMALLOC_HUNK}"
    done = cli("check-patch", "--no-cache", str(write(tmp_path, diff("fs/n/x.c", hunk))),
               cwd=tree)
    assert done.returncode == 2 and "Permission denied" in done.stderr


def test_a_read_error_is_a_patch_error(tree: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """What a non-root user gets for a mode 000 file (root cannot be refused a read)."""
    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(patch.os, "open", refuse)
    mails = patch.read_patches(diff("fs/n/x.c", f"@@ -1,5 +1,6 @@\n{VMALLOC_HUNK}").encode(),
                               "p")
    with pytest.raises(patch.PatchError, match="x.c: cannot read: Permission denied"):
        patch.apply_patches(mails, tree, tmp_path / "out")


def test_special_files_are_refused_unopened(tree: Path, tmp_path: Path) -> None:
    os.mkfifo(tree / "fs" / "n" / "p.c")
    (tree / "fs" / "n" / "z.c").symlink_to("/dev/zero")
    for name in ("p.c", "z.c"):
        text = diff(f"fs/n/{name}", "@@ -1,2 +1,3 @@\n a\n+b\n c\n")
        done = cli("check-patch", "--no-cache", str(write(tmp_path, text)), cwd=tree,
                   timeout=30)
        assert done.returncode == 2 and "not a regular file" in done.stderr


def test_a_3_gib_file_is_refused(tree: Path, tmp_path: Path) -> None:
    big = tree / "fs" / "n" / "big.c"
    with open(big, "wb") as fh:
        fh.truncate(3 * 1024**3)  # sparse
    done = cli("check-patch", "--no-cache",
                       str(write(tmp_path, diff("fs/n/big.c", "@@ -1,2 +1,3 @@\n a\n+b\n c\n"))),
                       cwd=tree)
    assert done.returncode == 2 and "file too large (3072 MiB > 24 MiB)" in done.stderr


def test_a_long_file_name(tree: Path, tmp_path: Path) -> None:
    name = "fs/n/" + "a" * 300 + ".c"
    done = cli("check-patch", "--no-cache",
               str(write(tmp_path, diff(name, "@@ -0,0 +1 @@\n+int a;\n", new=True))), cwd=tree)
    assert done.returncode == 2 and "File name too long" in done.stderr


@pytest.mark.parametrize("headers", [
    "From: a@\nMessage-ID: <<<>>>\nSubject: [PATCH] x\n",
    "From: A <a@example.org>\nMessage-ID: <<<>>>\nReferences: <<<\nSubject: [PATCH] x\n",
])
@pytest.mark.parametrize("fmt", ["text", "email", "checkpatch"])
def test_headers_the_email_package_cannot_parse(tree: Path, tmp_path: Path, headers: str,
                                                fmt: str) -> None:
    text = mail(diff("fs/n/x.c", f"@@ -1,5 +1,6 @@\n{VMALLOC_HUNK}"), headers)
    done = cli("check-patch", "--no-cache", "--kernel-version", "5.10", "--format", fmt,
               str(write(tmp_path, text)), cwd=tree)
    assert done.returncode == 1 and "vmalloc-nofs" in done.stdout
    if fmt == "email":
        assert "\nIn-Reply-To: <<<>>>\n" in done.stdout
        assert ("\nTo: a@\n" in done.stdout) == headers.startswith("From: a@")


@pytest.mark.parametrize("headers", [
    "From: A <a@example.org>\nSubject: =?utf-8?q?a=0Ab?=\n",
    "From: A <a@example.org>\nSubject: =?utf-8?q?x=0D=0ABcc:_victim@example.org?=\n",
    "From: =?utf-8?q?A=0ABcc:_victim@example.org?= <a@example.org>\nSubject: x\n",
    "From: A <a@example.org>\nSubject: x\nMessage-ID: =?utf-8?q?<a@b>=0ABcc:_v@e?=\n",
])
def test_no_header_injection_in_the_reply(tree: Path, tmp_path: Path, headers: str) -> None:
    text = mail(diff("fs/n/x.c", f"@@ -1,5 +1,6 @@\n{VMALLOC_HUNK}"), headers)
    done = cli("check-patch", "--no-cache", "--kernel-version", "5.10", "--format", "email",
               str(write(tmp_path, text)), cwd=tree)
    assert done.returncode == 1
    head = done.stdout.split("\n\n", 1)[0]
    assert "Bcc" not in [line.split(":")[0] for line in head.splitlines()]
    reply = email.message_from_string(done.stdout, policy=policy.default)
    assert "\n" not in str(reply["Subject"]) and reply["Bcc"] is None


def test_a_nested_multipart_mail(tree: Path, tmp_path: Path) -> None:
    parts = "".join(f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n"
                    for i in range(3000))
    text = ("From: A <a@example.org>\nSubject: x\nMIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=b0\n\n" + parts + "--b3000\n\nx\n")
    done = cli("check-patch", "--no-cache", str(write(tmp_path, text)), cwd=tree)
    assert done.returncode == 2 and "too deeply" in done.stderr


def test_a_patch_larger_than_the_cap_is_refused(tree: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from nofslint.cli import check_patch

    monkeypatch.setattr(check_patch, "MAX_PATCH_BYTES", 10)
    with pytest.raises(SystemExit) as exc:
        check_patch._read_patch(str(write(tmp_path, "x" * 11)))
    assert exc.value.code == 2


DEEP_TOML = ["a = " + "[" * 10000 + "]" * 10000 + "\n",
             "a = " + "{b = " * 10000 + "1" + "}" * 10000 + "\n"]


@pytest.mark.parametrize("text", DEEP_TOML, ids=["arrays", "inline-tables"])
def test_a_deeply_nested_config(tree: Path, text: str) -> None:
    (tree / ".nofslint.toml").write_text(text)
    done = cli("check", "--no-cache", "fs", cwd=tree)
    assert done.returncode == 2 and "not valid TOML" in done.stderr
    done = cli("kbuild", "-D__KERNEL__", "fs/n/x.c", cwd=tree)
    assert done.returncode == 0 and "not valid TOML" in done.stderr


def test_config_parse_failures_are_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    for text in (*DEEP_TOML, 'plugins = ["a\\u0000b"]\n', "a = [\n", "x" * 2):
        path.write_text(text)
        with pytest.raises(config.ConfigError):
            config.load(path)
    with open(path, "wb") as fh:
        fh.truncate(config.MAX_CONFIG_BYTES + 1)
    with pytest.raises(config.ConfigError, match="larger than"):
        config.load(path)


def test_a_nul_byte_in_a_plugin_path(tree: Path) -> None:
    (tree / ".nofslint.toml").write_text('plugins = ["a\\u0000b"]\n')
    done = cli("check", "--no-cache", "fs", cwd=tree)
    assert done.returncode == 2 and "plugins" in done.stderr


def test_rules_dir_non_utf8(tmp_path: Path) -> None:
    (tmp_path / "rd").mkdir()
    (tmp_path / "rd" / "a.py").write_bytes(b'x = "\xff"\n')
    done = cli("rules", "--rules-dir", "rd", cwd=tmp_path)
    assert done.returncode == 2 and "a.py: not valid Python" in done.stderr


DEEP_PYTHON = {
    "parens": "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
    "unary": "x = " + "-" * 20000 + "1\n",
    "attributes": "x = y" + ".a" * 20000 + "\n",
    "lambdas": "x = " + "lambda: " * 20000 + "1\n",
    "lists": "x = " + "[" * 150 + "]" * 150 + "\n",
}


@pytest.mark.parametrize("kind", sorted(DEEP_PYTHON))
def test_rules_dir_deep_nesting_is_refused_not_crashed(tmp_path: Path, kind: str) -> None:
    (tmp_path / "rd").mkdir()
    (tmp_path / "rd" / "a.py").write_text(DEEP_PYTHON[kind])
    done = cli("explain", "vmalloc-nofs", "--rules-dir", "rd", cwd=tmp_path, timeout=60)
    assert done.returncode == 0
    done = cli("explain", "my-rule", "--rules-dir", "rd", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "a.py: not valid Python" in done.stderr or "a.py: nested more than" in done.stderr
    done = cli("rules", "--rules-dir", "rd", cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "plugin rd/a.py: " in done.stderr


def test_rules_dir_special_files(tmp_path: Path) -> None:
    rd = tmp_path / "rd"
    rd.mkdir()
    (rd / "zero.py").symlink_to("/dev/zero")
    os.mkfifo(rd / "fifo.py")
    (rd / "dir.py").mkdir()
    with open(rd / "big.py", "wb") as fh:
        fh.truncate(2 * 1024**2)
    done = cli("rules", "--rules-dir", "rd", cwd=tmp_path)
    assert done.returncode == 2
    for name in ("zero.py", "fifo.py", "dir.py"):
        assert f"plugin rd/{name}: not a regular file" in done.stderr
    assert "plugin rd/big.py: larger than 1024 KiB" in done.stderr


def test_a_rule_file_read_statically_still_works(tmp_path: Path) -> None:
    path = tmp_path / "r.py"
    path.write_text('from nofslint.api import Rule\n\n\nclass R(Rule):\n    """S."""\n\n'
                    '    id = "my-rule"\n    severity = "warning"\n')
    (rule,) = read_rules_statically(path)
    assert rule.id == "my-rule"
    path.write_bytes(b"# -*- coding: latin-1 -*-\nx = '\xe9'\n")  # an encoding cookie
    assert read_rules_statically(path) == []
    path.write_text("x = " + "-" * 20000 + "1\n")
    with pytest.raises(StaticReadError):
        read_rules_statically(path)


# -- 4. lower severity ------------------------------------------------------------------

def test_newlines_in_file_names_cannot_forge_findings(tree: Path) -> None:
    (tree / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\n")
    forged = "x\nevil.c:1:1: error: forged [vmalloc-nofs]\r\\.c"
    (tree / "fs" / "n" / forged).write_text(
        "void f(int n)\n{\n\tvoid *p = __vmalloc(n, GFP_NOFS);\n}\n")
    (tree / "fs" / "n" / "x.c").unlink()
    escaped = "fs/n/x\\nevil.c:1:1: error: forged [vmalloc-nofs]\\r\\\\.c"
    for fmt in ("text", "checkpatch"):
        done = cli("check", "--no-cache", "--format", fmt, "fs", cwd=tree)
        assert done.returncode == 1
        assert not any(line.startswith("evil.c") for line in done.stdout.splitlines())
        assert escaped in done.stdout, done.stdout
    assert f"FILE: {escaped}:3:" in done.stdout


def test_escaping() -> None:
    assert escape_path("fs/a.c") == "fs/a.c"
    assert escape_path("a\nb\r\\\t\x01\u2028\udcff") == "a\\nb\\r\\\\\\t\\001\\342\\200\\250\\377"
    assert escape_text("\tif (x)\r\\n") == "\tif (x)\\015\\n"


def test_ignore_all(tree: Path) -> None:
    done = cli("check", "--no-cache", "--ignore", "ALL", "fs", cwd=tree)
    assert done.returncode == 2 and "no rules selected" in done.stderr
    # Ignoring what is selected by id stays what test_config pins: nothing runs, exit 0.
    done = cli("check", "--no-cache", "--select", "vmalloc-nofs", "--ignore", "vmalloc-nofs",
               "fs", cwd=tree)
    assert done.returncode == 0
    (tree / ".nofslint.toml").write_text('ignore = ["ALL"]\n')
    done = cli("check", "--no-cache", "fs", cwd=tree)
    assert done.returncode == 2 and "no rules selected" in done.stderr
    done = cli("kbuild", "fs/n/x.c", cwd=tree)
    assert done.returncode == 0 and "no rules selected" in done.stderr


def test_select_rules_ignore_all() -> None:
    rules = builtin_rules()
    for select in (None, ["ALL"], ["vmalloc-nofs"]):
        with pytest.raises(RuleError, match="no rules selected"):
            select_rules(rules, select, ["ALL"])
    assert [r.id for r in select_rules(rules, ["ALL"], ["prefer-nofs-scope"])] == sorted(
        set(rules) - {"prefer-nofs-scope"})


def test_multipart_text_part_without_a_final_newline(tree: Path, tmp_path: Path) -> None:
    plain = "--- a/fs/n/x.c\n+++ b/fs/n/x.c\n@@ -1,5 +1,6 @@\n" + VMALLOC_HUNK
    text = ("From: A <a@example.org>\nSubject: [PATCH] x\nMIME-Version: 1.0\n"
            'Content-Type: multipart/mixed; boundary="BB"\n\n'
            "--BB\nContent-Type: text/plain; charset=utf-8\n\ncommit message\n"
            "--BB\nContent-Type: text/x-patch; charset=utf-8\n\n" + plain + "\n--BB--\n")
    done = cli("check-patch", "--no-cache", "--kernel-version", "5.10",
               str(write(tmp_path, text)), cwd=tree)
    assert done.returncode == 1 and "vmalloc-nofs" in done.stdout


def test_header_values_are_one_line() -> None:
    msg = email.message_from_string("Subject: =?utf-8?q?a=0Ab=0D=0Ac?=\n\n",
                                    policy=policy.default)
    assert patch._header(msg, "Subject") == "a b c"  # type: ignore[arg-type]
