"""The ``nofslint`` command group: the commands, Ctrl-C, and a fast exit."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import Any

import click

from nofslint import __version__
from nofslint.cli.check import check
from nofslint.cli.check_patch import check_patch
from nofslint.cli.kbuild import kbuild
from nofslint.cli.rules import explain_command, rules_command
from nofslint.cli.stats import stats_command
from nofslint.run.engine import retain_until_exit


class _Main(click.Group):
    """Ctrl-C exits 130 like other command-line tools; click's exit 1 would read as
    "findings" to a hook or a CI script."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("nofslint: interrupted", err=True)
            sys.exit(130)


def console() -> None:
    """The ``nofslint`` command: main(), then leave at once.

    Everything the command writes (findings, fixes, baselines, the cache) is
    complete and closed when main() returns; freeing a whole tree's facts
    object by object would only add seconds to every run.
    """
    retain_until_exit()
    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            click.echo(exc.code, err=True)
            code = 1
    atexit._run_exitfuncs()  # scratch copies, worker pools: what exit would do
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nofslint")
def main() -> None:
    """Find memory-reclaim deadlocks in Linux kernel C."""


for _command in (check, check_patch, kbuild, stats_command, rules_command, explain_command):
    main.add_command(_command)
