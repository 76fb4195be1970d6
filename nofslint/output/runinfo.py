"""What a published report knows beyond the findings: how the run was made and who
owns each finding (its MAINTAINERS sections), kept in the JSON report so a saved run
is re-rendered (``nofslint report``) without the tree.

The JSON report only grows: ``files``, ``run`` and ``maintainers`` at the top and
``owner`` per finding are added to what ``--format json`` always wrote; a report
without them (an older one) still loads.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nofslint.kernel import maintainers as mnt
from nofslint.kernel.kconfig import Kconfig
from nofslint.kernel.tree import NO_EXTRAS, KernelTree
from nofslint.model.findings import Finding, TraceStep
from nofslint.run.results import FileError, RunResult

_SEVERITIES = ("error", "warning", "info")


class ReportError(Exception):
    """A saved report that cannot be used: the message says what is wrong."""


@dataclass
class Owner:
    """The MAINTAINERS sections of one finding."""

    section: str | None  # most specific section of the finding's file; None: unmaintained
    sections: list[str]  # every section matching the finding's file, most specific first
    chain: list[str] = field(default_factory=list)  # owners of the chain's other files
    steps: list[str | None] = field(default_factory=list)  # owner of each trace step's file

    def to_json(self) -> dict[str, Any]:
        return {"section": self.section, "sections": self.sections, "chain": self.chain,
                "steps": self.steps}


@dataclass
class RunInfo:
    """The run's metadata and the routing of its findings (``owners`` parallel to them)."""

    command: list[str] | None = None  # the command line, as run
    reproduce: str | None = None  # the same at the top of the tree, output options left out
    files_recorded: bool = True  # False: a saved report that did not record its file count
    config: str | None = None
    rules: list[str] = field(default_factory=list)
    maintainers_file: str | None = None
    keywords: bool = False
    sections: dict[str, mnt.Section] = field(default_factory=dict)
    owners: list[Owner | None] = field(default_factory=list)

    @property
    def routed(self) -> bool:
        return self.maintainers_file is not None

    def owner(self, index: int) -> Owner | None:
        return self.owners[index] if index < len(self.owners) else None

    def people(self, names: list[str]) -> tuple[list[str], list[str]]:
        """(people, lists) of these sections, as get_maintainer.pl names them."""
        return mnt.recipients(self.sections[n] for n in names if n in self.sections)

    def top_json(self, result: RunResult) -> dict[str, Any]:
        doc: dict[str, Any] = {"files": result.files if self.files_recorded else None,
                               "run": {
            "command": self.command, "reproduce": self.reproduce, "config": self.config,
            "rules": self.rules}}
        if self.routed:
            doc["maintainers"] = {
                "file": self.maintainers_file, "keywords": self.keywords,
                "sections": {name: s.to_json() for name, s in sorted(self.sections.items())}}
        return doc


def route(result: RunResult, book: mnt.Maintainers, mailmap: mnt.Mailmap,
          root: Path | None, keywords: bool = False) -> tuple[list[Owner], dict[str, mnt.Section]]:
    """Each finding's owner, and the sections they name (mailmap applied to M:/R:).
    With ``keywords`` the files' text is matched against ``K:`` (read from ``root``)."""
    cache: dict[str, list[mnt.Section]] = {}

    def sections_of(path: str) -> list[mnt.Section]:
        if path not in cache:
            content = _read(root, path) if keywords and root is not None else None
            cache[path] = book.match(path, content)
        return cache[path]

    owners = []
    used: dict[str, mnt.Section] = {}
    for f in result.findings:
        mine = sections_of(f.path)
        own = next((s for s in mine if s.name != mnt.THE_REST), None)
        section = None if own is None or own.orphan else own.name
        chain: list[str] = []
        steps: list[str | None] = []
        for step in f.trace:
            other = next((s for s in sections_of(step.path) if s.name != mnt.THE_REST), None)
            steps.append(other.name if other is not None else None)
            if other is not None and other not in mine and other.name not in chain:
                chain.append(other.name)
                used[other.name] = other
        owners.append(Owner(section, [s.name for s in mine], chain, steps))
        used |= {s.name: s for s in mine}
    return owners, {name: _mapped(s, mailmap) for name, s in used.items()}


def _mapped(section: mnt.Section, mailmap: mnt.Mailmap) -> mnt.Section:
    """The section with its people as .mailmap names them, its lists as addresses."""
    def mapped(entries: list[str]) -> list[str]:
        people, _ = mnt.recipients([mnt.Section("", 0, maintainers=entries)], mailmap)
        return people
    return mnt.Section(section.name, section.index, maintainers=mapped(section.maintainers),
                       reviewers=mapped(section.reviewers), lists=section.mail_lists(),
                       status=section.status)


def _read(root: Path, path: str) -> str | None:
    """A linted file's text for K: matching, bounded; None when unreadable."""
    try:
        return mnt.read_bounded(root / path)  # a FIFO or device swapped in is refused
    except OSError:
        return None


# -- loading a saved report ---------------------------------------------------------------

def load(text: str, source: str) -> tuple[RunResult, RunInfo, dict[str, Any]]:
    """The run, its info and the raw document of a ``--format json`` report."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ReportError(f"{source}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list) \
            or "kernel_version" not in doc:
        raise ReportError(f"{source}: not a nofslint JSON report (written by "
                          "`nofslint check --format json`)")
    try:
        return _load(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReportError(f"{source}: not a nofslint JSON report: bad or missing "
                          f"{exc.__class__.__name__}: {exc}") from None


def _load(doc: dict[str, Any]) -> tuple[RunResult, RunInfo, dict[str, Any]]:
    result = RunResult()
    for t in doc.get("trees") or []:
        version = tuple(int(x) for x in str(t["kernel_version"]).split(".")[:2])
        config = t.get("kconfig")  # the path and hash it was linted with, no values
        extras = NO_EXTRAS if not config else dataclasses.replace(
            NO_EXTRAS, kconfig=Kconfig(str(config["path"]), str(config["sha256"]), {}))
        result.trees.append(KernelTree(Path(t["root"]) if t.get("root") else None,
                                       (version[0], version[1]), str(t["version_source"]),
                                       extras))
    result.errors = [FileError(str(e["path"]), str(e["reason"]), bool(e.get("internal")))
                     for e in doc.get("errors") or []]
    owners: list[Owner | None] = []
    for f in doc["findings"]:
        if f["severity"] not in _SEVERITIES:
            raise ValueError(f"severity {f['severity']!r}")
        trace = [_step(t) for t in f.get("trace") or []]
        finding = Finding(
            rule=str(f["rule"]), severity=f["severity"], path=str(f["path"]),
            line=int(f["line"]), column=int(f["column"]), end_line=int(f["end_line"]),
            end_column=int(f["end_column"]),
            function=None if f.get("function") is None else str(f["function"]),
            message=str(f["message"]), trace=trace,
            fix=None if f.get("fix") is None else str(f["fix"]))
        brief = f.get("brief")
        if brief and brief != finding.message:
            finding.brief = str(brief)
        result.findings.append(finding)
        o = f.get("owner")
        owners.append(None if o is None else Owner(
            None if o["section"] is None else str(o["section"]),
            [str(s) for s in o["sections"]], [str(s) for s in o["chain"]],
            [None if s is None else str(s) for s in o.get("steps") or []]))
    files = doc.get("files")
    result.files = int(files) if files is not None else len({f.path for f in result.findings})
    run = doc.get("run") or {}
    command = run.get("command")
    info = RunInfo(command=None if command is None else [str(a) for a in command],
                   reproduce=None if run.get("reproduce") is None else str(run["reproduce"]),
                   config=None if run.get("config") is None else str(run["config"]),
                   files_recorded=files is not None,
                   rules=[str(r) for r in run.get("rules") or []], owners=owners)
    routing = doc.get("maintainers")
    if routing:
        info.maintainers_file = str(routing["file"])
        info.keywords = bool(routing.get("keywords"))
        for index, (name, s) in enumerate(routing["sections"].items()):
            info.sections[name] = mnt.Section(
                name, index, maintainers=[str(x) for x in s["maintainers"]],
                reviewers=[str(x) for x in s["reviewers"]], lists=[str(x) for x in s["lists"]],
                status=str(s.get("status") or ""))
    return result, info, doc


def _step(t: dict[str, Any]) -> TraceStep:
    """A trace step; ``column`` and ``note`` are missing from older reports."""
    return TraceStep(None if t["function"] is None else str(t["function"]), str(t["path"]),
                     int(t["line"]), int(t.get("column") or 0), str(t.get("note") or ""))
