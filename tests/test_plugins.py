"""Plugins: installed rule packages, rule directories, reading rules without running them,
and `nofslint rules new`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_support import REPO, declared_clean, expectations, planted_rule

import nofslint
from nofslint.api.rule import DOC_SECTIONS
from nofslint.cli.app import main
from nofslint.plugins import scaffold
from nofslint.plugins import static as static_reading
from nofslint.plugins.loading import load_rules, rules_fingerprint
from nofslint.plugins.registry import BUILTIN, builtin_rules, plugin_of, rule_files, select_rules
from nofslint.run.engine import run

EXAMPLE = Path(__file__).resolve().parent / "plugin_example"
EXAMPLE_DIST = "nofslint-example-rules"
EXAMPLE_RULES = {"example-kvmalloc-nowait", "example-reclaim-rcu-wait"}

DOC = '''"""{summary}

    What it does
        Something.
    Why is this bad
        Because.
    Example
        foo();
    Fix
        Do not.
    References
        None.
    """'''


def _rule_module(rule_id: str, cls: str = "R", severity: str = '"warning"', doc: str = DOC,
                 body: str = "") -> str:
    return (f"from nofslint.api.rule import Rule\n\n\nclass {cls}(Rule):\n"
            f"    {doc.format(summary='A test rule.')}\n\n"
            f"    id = \"{rule_id}\"\n    severity = {severity}\n\n"
            "    def check_file(self, ctx):\n        return ()\n" + body)


def _fake_dist(site: Path, name: str, entry_points: dict[str, str],
               modules: dict[str, str]) -> None:
    """A distribution as pip leaves it: a .dist-info with entry points, and its modules."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[nofslint.rules]\n{lines}")
    for module, text in modules.items():
        (site / f"{module}.py").write_text(text)


# -- the example plugin package, installed for real ------------------------------------------

@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/plugin_example installed with pip into a private site directory (built from a
    copy, so the build leaves nothing in the source tree)."""
    work = tmp_path_factory.mktemp("example-plugin")
    source = work / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("fixtures", "__pycache__"))
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "--target", str(site), str(source)],
                   check=True, capture_output=True)
    return site


@pytest.fixture
def example_on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(installed))
    return installed


def test_installed_plugin_loads_and_its_rules_pass_their_own_fixtures(
        example_on_path: Path) -> None:
    rules, problems = load_rules()
    assert problems == []
    assert set(rules) >= EXAMPLE_RULES
    assert {plugin_of(rules[r]) for r in EXAMPLE_RULES} == {EXAMPLE_DIST}
    assert plugin_of(rules["vmalloc-nofs"]) == BUILTIN
    module = sys.modules[rules["example-kvmalloc-nowait"].__module__]
    assert Path(str(module.__file__)).is_relative_to(example_on_path)
    selected = select_rules(rules, sorted(EXAMPLE_RULES), None)
    files = sorted((EXAMPLE / "fixtures").rglob("*.c"))
    assert {f.relative_to(EXAMPLE / "fixtures").parts[0] for f in files} == EXAMPLE_RULES
    for tree in sorted((EXAMPLE / "fixtures").glob("*/linux-*")):
        result = run([tree], selected, jobs=1)
        assert result.errors == []
        for path in (f for f in files if f.is_relative_to(tree)):
            expected = expectations(path)
            assert expected or declared_clean(path), path
            got = Counter((f.line, f.rule) for f in result.findings if f.file == path)
            assert got == expected, path
    tree_finding = next(f for f in run([EXAMPLE / "fixtures"], selected, jobs=1).findings
                        if f.rule == "example-reclaim-rcu-wait")
    assert tree_finding.trace[0].function == "super_operations.evict_inode"


def test_rules_and_explain_show_the_installed_plugin(example_on_path: Path) -> None:
    result = CliRunner().invoke(main, ["rules"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines()
                if ln.startswith("example-reclaim-rcu-wait "))
    assert "whole-tree" in line and EXAMPLE_DIST in line
    rows = json.loads(CliRunner().invoke(main, ["rules", "--format", "json"]).output)
    assert {r["id"]: r["plugin"] for r in rows}["example-kvmalloc-nowait"] == EXAMPLE_DIST
    explained = CliRunner().invoke(main, ["explain", "example-kvmalloc-nowait"])
    assert explained.exit_code == 0
    assert f"from {EXAMPLE_DIST}" in explained.output
    for section in DOC_SECTIONS:
        assert f"## {section}" in explained.output
    assert "non-sleeping allocations are not supported" in explained.output


# -- entry points: problems are named, the other rules still load -----------------------------

def test_entry_point_problems_name_their_plugin(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    _fake_dist(site, "good-rules", {"one": "good_rules:Good"},
               {"good_rules": _rule_module("good-one", "Good")})
    _fake_dist(site, "later-rules", {"all": "later_rules"},
               {"later_rules": _rule_module("good-one", "Copy")
                + _rule_module("vmalloc-nofs", "Builtin").split("\n", 1)[1]})
    _fake_dist(site, "broken-rules", {"x": "broken_rules"},
               {"broken_rules": "import no_such_module_anywhere\n"})
    _fake_dist(site, "odd-rules", {"x": "odd_rules:VALUE", "y": "odd_rules"},
               {"odd_rules": "VALUE = 3\nRULES = [VALUE]\n"})
    monkeypatch.syspath_prepend(str(site))
    rules, problems = load_rules()
    by_plugin = {p.plugin: p.message for p in problems}
    assert "No module named 'no_such_module_anywhere'" in by_plugin["broken-rules"]
    odd = [p.message for p in problems if p.plugin == "odd-rules"]
    assert len(odd) == 2 and "neither a Rule subclass nor a module" in odd[0]
    assert "3 is listed as a rule but is not a Rule subclass" in odd[1]
    clashes = [p.message for p in problems if p.plugin == "later-rules"]
    assert any("good-one" in m and "good-rules" in m for m in clashes)
    assert any("vmalloc-nofs" in m and BUILTIN in m for m in clashes)
    assert plugin_of(rules["good-one"]) == "good-rules"
    assert set(builtin_rules()) < set(rules)
    assert plugin_of(rules["vmalloc-nofs"]) == BUILTIN


def test_entry_point_inside_the_linted_tree_is_not_imported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "linux"
    planted = _rule_module("planted", body="open(__file__ + '.PWNED', 'w').close()\n")
    _fake_dist(tree, "planted-rules", {"x": "planted_rules"}, {"planted_rules": planted})
    monkeypatch.syspath_prepend(str(tree))  # as `python -m nofslint` run inside the tree
    rules, problems = load_rules(linted=[tree])
    assert "planted" not in rules
    assert [p.plugin for p in problems] == ["planted-rules"]
    assert "inside the linted paths" in problems[0].message
    assert not list(tree.glob("*.PWNED"))


# -- rule directories -------------------------------------------------------------------------

def test_rules_dirs_import_privately_and_report_failures_by_file(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for d, rid in ((first, "first-rule"), (second, "second-rule")):
        d.mkdir()
        (d / "common.py").write_text(_rule_module(rid))  # same file name in both
    (second / "broken.py").write_text("raise RuntimeError('bug at import')\n")
    (second / "clash.py").write_text(_rule_module("first-rule", "Again"))
    (second / "_helper.py").write_text("raise RuntimeError('helpers are not plugins')\n")
    rules, problems = load_rules([first, second], entry_points=False)
    assert {"first-rule", "second-rule"} <= set(rules)
    assert plugin_of(rules["second-rule"]) == str(second / "common.py")
    assert str(first) not in sys.path and str(second) not in sys.path
    messages = {p.plugin: p.message for p in problems}
    assert set(messages) == {str(second / "broken.py"), str(second / "clash.py")}
    assert "RuntimeError: bug at import" in messages[str(second / "broken.py")]
    assert str(first / "common.py") in messages[str(second / "clash.py")]
    assert set(builtin_rules()) < set(rules)


def test_plugin_code_changes_change_the_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(_rule_module("mine"))
    rules, _ = load_rules([tmp_path], entry_points=False)
    before = rules_fingerprint(rules.values())
    assert rules_fingerprint(builtin_rules().values()) == rules_fingerprint([])
    (tmp_path / "mine.py").write_text(_rule_module("mine") + "# edited\n")
    assert rules_fingerprint(rules.values()) != before


# -- reading rules without running them -------------------------------------------------------

UNTRUSTED = ('"""A plugin that must never run while it is listed."""\n\nfrom pathlib import Path\n'
             + planted_rule("info")
             + '\n\nopen(Path(__file__).parent / "PWNED", "w").close()\n'
             'raise SystemExit("ran at import")\n')


def test_listing_an_untrusted_directory_runs_none_of_it(tmp_path: Path) -> None:
    (tmp_path / "planted.py").write_text(UNTRUSTED)
    listed = CliRunner().invoke(main, ["rules", "--rules-dir", str(tmp_path)])
    assert listed.exception is None and listed.exit_code == 0, listed.output
    row = next(ln for ln in listed.output.splitlines() if ln.startswith("planted-rule "))
    assert str(tmp_path / "planted.py") in row and "info" in row
    explained = CliRunner().invoke(main, ["explain", "planted-rule", "--rules-dir", str(tmp_path)])
    assert explained.exit_code == 0 and "## What it does" in explained.output
    assert not (tmp_path / "PWNED").exists()
    assert not any(m for m in sys.modules if m.endswith(".planted"))


def test_static_listing_checks_metadata(tmp_path: Path) -> None:
    (tmp_path / "dynamic.py").write_text(_rule_module("dynamic", severity="pick()"))
    (tmp_path / "nodocs.py").write_text(_rule_module("no-docs", doc='"""Only a summary."""'))
    (tmp_path / "later.py").write_text(_rule_module("dynamic", "Again"))
    (tmp_path / "capital.py").write_text(_rule_module("Bad_Id", severity='"fatal"'))
    result = CliRunner().invoke(main, ["rules", "--rules-dir", str(tmp_path),
                                       "--format", "json"])
    assert result.exit_code == 2
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert rows["dynamic"]["severity"] == "?"
    errors = result.stderr
    assert "severity is not a literal (pick())" in errors
    assert "lacks section(s) What it does" in errors
    assert f"rule id dynamic (Again) is already defined by {tmp_path / 'dynamic.py'}" in errors
    assert "'Bad_Id' is not lowercase" in errors and "'fatal' is not one of" in errors


def test_static_reading_agrees_with_importing_for_every_builtin_rule() -> None:
    static = {}
    for path in rule_files(REPO / "rules"):
        for rule in static_reading.read_rules_statically(path):
            static[rule.id] = rule
    for rid, cls in builtin_rules().items():
        seen = static[rid]
        assert (seen.severity, seen.scope, seen.enabled_by_default, seen.fixable) == (
            cls.severity, cls.scope, cls.enabled_by_default, cls.fixable)
        assert (seen.summary(), seen.docs()) == (cls.summary(), cls.docs())
        assert seen.problems() == []


def test_static_reading_follows_imports_and_in_file_bases(tmp_path: Path) -> None:
    path = tmp_path / "family.py"
    path.write_text('''import nofslint.api.rule as api
from nofslint.api.rule import Rule as Base


class Common(Base):
    """Shared."""

    severity = "info"
    enabled_by_default = False

    def check_file(self, ctx):
        return ()


class Child(Common):
    """Child rule."""

    id = "child-rule"


class Qualified(api.Rule):
    """Tree rule."""

    id: str = "qualified-rule"
    scope = "tree"


class Undocumented(Child):
    id = "undocumented-child"


class NotARule(dict):
    id = "nope"
''')
    rules = {r.id: r for r in static_reading.read_rules_statically(path)}
    assert set(rules) == {"child-rule", "qualified-rule", "undocumented-child"}
    # As at run time, the docstring is not inherited.
    assert any("no summary line" in p for p in rules["undocumented-child"].problems())
    child = rules["child-rule"]
    assert (child.severity, child.enabled_by_default, child.summary()) == (
        "info", False, "Child rule.")
    assert not any("check_file" in p for p in child.problems())
    assert any("defines no check_tree" in p for p in rules["qualified-rule"].problems())


# -- nofslint rules new ---------------------------------------------------------------------

@pytest.mark.parametrize("scope", ["local", "tree"])
def test_rules_new_writes_a_rule_that_loads_and_fixtures_that_follow_the_conventions(
        tmp_path: Path, scope: str) -> None:
    rules_dir = tmp_path / "myrules"
    result = CliRunner().invoke(main, ["rules", "new", "demo-reclaim-check", "--scope", scope,
                                       "--severity", "error", "--dir", str(rules_dir)])
    assert result.exit_code == 0, result.output
    module = rules_dir / "demo_reclaim_check.py"
    assert f"created {module}" in result.output
    assert "nothing to register" in result.output
    rules, problems = load_rules([rules_dir], entry_points=False)
    assert problems == []
    rule = rules["demo-reclaim-check"]
    assert (rule.scope, rule.severity, rule.__name__) == (scope, "error", "DemoReclaimCheck")
    assert set(DOC_SECTIONS) <= set(rule.docs())
    tree = rules_dir / "fixtures" / "demo-reclaim-check" / "linux-6.12"
    bug, clean = tree / "fs/demo/demo_reclaim_check.c", tree / "fs/demo/demo_reclaim_check_clean.c"
    assert "VERSION = 6" in (tree / "Makefile").read_text()
    assert list(expectations(bug).values()) == [1]
    assert next(iter(expectations(bug)))[1] == "demo-reclaim-check"
    assert declared_clean(clean) and not expectations(clean)
    checked = run([tree], [rule()], jobs=1)
    assert checked.files == 2 and checked.errors == [] and checked.findings == []
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated",
                           "--line-length", "100", "--select", "E,F,W,I,UP,B,SIM", str(module)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def test_rules_new_registers_in_a_plugin_package(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    package = project / "nofslint_example_rules"
    package.rename(project / "scaffolded_rules")
    package = project / "scaffolded_rules"
    result = CliRunner().invoke(main, ["rules", "new", "example-third", "--dir", str(package)])
    assert result.exit_code == 0, result.output
    assert f"registered in {package / '__init__.py'}" in result.output
    assert (package / "__init__.py").read_text() == (
        '"""Example nofslint plugin: the rules its entry point provides, in RULES."""\n\n'
        "from .kvmalloc_nowait import KvmallocNowait\n"
        "from .reclaim_rcu_wait import ReclaimRcuWait\n"
        "from .example_third import ExampleThird\n\n"
        "RULES = [\n    KvmallocNowait,\n    ReclaimRcuWait,\n    ExampleThird,\n]\n")
    assert (project / "fixtures" / "example-third" / "linux-6.12" / "Makefile").is_file()
    # The package's entry point now finds the new rule.
    site = tmp_path / "site"
    _fake_dist(site, "scaffolded", {"all": "scaffolded_rules"}, {})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(project))
    rules, problems = load_rules()
    assert problems == []
    assert {plugin_of(rules[r]) for r in ("example-third", *EXAMPLE_RULES)} == {"scaffolded"}


def test_rules_new_refuses_to_overwrite_and_bad_names(tmp_path: Path) -> None:
    args = ["rules", "new", "one-rule", "--dir", str(tmp_path)]
    assert CliRunner().invoke(main, args).exit_code == 0
    module = tmp_path / "one_rule.py"
    module.write_text("# edited by hand\n")
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and f"{module}" in again.output and "already exist" in again.output
    assert module.read_text() == "# edited by hand\n"
    for bad in ("One_Rule", "one--rule", "one-", "one rule"):
        result = CliRunner().invoke(main, ["rules", "new", bad, "--dir", str(tmp_path)])
        assert result.exit_code == 2 and "not a rule id" in result.output
    taken = CliRunner().invoke(main, ["rules", "new", "vmalloc-nofs", "--dir", str(tmp_path)])
    assert taken.exit_code == 2 and "already a built-in rule" in taken.output


def test_rules_new_defaults_to_the_checkout_rules_dir_else_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The checkout's own package (an editable install), not an installed copy that
    # merely lies inside it (a .venv in the clone, as the README's commands make).
    from_checkout = Path(nofslint.__file__).resolve().parent == REPO / "nofslint"
    assert scaffold.checkout_rules_dir(REPO) == (REPO / "rules" if from_checkout else None)
    # Elsewhere (even with an editable install of the checkout): the current directory.
    assert scaffold.checkout_rules_dir(tmp_path) is None
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["rules", "new", "here-rule"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "here_rule.py").is_file()
    assert not (REPO / "rules" / "here_rule.py").exists()


@pytest.mark.parametrize(("before", "after"), [
    ('"""Rules."""\n', '"""Rules."""\nfrom .new_one import NewOne\n'),
    ("from .a import A\n\nRULES = (A,)\n",
     "from .a import A\nfrom .new_one import NewOne\n\nRULES = (A, NewOne,)\n"),
    ("from .a import A\nfrom .b import B\n\n__all__ = ['A', 'B']\n",
     "from .a import A\nfrom .b import B\nfrom .new_one import NewOne\n\n"
     "__all__ = ['A', 'B', \"NewOne\"]\n"),
    ('"""Rules."""\n\nfrom __future__ import annotations\n\nRULES = []\n',
     '"""Rules."""\n\nfrom __future__ import annotations\nfrom .new_one import NewOne\n\n'
     "RULES = [NewOne]\n"),
])
def test_register_in_init_keeps_the_file_s_layout(before: str, after: str) -> None:
    assert scaffold.register_in_init(before, "new_one", "NewOne") == after


# -- plugins in `nofslint check` -------------------------------------------------------

def test_check_runs_the_installed_plugin(example_on_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--no-cache", str(EXAMPLE / "fixtures")])
    assert result.exit_code == 1, result.output
    assert "[example-reclaim-rcu-wait]" in result.stdout
    assert "[example-kvmalloc-nowait]" in result.stdout


def test_check_names_a_broken_or_raising_plugin_and_runs_the_rest(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('bug at import')\n")
    (tmp_path / "boom.py").write_text(_rule_module("boom-rule").replace(
        "return ()", "raise ValueError('bug in rule')"))
    result = CliRunner().invoke(main, ["check", "--no-cache", "--rules-dir", str(tmp_path),
                                       str(REPO / "fixtures" / "vmalloc-nofs")])
    assert result.exit_code == 2
    assert f"plugin {tmp_path / 'broken.py'}: import failed: RuntimeError" in result.stderr
    assert f"internal error in rule boom-rule (plugin {tmp_path / 'boom.py'})" in result.stderr
    assert "[vmalloc-nofs]" in result.stdout


def test_config_plugins_inside_the_tree_need_a_flag(tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    shutil.copytree(REPO / "fixtures" / "vmalloc-nofs" / "linux-5.10", tree)
    rules = tree / "tools" / "nofslint"
    rules.mkdir(parents=True)
    marker = tmp_path / "RAN"
    (rules / "tree_rule.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n" + _rule_module("tree-rule"))
    (tree / ".nofslint.toml").write_text('plugins = ["tools/nofslint"]\n')
    refused = CliRunner().invoke(main, ["check", "--no-cache", str(tree)])
    assert refused.exit_code == 2 and "--allow-config-plugins" in refused.stderr
    assert not marker.exists()
    allowed = CliRunner().invoke(main, ["check", "--no-cache", "--allow-config-plugins",
                                        "--select", "tree-rule", str(tree)])
    assert allowed.exit_code == 0, allowed.output
    assert marker.exists()


def test_config_plugins_outside_the_tree_load_as_named(tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    shutil.copytree(REPO / "fixtures" / "vmalloc-nofs" / "linux-5.10", tree)
    mine = tmp_path / "home" / "rules"
    mine.mkdir(parents=True)
    (mine / "my_rule.py").write_text(_rule_module("my-rule"))
    conf = tmp_path / "home" / "nofslint.toml"
    conf.write_text('plugins = ["rules"]\nselect = ["my-rule"]\n')
    result = CliRunner().invoke(main, ["check", "--no-cache", "--config", str(conf), str(tree)])
    assert result.exit_code == 0, result.output
    listed = CliRunner().invoke(main, ["rules", "--rules-dir", str(mine)])
    assert "my-rule" in listed.output
