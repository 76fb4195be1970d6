"""The kernel config: reading it, deciding #if groups and IS_ENABLED bodies, the Kbuild
Makefiles, choosing the config, the cache across a config switch, and the outputs.

The fixture tree fixtures/nofail-in-reclaim/linux-6.12-kconfig holds the end-to-end
expectations (test_fixtures.py lints it with its .config); here each piece alone.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from fixture_support import FIXTURES

from nofslint.extract.flow import build
from nofslint.frontend.mask import mask
from nofslint.frontend.parse import captures, parse_source
from nofslint.kernel.kbuild_makefiles import build_map
from nofslint.kernel.kconfig import Kconfig, KconfigError, body_condition, mentioned, read
from nofslint.kernel.tree import Extras
from nofslint.plugins.registry import builtin_rules, select_rules
from nofslint.run.config import Config
from nofslint.run.engine import run
from nofslint.run.settings import choose_kconfig

TREE = FIXTURES / "nofail-in-reclaim" / "linux-6.12-kconfig"
CONFIG = """\
CONFIG_X86=y
CONFIG_X86_64=y
CONFIG_A=y
CONFIG_M=m
# CONFIG_B is not set
CONFIG_N=32
CONFIG_H=0x10
CONFIG_S="text"
"""


@pytest.fixture
def config(tmp_path: Path) -> Kconfig:
    path = tmp_path / "config"
    path.write_text(CONFIG)
    return read(path)


def nofslint(*args: str | Path, cwd: Path | None = None, env: dict | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nofslint", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          check=False)


# -- reading -----------------------------------------------------------------------------
def test_xz_and_gz_configs_read_as_the_plain_one(tmp_path: Path, config: Kconfig) -> None:
    (tmp_path / "c.xz").write_bytes(lzma.compress(CONFIG.encode()))
    (tmp_path / "c.gz").write_bytes(gzip.compress(CONFIG.encode()))
    for name in ("c.xz", "c.gz"):
        other = read(tmp_path / name)
        assert other.values == config.values and other.digest == config.digest
    assert config.values["CONFIG_S"] == '"text"' and "CONFIG_B" not in config.values
    assert config.arch == "x86"


@pytest.mark.parametrize("content, why", [
    (b"", "no CONFIG_ symbol"), (b"int main(void) { return 0; }\n", "not a kernel config"),
    (b"\xfd7zXZ\x00garbage", "cannot read"),
])
def test_what_is_not_a_config_is_a_clear_error(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(KconfigError, match=why):
        read(path)
    with pytest.raises(KconfigError, match="cannot read"):
        read(tmp_path / "missing")


def test_a_fifo_as_the_trees_config_is_refused_not_waited_for(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(TREE, root)
    (root / ".config").unlink()
    os.mkfifo(root / ".config")
    command = [sys.executable, "-m", "nofslint", "check", str(root), "--no-cache"]
    # At the tree root it is not a config file: not used (and never opened).
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1 and "Kernel config" not in proc.stdout
    # Named, it is refused without waiting for a writer.
    proc = subprocess.run([*command, "--kconfig", str(root / ".config")], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr


def test_a_bad_or_missing_kconfig_is_exit_2_naming_it(tmp_path: Path) -> None:
    for value in (tmp_path / "missing", TREE / "Makefile"):
        proc = nofslint("check", TREE, "--kconfig", value, "--no-cache")
        assert proc.returncode == 2 and str(value) in proc.stderr, proc.stderr


# -- #if conditions -----------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("defined(CONFIG_A)", True), ("defined CONFIG_B", False), ("!defined(CONFIG_B)", True),
    ("IS_ENABLED(CONFIG_M)", True), ("IS_ENABLED(CONFIG_B)", False),
    ("IS_BUILTIN(CONFIG_M)", False), ("IS_BUILTIN(CONFIG_A)", True),
    ("IS_MODULE(CONFIG_M)", True), ("IS_MODULE(CONFIG_A)", False),
    ("IS_REACHABLE(CONFIG_A)", True), ("IS_REACHABLE(CONFIG_B)", False),
    ("IS_REACHABLE(CONFIG_M)", None),  # depends on how the file is built
    ("defined(CONFIG_M_MODULE)", True), ("defined(CONFIG_M)", False),
    ("CONFIG_N >= 32 && CONFIG_H == 0x10", True), ("CONFIG_N < 8 || CONFIG_H != 16", False),
    ("(CONFIG_N * 2) > 60 ? 1 : 0", True), ("CONFIG_A", True), ("CONFIG_B", False),
    ("FOO", None), ("FOO && CONFIG_B", False), ("FOO || CONFIG_A", True),
    ("FOO && CONFIG_A", None), ("CONFIG_S", None), ("KERNEL_VERSION(6, 1, 0) > 3", None),
    ("defined(", None), ("'a'", None),
])
def test_conditions(config: Kconfig, text: str, value: bool | None) -> None:
    assert config.condition(text) is value


def test_a_config_name_the_file_defines_is_not_decided(config: Kconfig) -> None:
    assert config.condition("defined(CONFIG_B)", {"CONFIG_B"}) is None


SOURCE = b"""\
#ifdef CONFIG_B
int pick(void) { return 1; }
#elif IS_ENABLED(CONFIG_M) /* a comment
   spanning lines */
int pick(void) { return 2; }
#else
int pick(void) { return 3; }
#endif
int body(void)
{
#if CONFIG_N > 64 || \\
    defined(CONFIG_B)
	a();
#else
	b();
#endif
#if FOO
	c();
#else
	d();
#endif
}
"""


def test_mask_keeps_the_configured_branch_offsets_and_lines(config: Kconfig) -> None:
    masked = mask(SOURCE, config)
    assert len(masked) == len(SOURCE)
    assert [i for i, b in enumerate(masked) if b == 10] == \
        [i for i, b in enumerate(SOURCE) if b == 10]
    assert b"return 2" in masked and b"return 1" not in masked and b"return 3" not in masked
    assert b"b();" in masked and b"a();" not in masked
    # Not decided by the config: today's handling (the first branch in a body).
    assert b"c();" in masked and b"d();" not in masked
    funcs = captures("(function_definition) @f", parse_source(SOURCE, config)[1].root_node)
    assert len(funcs["f"]) == 2
    # Without a config every top-level alternative is still there.
    assert mask(SOURCE).count(b"int pick") == 3


def test_mentioned_symbols_are_those_of_conditionals_and_is_calls() -> None:
    raw = (b"#if defined(CONFIG_A) && \\\n CONFIG_N\n#endif\n"
           b"if (IS_ENABLED(CONFIG_M)) f(CONFIG_X);\n")
    assert mentioned(raw) == {"CONFIG_A", "CONFIG_N", "CONFIG_M"}


# -- function bodies -----------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("IS_ENABLED(CONFIG_A)", True), ("!IS_ENABLED(CONFIG_M)", False),
    ("IS_ENABLED(CONFIG_B) && x", False), ("x || IS_BUILTIN(CONFIG_A)", True),
    ("x && IS_ENABLED(CONFIG_A)", None), ("unlikely(IS_MODULE(CONFIG_M))", True),
    ("IS_REACHABLE(CONFIG_M)", None), ("x", None),
])
def test_body_conditions(config: Kconfig, text: str, value: bool | None) -> None:
    assert body_condition(text, config) is value


def test_is_enabled_in_a_body_is_a_constant_condition_for_the_flow(config: Kconfig) -> None:
    raw = b"void f(void)\n{\n\tif (!IS_ENABLED(CONFIG_B))\n\t\treturn;\n\tg();\n}\n"
    body = captures("(function_definition body: (_) @b)", parse_source(raw)[1].root_node)["b"][0]
    without = build(0, body, raw)
    with_config = build(0, body, raw, config=config)
    # With the config the only way out is the early return: the call's block is dead.
    assert len(_reachable(with_config)) < len(_reachable(without))


def _reachable(flow) -> set[int]:
    seen, todo = {0}, [0]
    while todo:
        for target, _key, _value in flow.blocks[todo.pop()].succs:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


# -- Makefiles -------------------------------------------------------------------------------
def test_the_fixture_trees_makefiles() -> None:
    kmap = build_map(TREE, read(TREE / ".config"))
    built = {"fs/kcfs/super.c", "fs/kcfs/tree.c", "fs/kcfs/acl.c", "fs/kcfs/lib/util.c",
             "fs/kcfs/libhelp.c", "fs/kcfs/modpart.c", "fs/kcfs/substpart.c",
             "fs/kcfs/weird.c", "fs/kcfs/unnamed.c", "arch/x86/kernel/setup.c",
             "arch/x86/lib/xlib.c", "lib/kclib.c", "fs/kcfs/cond.c", "fs/kcfs/incl.c"}
    not_built = {"fs/kcfs/tiny.c", "fs/kcfs/tiny_extra.c", "fs/kcfs/mkkcfs.c",
                 "fs/otherfs/other.c", "debug/dbg.c", "arch/arm64/kernel/setup.c",
                 "fs/dbgfs/dbg2.c", "arch/x86/math-emu/emu.c", "fs/kcfs/incl_tiny.c"}
    assert {p for p in built | not_built if kmap.is_built(p)} == built
    assert kmap.unnamed("fs/kcfs/unnamed.c") and not kmap.unnamed("fs/kcfs/tree.c")
    assert any("$(call)" in n for n in kmap.notes)  # --verbose names what was not evaluated
    assert kmap.is_built("include/linux/anything.h")  # headers: linked as before


def test_makefiles_are_data_bounded_and_stay_in_the_tree(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    shutil.copytree(TREE, tree)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Makefile").write_text("obj-y += secret.o\n")
    (outside / "secret.c").write_text("int x;\n")
    mk = tree / "fs" / "kcfs" / "Makefile"
    mk.write_text(mk.read_text() + "obj-y += ../../../outside/\nobj-y += $(shell touch "
                  f"{tmp_path}/ran)\nobj-y += loop/\n" + "x = $(x)\nobj-y += $(x)\n")
    (tree / "fs" / "kcfs" / "loop").mkdir()
    (tree / "fs" / "kcfs" / "loop" / "Makefile").symlink_to(outside / "Makefile")
    (tree / "fs" / "kcfs" / "Makefile.parts").write_text(
        f"include {outside}/Makefile\ninclude $(src)/Makefile.parts\n"
        f"$(shell touch {tmp_path}/ran)\nkcfs-y += incl.o\n")
    kmap = build_map(tree, read(tree / ".config"))
    assert not (tmp_path / "ran").exists()
    assert not any("secret" in p for p in kmap.built)
    assert kmap.is_built("fs/kcfs/super.c")
    # The command, as a user runs it on a tree they were sent.
    proc = nofslint("check", tree, "--no-cache", "-v", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    assert not (tmp_path / "ran").exists()
    assert "not followed" in proc.stderr  # the include out of the tree, and the loop
    assert "fs/kcfs/incl.c" in {f["path"] for f in json.loads(proc.stdout)["findings"]}


# -- choosing the config -----------------------------------------------------------------------
def test_the_order_option_toml_env_root_build_dir(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "tree"
    shutil.copytree(TREE, root)
    other = tmp_path / "other.config"
    other.write_text("CONFIG_ARM64=y\n")
    build_dir = tmp_path / "build"
    (build_dir / "include/config").mkdir(parents=True)
    (build_dir / "include/config/auto.conf").write_text("CONFIG_RISCV=y\n")
    monkeypatch.delenv("KCONFIG_CONFIG", raising=False)
    assert choose_kconfig(str(other), Config(kconfig="none"), root)[0].arch == "arm64"
    assert choose_kconfig("none", Config(), root) == (None, "--kconfig none")
    assert choose_kconfig(None, Config(kconfig=str(other)), root)[0].arch == "arm64"
    assert choose_kconfig(None, Config(kconfig="none"), root)[0] is None
    monkeypatch.setenv("KCONFIG_CONFIG", str(other))
    assert choose_kconfig(None, Config(), root)[0].arch == "arm64"
    monkeypatch.delenv("KCONFIG_CONFIG")
    assert "tree root" in choose_kconfig(None, Config(), root)[1]
    (root / ".config").unlink()
    assert choose_kconfig(None, Config(), root, build_dir)[0].arch == "riscv"
    assert choose_kconfig(None, Config(), root) == (None, None)


def test_the_toml_kconfig_and_verbose(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(TREE, root)
    (root / ".config").rename(root / "kernel.config")
    (root / ".nofslint.toml").write_text('kconfig = "kernel.config"\n')
    proc = nofslint("check", root, "--no-cache", "-v", "--format", "json")
    assert "kernel config" in proc.stderr and "kernel.config" in proc.stderr, proc.stderr
    assert "fs/kcfs/unnamed.c: no Makefile read names it" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["trees"][0]["kconfig"]["path"] == str(root / "kernel.config")
    assert len(doc["trees"][0]["kconfig"]["sha256"]) == 16
    (root / ".nofslint.toml").write_text("kconfig = 3\n")
    proc = nofslint("check", root, "--no-cache")
    assert proc.returncode == 2 and "kconfig" in proc.stderr


# -- the fixture's chains, with and without the config ------------------------------------------
def _nofail(paths: list[Path], kconfig: Kconfig | None, cache: Path | None = None):
    rules = select_rules(builtin_rules(), ["nofail-in-reclaim"], None)
    return run(paths, rules, jobs=1, extras=Extras(kconfig=kconfig), cache_root=cache)


def test_chains_through_a_disabled_file_or_else_branch_exist_only_without_config() -> None:
    config = read(TREE / ".config")
    without = {(f.path, f.line) for f in _nofail([TREE], None).findings}
    with_config = {(f.path, f.line) for f in _nofail([TREE], config).findings}
    only_without = without - with_config
    assert ("fs/kcfs/tiny.c", 9) in only_without  # a file the config does not build
    assert ("fs/kcfs/cond.c", 20) in only_without  # a disabled #else branch
    assert ("fs/kcfs/super.c", 20) in only_without  # a directory it does not descend into
    assert ("fs/kcfs/body.c", 12) in only_without  # if (IS_ENABLED(CONFIG_KCDEBUG)) call();
    assert ("fs/kcfs/body.c", 17) in only_without  # if (!IS_ENABLED(CONFIG_KCFS_ACL)) ...
    assert ("fs/kcfs/cond.c", 163) in with_config - without  # the #else of a body


def test_a_config_switch_reextracts_only_files_whose_conditionals_change(tmp_path: Path
                                                                         ) -> None:
    root = tmp_path / "tree"
    shutil.copytree(TREE, root)
    cache = tmp_path / "cache"
    first = read(root / ".config")
    _nofail([root], first, cache)
    entries = set(cache.rglob("*"))
    second = tmp_path / "second.config"
    second.write_text((root / ".config").read_text().replace("CONFIG_KCFS_LEVEL=3",
                                                                "CONFIG_KCFS_LEVEL=9"))
    result = _nofail([root], read(second), cache)
    new = [p for p in set(cache.rglob("*")) - entries
           if len(p.name) == 64 and "results" not in p.parts]
    assert len(new) == 1  # cond.c, the one file whose #if reads KCFS_LEVEL
    assert not any(f.path == "fs/kcfs/cond.c" and f.line == 114 for f in result.findings)


def test_sarif_and_summary_name_the_config(tmp_path: Path) -> None:
    proc = nofslint("check", TREE, "--no-cache", "--format", "sarif")
    schema_file = resources.files("nofslint") / "schemas" / "sarif-schema-2.1.0.json"
    jsonschema.Draft7Validator(json.loads(schema_file.read_text("utf-8"))).validate(
        json.loads(proc.stdout))
    props = json.loads(proc.stdout)["runs"][0]["properties"]
    assert props["kconfig"][0]["path"].endswith(".config") and props["notBuilt"] == 9
    proc = nofslint("check", TREE, "--no-cache")
    assert "Kernel config:" in proc.stdout and "9 C files it does not build" in proc.stdout
    proc = nofslint("check", TREE, "--no-cache", "--kconfig", "none")
    assert "Kernel config" not in proc.stdout


def test_json_names_the_config_and_validates_against_the_report_schema() -> None:
    schema_file = resources.files("nofslint") / "schemas" / "nofslint-report.schema.json"
    validator = jsonschema.Draft7Validator(json.loads(schema_file.read_text("utf-8")))
    doc = json.loads(nofslint("check", TREE, "--no-cache", "--format", "json").stdout)
    validator.validate(doc)
    (tree,) = doc["trees"]
    assert tree["kconfig"]["path"].endswith(".config") and len(tree["kconfig"]["sha256"]) >= 16
    plain = json.loads(nofslint("check", TREE, "--no-cache", "--kconfig", "none",
                                "--format", "json").stdout)
    validator.validate(plain)
    assert plain["trees"][0]["kconfig"] is None


def test_a_saved_run_re_rendered_keeps_its_config(tmp_path: Path) -> None:
    saved = tmp_path / "run.json"
    saved.write_text(nofslint("check", TREE, "--no-cache", "--format", "json").stdout)
    again = json.loads(nofslint("report", saved, "--format", "json").stdout)
    assert again["trees"] == json.loads(saved.read_text())["trees"]
    page = nofslint("report", saved, "--format", "html").stdout
    assert "Kernel config" in page and "linux-6.12-kconfig/.config (sha256 " in page


# -- check-patch, --staged and kbuild honour the config -----------------------------------------
ORDER = """\
/* A high-order __GFP_NOFAIL allocation: branch 1 unless the config picks the #else. */
struct page *kc_order(void)
{
#ifdef CONFIG_KCDEBUG
	return alloc_pages(GFP_KERNEL | __GFP_NOFAIL, 2);
#else
	return alloc_pages(GFP_KERNEL | __GFP_NOFAIL, 3);
#endif
}
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "linux"
    shutil.copytree(TREE, root)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "base")
    return root


def _lines(proc: subprocess.CompletedProcess[str], rule: str = "nofail-high-order"
           ) -> set[tuple[str, int]]:
    out = set()
    for f in json.loads(proc.stdout)["findings"]:
        if f["rule"] == rule:
            out.add((f["path"], f["line"]))
    return out


def test_staged_and_check_patch_honour_the_config(repo: Path) -> None:
    (repo / "fs/kcfs/tiny.c").write_text(ORDER)  # a file the config does not build
    (repo / "fs/kcfs/tree.c").write_text(ORDER)  # one it builds
    _git(repo, "add", "-A")
    staged = nofslint("check", "--staged", "--format", "json", "--no-cache", cwd=repo)
    assert _lines(staged) == {("fs/kcfs/tree.c", 7)}, staged.stderr
    every = nofslint("check", "--staged", "--format", "json", "--no-cache", "--kconfig", "none",
                     cwd=repo)
    assert _lines(every) == {("fs/kcfs/tree.c", 5), ("fs/kcfs/tiny.c", 5)}
    patch = repo.parent / "change.patch"
    patch.write_text(_git(repo, "diff", "--cached"))
    _git(repo, "reset", "-q", "--hard")
    checked = nofslint("check-patch", "--tree", repo, patch, "--format", "json", "--no-cache")
    assert _lines(checked) == {("fs/kcfs/tree.c", 7)}, checked.stderr
    _git(repo, "commit", "-q", "--allow-empty", "-m", "x")
    (repo / "fs/kcfs/tree.c").write_text(ORDER)
    since = nofslint("check", "--diff-from", "HEAD", "--format", "json", "--no-cache", cwd=repo)
    assert _lines(since) == {("fs/kcfs/tree.c", 7)}, since.stderr


def test_kbuild_reads_the_build_directorys_auto_conf(repo: Path) -> None:
    (repo / "fs/kcfs/tree.c").write_text(ORDER)
    build = repo.parent / "build"
    (build / "include/config").mkdir(parents=True)
    (repo / ".config").rename(build / "include/config/auto.conf")
    env = {"KCONFIG_CONFIG": "", "XDG_CACHE_HOME": str(repo.parent / "cache")}
    proc = nofslint("kbuild", "-D__KERNEL__", repo / "fs/kcfs/tree.c", cwd=build, env=env)
    assert "tree.c:7:" in proc.stdout and "tree.c:5:" not in proc.stdout, proc.stdout
    proc = nofslint("kbuild", "-D__KERNEL__", repo / "fs/kcfs/tree.c", cwd=repo, env=env)
    assert "tree.c:5:" in proc.stdout and "tree.c:7:" not in proc.stdout, proc.stdout


def test_the_makefile_reading_is_kept_while_the_makefiles_are_unchanged(tmp_path: Path,
                                                                       monkeypatch) -> None:
    from nofslint.run import loading

    root = tmp_path / "tree"
    shutil.copytree(TREE, root)
    cache = str(tmp_path / "cache")
    config = read(root / ".config")
    reads: list[Path] = []
    real_build = loading.build_map
    monkeypatch.setattr(loading, "build_map", lambda r, c: reads.append(r) or real_build(r, c))
    first = loading.kbuild_map(root, config, cache)
    loading._KBUILD.clear()  # a new process
    again = loading.kbuild_map(root, config, cache)
    assert len(reads) == 1 and again.built == first.built and again.notes == first.notes
    makefile = root / "fs" / "kcfs" / "Makefile"
    makefile.write_text(makefile.read_text().replace("obj-m\t\t\t+= modpart.o",
                                                       "obj-$(CONFIG_KCFS_TINY) += modpart.o"))
    loading._KBUILD.clear()
    edited = loading.kbuild_map(root, config, cache)
    assert len(reads) == 2 and not edited.is_built("fs/kcfs/modpart.c")
    (root / "fs" / "kcfs" / "Kbuild").write_text("obj-y += modpart.o\n")  # a Kbuild appears
    loading._KBUILD.clear()
    assert loading.kbuild_map(root, config, cache).is_built("fs/kcfs/modpart.c")
    assert len(reads) == 3


def test_a_fix_in_a_branch_only_the_config_keeps_is_offered(tmp_path: Path) -> None:
    root = tmp_path / "linux"
    (root / "fs" / "demofs").mkdir(parents=True)
    (root / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\n")
    (root / ".config").write_text("CONFIG_X86=y\n# CONFIG_DEMOFS_SMALL is not set\n")
    (root / "fs" / "demofs" / "dir.c").write_text("""\
struct demofs_dir { void *hash; };

static int demofs_hash(struct demofs_dir *dir, size_t len)
{
#ifdef CONFIG_DEMOFS_SMALL
	dir->hash = kmalloc(len, GFP_KERNEL);
#else
	dir->hash = __vmalloc(len, GFP_NOFS | __GFP_ZERO);
#endif
	return dir->hash ? 0 : -ENOMEM;
}
""")
    target = root / "fs" / "demofs" / "dir.c"
    proc = nofslint("check", target, "--no-cache", "--select", "vmalloc-nofs", "--diff")
    assert "+\tnofs_flag = memalloc_nofs_save();" in proc.stdout, proc.stdout + proc.stderr
    none = nofslint("check", target, "--no-cache", "--select", "vmalloc-nofs", "--kconfig",
                    "none")
    assert none.returncode == 0  # without the config the first branch is linted: no finding


def test_hostile_nesting_and_expansions_cost_little_and_decide_nothing(
        tmp_path: Path, config: Kconfig, monkeypatch: pytest.MonkeyPatch) -> None:
    # Conditions nested deeper than Python recurses: not decided, no file error.
    assert body_condition("!" * 5000 + "IS_ENABLED(CONFIG_A)", config) is None
    assert config.condition("(" * 150 + "1" + ")" * 150) in (None, True)
    # Variables that each hold filtered copies of the one before grow each level's
    # cost, not its length: the walk's expansion budget stops them (lowered here).
    from nofslint.kernel import makefile
    monkeypatch.setattr(makefile, "_MAX_WALK_EXPANSION", 1 << 20)
    tree = tmp_path / "t"
    shutil.copytree(TREE, tree)
    levels = ["v0 := " + "a " * 200]
    for n in range(1, 7):
        levels.append(f"v{n} = $(filter z,{' '.join(f'$(v{n - 1})' for _ in range(30))})")
    mk = tree / "fs" / "kcfs" / "Makefile"
    mk.write_text(mk.read_text() + "\n".join(levels) + "\nobj-y += $(v6)\n")
    kmap = build_map(tree, read(tree / ".config"))
    assert kmap.is_built("fs/kcfs/super.c")


def test_a_module_symbol_keys_on_its_base_value(tmp_path: Path) -> None:
    raw = b"#ifdef CONFIG_FOO_MODULE\nint m;\n#endif\n"
    keys = []
    for value in ("y", "m"):
        path = tmp_path / f"config-{value}"
        path.write_text(f"CONFIG_X86=y\nCONFIG_X86_64=y\nCONFIG_FOO={value}\n")
        keys.append(read(path).key_of(raw))
    assert keys[0] != keys[1]


def test_a_bad_config_found_in_the_tree_says_where_and_how_to_do_without(
        tmp_path: Path) -> None:
    tree = tmp_path / "t"
    shutil.copytree(TREE, tree)
    (tree / ".config").write_bytes(b"\x00\x01 not a config\n")
    proc = nofslint("check", tree, "--no-cache")
    assert proc.returncode == 2
    assert "found as the tree root's .config" in proc.stderr
    assert "--kconfig none" in proc.stderr
    assert nofslint("check", tree, "--no-cache", "--kconfig", "none").returncode == 1
