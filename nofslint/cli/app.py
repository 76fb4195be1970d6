"""The ``nofslint`` command group: the commands, Ctrl-C, and a fast exit."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
from typing import Any

import click

from nofslint import __version__
from nofslint.cli.check import check
from nofslint.cli.check_patch import check_patch
from nofslint.cli.common import clean_scratch
from nofslint.cli.kbuild import kbuild
from nofslint.cli.report import report_command
from nofslint.cli.rules import explain_command, rules_command
from nofslint.cli.stats import stats_command
from nofslint.run.engine import retain_until_exit
from nofslint.run.workers import kill_workers


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
    _stop_on_signals()
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


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP (a CI timeout, a closed terminal) end the run at once.

    Python's default would end this process only: its workers, blocked on the
    pool's pipe, would live on holding stdout and stderr open, so ``$(nofslint
    ...)`` never returns, and check-patch's scratch copies would stay in /tmp.
    The handler kills the workers, removes the scratch copies and exits with
    128 + the signal (143 for SIGTERM), as the shell reports a killed command.
    A signal the caller ignores (nohup) stays ignored. A SIGTERM does not cut
    a write in progress: write_atomic holds it until its rename is done.
    """
    main_pid = os.getpid()

    def stop(signum: int, frame: object) -> None:
        if os.getpid() == main_pid:  # a worker forked before it reset the handler: just go
            kill_workers()
            clean_scratch()
            with contextlib.suppress(OSError):  # a hung-up terminal: nothing to tell
                os.write(2, f"nofslint: {signal.Signals(signum).name}: stopped\n".encode())
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, stop)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nofslint")
def main() -> None:
    """Find memory-reclaim deadlocks in Linux kernel C."""


for _command in (check, check_patch, kbuild, stats_command, rules_command, explain_command,
                 report_command):
    main.add_command(_command)
