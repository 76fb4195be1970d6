"""Rule documentation, written from the rule classes themselves.

``nofslint rules`` (the table), ``nofslint explain RULE`` and the generated
``docs/rules.md`` all come from here, so the docs cannot drift from the code:
a test regenerates the file and fails when it is stale.
"""

from __future__ import annotations

import textwrap

from nofslint.rule import DOC_SECTIONS, Rule

COLUMNS = ("id", "severity", "default", "scope", "fix", "summary")


def facts_row(cls: type[Rule]) -> dict[str, str]:
    return {
        "id": cls.id,
        "severity": cls.severity,
        "default": "on" if cls.enabled_by_default else "off",
        "scope": "whole-tree" if cls.scope == "tree" else "local",
        "fix": "yes" if cls.fixable else "no",
        "summary": cls.summary(),
    }


def table(rules: dict[str, type[Rule]]) -> str:
    """Aligned columns, one rule per line, in id order."""
    rows = [facts_row(rules[rid]) for rid in sorted(rules)]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS[:-1]}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in COLUMNS[:-1]) + "  SUMMARY"]
    for r in rows:
        lines.append("  ".join(r[c].ljust(widths[c]) for c in COLUMNS[:-1]) + "  " + r["summary"])
    return "\n".join(lines) + "\n"


def explain(cls: type[Rule], heading: str = "#") -> str:
    """One rule's documentation: its facts, then the docstring's sections in order."""
    row = facts_row(cls)
    out = [f"{heading} {cls.id}", "",
           f"{row['severity']}, {row['scope']}, {row['default']} by default, "
           f"fix: {row['fix']}", "", cls.summary(), ""]
    docs = cls.docs()
    for section in DOC_SECTIONS:
        text = textwrap.dedent(docs.get(section, "")).strip()
        if section == "Example":
            text = f"```c\n{text}\n```"
        out += [f"{heading}# {section}", "", text, ""]
    return "\n".join(out)


def markdown(rules: dict[str, type[Rule]]) -> str:
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
