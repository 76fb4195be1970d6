""".nofslint.toml: rule selection, per-path ignores, severities, the tree's own tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nofslint.cli.app import main
from nofslint.run import config

MAKEFILE = "VERSION = 6\nPATCHLEVEL = 12\n"


def lint(tree: Path, *args: str):
    return CliRunner().invoke(main, ["check", str(tree), "-j", "1", "--format", "json", *args])


def findings(result) -> list[tuple[str, int, str, str]]:
    doc = json.loads(result.output)
    return [(f["path"], f["line"], f["rule"], f["severity"]) for f in doc["findings"]]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "Makefile").write_text(MAKEFILE)
    fs = tmp_path / "fs" / "myfs"
    fs.mkdir(parents=True)
    # A filesystem's own cache ops: reclaim calls ->shrink only if the config says so.
    (fs / "cache.c").write_text(
        "static int myfs_shrink(struct myfs_cache *c)\n{\n"
        "\tvoid *p = kmalloc(64, GFP_NOFS | __GFP_NOFAIL);\n\treturn 0;\n}\n\n"
        "static const struct myfs_cache_ops myfs_cops = {\n\t.shrink = myfs_shrink,\n};\n")
    # A transaction start of its own that is not a NOFS scope.
    (fs / "trans.c").write_text(
        "static int myfs_write(struct myfs *fs)\n{\n\tint err;\n\tvoid *p;\n\n"
        "\terr = myfs_trans_begin(fs);\n\tif (err)\n\t\treturn err;\n"
        "\tp = kmalloc(64, GFP_KERNEL);\n\tmyfs_trans_end(fs);\n\treturn 0;\n}\n")
    (fs / "old.c").write_text("static void *f(void)\n{\n"
                              "\treturn alloc_pages(GFP_KERNEL | __GFP_NOFAIL, 3);\n}\n")
    return tmp_path


def write(tree: Path, text: str) -> Path:
    path = tree / config.FILENAME
    path.write_text(text)
    return path


def test_no_config_no_custom_tables(tree: Path) -> None:
    assert findings(lint(tree)) == [("fs/myfs/old.c", 3, "nofail-high-order", "warning")]


def test_a_new_config_is_not_answered_from_the_saved_run(tree: Path, tmp_path: Path) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert len(findings(lint(tree, *cache))) == 1
    write(tree, '[[reclaim-entry]]\nstruct = "myfs_cache_ops"\nfield = "shrink"\n')
    assert ("fs/myfs/cache.c", 3, "nofail-in-reclaim", "warning") in findings(lint(tree, *cache))


def test_tree_tables_add_reclaim_entries_and_transactions(tree: Path) -> None:
    write(tree, '[[reclaim-entry]]\nstruct = "myfs_cache_ops"\nfield = "shrink"\n'
                'why = "myfs shrinks its cache from kswapd"\n\n'
                '[[transaction]]\nfilesystem = "myfs"\nopens = ["myfs_trans_begin"]\n'
                'closes = ["myfs_trans_end"]\nreturns = "error"\n')
    got = findings(lint(tree))
    assert ("fs/myfs/cache.c", 3, "nofail-in-reclaim", "warning") in got
    assert ("fs/myfs/trans.c", 9, "alloc-in-transaction", "warning") in got


def test_a_transaction_handle_type_puts_its_receivers_inside(tree: Path) -> None:
    (tree / "fs" / "myfs" / "handle.c").write_text(
        "int myfs_update(struct myfs_handle *h, struct myfs *fs)\n{\n"
        "\tfs->buf = kmalloc(64, GFP_KERNEL);\n\treturn 0;\n}\n")
    table = ('[[transaction]]\nfilesystem = "myfs"\nopens = ["myfs_trans_begin"]\n'
             'closes = ["myfs_trans_end"]\nreturns = "error"\n')
    write(tree, table)
    assert ("fs/myfs/handle.c", 3, "alloc-in-transaction", "warning") not in findings(lint(tree))
    write(tree, table + 'handle = "myfs_handle"\n')
    assert ("fs/myfs/handle.c", 3, "alloc-in-transaction", "warning") in findings(lint(tree))
    write(tree, table + 'handle = "not an identifier"\n')
    assert lint(tree).exit_code == 2


def test_select_ignore_severity_and_per_file_ignores(tree: Path) -> None:
    write(tree, 'select = ["nofail-high-order", "vmalloc-nofs"]\n'
                '[severity]\nnofail-high-order = "error"\n')
    assert findings(lint(tree)) == [("fs/myfs/old.c", 3, "nofail-high-order", "error")]
    write(tree, '[per-file-ignores]\n"fs/myfs/**" = ["nofail-high-order"]\n')
    assert findings(lint(tree)) == []
    write(tree, '[per-file-ignores]\n"fs/other/" = ["nofail-high-order"]\n')
    assert len(findings(lint(tree))) == 1
    # --select on the command line replaces the file's select and ignore.
    write(tree, 'ignore = ["nofail-high-order"]\n')
    assert findings(lint(tree)) == []
    assert len(findings(lint(tree, "--select", "nofail-high-order"))) == 1
    assert findings(lint(tree, "--select", "nofail-high-order", "--ignore",
                         "nofail-high-order")) == []


@pytest.mark.parametrize(("text", "message"), [
    ("selct = []\n", "selct: unknown key"),
    ("select = \"ALL\"\n", "select: must be a list"),
    ("ignore = [\"no-such-rule\"]\n", "unknown rule 'no-such-rule' (known rules: "),
    ("ignore = [\"vmaloc-nofs\"]\n", "unknown rule 'vmaloc-nofs' (did you mean 'vmalloc-nofs'?)"),
    ("[severity]\nvmalloc-nofs = \"fatal\"\n", "severity.vmalloc-nofs: 'fatal' is not one of"),
    ("[[transaction]]\nfilesystem = \"x\"\nopens = [\"a b\"]\ncloses = []\n",
     "transaction[0].opens: 'a b' is not a C identifier"),
    ("[[transaction]]\nfilesystem = \"x\"\nopens = [\"a\"]\n", "transaction[0]: missing 'closes'"),
    ("[[reclaim-entry]]\nstruct = \"s\"\nfield = \"f\"\nwhy = 3\n", "reclaim-entry[0].why"),
    ("[[reclaim-entry]]\nstruct = \"s\"\nfeld = \"f\"\n", "reclaim-entry[0].feld: unknown key"),
    ("select = [\n", "not valid TOML"),
])
def test_bad_config_names_file_and_key(tree: Path, text: str, message: str) -> None:
    path = write(tree, text)
    result = lint(tree)
    assert result.exit_code == 2
    assert str(path) in result.output and message in result.output


def test_explicit_config_file_and_unreadable_one(tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "strict.toml"
    other.write_text('[severity]\nnofail-high-order = "info"\n')
    assert findings(lint(tree, "--config", str(other)))[0][3] == "info"
    missing = lint(tree, "--config", str(tmp_path / "missing.toml"))
    assert missing.exit_code == 2 and "cannot read" in missing.output
    (tree / config.FILENAME).write_bytes(b"select = ['\xff']\n")
    assert "not valid UTF-8" in lint(tree).output


def test_matches_globs() -> None:
    conf = config.Config(per_file_ignores=(("drivers/staging/**", ("r",)), ("fs/*.c", ("r",))))
    assert conf.ignored("r", "drivers/staging/x/y.c")
    assert conf.ignored("r", "fs/inode.c")
    assert not conf.ignored("r", "fs/ext4/inode.c")  # * stays within fs/
    assert not conf.ignored("other", "fs/inode.c")
    assert config._matches("fs/ext4/inode.c", "fs/**/inode.c")
    assert config._matches("fs/inode.c", "fs/**/inode.c")


def test_fix_of_a_silenced_finding_is_not_applied(tmp_path: Path) -> None:
    """Two fixable findings in one file, one silenced by the config: --diff has only the other."""
    (tmp_path / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\n")
    (tmp_path / "fs" / "x").mkdir(parents=True)
    (tmp_path / "fs" / "x" / "a.c").write_text(
        "static void *f(int n)\n{\n\treturn __vmalloc(n, GFP_NOFS);\n}\n\n"
        "static void *g(int n)\n{\n\treturn __vmalloc(n, GFP_NOIO);\n}\n")
    both = CliRunner().invoke(main, ["check", str(tmp_path), "--diff"])
    assert both.stdout.count("memalloc_no") == 4  # save and restore, twice
    write(tmp_path, '[per-file-ignores]\n"fs/x/a.c" = ["vmalloc-nofs"]\n')
    none = CliRunner().invoke(main, ["check", str(tmp_path), "--diff"])
    assert none.stdout == ""
    (tmp_path / config.FILENAME).unlink()
    baseline = tmp_path / "base.json"
    CliRunner().invoke(main, ["check", str(tmp_path), "--select", "vmalloc-nofs",
                              "--write-baseline", str(baseline)])
    doc = json.loads(baseline.read_text())
    doc["findings"] = [e for e in doc["findings"] if e["function"] == "f"]
    baseline.write_text(json.dumps(doc))
    one = CliRunner().invoke(main, ["check", str(tmp_path), "--diff", "--baseline",
                                    str(baseline)])
    assert "memalloc_noio_save" in one.stdout and "memalloc_nofs_save" not in one.stdout


def test_fixes_are_built_once_and_merged_after_the_filters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The filter stage merges each file's fix again from the findings left; it never
    builds a fix a second time. A finding whose severity the config changed is still
    fixed, and --fix then reports it fixed."""
    import nofslint.fixing.fixes as fixes

    (tmp_path / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\n")
    (tmp_path / "fs" / "x").mkdir(parents=True)
    source = tmp_path / "fs" / "x" / "a.c"
    source.write_text(
        "static void *f(int n)\n{\n\treturn __vmalloc(n, GFP_NOFS);\n}\n\n"
        "static void *g(int n)\n{\n\treturn __vmalloc(n, GFP_NOIO);\n}\n")
    write(tmp_path, '[severity]\nvmalloc-nofs = "warning"\n')
    built: list[int] = []
    real = fixes.build_fixes
    monkeypatch.setattr("nofslint.run.engine.build_fixes",
                        lambda found, *more: built.append(len(found)) or real(found, *more))
    out = CliRunner().invoke(main, ["check", str(tmp_path), "--no-cache", "--fix"])
    assert built == [2], built
    assert "fixed 2 findings" in out.output and out.exit_code == 0, out.output
    assert "memalloc_noio_save" in source.read_text()
