"""Changes to a tree, and the findings they introduce.

A change is what a patch series, a commit range or the staged index does to
a kernel tree: for each touched file its content before and after. Both
sides are linted as overlays on the real tree (the user's files are never
written), and only the findings the change adds are kept. Whole-tree
findings count too: a chain that now runs through a changed function is new.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from nofslint.api.rule import Rule
from nofslint.fixing.fixes import build_fixes
from nofslint.kernel.tree import NO_EXTRAS, SOURCE_SUFFIXES, Extras
from nofslint.review.patch import PatchError, PatchMail, apply_patches, reverse
from nofslint.run.engine import run
from nofslint.run.filters import introduced
from nofslint.run.results import RunResult

# Reclaim reaches a subsystem through the VFS and mm cores: a change is linted
# with its own directories and these, unless the whole tree is asked for.
CORE_DIRS = ("fs", "mm", "block")


class ChangeError(Exception):
    """A change that cannot be read (not a git tree, unknown revision...)."""


@dataclass
class Change:
    root: Path
    # Tree-relative path -> content on that side (None: the file does not exist).
    # A path missing from a side is as on disk.
    before: dict[str, bytes | None] = field(default_factory=dict)
    after: dict[str, bytes | None] = field(default_factory=dict)

    def touched(self) -> list[str]:
        return sorted(set(self.before) | set(self.after))

    def region(self, whole_tree: bool) -> list[Path]:
        """What to lint: the whole tree, or the touched directories and the core.

        Headers under ``include/`` are not walked (thousands of files); the
        touched ones are linted all the same.
        """
        if whole_tree:
            return [self.root]
        dirs = {str(Path(rel).parent) for rel in self.touched()}
        paths = {self.root / d for d in dirs if d != "." and not d.startswith("include")
                 and (self.root / d).is_dir()}
        # Files the change creates are added by the overlay itself (engine.run).
        paths |= {self.root / rel for rel in self.touched() if (self.root / rel).exists()}
        core = [self.root / d for d in CORE_DIRS if (self.root / d).is_dir()]
        # The core directories without their subdirectories (those are filesystems).
        core_files = [p for d in core for p in sorted(d.iterdir())
                      if p.suffix in SOURCE_SUFFIXES and p.is_file()]
        ordered = sorted(paths) + [p for p in core_files
                                   if not any(q in p.parents or q == p for q in paths)]
        return ordered


def from_patches(root: Path, mails: list[PatchMail],
                 scratch: Path) -> tuple[Change, str | None]:
    """The change a patch series makes, wherever the tree is in its life: not applied
    yet (applied to copies), already applied (the tree is "after", the series undone on
    copies is "before"), or applied up to some mail (``git am`` stopped there). Returns
    the change and, unless the series applies forward, one line saying which part of it
    the tree already holds; copies go under ``scratch``."""
    try:
        after = apply_patches(mails, root, scratch / "after")
    except PatchError as exc:
        forward = exc
    else:
        return _change(root, {}, after), None
    n = len(mails)
    for done in range(n, 0, -1):  # the most of the series the tree already holds
        try:
            before = apply_patches(reverse(mails[:done]), root, scratch / f"before-{done}")
            after = apply_patches(mails[done:], root, scratch / f"after-{done}")
        except PatchError:
            continue
        if done == n:
            what = ("the patch is" if n == 1 else f"all {n} patches are")
        else:
            what = f"patches 1-{done} of {n} are" if done > 1 else f"patch 1 of {n} is"
        return _change(root, before, after), (
            f"{what} already in the tree (applied in reverse): linting the tree as it "
            f"is{'' if done == n else ' plus the rest of the series'} against a copy with "
            f"{'it' if n == 1 else 'them'} undone")
    raise PatchError(f"{forward}; nor is the patch already in the tree (it does not apply in "
                     "reverse either). Lint the tree it was written for (--tree DIR), or a "
                     "change committed here with `nofslint check --diff-from REV`")


def _change(root: Path, before: dict[str, Path | None],
            after: dict[str, Path | None]) -> Change:
    change = Change(root)
    for side, applied in ((change.before, before), (change.after, after)):
        for rel, path in applied.items():
            if rel.endswith(SOURCE_SUFFIXES):
                side[rel] = path.read_bytes() if path is not None else None
    return change


# The tree's git configuration is the tree's, not the user's: a tarball can ship
# a .git whose config runs programs. Every option here turns off one way for
# config (or .gitattributes naming config) to run one, in the commands below.
# (An empty core.fsmonitor is off for every git: "false" was a hook path before 2.36.)
_GIT_SAFE = (
    "--no-pager", "-c", "core.fsmonitor=", "-c", "core.hooksPath=/dev/null",
    "-c", "core.pager=cat", "-c", "diff.external=", "-c", "core.sshCommand=",
    "-c", "core.askPass=", "-c", "credential.helper=", "-c", "protocol.allow=never",
    "-c", "gc.auto=0", "-c", "maintenance.auto=false",
    # Only now, with the above overriding the repository's config: a tree owned by
    # someone else (root linting a user's checkout, an unpacked tarball) still works.
    "-c", "safe.directory=*",
)
# A lazy fetch (partial clone) runs transports; an index refresh writes the tree's .git.
_GIT_ENV = {"GIT_NO_LAZY_FETCH": "1", "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
# For every diff: no external diff, no textconv, no look inside submodules (their
# own config is not covered by the filter overrides).
_DIFF_SAFE = ("--no-ext-diff", "--no-textconv", "--ignore-submodules=all")


def _run_git(root: Path, args: tuple[str, ...]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              stdin=subprocess.DEVNULL, check=False,
                              env={**os.environ, **_GIT_ENV})
    except OSError as exc:
        raise ChangeError(f"cannot run git: {exc.strerror or exc}") from None


def _no_filters(root: Path) -> tuple[str, ...]:
    """``-c`` options emptying every filter driver the repository configures.

    ``git diff`` against the working tree re-reads a file whose stat data
    changed through its ``clean``/``process`` filter (chosen by .gitattributes),
    and driver names are the config's to choose: list them, then disable each.
    """
    done = _run_git(root, (*_GIT_SAFE, "config", "-z", "--name-only", "--get-regexp",
                           r"^filter\."))
    names = done.stdout.decode(errors="surrogateescape").split("\0")
    drivers = sorted({n[len("filter."):n.rindex(".")] for n in names if n.count(".") >= 2})
    out: list[str] = []
    for driver in drivers:
        if "=" in driver or not driver.isprintable():
            raise ChangeError(f"refusing to run git: the repository's config defines a "
                              f"filter driver named {driver!r}, which cannot be disabled")
        for key in ("clean", "smudge", "process"):
            out += ["-c", f"filter.{driver}.{key}="]
        out += ["-c", f"filter.{driver}.required=false"]
    return tuple(out)


def _git(root: Path, *args: str, check: bool = True, safe: tuple[str, ...] = _GIT_SAFE
         ) -> bytes | None:
    """git's output, with the repository's program-running config neutralised (see
    _GIT_SAFE); None when it fails and ``check`` is off (a missing blob)."""
    done = _run_git(root, (*safe, *args))
    if done.returncode == 0:
        return done.stdout
    if not check:
        return None
    detail = done.stderr.decode(errors="replace").strip().splitlines()
    raise ChangeError(f"git {' '.join(args)}: {detail[-1] if detail else 'failed'}")


def from_git(root: Path, rev: str | None, staged: bool) -> Change:
    """Changes since ``rev`` in the working tree, or the index against HEAD (``staged``)."""
    top = Path((_git(root, "rev-parse", "--show-toplevel") or b"").decode().strip()).resolve()
    safe = _GIT_SAFE + _no_filters(root)
    if staged:
        if _git(root, "rev-parse", "-q", "--verify", "HEAD", check=False, safe=safe) is not None:
            base = "HEAD"
        else:  # the first commit: everything staged is new
            base = (_git(root, "hash-object", "--no-filters", "-t", "tree", "/dev/null",
                         safe=safe) or b"").decode().strip()
        names = _git(root, "diff", *_DIFF_SAFE, "--cached", "--name-only", "--no-renames",
                     "-z", base, safe=safe)
    else:
        assert rev is not None
        base = (_git(root, "rev-parse", "--verify", "--end-of-options", rev + "^{commit}",
                     safe=safe) or b"").decode().strip()
        names = _git(root, "diff", *_DIFF_SAFE, "--name-only", "--no-renames", "-z", base,
                     safe=safe)
    prefix = root.resolve().relative_to(top).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    change = Change(root)
    for name in filter(None, (names or b"").decode(errors="surrogateescape").split("\0")):
        if not name.endswith(SOURCE_SUFFIXES) or not name.startswith(prefix):
            continue  # not C, or outside this kernel tree of the repository
        rel = name[len(prefix):]
        change.before[rel] = _git(root, "cat-file", "blob", f"{base}:{name}", check=False,
                                  safe=safe)
        if staged:
            change.after[rel] = _git(root, "cat-file", "blob", f":{name}", check=False,
                                     safe=safe)
    return change


def _materialize(root: Path, side: dict[str, bytes | None], scratch: Path
                 ) -> dict[Path, Path | None]:
    """The side's contents as scratch files: an overlay for ``engine.run``."""
    overlay: dict[Path, Path | None] = {}
    for rel, content in side.items():
        real = (root / rel).absolute()
        if content is None:
            overlay[real] = None
            continue
        copy = scratch / rel
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(content)
        overlay[real] = copy
    return overlay


def introduced_findings(change: Change, rules: list[Rule], scratch: Path, *, jobs: int,
                        cache_root: Path | None, version: tuple[int, int] | None = None,
                        extras: Extras = NO_EXTRAS, whole_tree: bool = False) -> RunResult:
    """Lint both sides of the change and keep what only the after side has.

    The after side's files are read from copies under ``scratch``, which must
    outlive the result (findings point at them for quoting and fixes).
    """
    region = change.region(whole_tree)
    overlay = _materialize(change.root, change.before, scratch / "before")
    before = run(region, rules, version, jobs, want_fixes=False, cache_root=cache_root,
                 reuse_results=not overlay, extras=extras, overlay=overlay)
    overlay = _materialize(change.root, change.after, scratch / "after")
    after = run(region, rules, version, jobs, want_fixes=False, cache_root=cache_root,
                extras=extras, overlay=overlay)
    after.findings = introduced(before.findings, after.findings)
    after.fixes, after.fix_problems = build_fixes(after.findings, extras.kconfig)
    real = {copy: path for path, copy in overlay.items() if copy is not None}
    for f in after.findings:
        if f.file in real:  # report the user's path, quote the changed text
            f.source, f.file = f.file, real[f.file]
    return after


def identity(root: Path) -> str | None:
    """``Name <email>`` from git's ``user.name`` and ``user.email`` as the tree sees
    them (its config, then the user's), read with the tree's program-running config
    turned off (_GIT_SAFE); None when either is unset or git cannot run."""
    try:
        name, mail = (_git(root, "config", "--get", key, check=False)
                      for key in ("user.name", "user.email"))
    except ChangeError:
        return None
    if not name or not mail:
        return None
    name_text = name.decode("utf-8", "replace").strip()
    mail_text = mail.decode("utf-8", "replace").strip()
    return f"{name_text} <{mail_text}>" if name_text and mail_text else None
