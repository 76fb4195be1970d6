"""``nofslint kbuild``: the checker kbuild runs per file (make C=1 CHECK="nofslint kbuild")."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from nofslint.cli.common import print_errors
from nofslint.kernel.tree import find_root
from nofslint.model.findings import Finding
from nofslint.output import report
from nofslint.run import filters
from nofslint.run.engine import run
from nofslint.run.saved import load_latest
from nofslint.run.settings import SettingsError, resolve


@click.command("kbuild", context_settings={"ignore_unknown_options": True,
                                          "allow_extra_args": True,
                                          "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def kbuild(args: tuple[str, ...]) -> None:
    """Checker for kbuild: make C=1 CHECK="nofslint kbuild" (the source file comes last).

    Prints gcc-style findings for that file: local rules now, whole-tree rules from
    the last whole-tree `nofslint check` of the tree. Always exits 0 so the build
    goes on.
    """
    source = next((a for a in reversed(args) if a.endswith(".c") and not a.startswith("-")),
                  None)
    if source is None:
        click.echo("nofslint kbuild: no .c file among the arguments (kbuild passes it last)",
                   err=True)
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
    if result.not_built:  # kbuild compiles it, so the Makefiles were read too narrowly
        click.echo(f"nofslint kbuild: {source}: the config's Makefiles do not name it as "
                   "built; linted anyway", err=True)
        result = run([path], local, want_fixes=False, cache_root=setup.cache_root,
                     extras=dataclasses.replace(setup.config.extras, kconfig=None))
    latest = load_latest(setup.cache_root, root) if setup.cache_root and root else None
    if latest is not None and root in path.parents:
        rel = path.relative_to(root).as_posix()
        wanted = {r.id for r in setup.rules if r.scope == "tree"}
        result.findings += [f for f in latest.findings if f.path == rel and f.rule in wanted]
        result.findings.sort(key=Finding.sort_key)
    result.findings = filters.configured(result.findings, setup.config)
    print_errors(result)
    for f in result.findings:
        click.echo(report.gcc_line(f))
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
