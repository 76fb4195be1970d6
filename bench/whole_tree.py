"""Whole-tree benchmark: nofslint check against the raw tree-sitter parse floor.

Measures, on one kernel tree (all .c and .h files), all rules:
  (a) floor: raw tree-sitter-c parse of the same files on all cores
  (b) nofslint check, cold cache
  (c) nofslint check, warm cache
  (d) warm, after an edit of one file that moves all of its code (a line added on top)
  (d') then an edit of the same file that changes the call graph: a function added
       with a call (no whole-tree rule read it: their findings are kept)
  (d'') then a call added in a function a whole-tree rule read (--read-function;
       default ext4_evict_inode, where nofail-in-reclaim starts): the tree is relinked
       and the rules that read the function run again
  (e) peak memory of the check process (max RSS of the process and its workers)
  (f) the reference local rule (vmalloc-nofs as v5.10, cold) against the installed peers
      (Coccinelle, ast-grep, semgrep; see bench/peers.py), after the rounds above
and prints the ratios b/a and c/a, all in one table. Each measurement is the median of --repeat
runs (this machine is small and noisy). The checks run the installed
``nofslint`` console script in a subprocess, as a user would.

Usage:
    python bench/whole_tree.py /tmp/linux-source-6.12 [--jobs N] [--repeat 3] [--json]
        [--peers ../shared/peers | --no-peers] [--tools coccinelle,ast-grep]

It edits --touch in the tree (and restores it): run it on a copy, never on a shared tree.

Results for v6.12 are in the README ("Performance").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing import Pool
from pathlib import Path

import peers  # bench/peers.py, next to this script
import tree_sitter_c
from tree_sitter import Language, Parser

_PARSER: Parser | None = None


def _parse(path: str) -> int:
    global _PARSER
    if _PARSER is None:
        _PARSER = Parser(Language(tree_sitter_c.language()))
    with open(path, "rb") as fh:
        data = fh.read()
    _PARSER.parse(data)
    return len(data)


def sources(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith((".c", ".h")))
    return out


def floor(files: list[str], jobs: int) -> tuple[float, int]:
    start = time.perf_counter()
    with Pool(jobs) as pool:
        total = sum(pool.imap_unordered(_parse, files, chunksize=64))
    return time.perf_counter() - start, total


def check(root: Path, cache: Path, jobs: int) -> tuple[float, int, int]:
    """(seconds, findings, peak RSS in KiB of the check and its workers)."""
    exe = (shutil.which("nofslint", path=str(Path(sys.executable).parent))
           or shutil.which("nofslint") or sys.exit("nofslint is not installed (pip install .)"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([exe, "check", str(root), "--format", "json", "--jobs", str(jobs),
                           "--cache-dir", str(cache), "--select", "ALL"],
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode not in (0, 1):
        sys.exit(f"nofslint failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    findings = len(json.loads(proc.stdout)["findings"])
    return seconds, findings, max(peak, before)


def move_code(root: Path, rel: str, n: int) -> None:
    """An edit that moves every fact of the file: whole-tree findings can be moved."""
    path = root / rel
    path.write_bytes(f"/* nofslint bench edit {n} */\n".encode() + path.read_bytes())


def add_function(root: Path, rel: str, n: int) -> None:
    """A new function with a call: the call graph changes where no rule looks."""
    with open(root / rel, "a", encoding="utf-8") as fh:
        fh.write(f"\nstatic void nofslint_bench_edit_{n}(void)\n{{\n\tmight_sleep();\n}}\n")


def call_in(function: str) -> Callable[[Path, str, int], None]:
    """An edit that adds a call at the top of ``function``'s body."""
    def edit(root: Path, rel: str, n: int) -> None:
        path = root / rel
        text = path.read_text(encoding="utf-8")
        m = re.search(r"\n[^\n;]*\b" + re.escape(function) + r"\([^;{]*\)\s*\{", text)
        if m is None:
            sys.exit(f"{rel} defines no {function}() (see --read-function)")
        path.write_text(f"{text[:m.end()]}\n\tcond_resched(); /* bench {n} */{text[m.end():]}",
                        encoding="utf-8")
    return edit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tree", type=Path)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--touch", default="fs/ext4/inode.c", help="file edited for (d) to (d'')")
    ap.add_argument("--read-function", default="ext4_evict_inode",
                    help="function of --touch that a whole-tree rule reads, edited for (d'')")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--peers", type=Path, default=peers.DEFAULT_PEERS,
                    help="peer rules for (f) (default: ../shared/peers)")
    ap.add_argument("--no-peers", action="store_true", help="skip (f)")
    ap.add_argument("--tools", help="with (f): only these peers, comma-separated")
    args = ap.parse_args()
    root = args.tree.resolve()
    files = sources(root)
    original = (root / args.touch).read_bytes()
    cache = Path(tempfile.mkdtemp(prefix="nofslint-bench-cache-"))
    rows: dict[str, list[float]] = {"floor": [], "cold": [], "warm": [], "moved": [],
                                    "added": [], "read": []}
    findings: set[int] = set()
    peak = 0
    try:
        for i in range(args.repeat):
            rows["floor"].append(floor(files, args.jobs)[0])
            shutil.rmtree(cache, ignore_errors=True)
            for name in ("cold", "warm"):
                secs, n, rss = check(root, cache, args.jobs)
                rows[name].append(secs)
                findings.add(n)
                peak = max(peak, rss)
            for name, edit in (("moved", move_code), ("added", add_function),
                               ("read", call_in(args.read_function))):
                edit(root, args.touch, i)
                secs, n, rss = check(root, cache, args.jobs)
                rows[name].append(secs)
                findings.add(n)
                peak = max(peak, rss)
            (root / args.touch).write_bytes(original)
    finally:
        (root / args.touch).write_bytes(original)
        shutil.rmtree(cache, ignore_errors=True)
    local = None if args.no_peers else peers.compare(
        root, args.peers.resolve(), args.jobs, args.repeat,
        only=args.tools.split(",") if args.tools else None)
    med = {k: statistics.median(v) for k, v in rows.items()}
    result = {
        "tree": str(root), "files": len(files),
        "bytes": sum(os.path.getsize(f) for f in files), "jobs": args.jobs,
        "repeat": args.repeat, "median_seconds": {k: round(v, 1) for k, v in med.items()},
        "all_seconds": {k: [round(x, 1) for x in v] for k, v in rows.items()},
        "cold_over_floor": round(med["cold"] / med["floor"], 2),
        "warm_over_floor": round(med["warm"] / med["floor"], 2),
        "peak_rss_mib": round(peak / 1024), "findings": sorted(findings),
        "local_rule": local,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['files']} files, {result['bytes'] / 1e6:.0f} MB, {args.jobs} jobs, "
          f"median of {args.repeat}")
    for key, label in (("floor", "(a) raw parse floor"), ("cold", "(b) check, cold cache"),
                       ("warm", "(c) check, warm cache"), ("moved", "(d) one file, code moved"),
                       ("added", "(d') function added"), ("read", "(d'') read function edited")):
        print(f"  {label:<26} {med[key]:7.1f} s   {rows[key]}")
    print(f"  (e) peak memory            {result['peak_rss_mib']} MiB")
    if local is not None:
        peers.print_table(local)
    print(f"  b/a = {result['cold_over_floor']}   c/a = {result['warm_over_floor']}   "
          f"findings: {result['findings']}")


if __name__ == "__main__":
    main()
