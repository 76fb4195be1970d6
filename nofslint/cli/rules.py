"""``nofslint rules`` (list, ``rules new``) and ``nofslint explain``: rule docs and scaffolding."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from nofslint.api.rule import SEVERITIES
from nofslint.cli.common import fail
from nofslint.plugins import loading as plugins
from nofslint.plugins import ruledocs
from nofslint.plugins.registry import plugin_of, unknown_rules

_RULES_DIR = click.option(
    "--rules-dir", "rules_dirs", multiple=True, metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also the rules in DIR, read from source: nothing in DIR is imported or run.")


@click.group("rules", invoke_without_command=True)
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
        fail(str(exc))
    for path in made.created:
        click.echo(f"created {path}")
    click.echo(made.registered)
    click.echo("next: fill in the TODOs (docs, check, fixtures); the bug fixture's expect "
               f"comment fails the fixture tests until {name} reports it")


@click.command("explain")
@click.argument("rule_id")
@_RULES_DIR
def explain_command(rule_id: str, rules_dirs: tuple[Path, ...]) -> None:
    """Why a rule's findings matter: what it does, why it is bad, example, fix, references."""
    rules, problems = plugins.list_rules(rules_dirs)
    if rule_id not in rules:
        for problem in problems:  # a rule file that could not be read may be why
            click.echo(f"nofslint: {problem}", err=True)
        raise click.UsageError(unknown_rules([rule_id], rules))
    click.echo(ruledocs.explain(rules[rule_id]))
    source = plugin_of(rules[rule_id])
    for problem in problems:
        if problem.plugin == source:
            click.echo(f"nofslint: {problem}", err=True)
