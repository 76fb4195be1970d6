"""Review output: checkpatch-style text, SARIF 2.1.0, GitHub review comments and a
kernel-style reply mail, each built from one RunResult.

Reviewers read findings where they already work (checkpatch's terminal
output, code scanning, the pull request, the mailing list), so each format
follows that place's conventions rather than nofslint's own text output.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import textwrap
from collections import Counter
from collections.abc import Mapping
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import quote

from nofslint import __version__
from nofslint.api.rule import Rule
from nofslint.model.findings import Finding, TraceStep
from nofslint.output.report import escape_path, escape_text, kconfigs
from nofslint.review.patch import Hunk, PatchMail, clean_header, parse_diff
from nofslint.run.results import RunResult

_CHECKPATCH_LEVEL = {"error": "ERROR", "warning": "WARNING", "info": "CHECK"}
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_HELP_SECTIONS = ("What it does", "Why is this bad", "Fix")
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
NO_SENDER = "nofslint <nofslint@localhost>"  # a reply's From when no one is known
_CONTEXT = 3  # quoted lines before a commented line in a reply mail
_WIDTH = 72


class _Sources:
    """Lines of the analysed files, each read once per report; tolerates unreadable ones."""

    def __init__(self) -> None:
        self._files: dict[Path, list[str] | None] = {}

    def line(self, finding: Finding) -> str | None:
        path = finding.text_file()  # a patched copy's text when there is one
        if path is None:
            return None
        if path not in self._files:
            try:
                self._files[path] = path.read_bytes().decode("utf-8", "replace").split("\n")
            except OSError:
                self._files[path] = None
        lines = self._files[path]
        if lines is None or not 1 <= finding.line <= len(lines):
            return None
        return lines[finding.line - 1].rstrip("\r")


# -- checkpatch --------------------------------------------------------------------------

def checkpatch(result: RunResult, lines_checked: int | None,
               patch_lines: dict[tuple[str, int], int] | None = None,
               added: set[tuple[str, int]] | None = None) -> str:
    """checkpatch.pl's layout: ``WARNING:RULE: message``, ``#N: FILE: path:line:``, the
    source line, and its closing total. ``N`` is the line in the patch when
    ``patch_lines`` maps (path, line) to it, else the file line. The source line is
    marked ``+`` when the patch adds it (``added``), else quoted after a space as a
    diff's context line. Without a patch (``lines_checked`` None) the total counts the
    files analysed: nothing was checked as a patch."""
    sources = _Sources()
    out = []
    for f in result.findings:
        at = (patch_lines or {}).get((f.path, f.line), f.line)
        out += [f"{_CHECKPATCH_LEVEL[f.severity]}:{f.rule}: {escape_text(f.message)}",
                f"#{at}: FILE: {escape_path(f.path)}:{f.line}:"]
        source = sources.line(f)
        if source is not None:
            mark = "+" if (f.path, f.line) in (added or ()) else " "
            out.append(f"{mark}{escape_text(source)}")
        out.append("")
    count = Counter(f.severity for f in result.findings)
    checks = f"{count['info']} checks, " if count["info"] else ""
    checked = (f"{lines_checked} lines checked" if lines_checked is not None else
               f"{result.files} file{'s' if result.files != 1 else ''} analysed")
    out.append(f"total: {count['error']} errors, {count['warning']} warnings, {checks}"
               f"{checked}")
    return "\n".join(out) + "\n"


# -- SARIF -------------------------------------------------------------------------------

def sarif(result: RunResult, rules: Mapping[str, type[Rule]]) -> str:
    """One SARIF 2.1.0 run: the rules with their docs, each finding with a stable
    fingerprint, its call chain as a code flow and its fix as replacements."""
    ids = sorted(rules)
    index = {rid: i for i, rid in enumerate(ids)}
    run = {
        "tool": {"driver": {
            "name": "nofslint", "version": __version__, "semanticVersion": __version__,
            "informationUri": _information_uri(),
            "rules": [_sarif_rule(rules[rid]) for rid in ids],
        }},
        "invocations": [{
            "executionSuccessful": not result.internal_errors,
            "toolExecutionNotifications": [_notification(e.path, e.reason,
                                                         "error" if e.internal else "warning")
                                           for e in result.errors]
            + [_notification(None, problem, "note") for problem in result.fix_problems],
        }],
        "results": [_sarif_result(f, index) for f in result.findings],
    }
    configs = kconfigs(result)
    if configs:  # which kernel the findings are about (none: every #if alternative)
        run["properties"] = {"kconfig": configs, "notBuilt": len(result.not_built)}
    return json.dumps({"$schema": _SARIF_SCHEMA, "version": "2.1.0", "runs": [run]},
                      indent=2) + "\n"


def _information_uri() -> str:
    """The project's home page from the installed metadata, else its PyPI page."""
    pypi = "https://pypi.org/project/nofslint/"
    try:
        meta = importlib.metadata.metadata("nofslint")
    except importlib.metadata.PackageNotFoundError:
        return pypi
    urls = [url.split(",", 1)[-1].strip() for url in meta.get_all("Project-URL") or []]
    return next(iter(urls), None) or meta.get("Home-page") or pypi


def _sarif_rule(cls: type[Rule]) -> dict:
    docs = cls.docs()
    sections = [(title, textwrap.dedent(docs.get(title, "")).strip()) for title in _HELP_SECTIONS]
    hint = f"Run `nofslint explain {cls.id}` for an example and references."
    return {
        "id": cls.id,
        "name": "".join(part.capitalize() for part in cls.id.split("-")),
        "shortDescription": {"text": cls.summary()},
        "fullDescription": {"text": sections[0][1] or cls.summary()},
        "help": {
            "text": "\n\n".join(f"{title}:\n{body}" for title, body in sections) + "\n\n"
            + hint.replace("`", ""),
            "markdown": "\n\n".join(f"## {title}\n\n{body}" for title, body in sections)
            + "\n\n" + hint,
        },
        "defaultConfiguration": {"level": _SARIF_LEVEL[cls.severity],
                                 "enabled": cls.enabled_by_default},
        "properties": {"scope": "whole-tree" if cls.scope == "tree" else "local",
                       "fixable": cls.fixable},
    }


def _artifact(path: str) -> dict:
    return {"uri": quote(path, errors="surrogateescape"), "uriBaseId": "%SRCROOT%"}


def _notification(path: str | None, text: str, level: str) -> dict:
    note: dict = {"level": level, "message": {"text": text}}
    if path and not path.startswith("<"):
        note["locations"] = [{"physicalLocation": {"artifactLocation": _artifact(path)}}]
    return note


def _sarif_result(f: Finding, index: Mapping[str, int]) -> dict:
    region = {"startLine": max(1, f.line), "startColumn": max(1, f.column)}
    if f.end_line >= f.line:
        region |= {"endLine": f.end_line, "endColumn": max(1, f.end_column)}
    location: dict = {"physicalLocation": {"artifactLocation": _artifact(f.path),
                                           "region": region}}
    if f.function:
        location["logicalLocations"] = [{"name": f.function, "kind": "function"}]
    out: dict = {"ruleId": f.rule}
    if f.rule in index:
        out["ruleIndex"] = index[f.rule]
    out |= {"level": _SARIF_LEVEL[f.severity], "message": {"text": f.message},
            "locations": [location],
            "partialFingerprints": {"nofslint/v2": f.fingerprint()}}
    if f.trace:
        out["codeFlows"] = [{"threadFlows": [{"locations": [
            {"location": {"physicalLocation": {"artifactLocation": _artifact(step.path),
                                               "region": {"startLine": max(1, step.line)}},
                          "message": {"text": step.function or f"{step.path}:{step.line}"}}}
            for step in f.trace]}]}]
    if f.fix:
        out["fixes"] = [_sarif_fix(f)]
    return out


def _sarif_fix(f: Finding) -> dict:
    changes = []
    for fp in parse_diff(f.fix or "", f"fix for {f.path}:{f.line}"):
        replacements = []
        for hunk in fp.hunks:
            for start, removed, inserted in _changes(hunk):
                replacement: dict = {"deletedRegion": {
                    "startLine": start, "startColumn": 1,
                    "endLine": start + removed, "endColumn": 1}}
                if inserted:
                    replacement["insertedContent"] = {"text": "".join(inserted)}
                replacements.append(replacement)
        if replacements:
            changes.append({"artifactLocation": _artifact(fp.path), "replacements": replacements})
    return {"description": {"text": f"nofslint's fix for {f.rule}"}, "artifactChanges": changes}


def _changes(hunk: Hunk) -> list[tuple[int, int, list[str]]]:
    """Each run of changed lines: (old line it starts at, old lines removed, lines inserted)."""
    runs: list[tuple[int, int, list[str]]] = []
    old = hunk.old_start if hunk.old_len else hunk.old_start + 1
    start, removed, inserted = 0, 0, []  # the open run; removed == 0 and no inserted: none
    for kind, text in [*hunk.lines, (" ", "")]:
        if kind == " ":
            if removed or inserted:
                runs.append((start, removed, inserted))
            removed, inserted = 0, []
            old += 1
            continue
        if not (removed or inserted):
            start = old
        if kind == "-":
            removed += 1
            old += 1
        else:
            inserted.append(text)
    return runs


# -- GitHub ------------------------------------------------------------------------------

def github(result: RunResult, patches: list[PatchMail] | None = None) -> str:
    """Pull-request review comments (JSON list). A fix becomes a ``suggestion`` block when
    it replaces one block of lines that the pull request's diff shows (any one block
    when ``patches`` is None); the comment then spans exactly the replaced lines."""
    comments = []
    for f in result.findings:
        body = [f"**{f.severity}** `{f.rule}`: {f.message}"]
        if f.trace:
            body += ["", "Call chain:",
                     *(f"{i}. `{step.function or '?'}` ({step.path}:{step.line})"
                       for i, step in enumerate(f.trace, 1))]
        path, line = _anchor(f, patches)
        if (path, line) != (f.path, f.line):
            body[0] = f"At `{f.path}:{f.line}` (outside this diff): " + body[0]
        comment: dict = {"path": path, "line": line, "side": "RIGHT"}
        block = _suggestion(f, patches)
        if block is not None:
            start, end, text = block
            fence = "````" if "```" in text else "```"
            body += ["", f"{fence}suggestion", text.rstrip("\n"), fence]
            comment["line"] = end
            if start < end:
                comment |= {"start_line": start, "start_side": "RIGHT"}
        elif f.fix:
            body += ["", "nofslint has a fix that does not fit in a suggestion here: "
                     "`nofslint check --diff` shows it."]
        body += ["", f"Details: `nofslint explain {f.rule}`"]
        comment["body"] = "\n".join(body)
        comments.append(comment)
    return json.dumps(comments, indent=2) + "\n"


def _shown(patches: list[PatchMail], path: str, line: int) -> bool:
    return any(lo <= line <= hi for mail in patches for fp in mail.files
               if fp.new_path == path for lo, hi in fp.new_ranges())


def _anchor(f: Finding, patches: list[PatchMail] | None) -> tuple[str, int]:
    """Where GitHub can take the comment: only lines the diff shows. A finding outside
    it (a whole-tree chain into an untouched line) goes on the first step of its chain
    that the diff shows, else on the nearest shown line of its file, else on the first
    shown line of the patch."""
    if patches is None or _shown(patches, f.path, f.line):
        return f.path, f.line
    for step in f.trace:
        if _shown(patches, step.path, step.line):
            return step.path, step.line
    ranges = [(fp.new_path, lo, hi) for mail in patches for fp in mail.files
              if fp.new_path is not None for lo, hi in fp.new_ranges()]
    same = [(abs(lo - f.line), lo if f.line < lo else hi) for path, lo, hi in ranges
            if path == f.path]
    if same:
        return f.path, min(same)[1]
    return (ranges[0][0], ranges[0][1]) if ranges else (f.path, f.line)


def _suggestion(f: Finding, patches: list[PatchMail] | None) -> tuple[int, int, str] | None:
    """(first, last line replaced, replacement text) when the fix is one block of the
    finding's own file and (with patches) lies inside one hunk of the patch."""
    if not f.fix:
        return None
    files = parse_diff(f.fix, f"fix for {f.path}:{f.line}")
    if len(files) != 1 or files[0].path != f.path or len(files[0].hunks) != 1:
        return None
    block = _replaced_block(files[0].hunks[0])
    if block is None or patches is None:
        return block
    start, end, _ = block
    inside = any(lo <= start and end <= hi for mail in patches for fp in mail.files
                 if fp.new_path == f.path for lo, hi in fp.new_ranges())
    return block if inside and _shown(patches, f.path, f.line) else None


def _replaced_block(hunk: Hunk) -> tuple[int, int, str] | None:
    """The smallest line range of the old side covering every change of the hunk (an
    insertion is anchored on the line after it, or before it at the end)."""
    entries = list(hunk.numbered())
    changed = [i for i, entry in enumerate(entries) if entry[0] != " "]
    if not changed:
        return None
    lo, hi = changed[0], changed[-1]
    if all(entry[2] is None for entry in entries[lo:hi + 1]):
        if hi + 1 < len(entries):
            hi += 1
        elif lo > 0:
            lo -= 1
        else:
            return None  # the fix creates the whole file
    span = entries[lo:hi + 1]
    olds = [old for _, _, old, _ in span if old is not None]
    text = "".join(_text(t) + "\n" for kind, t, _, _ in span if kind != "-")
    return min(olds), max(olds), text


# -- reply mail --------------------------------------------------------------------------

def email(result: RunResult, mail: PatchMail, sender: str | None = None) -> str:
    """A kernel-style reply to ``mail``: only the hunks with findings are quoted, cut to a
    few lines before each commented line, with the comment right below it; findings
    outside the patch's hunks follow in a short paragraph; no top-posting."""
    placed: dict[tuple[int, int], dict[int, list[Finding]]] = {}
    loose: list[Finding] = []
    for f in result.findings:
        spot = _spot(mail, f)
        if spot is None:
            loose.append(f)
        else:
            placed.setdefault(spot[:2], {}).setdefault(spot[2], []).append(f)
    body = [_attribution(mail)]
    for fi, fp in enumerate(mail.files):
        hunks = sorted(hi for (i, hi) in placed if i == fi)
        if hunks:
            body += [_quote(line) for line in fp.header]
        for hi in hunks:
            hunk, notes = fp.hunks[hi], placed[(fi, hi)]
            body.append(_quote(hunk.header))
            shown = 0
            for k in sorted(notes):
                first = max(shown, k - _CONTEXT)
                if first > shown:
                    body.append("[...]")
                body += [_quote(kind + _text(text)) for kind, text in hunk.lines[first:k + 1]]
                for f in notes[k]:
                    body += ["", *_comment(f), ""]
                shown = k + 1
    if loose:
        if body[-1]:
            body.append("")
        intro = ("nofslint also reports, outside the lines quoted above:" if placed
                 else "nofslint reports, outside the lines this patch changes:")
        body += [intro, ""]
        for f in loose:
            where = f"{escape_path(f.path)}:{f.line}"
            body += [where + (f" ({f.function}):" if f.function else ":"),
                     *_comment(f), ""]
    if not result.findings:
        body += ["", "nofslint found nothing to report in this patch.", ""]
    body += ["-- ", f"nofslint {__version__}"]
    return _headers(mail, sender) + "\n".join(body) + "\n"


def _headers(mail: PatchMail, sender: str | None) -> str:
    """The reply's header block. Message ids are written out unfolded (one per line in
    References) so every mail tool threads the reply under the patch. Every value copied
    from the patch mail is cleaned to one line (no header injection); an address the
    email package cannot parse (``a@``) is written as it is."""
    msg = EmailMessage(policy=policy.default)  # encodes non-ASCII names and subjects
    raw: list[str] = []
    _set(msg, raw, "From", clean_header(sender or "") or NO_SENDER)
    if mail.sender:
        _set(msg, raw, "To", clean_header(mail.sender))
    subject = clean_header(mail.subject or f"nofslint review of {mail.source}")
    _set(msg, raw, "Subject", subject if subject.lower().startswith("re:") else f"Re: {subject}")
    msg["Date"] = formatdate(localtime=True)
    lines = [msg.as_string().rstrip("\n"), *raw,
             f"Message-ID: {make_msgid('nofslint', 'localhost')}"]
    message_id = clean_header(mail.message_id or "")
    if message_id:
        refs = [r for ref in mail.references for r in clean_header(ref).split()]
        lines += [f"In-Reply-To: {message_id}", "References: " + "\n ".join([*refs, message_id])]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
              "Content-Transfer-Encoding: 8bit", "", ""]
    return "\n".join(lines)


def _set(msg: EmailMessage, raw: list[str], key: str, value: str) -> None:
    """``msg[key] = value``; a value the email package refuses goes to ``raw`` as written
    when it is ASCII (it is already one clean line), else it is left out."""
    try:
        msg[key] = value
    except Exception:  # noqa: BLE001 - the stdlib address parser fails in many ways
        if value.isascii():
            raw.append(f"{key}: {value}")


def _attribution(mail: PatchMail) -> str:
    if mail.sender is None:
        return f"In {escape_path(mail.source)}:"
    sender = clean_header(mail.sender)
    return (f"On {clean_header(mail.date)}, {sender} wrote:" if mail.date
            else f"{sender} wrote:")


def _spot(mail: PatchMail, f: Finding) -> tuple[int, int, int] | None:
    """(file, hunk, line index) of the hunk line showing the finding's line."""
    for fi, fp in enumerate(mail.files):
        if fp.new_path != f.path:
            continue
        for hi, hunk in enumerate(fp.hunks):
            for k, (_, _, _, new) in enumerate(hunk.numbered()):
                if new == f.line:
                    return fi, hi, k
    return None


def _comment(f: Finding) -> list[str]:
    paragraphs = [_wrap(f"nofslint {f.severity} [{f.rule}]: {f.message}")]
    chain = _chain(f.trace)
    if chain:
        paragraphs.append(_wrap(chain))
    if f.fix:
        paragraphs += [["Something like this would fix it:"], f.fix.rstrip("\n").split("\n")]
    paragraphs.append([f'("nofslint explain {f.rule}" has the details.)'])
    out: list[str] = []
    for paragraph in paragraphs:
        out += [*([""] if out else []), *paragraph]
    return out


def _chain(trace: list[TraceStep]) -> str | None:
    """"Reached from X: a() -> b()" for a trace through more than one function."""
    names = [step.function or f"{step.path}:{step.line}" for step in trace]
    names = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]
    if len(names) < 2:
        return None
    calls = [f"{n}()" if _IDENTIFIER.match(n) else n for n in names[1:]]
    return f"Reached from {names[0]}: " + " -> ".join(calls)


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, _WIDTH, break_long_words=False, break_on_hyphens=False)


def _quote(line: str) -> str:
    return f"> {line}".rstrip()


def _text(line: str) -> str:
    """A diff line's text without its line ending."""
    return line.rstrip("\r\n")
