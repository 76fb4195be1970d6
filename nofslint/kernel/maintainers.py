"""The tree's ``MAINTAINERS``: who owns a file, by ``scripts/get_maintainer.pl``'s rules.

Findings are routed to the people ``get_maintainer.pl --no-git -f FILE`` names, so
the matching is that script's, step by step:

- ``F:``/``X:`` values become regexes (``.`` literal, ``*`` ``.*``, ``?`` ``.``); a
  value that names a directory of the tree gets a trailing ``/``. A value ending in
  ``/`` matches every path it prefixes; any other value must also have as many
  ``/`` as the path (``drivers/net/*`` is not below drivers/net/ subdirectories);
- a section with a matching ``X:`` does not match at all;
- ``N:`` is a regex searched anywhere in the path (depth 0);
- a section's depth is its matching pattern's ``/`` count, plus one unless it ends
  in ``/`` (the last matching ``F:`` of the section wins, as in the script): the
  most specific section is the deepest;
- ``K:`` regexes match the file's content, only when asked (``-f`` does not by default);
- recipients: every matching section's ``M:`` and ``R:``, then its ``L:`` lists
  (subscribers-only lists left out), duplicates by name or address dropped, and
  the chief penguin (Linus Torvalds, ``THE REST``'s maintainer) left out.

The text is the tree's own, so no pattern may cost more than a look at the path: a
glob value (literals, ``.``, ``*``, ``?``, ``[...]``) is compiled so that each ``*``
commits to the first place its next literal run matches (linear, as fnmatch does);
any other regex (``N:``, ``K:``, an ``F:`` using more of the regex syntax) must be
short, without nested or many unbounded repetitions and without backreferences, else
it never matches, as a regex that does not compile never matches. The file is read
up to MAX_BYTES; the caller bounds the whole matching in time (``K:`` regexes run
over file text).
Addresses are rewritten by the tree's ``.mailmap`` as the script does (Mailmap);
git history (``--git``) is not used, nor the addresses the script reads out of a
``.yaml`` file itself (nofslint reports only on C files).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formataddr, parseaddr
from pathlib import Path

MAX_BYTES = 16 << 20  # 6.12's MAINTAINERS is 0.8 MB
THE_REST = "THE REST"
CHIEF_PENGUIN = "torvalds@linux-foundation.org"
_TYPED = re.compile(r"^([A-Z]):\s*(.*)")
_LITERAL_DIR = re.compile(r"(?:[A-Za-z0-9_,=@%+-]|\\\.)+")


@dataclass
class Section:
    name: str
    index: int  # order in the file
    maintainers: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)  # as written: address and remarks
    status: str = ""
    files: list[str] = field(default_factory=list)  # F: as regex text
    excludes: list[str] = field(default_factory=list)  # X: as regex text
    regexes: list[str] = field(default_factory=list)  # N:
    keywords: list[str] = field(default_factory=list)  # K:

    @property
    def orphan(self) -> bool:
        """Nobody maintains it: S: Orphan, or no M: at all."""
        return self.status.lower().startswith("orphan") or not self.maintainers

    def mail_lists(self) -> list[str]:
        """The L: addresses get_maintainer.pl prints (not subscribers-only ones)."""
        out = []
        for entry in self.lists:
            address, *remark = entry.split(None, 1)
            if address and "subscribers-only" not in "".join(remark):
                out.append(address)
        return out

    def to_json(self) -> dict[str, object]:
        return {"status": self.status, "maintainers": self.maintainers,
                "reviewers": self.reviewers, "lists": self.mail_lists()}


@dataclass(frozen=True)
class _Pattern:
    section: int
    exclude: bool
    text: str
    regex: re.Pattern[str] | None
    slashes: int
    is_dir: bool


_GLOB_TOKEN = re.compile(r"\\\.|\.\*|\.|\[\^?\]?[^\]]*\]|[^\\.\[\]()|+{}^$*?]")
_NESTED = re.compile(r"\([^()]*(?:[*+]|\{\d*,)[^()]*\)\s*(?:[*+?]|\{\d)")
_UNBOUNDED = re.compile(r"(?<!\\)(?:[*+]|\{\d*,\})")
MAX_PATTERN = 256


def _compile(text: str, flags: int = 0, glob: bool = False) -> re.Pattern[str] | None:
    """A value as a regex, only when matching it is cheap (see the module docstring);
    ``glob``: an F:/X: value, tried as a glob first."""
    compiled = _glob(text) if glob else None
    if compiled is not None:
        return compiled
    if (len(text) > MAX_PATTERN or _NESTED.search(text) or re.search(r"\\[1-9]|\(\?P=", text)
            or len(_UNBOUNDED.findall(text)) > 4):
        return None
    try:
        return re.compile(text, flags)
    except (re.error, RecursionError, OverflowError):
        return None


def _glob(text: str) -> re.Pattern[str] | None:
    """A converted glob (``\\.``, ``.``, ``.*``, ``[...]`` and literals) as a regex
    that never backtracks across ``.*``: each run after a ``.*`` is found lazily
    in a lookahead and then consumed at once (Python's fnmatch does the same)."""
    tokens = _GLOB_TOKEN.findall(text)
    if "".join(tokens) != text or len(text) > 4 * MAX_PATTERN:
        return None
    runs: list[str] = [""]
    for token in tokens:
        if token == ".*":
            runs.append("")
        elif token.startswith("[") or token in (".", "\\."):
            runs[-1] += token
        else:
            runs[-1] += re.escape(token)
    out = runs[0]
    for n, run in enumerate(runs[1:]):
        out += f"(?=(?P<g{n}>.*?{run}))(?P=g{n})" if run else ".*"
    try:
        return re.compile(out)
    except (re.error, RecursionError, OverflowError):
        return None


class Maintainers:
    """The sections of one MAINTAINERS file and the matching of paths against them."""

    def __init__(self, text: str, is_dir: Callable[[str], bool] = lambda _: False) -> None:
        """``is_dir(value)``: whether the tree has a directory at that relative path
        (get_maintainer.pl's ``-d``, asked of the value after the glob conversion)."""
        self.sections: list[Section] = []
        lines = text[:MAX_BYTES].split("\n")
        name: str | None = None
        current: Section | None = None
        for line in lines:
            line = line.rstrip("\r")
            typed = _TYPED.match(line)
            if typed is None:
                if line.strip() and not line.lstrip().startswith("#"):
                    current, name = None, line.strip()  # blank and comment lines do not
                continue  # end a section: the script drops them before it looks
            if current is None:
                current = Section(name or "", len(self.sections))
                self.sections.append(current)
                name = None
            kind, value = typed.group(1), typed.group(2).strip()
            self._add(current, kind, value, is_dir)
        self._by_name = {s.name: s for s in self.sections}
        self._buckets: dict[str, list[_Pattern]] = {}
        self._anywhere: list[_Pattern] = []
        for s in self.sections:
            for exclude, values in ((True, s.excludes), (False, s.files)):
                for value in values:
                    self._index(_Pattern(s.index, exclude, value, _compile(value, glob=True),
                                         value.count("/"), value.endswith("/")))
        self._regexes = [(s.index, r) for s in self.sections for value in s.regexes
                         if (r := _compile(value, re.VERBOSE)) is not None]
        self._keywords = [(s.index, r) for s in self.sections for value in s.keywords
                          if (r := _compile(value, re.VERBOSE)) is not None]

    @staticmethod
    def _add(section: Section, kind: str, value: str, is_dir: Callable[[str], bool]) -> None:
        if kind in "FX":
            value = value.replace(".", "\\.").replace("*", ".*").replace("?", ".")
            if not value.endswith("/") and value and is_dir(value):
                value += "/"
            (section.files if kind == "F" else section.excludes).append(value)
        elif kind == "M":
            section.maintainers.append(value)
        elif kind == "R":
            section.reviewers.append(value)
        elif kind == "L":
            section.lists.append(value)
        elif kind == "S":
            section.status = value
        elif kind == "N":
            section.regexes.append(value)
        elif kind == "K":
            section.keywords.append(value)

    def _index(self, pattern: _Pattern) -> None:
        """Bucket a pattern by its literal first directory, so a path is tried only
        against the patterns that can match it."""
        head = pattern.text.split("/", 1)[0]
        if "|" in pattern.text or not _LITERAL_DIR.fullmatch(head) or "/" not in pattern.text:
            self._anywhere.append(pattern)
        else:
            self._buckets.setdefault(head.replace("\\.", "."), []).append(pattern)

    def section(self, name: str) -> Section | None:
        return self._by_name.get(name)

    def match(self, path: str, content: str | None = None) -> list[Section]:
        """The sections owning ``path`` (relative to the tree root), most specific
        first (ties in file order). ``content``: the file's text, to match ``K:``."""
        candidates = self._buckets.get(path.split("/", 1)[0], []) + self._anywhere
        slashes = path.count("/")
        excluded = {p.section for p in candidates if p.exclude and _matches(p, path, slashes)}
        depth: dict[int, int] = {}
        for p in sorted((p for p in candidates if not p.exclude), key=_file_order):
            if p.section in excluded or not _matches(p, path, slashes):
                continue
            d = p.slashes + (0 if p.is_dir else 1)
            depth[p.section] = -1 if p.text.startswith(".*") else d
        for index, regex in self._regexes:
            if index not in excluded and regex.search(path):
                depth[index] = 0
        order = sorted(depth, key=lambda i: (-depth[i], i))
        if content is not None:
            order += sorted({i for i, r in self._keywords
                             if i not in depth and r.search(content)})
        return [self.sections[i] for i in order]

    def owner(self, path: str, content: str | None = None) -> Section | None:
        """The most specific section but THE REST; None: only THE REST (or nothing)."""
        return next((s for s in self.match(path, content) if s.name != THE_REST), None)


def _file_order(p: _Pattern) -> int:
    return p.section


def _matches(p: _Pattern, path: str, slashes: int) -> bool:
    if p.regex is None or not p.regex.match(path):
        return False
    return p.is_dir or p.slashes == slashes


class Mailmap:
    """The tree's ``.mailmap``, read as get_maintainer.pl reads it: ``Name <a>``,
    ``<a> <b>``, ``Name <a> <b>`` and ``Name <a> Other <b>`` lines."""

    def __init__(self, text: str = "") -> None:
        self.names: dict[str, str] = {}
        self.addresses: dict[str, str] = {}
        for raw in text[:MAX_BYTES].split("\n"):
            line = raw.split("#", 1)[0].strip()
            parts = re.findall(r"([^<]*)<([^>]+)>", line)
            if not parts or len(parts) > 2:
                continue
            (real_name, real_address), *wrong = parts
            real_name = real_name.strip()
            if not wrong:
                self.names[real_address] = real_name
                continue
            wrong_name, wrong_address = wrong[0][0].strip(), wrong[0][1]
            key = _format(wrong_name, wrong_address) if wrong_name else wrong_address
            if real_name:
                self.names[key] = real_name
            self.addresses[key] = real_address

    def map(self, name: str, address: str) -> tuple[str, str]:
        email = _format(name, address)
        key = email if email in self.names or email in self.addresses else address
        return self.names.get(key, name), self.addresses.get(key, address)


def _format(name: str, address: str) -> str:
    return formataddr((name, address)) if name else address


def recipients(sections: Iterable[Section],
               mailmap: Mailmap | None = None) -> tuple[list[str], list[str]]:
    """(people, lists) as get_maintainer.pl --no-git lists them for these sections:
    each section's M: then R:, lists after everyone, mapped by ``.mailmap``,
    duplicates (same name or same address, any case) dropped, the chief penguin
    left out."""
    mailmap = mailmap or Mailmap()
    people: list[str] = []
    names: set[str] = set()
    addresses: set[str] = set()
    lists: list[str] = []
    seen_lists: set[str] = set()  # a set: a hostile section may hold thousands of L:
    for section in sections:
        for entry in [*section.maintainers, *section.reviewers]:
            name, address = mailmap.map(*parseaddr(entry))
            if not address or "@" not in address:
                continue
            if name.lower() in names or address.lower() in addresses:
                continue
            if name:
                names.add(name.lower())
            addresses.add(address.lower())
            people.append(_format(name, address))
        for address in section.mail_lists():
            if address.lower() not in seen_lists:
                seen_lists.add(address.lower())
                lists.append(address)
    people = [p for p in people if parseaddr(p)[1].lower() != CHIEF_PENGUIN]
    return people, lists


def read_bounded(path: Path) -> str:
    """A regular file's text, at most MAX_BYTES (a FIFO or a device is refused, not
    read: the tree is untrusted); OSError when it cannot be read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return fh.read(MAX_BYTES).decode("utf-8", "replace")


def for_tree(root: Path, file: Path | None = None) -> tuple[Maintainers, Mailmap]:
    """The tree's MAINTAINERS (or ``file``) and its ``.mailmap`` (empty when there is
    none). ``F:`` values are looked up as directories of ``root`` only below it."""
    def is_dir(value: str) -> bool:
        if value.startswith("/") or ".." in value.split("/"):
            return False
        return os.path.isdir(os.path.join(root, value))

    book = Maintainers(read_bounded(file or root / "MAINTAINERS"), is_dir)
    try:
        mailmap = Mailmap(read_bounded(root / ".mailmap"))
    except OSError:
        mailmap = Mailmap()
    return book, mailmap
