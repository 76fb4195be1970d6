"""``nofslint check-patch``: the findings a patch introduces, without touching the tree."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from nofslint.cli.common import (
    FORMATS,
    emit,
    fail,
    filtered,
    finish,
    lint_options,
    print_errors,
    render,
    scratch_dir,
    setup_run,
    write_baseline,
)
from nofslint.kernel.tree import find_root
from nofslint.output import formats, report
from nofslint.review import changes, patch
from nofslint.run.engine import default_jobs
from nofslint.run.results import RunResult

# A patch (series) larger than this is refused rather than read: a whole kernel
# release's diff is well under it.
MAX_PATCH_BYTES = 256 * 1024 * 1024


@click.command("check-patch")
@click.argument("patches", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--tree", "tree_dir", metavar="DIR", type=click.Path(file_okay=False,
              exists=True, path_type=Path),
              help="The kernel tree the patch applies to [default: the one around .].")
@lint_options
@click.option("--format", "fmt", type=click.Choice([*FORMATS, "email"]), default="text",
              show_default=True, help="Output format (email: a reply to the patch mail).")
@click.option("--whole-tree", is_flag=True,
              help="Link the whole tree, not only the touched directories and fs/, mm/, block/.")
@click.option("--from", "sender", metavar="'NAME <ADDR>'", envvar="NOFSLINT_FROM",
              help="With --format email: the replies' From [default: $NOFSLINT_FROM, else "
                   "git's user.name and user.email in the tree].")
def check_patch(patches: tuple[str, ...], tree_dir: Path | None, fmt: str, whole_tree: bool,
                sender: str | None, **opts: Any) -> None:
    """Findings a patch (a format-patch file, an mbox series, a diff; - for stdin) introduces.

    The patch is applied to copies of the files it touches; the tree is never written.
    """
    base = (tree_dir or Path(".")).absolute()
    root = find_root(base)
    if root is None:
        raise click.UsageError(f"{base} is not inside a kernel tree (no top-level Makefile "
                               "with VERSION/PATCHLEVEL above it); use --tree DIR")
    setup = setup_run(root, opts, [base])
    mails: list[patch.PatchMail] = []
    try:
        for name in patches:
            data = _read_patch(name)
            mails.extend(patch.read_patches(data, "<stdin>" if name == "-" else name))
        scratch = scratch_dir()
        change, how = changes.from_patches(root, mails, scratch)
    except patch.PatchError as exc:
        fail(str(exc))
    if how is not None:
        click.echo(f"nofslint: {how}", err=True)
    result = changes.introduced_findings(
        change, setup.rules, scratch, jobs=opts["jobs"] or default_jobs(),
        cache_root=setup.cache_root, version=opts["kernel_version"],
        extras=setup.config.extras, whole_tree=whole_tree)
    filtered(result, setup, opts)
    print_errors(result)
    if opts["write_baseline"] is not None:
        write_baseline(result, opts["write_baseline"])
    told = report.Change("the patch", len(change.touched()), "No files touched by the patch.")
    if fmt == "email" and not sender:
        sender = changes.identity(root)
        if sender is None and result.findings:
            click.echo(f"nofslint: note: replies are From: {formats.NO_SENDER}; set git's "
                       "user.name and user.email, or pass --from 'Name <addr>'", err=True)
    text = (_replies(result, mails, sender) if fmt == "email"
            else render(fmt, result, setup, mails, opts["max_chain"], change=told,
                        fix_hint=None))
    emit(text, opts["output"])
    finish(result, setup, opts["exit_zero"])


def _read_patch(name: str) -> bytes:
    """The patch file (a pipe such as <(git format-patch ...) too; - is stdin), refused
    beyond MAX_PATCH_BYTES instead of filling memory."""
    shown = "<stdin>" if name == "-" else name
    try:
        if name == "-":
            data = sys.stdin.buffer.read(MAX_PATCH_BYTES + 1)
        else:
            with open(name, "rb") as fh:
                data = fh.read(MAX_PATCH_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read patch {shown}: {exc.strerror or exc}")
    if len(data) > MAX_PATCH_BYTES:
        fail(f"patch {shown} is larger than {MAX_PATCH_BYTES // 2**20} MiB")
    return data


def _replies(result: RunResult, mails: list[patch.PatchMail], sender: str | None) -> str:
    """One reply per patch mail with findings, each under the mail that touches its file
    last (a finding elsewhere, from a whole-tree chain, goes to the last mail)."""
    if not result.findings or not mails:
        return ""
    owner: dict[str, int] = {}
    for i, mail in enumerate(mails):
        for fp in mail.files:
            for path in (fp.old_path, fp.new_path):
                if path is not None:
                    owner[path] = i
    parts = []
    for i, mail in enumerate(mails):
        mine = [f for f in result.findings if owner.get(f.path, len(mails) - 1) == i]
        if mine:
            parts.append(formats.email(RunResult(findings=mine, files=result.files), mail,
                                       sender))
    # Several replies: an mbox, each with its "From " separator line.
    if len(parts) == 1:
        return parts[0]
    return "".join(f"From nofslint Thu Jan  1 00:00:00 1970\n{p.rstrip()}\n\n" for p in parts)
