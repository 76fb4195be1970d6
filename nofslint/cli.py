"""Command line: ``nofslint check``, ``stats``, ``rules`` and ``explain``.

Exit codes follow ruff/flake8: 0 clean, 1 findings, 2 usage or internal error.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from nofslint import __version__, report, ruledocs
from nofslint.cache import default_root as default_cache_root
from nofslint.engine import default_jobs, run, stats
from nofslint.fixes import apply_fix, write_atomic
from nofslint.registry import RuleError, builtin_rules, select_rules
from nofslint.tree import parse_version


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


def _emit(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        write_atomic(Path(output), text.encode())
    except OSError as exc:
        raise click.UsageError(f"cannot write --output {output}: {exc.strerror or exc}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nofslint")
def main() -> None:
    """Find memory-reclaim deadlocks in Linux kernel C."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--select", multiple=True, metavar="RULE,...",
              help="Run only these rules (ALL for every rule, including opt-in ones).")
@click.option("--ignore", multiple=True, metavar="RULE,...", help="Do not run these rules.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE (atomically).")
@click.option("--kernel-version", callback=_version, metavar="X.Y",
              help="Follow this kernel version's semantics instead of the tree's Makefile.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: all cores].")
@click.option("--diff", "show_diff", is_flag=True,
              help="Print the proposed fixes as one unified diff instead of the findings.")
@click.option("--fix", "apply", is_flag=True, help="Apply the proposed fixes to the files.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--verbose", "-v", is_flag=True, help="Say which trees and versions were used.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the facts cache.")
@click.option("--cache-dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Where the facts cache lives [default: $XDG_CACHE_HOME/nofslint].")
def check(paths: tuple[str, ...], select: tuple[str, ...], ignore: tuple[str, ...], fmt: str,
          output: str | None, kernel_version: tuple[int, int] | None, jobs: int | None,
          show_diff: bool, apply: bool, exit_zero: bool, verbose: bool, no_cache: bool,
          cache_dir: Path | None) -> None:
    """Lint kernel C files or trees (default: the current directory)."""
    if show_diff and apply:
        raise click.UsageError("--diff and --fix are exclusive: --diff shows, --fix writes")
    targets = _paths(paths)
    try:
        rules = select_rules(builtin_rules(), _split(select), _split(ignore))
    except RuleError as exc:
        raise click.UsageError(str(exc)) from None
    cache_root = None if no_cache else (cache_dir or default_cache_root())
    result = run(targets, rules, kernel_version, jobs or default_jobs(), progress=_progress(),
                 cache_root=cache_root, reuse_results=not (show_diff or apply))

    if verbose:
        for tree in result.trees:
            where = str(tree.root) if tree.root else "loose files (no kernel Makefile above them)"
            how = {"Makefile": "from its Makefile", "--kernel-version": "from --kernel-version",
                   "default": "newest semantics nofslint models"}[tree.version_source]
            click.echo(f"nofslint: {where}: v{tree.version_text} ({how})", err=True)
    for error in result.errors:
        kind = "internal error" if error.internal else "error"
        click.echo(f"{error.path}: {kind}: {error.reason}", err=True)
    for problem in result.fix_problems:
        click.echo(f"nofslint: {problem}", err=True)

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
        _emit(report.combined_diff(result), output)
        click.echo(report.summary(result), err=True)
    elif fmt == "json":
        _emit(report.to_json(result), output)
    else:
        _emit(report.text(result), output)

    if result.internal_errors:
        sys.exit(2)
    sys.exit(1 if result.findings and not exit_zero else 0)


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



@main.command("rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True,
              help="markdown: the generated docs/rules.md.")
def rules_command(fmt: str) -> None:
    """List the rules: id, severity, on by default, scope, fix, summary."""
    rules = builtin_rules()
    if fmt == "json":
        click.echo(json.dumps([ruledocs.facts_row(rules[r]) for r in sorted(rules)], indent=2))
    elif fmt == "markdown":
        click.echo(ruledocs.markdown(rules), nl=False)
    else:
        click.echo(ruledocs.table(rules), nl=False)


@main.command("explain")
@click.argument("rule_id")
def explain_command(rule_id: str) -> None:
    """Why a rule's findings matter: what it does, why it is bad, example, fix, references."""
    rules = builtin_rules()
    if rule_id not in rules:
        known = ", ".join(sorted(rules))
        raise click.UsageError(f"unknown rule {rule_id!r} (known rules: {known})")
    click.echo(ruledocs.explain(rules[rule_id]))
