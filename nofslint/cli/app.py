"""Command line: ``nofslint check``, ``stats``, ``rules`` and ``explain``.

Exit codes follow ruff/flake8: 0 clean, 1 findings, 2 usage or internal error.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from nofslint import __version__
from nofslint.api.rule import SEVERITIES, Rule
from nofslint.fixing.fixes import apply_fix, build_fixes, write_atomic
from nofslint.incremental.cache import default_root as default_cache_root
from nofslint.kernel.tree import find_root, parse_version
from nofslint.model.findings import Finding
from nofslint.output import formats, report
from nofslint.plugins import loading as plugins
from nofslint.plugins import ruledocs
from nofslint.plugins.loading import load_rules
from nofslint.plugins.registry import PluginProblem, RuleError, plugin_of, select_rules
from nofslint.review import changes, patch
from nofslint.run import config, filters
from nofslint.run.engine import (
    RunResult,
    default_jobs,
    load_latest,
    retain_until_exit,
    run,
    save_latest,
    stats,
)


def _split(values: tuple[str, ...]) -> list[str] | None:
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


def _version(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple | None:
    if value is None:
        return None
    try:
        return parse_version(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _paths(values: tuple[str, ...]) -> list[Path]:
    paths = [Path(v) for v in values] or [Path(".")]
    for p in paths:
        if not os.path.lexists(p):
            raise click.UsageError(
                f"path '{p}' does not exist; give a kernel tree, a directory or .c/.h files")
    return paths


def _progress() -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if done == total or done % 200 == 0:
            sys.stderr.write(f"\r{done}/{total} files")
            if done == total:
                sys.stderr.write("\r\033[K")
            sys.stderr.flush()

    return show


def _fail(message: str) -> NoReturn:
    """Bad input (config, baseline, patch, git): say what and where, exit 2."""
    click.echo(f"nofslint: error: {message}", err=True)
    sys.exit(2)


def _emit(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        write_atomic(Path(output), text.encode())
    except OSError as exc:
        raise click.UsageError(f"cannot write --output {output}: {exc.strerror or exc}") from None


class _Main(click.Group):
    """Ctrl-C exits 130 like other command-line tools; click's exit 1 would read as
    "findings" to a hook or a CI script."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("nofslint: interrupted", err=True)
            sys.exit(130)


def console() -> None:
    """The ``nofslint`` command: main(), then leave at once.

    Everything the command writes (findings, fixes, baselines, the cache) is
    complete and closed when main() returns; freeing a whole tree's facts
    object by object would only add seconds to every run.
    """
    retain_until_exit()
    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            click.echo(exc.code, err=True)
            code = 1
    atexit._run_exitfuncs()  # scratch copies, worker pools: what exit would do
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nofslint")
def main() -> None:
    """Find memory-reclaim deadlocks in Linux kernel C."""


FORMATS = ["text", "json", "checkpatch", "sarif", "github"]


def _lint_options(func: Callable) -> Callable:
    """Options every linting command shares (check, check-patch)."""
    options = [
        click.option("--select", multiple=True, metavar="RULE,...",
                     help="Run only these rules (ALL for every rule, including opt-in ones)."),
        click.option("--ignore", multiple=True, metavar="RULE,...", help="Do not run these rules."),
        click.option("--output", "-o", metavar="FILE",
                     help="Write the report to FILE (atomically)."),
        click.option("--kernel-version", callback=_version, metavar="X.Y",
                     help="Follow this kernel version's semantics, not the tree's Makefile."),
        click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
                     help="Worker processes [default: all cores]."),
        click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings."),
        click.option("--config", "config_file", metavar="FILE",
                     type=click.Path(dir_okay=False, path_type=Path),
                     help=f"Read this config instead of the tree root's {config.FILENAME}."),
        click.option("--baseline", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
                     help="Hide the findings recorded in FILE (see --write-baseline)."),
        click.option("--write-baseline", metavar="FILE",
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="Record the current findings in FILE (atomically) and exit 0."),
        click.option("--rules-dir", "rules_dirs", multiple=True, metavar="DIR",
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Also run the rules in DIR (every *.py not starting with _)."),
        click.option("--allow-config-plugins", is_flag=True,
                     help="Run rule plugins that the tree's own config names."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the facts cache."),
        click.option("--cache-dir", metavar="DIR",
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Where the facts cache lives [default: $XDG_CACHE_HOME/nofslint]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclass
class _Setup:
    rules: list[Rule]
    available: dict[str, type[Rule]]
    config: config.Config
    cache_root: Path | None
    problems: list[PluginProblem]  # plugins that could not be used: exit 2 at the end


def _setup(root: Path | None, opts: dict[str, Any], linted: list[Path]) -> _Setup:
    """Rules and config for a run; every problem is a usage error (exit 2).

    Rule directories named on the command line are imported; those named by a
    config only when they lie outside the linted tree, or with
    --allow-config-plugins: linting someone's tree must not run its code.
    """
    path = opts["config_file"] or config.find(root)
    untrusted = [p.absolute() for p in linted] + ([root] if root is not None else [])
    try:
        conf = config.load(path)
        dirs = list(opts.get("rules_dirs", ()))
        for plugin in conf.plugins:
            inside = any(plugin == u or u in plugin.parents for u in untrusted)
            if inside and not opts.get("allow_config_plugins"):
                raise config.ConfigError(
                    f"{conf.path}: plugins: {plugin} is code from the linted tree; pass "
                    "--allow-config-plugins to run it (nofslint rules --rules-dir lists it "
                    "without running it)")
            dirs.append(plugin)
        available, problems = load_rules(dirs, linted=untrusted)
        for problem in problems:
            click.echo(f"nofslint: {problem}", err=True)
        unknown = sorted(conf.rule_ids() - set(available))
        if unknown:
            raise config.ConfigError(f"{conf.path}: unknown rule(s) {', '.join(unknown)} "
                                     f"(known rules: {', '.join(sorted(available))})")
        # --select on the command line replaces the file's select and ignore.
        select = _split(opts["select"])
        ignore = _split(opts["ignore"]) or []
        if select is None:
            select = list(conf.select) if conf.select else None
            ignore += conf.ignore
        rules = select_rules(available, select, ignore)
    except (config.ConfigError, RuleError) as exc:
        _fail(str(exc))
    cache_root = None if opts["no_cache"] else (opts["cache_dir"] or default_cache_root())
    return _Setup(rules, available, conf, cache_root, problems)


def _filtered(result: RunResult, setup: _Setup, opts: dict[str, Any]) -> None:
    """The filter stage: config, then the baseline. The merged fixes are rebuilt when
    findings went, so --diff and --fix never carry the edits of a silenced finding."""
    before = len(result.findings)
    result.findings = filters.configured(result.findings, setup.config)
    if opts["baseline"] is not None:
        try:
            known = filters.load_baseline(opts["baseline"])
        except filters.BaselineError as exc:
            _fail(str(exc))
        result.findings = filters.subtract(result.findings, known)
    if len(result.findings) != before and result.fixes:
        result.fixes, result.fix_problems = build_fixes(result.findings)


def _print_errors(result: RunResult) -> None:
    for error in result.errors:
        kind = "internal error" if error.internal else "error"
        click.echo(f"{error.path}: {kind}: {error.reason}", err=True)
    for problem in result.fix_problems:
        click.echo(f"nofslint: {problem}", err=True)


def _render(fmt: str, result: RunResult, setup: _Setup,
            patches: list[patch.PatchMail] | None = None) -> str:
    if fmt == "json":
        return report.to_json(result)
    if fmt == "text":
        return report.text(result)
    if fmt == "checkpatch":
        lines = sum(h.new_len for mail in patches or [] for fp in mail.files for h in fp.hunks)
        return formats.checkpatch(result, lines or _lines_of(result),
                                  patch.patch_line_map(patches) if patches else None)
    if fmt == "sarif":
        return formats.sarif(result, setup.available)
    if fmt == "github":
        return formats.github(result, patches)
    raise AssertionError(fmt)


def _lines_of(result: RunResult) -> int:
    """Lines of the files with findings (checkpatch's "lines checked" outside a patch)."""
    total = 0
    for file in {f.file for f in result.findings if f.file is not None}:
        with contextlib.suppress(OSError):
            total += file.read_bytes().count(b"\n")
    return total


def _finish(result: RunResult, setup: _Setup, exit_zero: bool) -> NoReturn:
    if result.internal_errors or setup.problems:
        sys.exit(2)
    sys.exit(1 if result.findings and not exit_zero else 0)


def _write_baseline(result: RunResult, path: Path) -> NoReturn:
    _emit(filters.baseline_text(result.findings), str(path))
    click.echo(f"nofslint: wrote {len(result.findings)} finding"
               f"{'s' if len(result.findings) != 1 else ''} to the baseline {path}.", err=True)
    sys.exit(2 if result.internal_errors else 0)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@_lint_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              show_default=True, help="Output format.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Print the proposed fixes as one unified diff instead of the findings.")
@click.option("--fix", "apply", is_flag=True, help="Apply the proposed fixes to the files.")
@click.option("--diff-from", metavar="REV",
              help="Only findings introduced since git revision REV (working tree vs. REV).")
@click.option("--staged", is_flag=True,
              help="Only findings the staged changes introduce (the index vs. HEAD).")
@click.option("--whole-tree", is_flag=True,
              help="With --diff-from/--staged: link the whole tree, not only the touched "
                   "directories and fs/, mm/, block/.")
@click.option("--verbose", "-v", is_flag=True, help="Say which trees and versions were used.")
def check(paths: tuple[str, ...], fmt: str, show_diff: bool, apply: bool,
          diff_from: str | None, staged: bool, whole_tree: bool, verbose: bool,
          **opts: Any) -> None:
    """Lint kernel C files or trees (default: the current directory)."""
    if show_diff and apply:
        raise click.UsageError("--diff and --fix are exclusive: --diff shows, --fix writes")
    if diff_from and staged:
        raise click.UsageError("--diff-from and --staged are exclusive")
    if (diff_from or staged) and apply:
        raise click.UsageError("--fix works on whole files; use it without --diff-from/--staged")
    targets = _paths(paths)
    root = find_root(targets[0].absolute() if targets[0].is_dir()
                     else targets[0].absolute().parent)
    setup = _setup(root, opts, targets)
    jobs = opts["jobs"] or default_jobs()
    if diff_from or staged:
        result = _changed(targets, root, setup, opts, jobs, diff_from, staged, whole_tree)
    else:
        result = run(targets, setup.rules, opts["kernel_version"], jobs, progress=_progress(),
                     cache_root=setup.cache_root, reuse_results=not (show_diff or apply),
                     extras=setup.config.extras)
        if setup.cache_root is not None and root is not None and any(
                t.absolute() == root for t in targets):
            save_latest(setup.cache_root, root, result)

    if verbose:
        for tree in result.trees:
            where = str(tree.root) if tree.root else "loose files (no kernel Makefile above them)"
            how = {"Makefile": "from its Makefile", "--kernel-version": "from --kernel-version",
                   "default": "newest semantics nofslint models"}[tree.version_source]
            click.echo(f"nofslint: {where}: v{tree.version_text} ({how})", err=True)
        if setup.config.path is not None:
            click.echo(f"nofslint: config {setup.config.path}", err=True)
    _filtered(result, setup, opts)
    _print_errors(result)
    if opts["write_baseline"] is not None:
        _write_baseline(result, opts["write_baseline"])

    if apply:
        fixed = 0
        for fix in result.fixes:
            problem = apply_fix(fix)
            if problem:
                click.echo(f"nofslint: {problem}", err=True)
                continue
            fixed += len(fix.findings)
            done = {id(f) for f in fix.findings}
            result.findings = [f for f in result.findings if id(f) not in done]
        click.echo(f"nofslint: fixed {fixed} finding{'s' if fixed != 1 else ''}.", err=True)

    if show_diff:
        _emit(report.combined_diff(result), opts["output"])
        click.echo(report.summary(result), err=True)
    else:
        _emit(_render(fmt, result, setup), opts["output"])
    _finish(result, setup, opts["exit_zero"])


def _changed(targets: list[Path], root: Path | None, setup: _Setup, opts: dict[str, Any],
             jobs: int, diff_from: str | None, staged: bool, whole_tree: bool) -> RunResult:
    """--diff-from/--staged: the findings the change introduces, in the given paths."""
    if root is None:
        raise click.UsageError(f"{targets[0]} is not inside a kernel tree (no top-level "
                               "Makefile with VERSION/PATCHLEVEL above it)")
    try:
        change = changes.from_git(root, diff_from, staged)
    except changes.ChangeError as exc:
        _fail(str(exc))
    wanted = [t.absolute() for t in targets]
    for rel in change.touched():
        path = root / rel
        if not any(w == path or w in path.parents for w in wanted):
            change.before.pop(rel, None)
            change.after.pop(rel, None)
    if not change.touched():
        return RunResult()
    scratch = Path(tempfile.mkdtemp(prefix="nofslint-"))
    _SCRATCH.append(scratch)
    return changes.introduced_findings(
        change, setup.rules, scratch, jobs=jobs, cache_root=setup.cache_root,
        version=opts["kernel_version"], extras=setup.config.extras,
        whole_tree=whole_tree)


@main.command("check-patch")
@click.argument("patches", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--tree", "tree_dir", metavar="DIR", type=click.Path(file_okay=False,
              exists=True, path_type=Path),
              help="The kernel tree the patch applies to [default: the one around .].")
@_lint_options
@click.option("--format", "fmt", type=click.Choice([*FORMATS, "email"]), default="text",
              show_default=True, help="Output format (email: a reply to the patch mail).")
@click.option("--whole-tree", is_flag=True,
              help="Link the whole tree, not only the touched directories and fs/, mm/, block/.")
def check_patch(patches: tuple[str, ...], tree_dir: Path | None, fmt: str, whole_tree: bool,
                **opts: Any) -> None:
    """Findings a patch (a format-patch file, an mbox series, a diff; - for stdin) introduces.

    The patch is applied to copies of the files it touches; the tree is never written.
    """
    base = (tree_dir or Path(".")).absolute()
    root = find_root(base)
    if root is None:
        raise click.UsageError(f"{base} is not inside a kernel tree (no top-level Makefile "
                               "with VERSION/PATCHLEVEL above it); use --tree DIR")
    setup = _setup(root, opts, [base])
    mails: list[patch.PatchMail] = []
    try:
        for name in patches:
            data = sys.stdin.buffer.read() if name == "-" else _read_patch(name)
            mails.extend(patch.read_patches(data, "<stdin>" if name == "-" else name))
        scratch = Path(tempfile.mkdtemp(prefix="nofslint-"))
        _SCRATCH.append(scratch)
        change = changes.from_patches(root, mails, scratch / "applied")
    except patch.PatchError as exc:
        _fail(str(exc))
    result = changes.introduced_findings(
        change, setup.rules, scratch, jobs=opts["jobs"] or default_jobs(),
        cache_root=setup.cache_root, version=opts["kernel_version"],
        extras=setup.config.extras, whole_tree=whole_tree)
    _filtered(result, setup, opts)
    _print_errors(result)
    if opts["write_baseline"] is not None:
        _write_baseline(result, opts["write_baseline"])
    text = _replies(result, mails) if fmt == "email" else _render(fmt, result, setup, mails)
    _emit(text, opts["output"])
    _finish(result, setup, opts["exit_zero"])


def _read_patch(name: str) -> bytes:
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        _fail(f"cannot read patch {name}: {exc.strerror or exc}")


def _replies(result: RunResult, mails: list[patch.PatchMail]) -> str:
    """One reply per patch mail with findings, each under the mail that touches its file
    last (a finding elsewhere, from a whole-tree chain, goes to the last mail)."""
    if not result.findings or not mails:
        return ""
    owner: dict[str, int] = {}
    for i, mail in enumerate(mails):
        for fp in mail.files:
            for path in (fp.old_path, fp.new_path):
                if path is not None:
                    owner[path] = i
    parts = []
    for i, mail in enumerate(mails):
        mine = [f for f in result.findings if owner.get(f.path, len(mails) - 1) == i]
        if mine:
            parts.append(formats.email(RunResult(findings=mine, files=result.files), mail))
    # Several replies: an mbox, each with its "From " separator line.
    if len(parts) == 1:
        return parts[0]
    return "".join(f"From nofslint Thu Jan  1 00:00:00 1970\n{p.rstrip()}\n\n" for p in parts)


@main.command("kbuild", context_settings={"ignore_unknown_options": True,
                                          "allow_extra_args": True,
                                          "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def kbuild(args: tuple[str, ...]) -> None:
    """Checker for kbuild: make C=1 CHECK="nofslint kbuild" (the source file comes last).

    Prints gcc-style findings for that file: local rules now, whole-tree rules from
    the last whole-tree `nofslint check` of the tree. Always exits 0 so the build
    goes on.
    """
    source = next((a for a in reversed(args) if a.endswith(".c") and not a.startswith("-")),
                  None)
    if source is None:
        click.echo("nofslint kbuild: no .c file among the arguments (kbuild passes it last)",
                   err=True)
        sys.exit(0)
    path = Path(source).absolute()
    root = find_root(path.parent)
    try:
        setup = _setup(root, {"config_file": None, "select": (), "ignore": (),
                              "no_cache": False, "cache_dir": None}, [path])
    except SystemExit:  # a bad config, already reported: never stop the build
        sys.exit(0)
    local = [r for r in setup.rules if r.scope == "local"]
    result = run([path], local, want_fixes=False, cache_root=setup.cache_root,
                 extras=setup.config.extras)
    latest = load_latest(setup.cache_root, root) if setup.cache_root and root else None
    if latest is not None and root in path.parents:
        rel = path.relative_to(root).as_posix()
        wanted = {r.id for r in setup.rules if r.scope == "tree"}
        result.findings += [f for f in latest.findings if f.path == rel and f.rule in wanted]
        result.findings.sort(key=Finding.sort_key)
    result.findings = filters.configured(result.findings, setup.config)
    _print_errors(result)
    for f in result.findings:
        click.echo(f"{report.display_path(f)}:{f.line}:{f.column}: {f.severity}: "
                   f"{f.message} [{f.rule}]")
    sys.exit(0)


# Scratch copies the report still reads (quoted lines, fixes); removed at exit.
_SCRATCH: list[Path] = []


@atexit.register
def _clean_scratch() -> None:
    for path in _SCRATCH:
        shutil.rmtree(path, ignore_errors=True)


@main.command("stats")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: all cores].")
def stats_command(paths: tuple[str, ...], fmt: str, jobs: int | None) -> None:
    """Parse quality: how many function definitions parse with errors."""
    result = stats(_paths(paths), jobs or default_jobs(), progress=_progress())
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    for key, value in result.to_json().items():
        click.echo(f"{key:>22}: {value}")



_RULES_DIR = click.option(
    "--rules-dir", "rules_dirs", multiple=True, metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also the rules in DIR, read from source: nothing in DIR is imported or run.")


@main.group("rules", invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True,
              help="markdown: the generated docs/rules.md.")
@_RULES_DIR
@click.pass_context
def rules_command(ctx: click.Context, fmt: str, rules_dirs: tuple[Path, ...]) -> None:
    """List the rules: id, severity, on by default, scope, fix, plugin, summary.

    Built-in rules and installed plugins (entry points in the group
    nofslint.rules) are listed; the rules of each --rules-dir are read from
    source and checked (ids, severities, doc sections) without running them.
    Exits 2 when a plugin has a problem. `nofslint rules new NAME` writes a rule.
    """
    if ctx.invoked_subcommand is not None:
        return
    rules, problems = plugins.list_rules(rules_dirs)
    if fmt == "json":
        click.echo(json.dumps([ruledocs.facts_row(rules[r]) for r in sorted(rules)], indent=2))
    elif fmt == "markdown":
        click.echo(ruledocs.markdown(rules), nl=False)
    else:
        click.echo(ruledocs.table(rules), nl=False)
    for problem in problems:
        click.echo(f"nofslint: {problem}", err=True)
    if problems:
        sys.exit(2)


@rules_command.command("new")
@click.argument("name")
@click.option("--scope", type=click.Choice(["local", "tree"]), default="local",
              show_default=True,
              help="local: sees one file's facts (check_file); tree: the whole-tree index "
                   "(check_tree).")
@click.option("--severity", type=click.Choice(SEVERITIES), default="warning", show_default=True)
@click.option("--dir", "directory", metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Where the rule module goes [default: rules/ of a nofslint source "
                   "checkout, else the current directory].")
def rules_new(name: str, scope: str, severity: str, directory: Path | None) -> None:
    """Write rule NAME (lowercase-hyphenated, like vmalloc-nofs): a module with its doc
    sections and a check stub, a bug and a clean fixture stub, and register it."""
    from nofslint.plugins import scaffold  # libcst is slow to import: only here and in listing

    target = directory or scaffold.checkout_rules_dir() or Path.cwd()
    try:
        made = scaffold.new_rule(name, target, scope, severity)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    except scaffold.ScaffoldError as exc:
        _fail(str(exc))
    for path in made.created:
        click.echo(f"created {path}")
    click.echo(made.registered)
    click.echo("next: fill in the TODOs (docs, check, fixtures); the bug fixture's expect "
               f"comment fails the fixture tests until {name} reports it")


@main.command("explain")
@click.argument("rule_id")
@_RULES_DIR
def explain_command(rule_id: str, rules_dirs: tuple[Path, ...]) -> None:
    """Why a rule's findings matter: what it does, why it is bad, example, fix, references."""
    rules, problems = plugins.list_rules(rules_dirs)
    if rule_id not in rules:
        known = ", ".join(sorted(rules))
        raise click.UsageError(f"unknown rule {rule_id!r} (known rules: {known})")
    click.echo(ruledocs.explain(rules[rule_id]))
    source = plugin_of(rules[rule_id])
    for problem in problems:
        if problem.plugin == source:
            click.echo(f"nofslint: {problem}", err=True)
