"""``nofslint kbuild``: the checker kbuild runs per file (make C=1 CHECK="nofslint kbuild")."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shlex
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click

from nofslint.cli.common import print_errors
from nofslint.incremental.cache import cache_home
from nofslint.kernel.tree import find_root
from nofslint.model.findings import Finding
from nofslint.output import report
from nofslint.run import filters
from nofslint.run.engine import run
from nofslint.run.saved import latest_for
from nofslint.run.settings import SettingsError, resolve


@click.command("kbuild", context_settings={"ignore_unknown_options": True,
                                          "allow_extra_args": True,
                                          "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def kbuild(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Checker for kbuild: make C=1 CHECK="nofslint kbuild" (the source file comes last).

    Prints gcc-style findings for that file: local rules now, whole-tree rules from
    the last whole-tree `nofslint check` of the tree, moved with the file's edits
    when they changed nothing those rules read, else replaced by a note that they
    are out of date. With no saved whole-tree run, says so once per build.
    Always exits 0 so the build goes on. Flags before the file (sparse's) are
    ignored; the cache is where NOFSLINT_CACHE_DIR or the tree's .nofslint.toml
    cache-dir puts it.
    """
    source = next((a for a in reversed(args) if a.endswith(".c") and not a.startswith("-")),
                  None)
    if source is None:
        if "--help" in args or "-h" in args:
            click.echo(ctx.get_help())
        else:
            click.echo("nofslint kbuild: no .c file among the arguments (kbuild passes it "
                       "last; see nofslint kbuild --help)", err=True)
        sys.exit(0)
    path = Path(source).absolute()
    if not path.exists():  # a wrong argument, not a file deleted mid-run: say so plainly
        click.echo(f"nofslint kbuild: {source}: no such file", err=True)
        sys.exit(0)
    root = find_root(path.parent)
    try:
        setup = resolve(root, [path], untrusted=build_dirs(args),
                        on_problem=lambda p: click.echo(f"nofslint: {p}", err=True),
                        build_dir=Path(os.environ.get("objtree") or "."))  # noqa: SIM112
    except SettingsError as exc:  # a bad config: say so, never stop the build
        click.echo(f"nofslint: error: {exc}", err=True)
        sys.exit(0)
    local = [r for r in setup.rules if r.scope == "local"]
    result = run([path], local, want_fixes=False, cache_root=setup.cache_root,
                 extras=setup.config.extras)
    left_out = bool(result.not_built)
    if left_out:  # kbuild compiles it, so the Makefiles were read too narrowly
        click.echo(f"nofslint kbuild: {source}: the config's Makefiles do not name it as "
                   "built; linted anyway", err=True)
        result = run([path], local, want_fixes=False, cache_root=setup.cache_root,
                     extras=dataclasses.replace(setup.config.extras, kconfig=None))
    # A file the config's whole-tree run left out has no whole-tree findings to show.
    wanted = set() if left_out else {r.id for r in setup.rules if r.scope == "tree"}
    if root is not None and wanted and setup.cache_root is not None and result.trees:
        latest = latest_for(setup.cache_root, result.trees[0], path, wanted)
        again = f"run `nofslint check {shlex.quote(report.escape_path(str(root)))}`"
        if latest.state == "stale":
            click.echo(f"{report.escape_path(source)}: note: whole-tree findings for this "
                       f"file are out of date: {again}", err=True)
        elif latest.state == "none":
            build = _outermost_make()
            if build is None or first_in_build(setup.cache_root, root, build):
                once = " (said once per build)" if build is not None else ""
                click.echo(f"nofslint: note: no whole-tree run of "
                           f"{report.escape_path(str(root))} is saved, so only per-file rules "
                           f"are shown: {again}{once}", err=True)
        result.findings += latest.findings
        result.findings.sort(key=Finding.sort_key)
    result.findings = filters.configured(result.findings, setup.config)
    print_errors(result)
    for f in result.findings:
        click.echo("\n".join([report.gcc_line(f), *report.notes(f)]))
    sys.exit(0)


def build_dirs(args: Sequence[str]) -> list[str]:
    """The trees kbuild names: ``srctree``/``objtree``/``KBUILD_SRC`` and the ``-I`` dirs.

    With ``make O=build`` the file is ``../fs/x.c`` and the source tree is only
    known from these; all of it is the linted tree, whose code must not run.
    """
    dirs = [os.environ[name] for name in ("srctree", "objtree", "KBUILD_SRC")
            if os.environ.get(name)]
    for i, arg in enumerate(args):
        if arg == "-I" and i + 1 < len(args):
            dirs.append(args[i + 1])
        elif arg.startswith("-I") and len(arg) > 2:
            dirs.append(arg[2:])
    return dirs


# Markers older than this belong to builds that are over.
_MARKER_AGE = 24 * 3600.0


def first_in_build(cache_root: Path, root: Path, build: str) -> bool:
    """True for the first kbuild check of ``root`` in the make invocation ``build``.

    kbuild starts one nofslint per file, so a note about the whole build would
    be printed hundreds of times. The build is named by the outermost ``make``
    above this process (its pid and start time, from /proc: the same for every
    sub-make and every -j job of one ``make`` command: _outermost_make). The
    first check creates a marker named by a hash of that and the tree, with
    O_EXCL (one winner among parallel jobs) and O_NOFOLLOW, in ``kbuild/`` of
    the cache directory (never the linted tree); markers older than a day are
    removed. Without a usable cache directory: always True.
    """
    home, _ = cache_home(cache_root)
    folder = home / "kbuild"
    name = hashlib.sha256(f"{build}\0{root}".encode("utf-8", "surrogateescape")).hexdigest()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return True  # a symlink where the folder belongs: not ours to write through
        fd = os.open(folder / name[:16], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                     0o644)
    except FileExistsError:
        return False
    except OSError:
        return True
    os.close(fd)
    _prune_markers(folder)
    return True


def _prune_markers(folder: Path) -> None:
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if (len(entry.name) == 16 and all(c in "0123456789abcdef" for c in entry.name)
                    and entry.is_file(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime > _MARKER_AGE):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _outermost_make() -> str | None:
    """``pid:starttime`` of the outermost ``make`` among this process's ancestors; None
    when no make runs this check (run by hand)."""
    found = None
    pid = os.getppid()
    for _ in range(64):  # a process tree is never this deep; a loop must end
        if pid <= 1:
            break
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                line = fh.read(4096)
        except OSError:
            break
        head, _, rest = line.rpartition(b")")  # the name may hold spaces and parentheses
        fields = rest.split()
        if len(fields) < 20:
            break
        if head.partition(b"(")[2] in (b"make", b"gmake"):
            found = f"{pid}:{fields[19].decode()}"
        pid = int(fields[1])
    return found
