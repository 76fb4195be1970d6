"""Reporters: gcc-style text for people and editors, JSON for bots."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass

from nofslint import __version__
from nofslint.model.findings import Finding, TraceStep
from nofslint.output.runinfo import RunInfo
from nofslint.run.results import RunResult

_IDENT = re.compile(r"[A-Za-z_]\w*")
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
    """``path:line:column: severity: message [rule]``, one line whatever the names hold.
    The message is the brief one: the chain follows as ``note:`` lines (``notes``)."""
    return (f"{display_path(f)}:{f.line}:{f.column}: {f.severity}: "
            f"{escape_text(f.brief or f.message)} [{f.rule}]")


@dataclass(frozen=True)
class Change:
    """What a run over a change (a patch, the staged change, the changes since a
    revision) reports on: the findings it introduces, in the files it touches."""

    what: str  # "the patch"
    touched: int  # files it touches
    nothing: str  # the summary when it touches none: "Nothing staged."


FIX_HINT = "--diff to see, --fix to apply"


def notes(f: Finding, max_chain: int | None = None) -> list[str]:
    """The chain, one indented gcc ``note:`` line a step, each with its ``path:line``
    (what editors and ``make`` users jump through). ``max_chain``: at most that many
    steps, the first ones and the last (where the allocation or flush is)."""
    steps = list(f.trace)
    if max_chain is not None and len(steps) > max_chain:
        cut = len(steps) - max_chain
        head = steps[:max_chain - 1] if max_chain > 0 else []
        tail = steps[-1:] if max_chain > 0 else []
        lines = [_note(f, s) for s in head]
        lines.append(f"    note: ... {cut} more step{'s' if cut != 1 else ''} "
                     "(--max-chain)")
        return lines + [_note(f, s) for s in tail]
    return [_note(f, s) for s in steps]


def _note(f: Finding, step: TraceStep) -> str:
    where = f"{_step_path(f, step.path)}:{step.line}:" + (f"{step.column}:" if step.column
                                                           else "")
    what = step.note or "here"
    if step.function and _IDENT.fullmatch(step.function):
        what = f"in {step.function}(): {what}"
    return f"    {where} note: {escape_text(what)}"


def _step_path(f: Finding, path: str) -> str:
    """A step's tree-relative path as the user can open it from here, like the finding's."""
    if f.file is None or not f.file.as_posix().endswith("/" + f.path):
        return escape_path(path)
    root = f.file.as_posix()[:-len(f.path)]
    rel = os.path.relpath(root + path)
    return escape_path(root + path if rel.startswith("..") else rel)


def text(result: RunResult, max_chain: int | None = None, change: Change | None = None,
         fix_hint: str | None = FIX_HINT) -> str:
    lines = []
    for f in result.findings:
        lines.append(gcc_line(f))
        lines += notes(f, max_chain)
    lines.append(summary(result, change, fix_hint))
    return "\n".join(lines) + "\n"


def summary(result: RunResult, change: Change | None = None,
            fix_hint: str | None = FIX_HINT) -> str:
    """The closing line. For a change it says which files were analysed and which the
    change touched (the analysed files are more: their callers and callees), not
    "in N files" as if that were the patch's size. ``fix_hint`` says how to see
    the fixes (None: the output already shows them, or the command cannot)."""
    n = len(result.findings)
    files = f"{result.files} file{'s' if result.files != 1 else ''}"
    if change is not None and change.touched == 0 and n == 0 and not result.errors:
        return change.nothing
    if result.reported_in and change is None:
        files = (f"{', '.join(escape_path(p) for p in result.reported_in)} (analysed the "
                 f"whole tree: {result.files:,} files)")
    where = (f" in {files}" if change is None else
             f" introduced by {change.what}; {files} analysed, {change.touched} touched by it")
    if n == 0:
        head = f"No findings{where}."
    else:
        sev = Counter(f.severity for f in result.findings)
        parts = ", ".join(f"{sev[s]} {s}{'s' if sev[s] != 1 else ''}"
                          for s in ("error", "warning", "info") if sev[s])
        fixable = sum(1 for f in result.findings if f.fix)
        hint = f" ({fix_hint})" if fix_hint else ""
        head = (f"Found {n} finding{'s' if n != 1 else ''} ({parts}){where}"
                + (f"; {fixable} with a fix{hint}." if fixable else "."))
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


def to_json(result: RunResult, info: RunInfo | None = None) -> str:
    """The JSON report; with ``info`` also the run's metadata and each finding's
    MAINTAINERS sections (what ``nofslint report`` re-renders from)."""
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
    if info is not None:
        doc |= info.top_json(result)
        for i, f in enumerate(doc["findings"]):
            owner = info.owner(i)
            if owner is not None:
                f["owner"] = owner.to_json()
    return json.dumps(doc, indent=2) + "\n"


def combined_diff(result: RunResult) -> str:
    return "".join(fix.diff for fix in result.fixes)
