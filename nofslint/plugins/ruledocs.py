"""Rule documentation, written from the rule classes themselves.

``nofslint rules`` (the table), ``nofslint explain RULE`` and the generated
``docs/rules.md`` all come from here, so the docs cannot drift from the code:
a test regenerates the file and fails when it is stale. Rules read from source
without importing them (nofslint.plugins.static) are documented the same way; an
attribute that is not a literal there shows as ``?``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from nofslint.api.rule import DOC_SECTIONS
from nofslint.plugins.registry import BUILTIN, RuleInfo, one_line, plugin_of

# docs/rules.md documents the built-in rules: no plugin column there.
COLUMNS = ("id", "severity", "default", "scope", "fix", "summary")
TABLE_COLUMNS = ("id", "severity", "default", "scope", "fix", "plugin", "summary")
UNKNOWN = "?"


def _choice(value: object, yes: str, no: str) -> str:
    return UNKNOWN if value is None else yes if value else no


def facts_row(cls: RuleInfo) -> dict[str, str]:
    return {
        "id": cls.id,
        "severity": cls.severity or UNKNOWN,
        "default": _choice(cls.enabled_by_default, "on", "off"),
        "scope": UNKNOWN if cls.scope is None else "whole-tree" if cls.scope == "tree" else "local",
        "fix": _choice(cls.fixable, "yes", "no"),
        "plugin": plugin_of(cls),
        "summary": cls.summary(),
    }


def table(rules: Mapping[str, RuleInfo]) -> str:
    """Aligned columns, one rule per line, in id order."""
    rows = [{k: one_line(v) for k, v in facts_row(rules[rid]).items()} for rid in sorted(rules)]
    shown = TABLE_COLUMNS[:-1]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in shown}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in shown) + "  SUMMARY"]
    for r in rows:
        lines.append("  ".join(r[c].ljust(widths[c]) for c in shown) + "  " + r["summary"])
    return "\n".join(lines) + "\n"


def explain(cls: RuleInfo, heading: str = "#") -> str:
    """One rule's documentation: its facts, then the docstring's sections in order."""
    row = facts_row(cls)
    out = [f"{heading} {one_line(cls.id)}", "",
           f"{row['severity']}, {row['scope']}, {row['default']} by default, "
           f"fix: {row['fix']}"
           + ("" if row["plugin"] == BUILTIN else f", from {row['plugin']}"),
           "", cls.summary(), ""]
    docs = cls.docs()
    for section in DOC_SECTIONS:
        text = textwrap.dedent(docs.get(section, "")).strip()
        if section == "Example":
            text = f"```c\n{text}\n```"
        out += [f"{heading}# {section}", "", text, ""]
    return "\n".join(out)


def markdown(rules: Mapping[str, RuleInfo]) -> str:
    """The whole of docs/rules.md."""
    out = ["# nofslint rules", "",
           "Generated from the rule classes by `nofslint rules --format markdown`; "
           "do not edit by hand (a test fails when this file is stale).", "",
           "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for rid in sorted(rules):
        row = facts_row(rules[rid])
        row["id"] = f"[`{rid}`](#{rid})"
        out.append("| " + " | ".join(row[c].replace("|", "\\|") for c in COLUMNS) + " |")
    out.append("")
    for rid in sorted(rules):
        out.append(explain(rules[rid], "##"))
    return "\n".join(out).rstrip() + "\n"
