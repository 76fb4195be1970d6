"""Calling rules: a rule that raises becomes an error entry naming it (and its plugin),
so one rule's bug never hides the other rules' findings."""

from __future__ import annotations

import traceback

from nofslint.api.rule import FileContext, Rule
from nofslint.plugins.registry import BUILTIN, plugin_of
from nofslint.run.results import FileError, RunResult


def named(rule: Rule) -> str:
    """A rule as error messages name it: with its plugin unless it is built in."""
    plugin = plugin_of(rule)
    return rule.id if plugin == BUILTIN else f"{rule.id} (plugin {plugin})"


def check_file(ctx: FileContext, rules: list[Rule], result: RunResult) -> None:
    """One file's local findings into ``result``; a rule that fails becomes an error."""
    for rule in rules:
        try:
            result.findings.extend(rule.check_file(ctx))
        except Exception as exc:  # noqa: BLE001 - one rule's bug must not hide the rest
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            result.errors.append(FileError(ctx.facts.path, f"internal error in rule "
                                           f"{named(rule)}: {detail}", True))
