"""What the commands share: options, settings, the filter stage, rendering, exit codes.

Exit codes follow ruff/flake8: 0 clean, 1 findings, 2 usage or internal error.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from nofslint.cli.progress import progress as progress  # for check and stats
from nofslint.frontend.files import write_atomic
from nofslint.kernel.tree import NEWEST, SOURCE_SUFFIXES, discover, parse_version
from nofslint.output import formats, report
from nofslint.review import patch
from nofslint.run import config, filters
from nofslint.run.loading import kbuild_map
from nofslint.run.results import RunResult
from nofslint.run.settings import Settings, SettingsError, apply_filters, resolve, split_ids

# No kernel release had a minor version above this (2.6.39, 3.19, 4.20).
_MAX_MINOR = 39


def version_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple | None:
    """``X.Y`` as a version; a version nofslint does not model is used, with a warning."""
    if value is None:
        return None
    try:
        version = parse_version(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    newest = ".".join(map(str, NEWEST))
    if version > NEWEST:
        click.echo(f"nofslint: warning: --kernel-version {value} is newer than the newest "
                   f"kernel nofslint models ({newest}): it is linted as {newest}", err=True)
    elif version[0] < 2 or version[1] > _MAX_MINOR:
        click.echo(f"nofslint: warning: --kernel-version {value}: no such kernel release; "
                   "check the number", err=True)
    return version


def paths_or_cwd(values: tuple[str, ...]) -> list[Path]:
    """The paths to lint (default: .). A file named explicitly must be C (.c or .h):
    ``check README.md`` is a mistake to say, not a clean run over no C code."""
    paths = [Path(v) for v in values] or [Path(".")]
    for p in paths:
        if not os.path.lexists(p):
            raise click.UsageError(
                f"path '{p}' does not exist; give a kernel tree, a directory or .c/.h files")
        if not os.path.isdir(p) and not p.name.endswith(SOURCE_SUFFIXES):
            raise click.UsageError(
                f"'{p}' is not a C file (.c or .h); give a kernel tree, a directory or "
                ".c/.h files")
    return paths


def fail(message: str) -> NoReturn:
    """Bad input (config, baseline, patch, git): say what and where, exit 2."""
    click.echo(f"nofslint: error: {message}", err=True)
    sys.exit(2)


def emit(text: str, output: str | None, option: str = "--output") -> None:
    """Print the report, or write it to ``output`` ("-": standard output) with the
    one writer: a FIFO or a device is written in place, never replaced, and
    anything else but a regular file is refused (exit 2)."""
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    try:  # surrogateescape: a file name that is not UTF-8 is written as its bytes
        write_atomic(Path(output), text.encode("utf-8", "surrogateescape"))
    except OSError as exc:
        fail(f"cannot write {option} {output}: {exc.strerror or exc}")


FORMATS = ["text", "json", "checkpatch", "sarif", "github"]


def lint_options(func: Callable) -> Callable:
    """Options every linting command shares (check, check-patch)."""
    options = [
        click.option("--select", multiple=True, metavar="RULE,...",
                     help="Run only these rules (ALL for every rule, including opt-in ones)."),
        click.option("--ignore", multiple=True, metavar="RULE,...",
                     help="Do not run these rules (ALL is a usage error: no rule would run)."),
        click.option("--output", "-o", metavar="FILE",
                     help="Write the report to FILE (atomically; - for stdout)."),
        click.option("--kernel-version", callback=version_callback, metavar="X.Y",
                     help="Follow this kernel version's semantics, not the tree's Makefile."),
        click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
                     help="Worker processes [default: all cores]."),
        click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings."),
        click.option("--max-chain", type=click.IntRange(min=0), default=None, metavar="N",
                     help="Text output: at most N steps of each call chain [default: all]."),
        click.option("--config", "config_file", metavar="FILE",
                     type=click.Path(dir_okay=False, path_type=Path),
                     help=f"Read this config instead of the tree root's {config.FILENAME}."),
        click.option("--kconfig", metavar="FILE|none",
                     help="Lint the kernel this config builds (.config or "
                          "include/config/auto.conf; .xz/.gz read as is); none: every "
                          "#if alternative and every file [default: $KCONFIG_CONFIG, "
                          "then the tree root's .config, else none]."),
        click.option("--baseline", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
                     help="Hide the findings recorded in FILE (see --write-baseline)."),
        click.option("--write-baseline", metavar="FILE",
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="Record the current findings in FILE (atomically) and exit 0."),
        click.option("--rules-dir", "rules_dirs", multiple=True, metavar="DIR",
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Also run the rules in DIR (every *.py not starting with _)."),
        click.option("--allow-config-plugins", is_flag=True,
                     help="Run rule plugins that the tree's own config names."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the facts cache."),
        click.option("--cache-dir", metavar="DIR",
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Where the facts cache lives [default: $XDG_CACHE_HOME/nofslint]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def print_errors(result: RunResult) -> None:
    for error in result.errors:
        kind = "internal error" if error.internal else "error"
        click.echo(f"{report.escape_path(error.path)}: {kind}: "
                   f"{report.escape_text(error.reason)}", err=True)
    for problem in result.fix_problems:
        click.echo(f"nofslint: {report.escape_text(problem)}", err=True)


def render(fmt: str, result: RunResult, settings: Settings,
           patches: list[patch.PatchMail] | None = None, max_chain: int | None = None,
           change: report.Change | None = None, fix_hint: str | None = report.FIX_HINT) -> str:
    if fmt == "json":
        return report.to_json(result)
    if fmt == "text":
        return report.text(result, max_chain, change, fix_hint)
    if fmt == "checkpatch":
        if not patches:  # files, not a patch: no lines were added, none are marked so
            return formats.checkpatch(result, None)
        lines = sum(h.new_len for mail in patches for fp in mail.files for h in fp.hunks)
        added = {(fp.new_path, new) for mail in patches for fp in mail.files
                 for h in fp.hunks for kind, _, _, new in h.numbered() if kind == "+"}
        return formats.checkpatch(result, lines, patch.patch_line_map(patches), added)
    if fmt == "sarif":
        return formats.sarif(result, settings.available)
    if fmt == "github":
        return formats.github(result, patches)
    raise AssertionError(fmt)


def finish(result: RunResult, settings: Settings, exit_zero: bool) -> NoReturn:
    if result.internal_errors or settings.problems:
        sys.exit(2)
    sys.exit(1 if result.findings and not exit_zero else 0)


def write_baseline(result: RunResult, path: Path) -> NoReturn:
    emit(filters.baseline_text(result.findings), str(path), "--write-baseline")
    click.echo(f"nofslint: wrote {len(result.findings)} finding"
               f"{'s' if len(result.findings) != 1 else ''} to the baseline {path}.", err=True)
    sys.exit(2 if result.internal_errors else 0)


# Scratch copies the report still reads (quoted lines, fixes); removed at exit.
SCRATCH: list[Path] = []


@atexit.register
def clean_scratch() -> None:
    for path in SCRATCH:
        shutil.rmtree(path, ignore_errors=True)


def scratch_dir() -> Path:
    """A private scratch directory, removed at exit (the report may still read from it)."""
    path = Path(tempfile.mkdtemp(prefix="nofslint-"))
    SCRATCH.append(path)
    return path


def setup_run(root: Path | None, opts: dict[str, Any], linted: list[Path]) -> Settings:
    """The run's settings from the lint options; every problem is a usage error (exit 2)."""
    try:
        return resolve(root, linted, config_file=opts["config_file"],
                       select=split_ids(opts["select"]), ignore=split_ids(opts["ignore"]) or [],
                       rules_dirs=opts["rules_dirs"],
                       allow_config_plugins=opts["allow_config_plugins"],
                       no_cache=opts["no_cache"], cache_dir=opts["cache_dir"],
                       on_problem=lambda p: click.echo(f"nofslint: {p}", err=True),
                       kconfig=opts["kconfig"])
    except SettingsError as exc:
        fail(str(exc))


def describe_kconfig(setup: Settings, result: RunResult, paths: list[Path]) -> None:
    """--verbose: which kernel config was used, and what the Makefiles could not decide."""
    config = setup.kconfig
    if config is None:
        click.echo("nofslint: no kernel config: every #if alternative and every file "
                   "(--kconfig FILE to lint one configuration)", err=True)
        return
    click.echo(f"nofslint: kernel config {setup.kconfig_source} (sha256 {config.digest}, "
               f"arch/{config.arch or 'x86'}); {len(result.not_built)} C files it does not "
               "build skipped", err=True)
    for tree in result.trees:
        if tree.root is None or tree.extras.kconfig is None:
            continue
        kmap = kbuild_map(tree.root, tree.extras.kconfig)
        for note in kmap.notes:
            click.echo(f"nofslint: kbuild: {report.escape_text(note)}", err=True)
        unnamed = sorted(r for r in _c_files(paths, tree.root) if kmap.unnamed(r))
        for rel in unnamed:
            click.echo(f"nofslint: kbuild: {report.escape_path(rel)}: no Makefile read names "
                       "it; counted as built", err=True)


def _c_files(paths: list[Path], root: Path) -> list[str]:
    """Tree-relative C files the linted ``paths`` hold inside ``root``."""
    top = os.path.realpath(root)
    out = []
    for path in discover(paths):
        real = os.path.realpath(path)
        if real.endswith(".c") and real.startswith(top + "/"):
            out.append(real[len(top) + 1:])
    return out


def filtered(result: RunResult, settings: Settings, opts: dict[str, Any]) -> None:
    """The library's filter stage; a baseline that cannot be used is exit 2."""
    try:
        apply_filters(result, settings, opts["baseline"])
    except filters.BaselineError as exc:
        fail(str(exc))
