"""Local-rule benchmark: nofslint against Coccinelle, ast-grep and semgrep, same run.

The reference local rule is the vmalloc family with a NOFS/NOIO mask on a tree
linted as v5.10 (``--select vmalloc-nofs --kernel-version 5.10 --no-cache``).
The peers run the same check written in their own rule languages, from
``../shared/peers`` (see its README for the rules and the commands). Each round
runs every installed tool once, cold (no cache of any kind), one at a time, in
an order that rotates from round to round; the report gives each tool's median,
its sites (file:line) and how many differ from nofslint's. A peer that is not
installed is skipped and named.

Usage:
    python bench/peers.py /tmp/linux-source-6.12 [--repeat 3] [--jobs 2]
        [--peers ../shared/peers] [--tools coccinelle,ast-grep] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

Sites = set[tuple[str, int]]
DEFAULT_PEERS = Path(__file__).resolve().parents[2] / "shared" / "peers"
_HIT = re.compile(r"^HIT (.+):(\d+)\s*$", re.M)


@functools.lru_cache(maxsize=8)
def kernel_root(path: Path) -> Path:
    """The kernel tree above ``path`` (a Makefile with VERSION =): nofslint names files
    relative to it, so the peers' sites are too."""
    for d in (path, *path.parents):
        try:
            if re.search(r"^VERSION\s*=", (d / "Makefile").read_text(errors="replace"), re.M):
                return d
        except OSError:
            continue
    return path


def _rel(root: Path, path: str) -> str:
    top = kernel_root(root)
    p = Path(path) if Path(path).is_absolute() else root / path
    return (p.relative_to(top) if p.is_relative_to(top) else p).as_posix()


def nofslint_exe() -> str:
    return (shutil.which("nofslint", path=str(Path(sys.executable).parent))
            or shutil.which("nofslint") or sys.exit("nofslint is not installed (pip install .)"))


def _nofslint(root: Path, peers: Path, jobs: int, version: str) -> tuple[list[str], Path | None]:
    return ([nofslint_exe(), "check", str(root), "--select", "vmalloc-nofs", "--kernel-version",
             version, "--no-cache", "--format", "json", "--jobs", str(jobs),
             "--scope", "paths"], None)  # the peers scan ROOT alone: so does nofslint


def _nofslint_sites(root: Path, out: str) -> Sites:
    return {(f["path"], f["line"]) for f in json.loads(out)["findings"]}


def _spatch(root: Path, peers: Path, jobs: int, version: str) -> tuple[list[str], Path | None]:
    return (["spatch", "--sp-file", str(peers / "vmalloc-nofs.cocci"), "--dir", str(root),
             "-j", str(jobs), "--very-quiet"], None)


def _spatch_sites(root: Path, out: str) -> Sites:
    return {(_rel(root, m.group(1)), int(m.group(2))) for m in _HIT.finditer(out)}


def _ast_grep(root: Path, peers: Path, jobs: int, version: str) -> tuple[list[str], Path | None]:
    return (["ast-grep", "scan", "-j", str(jobs), "--no-ignore", "hidden", "--no-ignore", "vcs",
             "--no-ignore", "dot", "--no-ignore", "parent", str(root), "--json"],
            peers / "ast-grep")


def _ast_grep_sites(root: Path, out: str) -> Sites:
    return {(_rel(root, m["file"]), m["range"]["start"]["line"] + 1) for m in json.loads(out)}


def _semgrep(root: Path, peers: Path, jobs: int, version: str) -> tuple[list[str], Path | None]:
    return (["semgrep", "--config", str(peers / "vmalloc-nofs.semgrep.yaml"), str(root),
             "--json", "-j", str(jobs), "--metrics=off", "--disable-version-check",
             "--no-git-ignore"], None)


def _semgrep_sites(root: Path, out: str) -> Sites:
    return {(_rel(root, r["path"]), r["start"]["line"]) for r in json.loads(out)["results"]}


Command = Callable[[Path, Path, int, str], tuple[list[str], Path | None]]
# name -> (executable to look for, command, parser of its output)
TOOLS: dict[str, tuple[str, Command, Callable[[Path, str], Sites]]] = {
    "nofslint": ("", _nofslint, _nofslint_sites),
    "coccinelle": ("spatch", _spatch, _spatch_sites),
    "ast-grep": ("ast-grep", _ast_grep, _ast_grep_sites),
    "semgrep": ("semgrep", _semgrep, _semgrep_sites),
}


def installed(peers: Path, only: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(tools to run, peers skipped with the reason)."""
    run, skipped = ["nofslint"], []
    for name, (exe, _, _) in TOOLS.items():
        if not exe:
            continue
        if only is not None and name not in only:
            skipped.append(f"{name} (not in --tools)")
        elif shutil.which(exe) is None:
            skipped.append(f"{name} ({exe} not on PATH)")
        elif not peers.is_dir():
            skipped.append(f"{name} (no peer rules at {peers})")
        else:
            run.append(name)
    return run, skipped


def run_once(name: str, root: Path, peers: Path, jobs: int, version: str) -> tuple[float, Sites]:
    _, command, parse = TOOLS[name]
    argv, cwd = command(root, peers, jobs, version)
    env = {**os.environ, "SEMGREP_ENABLE_VERSION_CHECK": "0"}
    with tempfile.TemporaryDirectory(prefix="nofslint-bench-peer-") as home:
        if name == "semgrep":
            env["HOME"] = home  # no state from an earlier run
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              check=False)
        seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"{name} failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return seconds, parse(root, proc.stdout)


def compare(root: Path, peers: Path, jobs: int, repeat: int, version: str = "5.10",
            only: list[str] | None = None) -> dict:
    """Every installed tool ``repeat`` times, rotating the order; medians and sites."""
    tools, skipped = installed(peers, only)
    times: dict[str, list[float]] = {t: [] for t in tools}
    sites: dict[str, Sites] = {}
    for i in range(repeat):
        order = tools[i % len(tools):] + tools[:i % len(tools)]
        for name in order:
            seconds, found = run_once(name, root, peers, jobs, version)
            times[name].append(seconds)
            sites[name] = found
    ours = sites["nofslint"]
    rows = {name: {"median_seconds": round(statistics.median(times[name]), 1),
                   "all_seconds": [round(s, 1) for s in times[name]],
                   "sites": len(sites[name]),
                   "not_in_nofslint": sorted(f"{p}:{n}" for p, n in sites[name] - ours),
                   "only_in_nofslint": sorted(f"{p}:{n}" for p, n in ours - sites[name])}
            for name in tools}
    fastest = min(rows, key=lambda n: rows[n]["median_seconds"])
    return {"tree": str(root), "jobs": jobs, "repeat": repeat, "kernel_version": version,
            "tools": rows, "skipped": skipped, "fastest": fastest}


def print_table(result: dict) -> None:
    print(f"  local rule vmalloc-nofs as v{result['kernel_version']}, cold, {result['jobs']} "
          f"jobs, median of {result['repeat']} (order rotated each round):")
    ours = result["tools"]["nofslint"]["median_seconds"]
    for name, row in result["tools"].items():
        differ = len(row["not_in_nofslint"]) + len(row["only_in_nofslint"])
        print(f"    {name:<12} {row['median_seconds']:7.1f} s  {row['median_seconds'] / ours:5.2f}x"
              f"  {row['sites']:3d} sites ({differ} differ from nofslint's)  {row['all_seconds']}")
    for name in result["skipped"]:
        print(f"    skipped: {name}")
    print(f"    fastest: {result['fastest']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tree", type=Path)
    ap.add_argument("--peers", type=Path, default=DEFAULT_PEERS,
                    help="the peer rules (default: ../shared/peers next to the repository)")
    ap.add_argument("--jobs", type=int, default=2, help="jobs for every tool (default 2)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--kernel-version", default="5.10")
    ap.add_argument("--tools", help="peers to run, comma-separated (default: every installed "
                    "one): " + ", ".join(t for t in TOOLS if t != "nofslint"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    only = args.tools.split(",") if args.tools else None
    if only and not set(only) <= set(TOOLS):
        ap.error(f"--tools: unknown {', '.join(sorted(set(only) - set(TOOLS)))}")
    result = compare(args.tree.resolve(), args.peers.resolve(), args.jobs, args.repeat,
                     args.kernel_version, only)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
