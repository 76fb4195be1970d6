"""``nofslint stats``: parse quality of a tree."""

from __future__ import annotations

import json

import click

from nofslint.cli.common import paths_or_cwd, progress
from nofslint.run.engine import default_jobs
from nofslint.run.stats import stats


@click.command("stats")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: all cores].")
def stats_command(paths: tuple[str, ...], fmt: str, jobs: int | None) -> None:
    """Parse quality: how many function definitions parse with errors."""
    result = stats(paths_or_cwd(paths), jobs or default_jobs(), progress=progress())
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    for key, value in result.to_json().items():
        click.echo(f"{key:>22}: {value}")
