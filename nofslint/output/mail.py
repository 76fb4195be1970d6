"""Reports routed to maintainers: one mail per MAINTAINERS section with findings,
ready for ``git send-email``, as kernel bots send tree-wide findings.

A finding goes to the most specific section owning its file (get_maintainer.pl's
order); its recipients are those ``get_maintainer.pl --no-git -f FILE`` names for
the files of the section's findings: ``To:`` the maintainers (``M:``), ``Cc:`` the
reviewers (``R:``) and lists (``L:``), then the maintainers and lists of the other
sections the chains run through. Findings in files nobody maintains go to
``unmaintained.eml``. Each mail stands alone (no threading headers).
"""

from __future__ import annotations

import json
import re
import shlex
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr

from nofslint import __version__
from nofslint.api.rule import Rule
from nofslint.model.findings import Finding
from nofslint.output import chains
from nofslint.output.report import escape_path, escape_text, kernel_version
from nofslint.output.runinfo import RunInfo
from nofslint.review.patch import clean_header
from nofslint.run.results import RunResult

UNMAINTAINED = "unmaintained.eml"
DEFAULT_FROM = "nofslint <nofslint@localhost>"
_WIDTH = 72
_NO_RECIPIENT = "undisclosed-recipients:;"
_POLICY = policy.default.clone(max_line_length=998)
# Options of the recorded command that only choose the output: left out of the
# reproduce line, so it prints the findings in the terminal.
_OUTPUT_OPTIONS = {"--format": 1, "-o": 1, "--output": 1, "--by-maintainer": 0,
                   "--html-source-url": 1, "--mail-from": 1, "--maintainers": 1,
                   "--maintainers-keywords": 0, "--exit-zero": 0}


@dataclass
class Mail:
    name: str  # file name in the output directory
    section: str | None  # None: unmaintained
    to: list[str]
    cc: list[str]
    subject: str
    findings: list[int]  # indices into the run's findings

    def render(self, body: str, sender: str) -> bytes:
        # Headers fold only past 998 characters: the package's folding at 78 puts a
        # long Subject: on a line of its own, which readers then show with a space.
        msg = EmailMessage(policy=_POLICY)
        msg["From"] = sender
        msg["To"] = ", ".join(self.to) if self.to else _NO_RECIPIENT
        if self.cc:
            msg["Cc"] = ", ".join(self.cc)
        msg["Subject"] = self.subject
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid("nofslint", "localhost")
        msg["X-Mailer"] = f"nofslint {__version__}"
        try:
            msg.set_content(body, charset="utf-8", cte="8bit")
        except ValueError:  # a line longer than the 998 bytes 8bit allows
            msg.set_content(body, charset="utf-8", cte="quoted-printable")
        return msg.as_bytes(policy=_POLICY)


def plan(result: RunResult, info: RunInfo) -> list[Mail]:
    """The mails: which findings each holds and who receives it."""
    groups: dict[str | None, list[int]] = {}
    for i in range(len(result.findings)):
        owner = info.owner(i)
        groups.setdefault(owner.section if owner is not None else None, []).append(i)
    version = kernel_version(result)
    mails = []
    used = {UNMAINTAINED}
    for section in sorted(groups, key=lambda s: (s is None, s or "")):
        indices = groups[section]
        mine: list[str] = []
        chain: list[str] = []
        for i in indices:
            owner = info.owner(i)
            if owner is not None:
                mine += [s for s in owner.sections if s not in mine]
                chain += [s for s in owner.chain if s not in chain]
        chain = [s for s in chain if s not in mine]
        to, cc = _recipients(info, mine, chain, unmaintained=section is None)
        n = len(indices)
        what = f"{n} memory-reclaim finding{'s' if n != 1 else ''}"
        where = f" (v{version})" if version else ""
        title = clean_header(section) if section else "unmaintained files"
        mails.append(Mail(_file_name(section, used), section, to, cc,
                          f"[nofslint] {title}: {what}{where}", indices))
    return mails


def valid_address(entry: str) -> bool:
    """One address the email package writes as a header (a malformed M: line is dropped)."""
    name, address = parseaddr(entry)
    if "@" not in address or any(c in entry for c in "\r\n"):
        return False
    probe = EmailMessage(policy=policy.default)
    try:
        probe["To"] = entry
        return len(probe["To"].addresses) == 1
    except Exception:  # noqa: BLE001 - the stdlib address parser fails in many ways
        return False


def _recipients(info: RunInfo, mine: list[str], chain: list[str],
                unmaintained: bool) -> tuple[list[str], list[str]]:
    people, lists = info.people(mine)
    maintainers = {parseaddr(m)[1].lower() for name in mine if name in info.sections
                   for m in info.sections[name].maintainers}
    to = [p for p in people if parseaddr(p)[1].lower() in maintainers]
    cc = [p for p in people if p not in to] + lists
    more_people, more_lists = _maintainers_and_lists(info, chain)
    seen = {part.lower() for a in to + cc for part in parseaddr(a) if part}
    for entry in more_people + more_lists:
        name, address = parseaddr(entry)
        if address.lower() not in seen and name.lower() not in seen:
            seen |= {part.lower() for part in (name, address) if part}
            cc.append(entry)
    if unmaintained or not to:  # nobody to address: the lists are
        to, cc = to + lists, [c for c in cc if c not in lists]
    return [a for a in to if valid_address(a)], [a for a in cc if valid_address(a)]


def _maintainers_and_lists(info: RunInfo, names: list[str]) -> tuple[list[str], list[str]]:
    """The M: and L: of sections the chains only run through (their reviewers are
    left out: the finding is not in their code)."""
    sections = [info.sections[n] for n in names if n in info.sections]
    people: dict[str, None] = {}  # ordered and deduplicated in linear time
    lists: dict[str, None] = {}
    for section in sections:
        people.update(dict.fromkeys(section.maintainers))
        lists.update(dict.fromkeys(section.mail_lists()))
    return list(people), list(lists)


def _file_name(section: str | None, used: set[str]) -> str:
    if section is None:
        return UNMAINTAINED
    slug = re.sub(r"[^a-z0-9]+", "-", section.lower()).strip("-")[:80] or "section"
    name, n = f"{slug}.eml", 2
    while name in used:
        name, n = f"{slug}-{n}.eml", n + 1
    used.add(name)
    return name


def render(result: RunResult, info: RunInfo, rules: Mapping[str, type[Rule]],
           sender: str = DEFAULT_FROM) -> dict[str, bytes]:
    """Every mail of the run: file name -> RFC 5322 message."""
    return {mail.name: mail.render(body(result, info, rules, mail), sender)
            for mail in plan(result, info)}


def body(result: RunResult, info: RunInfo, rules: Mapping[str, type[Rule]],
         mail: Mail) -> str:
    version = kernel_version(result)
    n = len(mail.findings)
    owner = (f"code that MAINTAINERS lists under {mail.section}" if mail.section
             else "files that no MAINTAINERS section maintains")
    intro = (f"nofslint {__version__}, a linter for memory-reclaim deadlocks, reports "
             f"{n} finding{'s' if n != 1 else ''} in {owner}"
             + (f", in Linux {version}." if version else "."))
    out = ["Hello,", "", *_wrap(intro), "",
           *_wrap("Each finding has the call chain that leads to it, why it matters and, "
                  "where nofslint has one, a proposed fix. Please check them: a static "
                  "linter can be wrong, and the footer says how to silence it."), ""]
    for k, i in enumerate(mail.findings, 1):
        out += _finding(result.findings[i], k, n, rules)
    out += _footer(result, info, mail)
    return "\n".join(out) + "\n"


def _finding(f: Finding, k: int, n: int, rules: Mapping[str, type[Rule]]) -> list[str]:
    where = f"{escape_path(f.path)}:{f.line}" + (f" in {f.function}()" if f.function else "")
    out = [f"[{k}/{n}] {where}: {f.severity} [{f.rule}]", "",
           *_wrap(escape_text(f.brief or f.message), "  "), ""]  # the chain follows
    if f.trace:
        out += ["  Call chain:", *_chain(f), ""]
    why = _why(rules.get(f.rule))
    if why:
        out += _wrap("Why it matters: " + why, "  ")[:2] + [""]
    if f.fix:
        out += ["  Proposed fix:", "", *f.fix.rstrip("\n").split("\n"), ""]
    out += [f"  Details: nofslint explain {f.rule}", "", ""]
    return out


def _chain(f: Finding) -> list[str]:
    """One numbered line per step (its location on the next line when it does not
    fit), the hop into it in parentheses, and the sink after ``=>``."""
    steps = chains.steps(f)
    hops = chains.hops(steps)
    out = []
    for n, step in enumerate(steps):
        entry = {"ops": "[ops table] ", "queue": "[queued] "}.get(step.kind, "")
        via = (f" ({hops[n - 1].label})"
               if n and hops[n - 1].kind not in ("call", "same") else "")
        head = f"  {n + 1:>3}. {entry}{escape_text(step.label)}{via}"
        where = f"{escape_path(step.path)}:{step.line}"
        if len(head) + len(where) + 2 <= _WIDTH:
            out.append(f"{head}  {where}")
        else:
            out += [head, f"        {where}"]
    out.append(f"       => {escape_text(chains.sink(f))}")
    return out


def _why(rule: type[Rule] | None) -> str:
    """The rule's "Why is this bad", cut to the sentences that fit in two lines."""
    if rule is None:
        return ""
    text = " ".join(rule.docs().get("Why is this bad", "").split()).replace("``", "")
    if not text:
        return ""
    budget = 2 * _WIDTH - len("  Why it matters: ") - 4
    sentences = re.split(r"(?<=[.:;])\s+", text)
    kept = ""
    for sentence in sentences:
        if len(kept) + len(sentence) + 1 > budget:
            break
        kept = f"{kept} {sentence}".strip()
    if not kept:
        kept = textwrap.shorten(sentences[0], budget, placeholder=" ...")
    return kept


def _footer(result: RunResult, info: RunInfo, mail: Mail) -> list[str]:
    paths = sorted({result.findings[i].path for i in mail.findings})
    rules_hit = sorted({result.findings[i].rule for i in mail.findings})
    command = info.reproduce or f"nofslint check . --select {','.join(rules_hit)}"
    return ["-- ", "To reproduce, at the top of the tree:", f"    {command}", "",
            "A false positive? Silence it in the tree's .nofslint.toml (not in the",
            "kernel sources), e.g.:", "    [per-file-ignores]",
            f"    {json.dumps(paths[0])} = {json.dumps(rules_hit)}",
            "or keep today's findings as known ones:",
            "    nofslint check . --write-baseline nofslint.baseline",
            "    nofslint check . --baseline nofslint.baseline",
            f"Sent by nofslint {__version__}."]


def reproduce(argv: list[str], in_tree: Mapping[str, str]) -> str:
    """The command line that reproduces a run at the top of the tree: ``argv`` with
    its output options left out (the findings print in the terminal) and each
    argument naming a path in the tree as ``in_tree`` maps it (the root as ``.``,
    resolved by the caller)."""
    out, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in _OUTPUT_OPTIONS:
            skip = _OUTPUT_OPTIONS[name] if "=" not in arg else 0
            continue
        out.append(in_tree.get(arg, arg))
    return shlex.join(out)


def addresses(header: str | None) -> list[str]:
    """The addresses of a To:/Cc: header, lower case (for tests and comparisons)."""
    return [a.lower() for _, a in getaddresses([header or ""]) if a]


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False)
