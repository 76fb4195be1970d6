"""``nofslint check``: lint files or trees; --diff, --fix, --diff-from, --staged."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from nofslint.cli.common import (
    FORMATS,
    Settings,
    describe_kconfig,
    emit,
    fail,
    filtered,
    finish,
    lint_options,
    paths_or_cwd,
    print_errors,
    progress,
    render,
    scratch_dir,
    setup_run,
    write_baseline,
)
from nofslint.cli.report import FORMATS as PUBLISHED
from nofslint.cli.report import check_usage, publish, publish_options
from nofslint.fixing.fixes import apply_fix, fix_tops
from nofslint.kernel.tree import find_root
from nofslint.output import report
from nofslint.review import changes
from nofslint.run import filters
from nofslint.run.engine import default_jobs, run
from nofslint.run.results import RunResult
from nofslint.run.saved import save_latest


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@lint_options
@click.option("--format", "fmt", type=click.Choice([*FORMATS, *PUBLISHED]), default="text",
              show_default=True, help="Output format (html: the triage report; email: "
                                      "mails to maintainers, see --by-maintainer).")
@click.option("--diff", "show_diff", is_flag=True,
              help="Print the proposed fixes as one unified diff instead of the findings.")
@click.option("--fix", "apply", is_flag=True, help="Apply the proposed fixes to the files.")
@click.option("--fix-follow-symlinks", "follow_symlinks", is_flag=True,
              help="With --fix: also fix files that symbolic links lead to outside the "
                   "linted trees.")
@click.option("--diff-from", metavar="REV",
              help="Only findings introduced since git revision REV (working tree vs. REV).")
@click.option("--staged", is_flag=True,
              help="Only findings the staged changes introduce (the index vs. HEAD).")
@click.option("--whole-tree", is_flag=True,
              help="With --diff-from/--staged: link the whole tree, not only the touched "
                   "directories and fs/, mm/, block/.")
@click.option("--scope", type=click.Choice(["tree", "paths"]), default="tree",
              show_default=True,
              help="tree: analyse the whole kernel tree around PATHS (chains into them from "
                   "anywhere) and report the findings in PATHS; paths: analyse only PATHS.")
@click.option("--verbose", "-v", is_flag=True, help="Say which trees and versions were used.")
@publish_options
def check(paths: tuple[str, ...], fmt: str, show_diff: bool, apply: bool,
          follow_symlinks: bool, diff_from: str | None, staged: bool, whole_tree: bool,
          scope: str, verbose: bool, **opts: Any) -> None:
    """Lint kernel C files or trees (default: the current directory)."""
    if show_diff and apply:
        raise click.UsageError("--diff and --fix are exclusive: --diff shows, --fix writes")
    if follow_symlinks and not apply:
        raise click.UsageError("--fix-follow-symlinks goes with --fix")
    if diff_from and staged:
        raise click.UsageError("--diff-from and --staged are exclusive")
    if (diff_from or staged) and apply:
        raise click.UsageError("--fix works on whole files; use it without --diff-from/--staged")
    if not show_diff:
        check_usage(fmt, opts)
    targets = paths_or_cwd(paths)
    root = find_root(targets[0].absolute() if targets[0].is_dir()
                     else targets[0].absolute().parent)
    setup = setup_run(root, opts, targets)
    jobs = opts["jobs"] or default_jobs()
    change = None
    if diff_from or staged:
        result, change = _changed(targets, root, setup, opts, jobs, diff_from, staged,
                                  whole_tree, paths)
    else:
        # Report scope apart from analysis scope: PATHS inside a tree are reported from
        # an analysis of the whole tree, so a chain from elsewhere still reaches them.
        places = (filters.report_scope(root, targets)
                  if scope == "tree" and root is not None else None)
        analysed = [root] if places is not None and root is not None else targets
        if verbose and places is not None:
            click.echo(f"nofslint: analysing the whole tree {root} for the findings in "
                       f"{', '.join(places)} (--scope paths: only those)", err=True)
        result = run(analysed, setup.rules, opts["kernel_version"], jobs, progress=progress(),
                     cache_root=setup.cache_root, reuse_results=not (show_diff or apply),
                     extras=setup.config.extras)
        if setup.cache_root is not None and root is not None and any(
                os.path.realpath(t) == os.path.realpath(root) for t in analysed):
            save_latest(setup.cache_root, root, result)
        if places is not None:
            filters.within(result, places)

    if verbose:
        for tree in result.trees:
            where = str(tree.root) if tree.root else "loose files (no kernel Makefile above them)"
            how = {"Makefile": "from its Makefile", "--kernel-version": "from --kernel-version",
                   "default": "newest semantics nofslint models"}[tree.version_source]
            click.echo(f"nofslint: {where}: v{tree.version_text} ({how})", err=True)
        if setup.config.path is not None:
            click.echo(f"nofslint: config {setup.config.path}", err=True)
        describe_kconfig(setup, result, targets)
    filtered(result, setup, opts)
    print_errors(result)
    if opts["write_baseline"] is not None:
        write_baseline(result, opts["write_baseline"])

    if apply:
        fixed = 0
        tops = fix_tops(targets, [tree.root for tree in result.trees])
        for fix in result.fixes:
            problem = apply_fix(fix, follow_symlinks=follow_symlinks, tops=tops)
            if problem:
                click.echo(f"nofslint: {problem}", err=True)
                continue
            fixed += len(fix.findings)
            done = {id(f) for f in fix.findings}
            result.findings = [f for f in result.findings if id(f) not in done]
        click.echo(f"nofslint: fixed {fixed} finding{'s' if fixed != 1 else ''}.", err=True)

    if show_diff:  # the summary after the diff: no hint to see it again
        emit(report.combined_diff(result), opts["output"])
        click.echo(report.summary(result, change, fix_hint=None), err=True)
    else:  # --fix does whole files, not a change
        hint = "--diff to see" if change is not None else report.FIX_HINT
        publish(fmt, result, setup, opts, lambda: render(
            fmt, result, setup, max_chain=opts["max_chain"], change=change, fix_hint=hint))
    finish(result, setup, opts["exit_zero"])


def _changed(targets: list[Path], root: Path | None, setup: Settings, opts: dict[str, Any],
             jobs: int, diff_from: str | None, staged: bool, whole_tree: bool,
             paths: tuple[str, ...]) -> tuple[RunResult, report.Change]:
    """--diff-from/--staged: the findings the change introduces, in the given paths."""
    if root is None:
        raise click.UsageError(f"{targets[0]} is not inside a kernel tree (no top-level "
                               "Makefile with VERSION/PATCHLEVEL above it)")
    try:
        change = changes.from_git(root, diff_from, staged)
    except changes.ChangeError as exc:
        fail(str(exc))
    wanted = [t.absolute() for t in targets]
    for rel in change.touched():
        path = root / rel
        if not any(w == path or w in path.parents for w in wanted):
            change.before.pop(rel, None)
            change.after.pop(rel, None)
    under = "" if wanted == [root] else f" under {', '.join(paths)}"
    told = (report.Change("the staged change", len(change.touched()), f"Nothing staged{under}.")
            if staged else report.Change(f"the changes since {diff_from}",
                                         len(change.touched()),
                                         f"No changes since {diff_from}{under}."))
    if not change.touched():
        return RunResult(), told
    scratch = scratch_dir()
    return changes.introduced_findings(
        change, setup.rules, scratch, jobs=jobs, cache_root=setup.cache_root,
        version=opts["kernel_version"], extras=setup.config.extras,
        whole_tree=whole_tree), told
