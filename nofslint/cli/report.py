"""Publishing a run: ``--format html`` and ``--format email --by-maintainer`` for
``check``, and ``nofslint report RUN.json`` that re-renders a saved JSON run
without linting again (a CI job lints once and publishes several outputs)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from nofslint.api.rule import Rule
from nofslint.cli.common import emit, fail
from nofslint.frontend.files import WriteRefused
from nofslint.frontend.outdir import write_directory
from nofslint.kernel import maintainers as mnt
from nofslint.output import formats, html, mail, report, runinfo
from nofslint.plugins.loading import load_rules
from nofslint.run.results import RunResult
from nofslint.run.settings import Settings
from nofslint.run.workers import FileTimeout, time_limit

FORMATS = ["html", "email"]  # what check adds to the common formats
REPORT_FORMATS = ["text", "json", "sarif", "html", "email"]
# Routing a whole tree's findings takes about a second; the tree's own patterns
# (K: runs over file text) must not hold a run for longer than this.
ROUTE_TIME_LIMIT = 30.0


def publish_options(func: Callable) -> Callable:
    """The options of the published formats (check and report)."""
    options = [
        click.option("--by-maintainer", is_flag=True,
                     help="With --format email: one mail per MAINTAINERS section with "
                          "findings, written into -o DIR."),
        click.option("--maintainers", "maintainers_file", metavar="FILE",
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="Route by this MAINTAINERS file [default: the tree's]."),
        click.option("--maintainers-keywords", is_flag=True,
                     help="Also match MAINTAINERS K: patterns against the files' text."),
        click.option("--html-source-url", metavar="TEMPLATE",
                     help="With --format html: link locations, e.g. "
                          "'https://elixir.bootlin.com/linux/v6.12/source/{path}#L{line}'."),
        click.option("--mail-from", metavar="ADDRESS", default=mail.DEFAULT_FROM,
                     show_default=True, help="With --format email: the From: of the mails."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_usage(fmt: str, opts: Mapping[str, Any]) -> None:
    """Usage errors, before anything is linted."""
    if fmt == "email" and not opts["by_maintainer"]:
        raise click.UsageError("--format email writes one mail per MAINTAINERS section: "
                               "add --by-maintainer -o DIR")
    if opts["by_maintainer"] and fmt != "email":
        raise click.UsageError("--by-maintainer goes with --format email")
    if fmt == "email" and (not opts["output"] or opts["output"] == "-"):
        raise click.UsageError("--format email --by-maintainer needs -o DIR: the "
                               "directory the mails are written into")
    url = opts["html_source_url"]
    if url is not None and "{path}" not in url:
        raise click.UsageError("--html-source-url needs {path} (and usually {line}) in "
                               "the template")
    if url is not None and fmt != "html":
        raise click.UsageError("--html-source-url goes with --format html")


def publish(fmt: str, result: RunResult, settings: Settings, opts: dict[str, Any],
            plain: Callable[[], str]) -> None:
    """check's output: the published formats and JSON (with the run's metadata and
    the routing) here, the others as ``plain()`` renders them."""
    if fmt not in ("json", *FORMATS):
        emit(plain(), opts["output"])
        return
    info = runinfo.RunInfo(
        command=_command(), config=str(settings.config.path) if settings.config.path else None,
        rules=sorted(r.id for r in settings.rules))
    info.reproduce = _reproduce(info.command, result)
    _route(result, info, opts, required=fmt == "email")
    write(fmt, result, info, settings.available, opts)


def write(fmt: str, result: RunResult, info: runinfo.RunInfo,
          rules: Mapping[str, type[Rule]], opts: dict[str, Any]) -> None:
    if fmt == "json":
        emit(report.to_json(result, info), opts["output"])
    elif fmt == "text":
        emit(report.text(result, opts.get("max_chain")), opts["output"])
    elif fmt == "sarif":
        emit(formats.sarif(result, rules), opts["output"])
    elif fmt == "html":
        emit(html.render(result, info, rules, opts["html_source_url"]), opts["output"])
    elif fmt == "email":
        _mails(result, info, rules, opts)
    else:
        raise AssertionError(fmt)


def _mails(result: RunResult, info: runinfo.RunInfo, rules: Mapping[str, type[Rule]],
           opts: dict[str, Any]) -> None:
    sender = opts["mail_from"]
    if not mail.valid_address(sender):
        fail(f"--mail-from {sender!r} is not one mail address")
    mails = mail.render(result, info, rules, sender)
    out = Path(opts["output"])
    try:
        stale = write_directory(out, mails)
    except (WriteRefused, OSError) as exc:
        fail(f"cannot write the mails into {out}: {exc.strerror or exc}"
             if isinstance(exc, OSError) and not isinstance(exc, WriteRefused)
             else f"cannot write the mails into {out}: {exc}")
    gone = f"; removed {len(stale)} from an earlier run" if stale else ""
    click.echo(f"nofslint: wrote {len(mails)} mail{'s' if len(mails) != 1 else ''} to "
               f"{out}{gone} (git send-email {out}/*.eml sends them)", err=True)


def _command() -> list[str] | None:
    """The command line as run, when this process is the nofslint command."""
    name = Path(sys.argv[0]).name if sys.argv else ""
    if name not in ("nofslint", "__main__.py"):
        return None
    return ["nofslint", *sys.argv[1:]]


def _reproduce(command: list[str] | None, result: RunResult) -> str | None:
    if command is None:
        return None
    roots = [os.path.realpath(t.root) for t in result.trees if t.root is not None]
    in_tree = {}
    for arg in command[1:]:
        real = os.path.realpath(arg) if os.path.exists(arg) else None
        root = next((r for r in roots if real == r or (real or "").startswith(r + os.sep)),
                    None)
        if real is not None and root is not None:
            in_tree[arg] = os.path.relpath(real, root)
    return mail.reproduce(command, in_tree)


def _tree_root(result: RunResult) -> Path | None:
    roots = {t.root for t in result.trees if t.root is not None}
    return roots.pop() if len(roots) == 1 else None


def _route(result: RunResult, info: runinfo.RunInfo, opts: dict[str, Any],
           required: bool) -> None:
    """Fill in each finding's MAINTAINERS sections. ``required`` (email): no usable
    MAINTAINERS is exit 2; otherwise the report just has no subsystems."""
    root = _tree_root(result)
    file = opts["maintainers_file"]
    if file is None and (root is None or not (root / "MAINTAINERS").is_file()):
        if required:
            fail("no MAINTAINERS to route by: the findings are not in one kernel tree "
                 "with a MAINTAINERS file; give --maintainers FILE")
        return
    where = file or root / "MAINTAINERS"  # type: ignore[operator]
    try:
        with time_limit(ROUTE_TIME_LIMIT):
            book, mailmap = mnt.for_tree(root if root is not None else Path("."), file)
            info.owners, info.sections = runinfo.route(
                result, book, mailmap, root, keywords=opts["maintainers_keywords"])
    except OSError as exc:
        message = f"cannot read {where}: {exc.strerror or exc}"
    except FileTimeout:
        message = (f"matching the findings against {where} took over "
                   f"{ROUTE_TIME_LIMIT:.0f} s (a pattern that backtracks?)")
    else:
        message = ""
    if message:
        info.owners, info.sections = [], {}
        if required or file is not None:
            fail(message)
        click.echo(f"nofslint: {message}; the report has no subsystems", err=True)
        return
    info.maintainers_file = str(where)
    info.keywords = opts["maintainers_keywords"]


@click.command("report")
@click.argument("run_file", metavar="RUN.json")
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="text",
              show_default=True, help="Output format.")
@click.option("--output", "-o", metavar="FILE",
              help="Write the report to FILE (atomically; - for stdout); a directory "
                   "for --format email.")
@click.option("--max-chain", type=click.IntRange(min=0), default=None, metavar="N",
              help="Text output: at most N steps of each call chain [default: all].")
@publish_options
def report_command(run_file: str, fmt: str, **opts: Any) -> None:
    """Render a saved run (``nofslint check --format json``) without linting again.

    Each finding keeps the MAINTAINERS sections it was routed to; a report saved
    without them is routed now by --maintainers FILE or the MAINTAINERS of the tree
    it names, when that is there. Exits 0 when the report is written, 2 on bad input.
    """
    check_usage(fmt, opts)
    try:
        text = (sys.stdin.buffer.read() if run_file == "-"
                else Path(run_file).read_bytes()).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {run_file}: {getattr(exc, 'strerror', None) or exc}")
    try:
        result, info, _ = runinfo.load(text, run_file)
    except runinfo.ReportError as exc:
        fail(str(exc))
    if not info.routed and (fmt in ("html", "email", "json") or opts["maintainers_file"]):
        _route(result, info, opts, required=fmt == "email")
    elif info.routed and (opts["maintainers_file"] or opts["maintainers_keywords"]):
        click.echo(f"nofslint: {run_file} is already routed (by {info.maintainers_file}); "
                   "--maintainers and --maintainers-keywords are not used", err=True)
    rules, _ = load_rules()
    write(fmt, result, info, rules, opts)
