"""Patches in, patched copies out: what ``check-patch`` lints.

Reads ``git format-patch`` mails, mbox series and plain unified diffs (unidiff
parses the diff, the standard ``email`` package the mail around it), and
applies them to copies of the touched files. Application is strict like
``git apply`` without fuzz: a hunk's old lines must match exactly, at the
stated line or the nearest offset (within HUNK_WINDOW lines), so findings are
never reported on code the patch did not produce, and the tree itself is never
written.
"""

from __future__ import annotations

import email
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email import policy
from email.message import EmailMessage
from pathlib import Path, PurePosixPath

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from nofslint.frontend.source import MAX_FILE_BYTES, NotRegular, TooLarge, read_regular

_C_SUFFIXES = (".c", ".h")
# "From <sha or address> <asctime date>": the mbox separator git format-patch writes.
_FROM_LINE = re.compile(rb"^From \S+ +\w{3} \w{3} +\d+ \d+:\d+:\d+ \d{4}\s*$")
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]")
_HUNK_LINE = re.compile(r"^[ +]|^-(?!-- |- ?\r?$)")
# Control characters (line breaks included) in a header value, with the blanks of a
# folded line after them: a decoded subject may hold "\n", which would forge lines
# wherever the value is printed or mailed.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+ *")
# A hunk is searched for this many lines either side of the line it states (git
# searches the whole file): whatever a header claims, the search is bounded.
HUNK_WINDOW = 5000
# Line comparisons the search for one hunk may make: a huge hunk gets a narrower window.
HUNK_SEARCH_BUDGET = 20_000_000
_UNIDIFF_ERRORS = {
    "Hunk is longer than expected": "it has more lines than its header counts",
    "Hunk is shorter than expected": "it ends before the line counts in its header",
}


class PatchError(Exception):
    """A patch that cannot be read or applied; the message names the patch file."""


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` block. Line texts keep their line ending ("\\n" or "\\r\\n"),
    except a line marked "\\ No newline at end of file", which has none."""

    old_start: int
    old_len: int
    new_start: int
    new_len: int
    header: str  # the @@ line as written in the patch
    lines: tuple[tuple[str, str], ...]  # (' ', '-' or '+', text)
    patch_lines: tuple[int, ...] = ()  # line of each entry of ``lines`` in the patch input

    def numbered(self) -> Iterator[tuple[str, str, int | None, int | None]]:
        """(kind, text, old line number or None, new line number or None)."""
        old, new = self.old_start, self.new_start
        for kind, text in self.lines:
            yield kind, text, old if kind != "+" else None, new if kind != "-" else None
            old += kind != "+"
            new += kind != "-"


@dataclass
class FilePatch:
    """The changes to one file. Paths are relative to the tree root, None for /dev/null."""

    old_path: str | None
    new_path: str | None
    hunks: list[Hunk] = field(default_factory=list)
    is_binary: bool = False
    header: tuple[str, ...] = ()  # diff --git / index / --- / +++ lines as written
    is_copy: bool = False  # git "copy from/to": the old file stays

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""

    def new_ranges(self) -> list[tuple[int, int]]:
        """Inclusive new-side line ranges the hunks cover (context included)."""
        return [(h.new_start, h.new_start + h.new_len - 1) for h in self.hunks if h.new_len]

    def patch_lines(self) -> dict[int, int]:
        """New-side line number -> line of the patch input showing it (added or context)."""
        out: dict[int, int] = {}
        for h in self.hunks:
            for (kind, _, _, new), at in zip(h.numbered(), h.patch_lines, strict=True):
                if kind != "-" and new is not None:
                    out[new] = at
        return out


@dataclass
class PatchMail:
    """One mail of a series (or the whole of a plain diff: no headers, subject None)."""

    subject: str | None
    message_id: str | None
    references: list[str]
    sender: str | None
    date: str | None
    files: list[FilePatch]
    source: str  # name of the patch file it came from


# -- reading ---------------------------------------------------------------------------

def read_patches(data: bytes, name: str) -> list[PatchMail]:
    """Every mail with a diff in ``data``: a format-patch file, an mbox series (cover
    letters and replies without a diff are skipped) or a plain unified diff."""
    if not data.strip():
        raise PatchError(f"{name}: empty input, no patch found")
    chunks = _mbox_chunks(data)
    if chunks is None:
        files = parse_diff(_decode(data, "utf-8", name), name)
        if not files:
            raise PatchError(f"{name}: no diff found (expected a unified diff or a "
                             "git format-patch mail)")
        return [PatchMail(None, None, [], None, None, files, name)]
    mails = []
    for first_line, chunk in chunks:
        try:
            msg = email.message_from_bytes(chunk, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            body = _body(msg, name)
        except RecursionError:
            raise PatchError(f"{name}: the mail at line {first_line} nests its MIME parts "
                             "too deeply to be read") from None
        files = parse_diff(body, name, first_line + _header_lines(chunk))
        if not files:
            continue  # a cover letter or a reply
        mails.append(PatchMail(
            subject=_header(msg, "Subject"), message_id=_header(msg, "Message-ID"),
            references=_references(msg), sender=_header(msg, "From"),
            date=_header(msg, "Date"), files=files, source=name))
    if not mails:
        raise PatchError(f"{name}: no diff found in {len(chunks)} mail(s)")
    return mails


def patch_line_map(mails: list[PatchMail]) -> dict[tuple[str, int], int]:
    """(path, new-side line) -> line in the patch input, for checkpatch's ``#N``.
    In a series the last mail showing a line wins."""
    out: dict[tuple[str, int], int] = {}
    for mail in mails:
        for fp in mail.files:
            if fp.new_path is not None:
                out.update(((fp.new_path, line), at) for line, at in fp.patch_lines().items())
    return out


def parse_diff(text: str, name: str, first_line: int = 1) -> list[FilePatch]:
    """The file patches of the unified diff in ``text`` (a mail body may hold a commit
    message before it and a signature after it); [] when there is none.
    ``first_line`` is the patch input's line number of the first line of ``text``."""
    lines = _split(text)
    start = _diff_start(lines)
    if start is None:
        return []
    lines = lines[start:_diff_end(lines, start)]
    feed = _Feed(lines)
    try:
        patch = PatchSet(iter(feed))
    except UnidiffParseError as exc:
        file, hunk = feed.where(str(exc))
        where = f"{file or 'the diff'}" + (f" ({hunk})" if hunk else "")
        raise PatchError(f"{name}: malformed hunk in {where}: {_reason(str(exc))}") from None
    base = first_line + start
    return [_file_patch(pf, lines, base, name) for pf in patch]


def _reason(error: str) -> str:
    """unidiff's complaint in words about the patch."""
    if error.startswith("Hunk diff line expected: "):
        line = error.split(": ", 1)[1].rstrip("\r\n")
        return f"{line!r} is not a hunk line (the header counts more lines than there are)"
    return _UNIDIFF_ERRORS.get(error, error)


class _Feed:
    """Hands lines to unidiff, remembering the file and hunk headers last seen so a
    parse error can name them."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.current: tuple[str | None, str | None] = (None, None)
        self.previous = self.current
        self.last = ""

    def __iter__(self) -> Iterator[str]:
        prev = ""
        for line in self.lines:
            file, hunk = self.current
            if line.startswith("diff "):
                file, hunk = _shown_path(line.split()[-1]), None
            elif line.startswith("+++ ") and prev.startswith("--- "):
                file, hunk = _shown_path(line[4:].split("\t")[0]), None
            elif line.startswith("@@"):
                hunk = line.rstrip("\r\n")
            if (file, hunk) != self.current:
                self.previous, self.current = self.current, (file, hunk)
            prev = self.last = line
            yield line

    def where(self, error: str) -> tuple[str | None, str | None]:
        # unidiff notices a too-long count only on reading the next header line.
        header = self.last.startswith(("diff ", "@@", "--- ", "+++ "))
        return self.previous if header and "line expected" in error else self.current


def _file_patch(pf, lines: list[str], base: int, name: str) -> FilePatch:
    """Our FilePatch from unidiff's PatchedFile; ``base`` is the patch line of lines[0]."""
    info = [line.rstrip("\r\n") for line in (pf.patch_info or [])]
    is_git = any(line.startswith("diff --git ") for line in info)
    old, new = _paths(pf.source_file, pf.target_file, is_git, name)
    if pf.is_binary_file:
        if any((p or "").endswith(_C_SUFFIXES) for p in (old, new)):
            raise PatchError(f"{name}: {new or old}: binary diff of a C source file "
                             "cannot be checked (send it as text)")
        return FilePatch(old, new, [], True, tuple(info))
    header = tuple(info) + ((f"--- {pf.source_file}", f"+++ {pf.target_file}") if len(pf)
                            else ())
    hunks = []
    for number, h in enumerate(pf, 1):
        hunk = _hunk(h, lines, base)
        _check_hunk_end(lines, h, f"{name}: hunk #{number} of {new or old} ({hunk.header})")
        hunks.append(hunk)
    return FilePatch(old, new, hunks, False, header,
                     is_copy=any(line.startswith("copy from ") for line in info))


def _hunk(h, lines: list[str], base: int) -> Hunk:
    body: list[tuple[str, str]] = []
    at: list[int] = []
    for line in h:
        if line.line_type == "\\":
            if body:  # "\ No newline at end of file" belongs to the line before it
                body[-1] = (body[-1][0], _strip_eol(body[-1][1]))
        elif line.line_type in (" ", "-", "+"):
            body.append((line.line_type, line.value))
            at.append(base + line.diff_line_no - 1)
    header_index = at[0] - base - 1 if at else 0
    return Hunk(h.source_start, h.source_length, h.target_start, h.target_length,
                lines[header_index].rstrip("\r\n"), tuple(body), tuple(at))


def _check_hunk_end(lines: list[str], h, where: str) -> None:
    """unidiff stops reading a hunk when its counts are used up, taking any further
    hunk lines for prose: a count that is too small would silently drop them."""
    numbered = [line.diff_line_no for line in h if line.diff_line_no]
    if not numbered:
        return
    i = max(numbered)  # index (0-based) of the line after the hunk's last one
    while i < len(lines) and (lines[i].startswith("\\") or not lines[i].strip("\r\n")):
        i += 1
    if i < len(lines) and _HUNK_LINE.match(lines[i]):
        raise PatchError(f"{where} is malformed: its header counts fewer lines than "
                         f"follow it ({lines[i].rstrip()!r} is left over)")


def _paths(source: str, target: str, is_git: bool,
           name: str) -> tuple[str | None, str | None]:
    """Tree-relative paths: a/ b/ stripped (or, for a plain ``diff -ru old new``,
    the differing first directory); None for /dev/null."""
    old = None if source == "/dev/null" else _path_text(source)
    new = None if target == "/dev/null" else _path_text(target)
    prefixed = (old or "a/").startswith("a/") and (new or "b/").startswith("b/")
    if is_git or prefixed:
        old = old[2:] if old and old.startswith("a/") else old
        new = new[2:] if new and new.startswith("b/") else new
    elif old and new and "/" in old and "/" in new and old.split("/")[0] != new.split("/")[0]:
        old, new = old.split("/", 1)[1], new.split("/", 1)[1]
    if not is_git and old and new:
        old = new  # a plain diff modifies one file, however the old copy was named
    for path in (old, new):
        if path is not None and (PurePosixPath(path).is_absolute()
                                 or ".." in PurePosixPath(path).parts
                                 or PurePosixPath(path).as_posix() == "." or "\0" in path):
            raise PatchError(f"{name}: path {path!r} is not inside the tree")
    # One spelling per file: "fs//a.c" and "./fs/a.c" are "fs/a.c".
    return (None if old is None else PurePosixPath(old).as_posix(),
            None if new is None else PurePosixPath(new).as_posix())


def _shown_path(path: str) -> str:
    path = _path_text(path)
    return path[2:] if path.startswith("b/") else path


def _path_text(path: str) -> str:
    path = path.strip()
    return path[1:-1] if len(path) > 1 and path[0] == path[-1] == '"' else path


def _split(text: str) -> list[str]:
    """Lines with their endings, split on "\\n" only (form feeds stay in their line)."""
    return re.findall(r"[^\n]*\n|[^\n]+\Z", text)


def _strip_eol(text: str) -> str:
    if text.endswith("\n"):
        text = text[:-1]
        return text[:-1] if text.endswith("\r") else text
    return text


def _diff_start(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        if line.startswith(("diff ", "Binary files ")) or (
                line.startswith("--- ") and i + 1 < len(lines)
                and lines[i + 1].startswith("+++ ")):
            return i
    return None


def _diff_end(lines: list[str], start: int) -> int:
    """Where the mail signature ("-- " and the git version) starts, or the end."""
    for i in range(len(lines) - 1, start, -1):
        if _strip_eol(lines[i]) == "-- ":
            rest = [line for line in lines[i + 1:] if line.strip()]
            if len(rest) <= 3 and not any(line.startswith(("@@", "diff ")) for line in rest):
                return i
            break
    return len(lines)


def _decode(data: bytes, charset: str, name: str) -> str:
    try:
        return data.decode(charset)
    except LookupError:
        raise PatchError(f"{name}: unknown charset {charset!r}") from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PatchError(f"{name}: not valid {charset} (byte 0x{data[exc.start]:02x} on line "
                         f"{line} of the diff)") from None
    except (UnicodeError, ValueError) as exc:  # codecs such as idna fail otherwise
        raise PatchError(f"{name}: not valid {charset}: {exc}") from None


def _mbox_chunks(data: bytes) -> list[tuple[int, bytes]] | None:
    """(line number of its first header, bytes) of each mail; None for a plain diff.
    A single mail without the mbox "From " line counts as a one-mail mbox."""
    lines = data.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _FROM_LINE.match(line)]
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if not starts or starts[0] != first:
        head = lines[first:first + 30]
        names = {line.split(b":", 1)[0].lower() for line in head if _HEADER_LINE.match(line)}
        if _HEADER_LINE.match(lines[first]) and names & {b"subject", b"from", b"message-id"}:
            return [(first + 1, b"".join(lines[first:]))]
        return None
    bounds = [*starts, len(lines)]
    return [(s + 2, b"".join(lines[s + 1:e])) for s, e in zip(bounds, bounds[1:], strict=False)]


def _header_lines(chunk: bytes) -> int:
    """Lines before the body (headers and the blank line after them)."""
    end = re.search(rb"\r?\n\r?\n", chunk)
    return chunk.count(b"\n", 0, end.end()) if end else 0


def _body(msg: EmailMessage, name: str) -> str:
    """The text of the mail (every text part of a multipart one), decoded."""
    parts = [p for p in msg.walk() if not p.is_multipart() and p.get_content_maintype() == "text"]
    texts = []
    for part in parts:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            subject = _header(msg, "Subject") or "mail"
            texts.append(_decode(payload, part.get_content_charset() or "utf-8",
                                 f"{name} ({subject})"))
    # A part need not end with a newline: the next one (the diff) must still start a line.
    return "".join(t if t.endswith("\n") or i == len(texts) - 1 else t + "\n"
                   for i, t in enumerate(texts))


def _header(msg: EmailMessage, key: str) -> str | None:
    """The decoded, unfolded header on one line (control characters become spaces); a
    date exactly as written (the parsed one is reformatted), and so is a value the
    email package cannot parse (``Message-ID: <<<>>>``, ``From: a@``)."""
    raw = next((v for k, v in msg.raw_items() if k.lower() == key.lower()), None)
    value: object = raw
    if key == "Date" and raw is not None:
        value = " ".join(raw.split())
    elif key != "Date":
        try:
            value = msg.get(key)
            value = None if value is None else str(value)
        except Exception:  # noqa: BLE001 - the stdlib header parser fails in many ways
            value = raw
    return clean_header(str(value)) if value is not None else None


def clean_header(value: str) -> str:
    """A header value as one line: runs of control characters (CR, LF...) become a
    space, so a value can neither forge a header of a mail nor a line of a report."""
    return _CONTROL.sub(" ", value).strip()


def _references(msg: EmailMessage) -> list[str]:
    refs = _header(msg, "References") or _header(msg, "In-Reply-To") or ""
    return refs.split()


# -- applying --------------------------------------------------------------------------

def apply_patches(mails: list[PatchMail], tree: Path, dest: Path) -> dict[str, Path | None]:
    """Apply every hunk of every mail, in order, to copies under ``dest`` of the files
    they touch (``tree`` is only read). Returns tree-relative path -> patched copy, or
    None for a file the series deletes. Binary diffs (never of C files) are skipped.
    Nothing is written unless every hunk applies."""
    tree, dest = tree.resolve(), dest.resolve()
    if dest == tree or dest.is_relative_to(tree) or tree.is_relative_to(dest):
        raise PatchError(f"destination {dest} overlaps the tree {tree}")
    state: dict[str, list[str] | None] = {}
    owner: dict[str, str] = {}  # path -> the mail that last wrote it

    def current(path: str, name: str) -> list[str]:
        if path not in state:
            data = _read_tree_file(tree, path, name)
            state[path] = _split(data.decode("utf-8", "surrogateescape"))
        content = state[path]
        if content is None:
            raise PatchError(f"{name}: {path}: already deleted by an earlier patch")
        return content

    for mail in mails:
        name = _mail_name(mail)
        for fp in mail.files:
            if fp.is_binary:
                continue
            if fp.old_path is None:
                assert fp.new_path is not None
                if state.get(fp.new_path) is not None or (
                        fp.new_path not in state and _lstat(tree / fp.new_path) is not None):
                    raise PatchError(f"{name}: {fp.new_path}: the patch creates it, but it "
                                     "already exists")
                before: list[str] = []
            else:
                before = current(fp.old_path, name)
            after = _apply_file(before, fp, name)
            if fp.new_path is None:
                if after:
                    raise PatchError(f"{name}: {fp.old_path}: the patch deletes it, but "
                                     f"{len(after)} line(s) would remain")
                state[fp.path] = None
                continue
            if fp.old_path is not None and fp.old_path != fp.new_path and not fp.is_copy:
                state[fp.old_path] = None  # renamed
            state[fp.new_path] = after
            owner[fp.new_path] = name
    _check_file_dirs(state, owner, tree)
    result: dict[str, Path | None] = {}
    for path, content in state.items():
        if content is None:
            result[path] = None
            continue
        target = dest / path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes("".join(content).encode("utf-8", "surrogateescape"))
        except OSError as exc:
            raise PatchError(f"{path}: cannot write the patched copy: "
                             f"{exc.strerror or exc}") from None
        result[path] = target
    return result


def reverse(mails: list[PatchMail]) -> list[PatchMail]:
    """The series that undoes ``mails``: the mails last first, each file's change turned
    around (added lines removed, removed lines added, a created file deleted). A copy
    cannot be undone from its diff alone (the copied lines are not in it)."""
    out = []
    for mail in reversed(mails):
        files = []
        for fp in reversed(mail.files):
            if fp.is_copy:
                raise PatchError(f"{_mail_name(mail)}: {fp.path}: a copy cannot be undone "
                                 "from the patch")
            hunks = [replace(h, old_start=h.new_start, old_len=h.new_len,
                             new_start=h.old_start, new_len=h.old_len,
                             lines=tuple((_TURNED.get(k, k), t) for k, t in h.lines))
                     for h in fp.hunks]
            files.append(replace(fp, old_path=fp.new_path, new_path=fp.old_path, hunks=hunks))
        out.append(replace(mail, files=files))
    return out


_TURNED = {"+": "-", "-": "+"}


def _read_tree_file(tree: Path, path: str, name: str) -> bytes:
    """A tree file a patch changes: a regular file of at most MAX_FILE_BYTES (what the
    linter reads), read as frontend.source reads every file (never a device, never a
    wait on a pipe)."""
    where = f"{name}: {path}"
    try:
        return read_regular(tree / path, MAX_FILE_BYTES)
    except NotRegular as exc:
        if exc.directory:
            raise PatchError(f"{where}: is a directory in {tree}, the patch changes a file"
                             ) from None
        raise PatchError(f"{where}: not a regular file (a device, pipe or socket)") from None
    except TooLarge as exc:
        raise PatchError(f"{where}: {exc}") from None
    except (FileNotFoundError, NotADirectoryError):
        raise PatchError(f"{where}: no such file in {tree}") from None
    except OSError as exc:
        raise PatchError(f"{where}: cannot read: {exc.strerror or exc}") from None


def _lstat(path: Path) -> os.stat_result | None:
    """The path's own status; None when it does not exist (or cannot: a name too long)."""
    try:
        return os.lstat(path)
    except (OSError, ValueError):
        return None


def _check_file_dirs(state: dict[str, list[str] | None], owner: dict[str, str],
                     tree: Path) -> None:
    """No patched file may lie under another file, of the series or of the tree (that
    the series does not delete): ``fs/a.c`` and ``fs/a.c/b.c`` cannot both exist."""
    for path, content in state.items():
        if content is None:
            continue
        for parent in PurePosixPath(path).parents[:-1]:
            above = parent.as_posix()
            if above in state:
                clash = state[above] is not None
            else:
                st = _lstat(tree / above)
                clash = st is not None and not stat.S_ISDIR(st.st_mode)
            if clash:
                raise PatchError(f"{owner.get(path, path)}: {path}: cannot be created: "
                                 f"{above} is a file, not a directory")


def _mail_name(mail: PatchMail) -> str:
    return f"{mail.source} ({mail.subject})" if mail.subject else mail.source


def _apply_file(lines: list[str], fp: FilePatch, name: str) -> list[str]:
    out = list(lines)
    keys = [_key(t) for t in out]  # kept in step with out
    eol = "\r\n" if out and out[0].endswith("\r\n") else None if not out else "\n"
    delta = 0  # where the previous hunk landed minus where it said, plus the lines it added
    floor = 0  # hunks apply in order and never overlap
    for number, hunk in enumerate(fp.hunks, 1):
        old = [text for kind, text in hunk.lines if kind != "+"]
        stated = hunk.old_start - 1 if hunk.old_len else hunk.old_start
        at = _find(keys, hunk, [_key(t) for t in old], stated + delta, floor)
        if at is None:
            reason = _mismatch(out, old, max(stated + delta, floor))
            raise PatchError(f"{name}: hunk #{number} of {fp.path} ({hunk.header}) does not "
                             f"apply: {reason}")
        kept = iter(out[at:at + len(old)])
        new = []
        for kind, text in hunk.lines:
            if kind == " ":
                new.append(next(kept))  # the file's own line ending
            elif kind == "-":
                next(kept)
            else:
                new.append(_strip_eol(text) + eol if eol and text.endswith("\n") else text)
        out[at:at + len(old)] = new
        keys[at:at + len(old)] = [_key(t) for t in new]
        delta = at - stated + len(new) - len(old)
        floor = at + len(new)
    return out


def _key(text: str) -> tuple[str, bool]:
    """Compared part of a line: its text and whether it ends, whatever the line ending
    (mail transport turns LF into CRLF)."""
    return _strip_eol(text), text.endswith("\n")


def _find(keys: list[tuple[str, bool]], hunk: Hunk, old: list[tuple[str, bool]], want: int,
          floor: int) -> int | None:
    """Where the ``old`` keys match the file's, searching outward from ``want`` (within
    HUNK_WINDOW lines of it, fewer for a huge hunk); git's rules for hunks that must
    match at the start (they start at line 1) or the end (no trailing context)."""
    n = len(old)
    last = len(keys) - n
    kinds = [kind for kind, _ in hunk.lines]
    has_context = " " in kinds
    trailing = len(kinds) - len("".join(kinds).rstrip(" "))

    def matches(at: int) -> bool:
        return floor <= at <= last and (not n or keys[at] == old[0]) and keys[at:at + n] == old

    if has_context and hunk.old_start <= 1:
        return 0 if matches(0) else None
    if has_context and not trailing:
        return last if matches(last) else None
    reach = min(HUNK_WINDOW, HUNK_SEARCH_BUDGET // max(n, 1))
    lo, hi = max(floor, want - reach), min(last, want + reach)
    want = min(max(want, lo), hi)
    for distance in range(max(want - lo, hi - want) + 1):
        for at in (want + distance, want - distance):
            if lo <= at <= hi and matches(at):
                return at
    return None


def _mismatch(lines: list[str], old: list[str], at: int) -> str:
    for i, expected in enumerate(old):
        if at + i >= len(lines):
            return (f"the file ends at line {len(lines)}, the patch expects "
                    f"{_strip_eol(expected)!r} at line {at + i + 1}")
        if _key(lines[at + i]) != _key(expected):
            return (f"line {at + i + 1} is {_strip_eol(lines[at + i])!r}, the patch expects "
                    f"{_strip_eol(expected)!r} (and no offset within {HUNK_WINDOW} lines "
                    "matches)")
    return "it overlaps an earlier hunk"
