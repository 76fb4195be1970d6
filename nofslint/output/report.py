"""Reporters: gcc-style text for people and editors, JSON for bots."""

from __future__ import annotations

import json
import os
from collections import Counter

from nofslint import __version__
from nofslint.model.findings import Finding
from nofslint.run.results import RunResult

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_path(path: str) -> str:
    """A file name for a line of text output, escaped as gcc escapes names: ``\\``,
    ``\\n``, ``\\r``, ``\\t``, and ``\\ooo`` for each byte of any other non-printable
    character (an undecodable byte too). A name holding a newline cannot forge a finding."""
    if path.isprintable() and "\\" not in path:
        return path
    return "".join(_NAMED.get(ch) or (ch if ch.isprintable() else _octal(ch)) for ch in path)


def escape_text(text: str) -> str:
    """A message or a quoted source line on one line: non-printable characters but the
    tab as ``\\ooo`` (backslashes are kept: they are the text's own)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == "\t" else _octal(ch) for ch in text)


def _octal(ch: str) -> str:
    return "".join(f"\\{b:03o}" for b in ch.encode("utf-8", "surrogateescape"))


def display_path(finding: Finding) -> str:
    """The path as the user can open it from here (editors jump to it), escaped."""
    if finding.file is None:
        return escape_path(finding.path)
    rel = os.path.relpath(finding.file)
    return escape_path(finding.file.as_posix() if rel.startswith("..") else rel)


def gcc_line(f: Finding) -> str:
    """``path:line:column: severity: message [rule]``, one line whatever the names hold."""
    return (f"{display_path(f)}:{f.line}:{f.column}: {f.severity}: {escape_text(f.message)} "
            f"[{f.rule}]")


def text(result: RunResult) -> str:
    lines = [gcc_line(f) for f in result.findings]
    lines.append(summary(result))
    return "\n".join(lines) + "\n"


def summary(result: RunResult) -> str:
    n = len(result.findings)
    files = f"{result.files} file{'s' if result.files != 1 else ''}"
    if n == 0:
        head = f"No findings in {files}."
    else:
        sev = Counter(f.severity for f in result.findings)
        parts = ", ".join(f"{sev[s]} {s}{'s' if sev[s] != 1 else ''}"
                          for s in ("error", "warning", "info") if sev[s])
        fixable = sum(1 for f in result.findings if f.fix)
        head = (f"Found {n} finding{'s' if n != 1 else ''} ({parts}) in {files}"
                + (f"; {fixable} with a fix (--diff to see, --fix to apply)." if fixable else "."))
    if result.errors:
        head += f" {len(result.errors)} file{'s' if len(result.errors) != 1 else ''} " \
                "could not be analysed."
    configs = kconfigs(result)
    if configs:
        built = f"; {len(result.not_built)} C files it does not build were skipped" \
            if result.not_built else ""
        head += f" Kernel config: {', '.join(escape_path(c['path']) for c in configs)}{built}."
    return head


def kconfigs(result: RunResult) -> list[dict[str, str]]:
    """The kernel configs the run's trees were linted with (path and sha256 prefix)."""
    seen: dict[str, dict[str, str]] = {}
    for tree in result.trees:
        config = tree.extras.kconfig
        if config is not None:
            seen.setdefault(config.digest, {"path": config.path, "sha256": config.digest})
    return list(seen.values())


def kernel_version(result: RunResult) -> str | None:
    versions = {t.version_text for t in result.trees}
    return versions.pop() if len(versions) == 1 else None


def to_json(result: RunResult) -> str:
    doc = {
        "version": __version__,
        "kernel_version": kernel_version(result),
        "trees": [{"root": str(t.root) if t.root else None, "kernel_version": t.version_text,
                   "version_source": t.version_source,
                   "kconfig": {"path": t.extras.kconfig.path, "sha256": t.extras.kconfig.digest}
                   if t.extras.kconfig is not None else None} for t in result.trees],
        "findings": [f.to_json() for f in result.findings],
        "errors": [e.to_json() for e in result.errors],
    }
    return json.dumps(doc, indent=2) + "\n"


def combined_diff(result: RunResult) -> str:
    return "".join(fix.diff for fix in result.fixes)
