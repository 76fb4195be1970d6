"""Whole-tree runs with a kernel config: cold and warm, and a switch to a second config.

Runs the installed ``nofslint`` console script as a user would, each run in a subprocess
with ``--select ALL --format json``, a private cache directory, and prints one line per
step: wall seconds, peak RSS (of the run and its workers), files linked, findings. Steps:

  cold     --kconfig CONFIG, empty cache
  warm     the same again (saved results reused when nothing changed)
  switch   --kconfig SECOND on the warm cache: how many files were extracted again
           (new cache entries: a file's entry is keyed by the values of the config
           symbols its conditionals mention, so only files whose conditionals the switch
           changes get one)
  none     --kconfig none on a fresh cache, for the same-session comparison (--with-none)

The JSON reports are written to --out DIR (cold.json, switch.json, none.json) for
bench/kconfig_check.py.

Usage:
    python bench/kconfig_bench.py TREE --kconfig CONFIG [--second CONFIG2] [--with-none]
        [--out DIR] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_ENTRY = re.compile(r"[0-9a-f]{64}")


def entries(cache: Path) -> set[str]:
    """The facts entries in a cache directory (one per file and key; saved results aside)."""
    return {p.name for p in cache.rglob("*")
            if _ENTRY.fullmatch(p.name) and "results" not in p.parts}


def lint(tree: Path, kconfig: str, cache: Path, out: Path, jobs: int | None) -> dict:
    cmd = ["nofslint", "check", str(tree), "--kconfig", kconfig, "--select", "ALL",
           "--format", "json", "-o", str(out), "--exit-zero", "-v"]
    if jobs:
        cmd += ["-j", str(jobs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, "XDG_CACHE_HOME": str(cache)},
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    doc = json.loads(out.read_text())
    skipped = re.search(r"; (\d+) C files it does not build skipped", proc.stderr)
    return {"wall": round(wall, 1), "max_rss_so_far_mib": round(max(peak, before) / 1024),
            "findings": len(doc["findings"]),
            "not_built": int(skipped.group(1)) if skipped else 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("tree", type=Path)
    ap.add_argument("--kconfig", required=True)
    ap.add_argument("--second", help="a second config to switch to on the warm cache")
    ap.add_argument("--with-none", action="store_true", help="also a cold run without config")
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--jobs", type=int)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    files = sum(1 for _ in _sources(args.tree))
    work = Path(tempfile.mkdtemp(prefix="nofslint-kconfig-bench-"))
    try:
        cache = work / "cache"
        rows = {"cold": lint(args.tree, args.kconfig, cache, args.out / "cold.json", args.jobs)}
        rows["warm"] = lint(args.tree, args.kconfig, cache, args.out / "warm.json", args.jobs)
        if args.second:
            seen = entries(cache)
            rows["switch"] = lint(args.tree, args.second, cache, args.out / "switch.json",
                                  args.jobs)
            rows["switch"]["extracted_again"] = len(entries(cache) - seen)
        if args.with_none:
            rows["none"] = lint(args.tree, "none", work / "cache-none",
                                args.out / "none.json", args.jobs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, row in rows.items():
        linked = files - row["not_built"]
        print(f"{name:7} {row['wall']:8.1f} s  {row['max_rss_so_far_mib']:6} MiB peak so far  "
              f"{linked} files linked ({row['not_built']} C files not built)  "
              f"{row['findings']} findings"
              + (f"  {row['extracted_again']} files extracted again"
                 if "extracted_again" in row else ""))
    print(json.dumps({"files": files, **rows}))
    return 0


def _sources(tree: Path):
    for _dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if d not in (".git",)]
        yield from (f for f in filenames if f.endswith((".c", ".h")))


if __name__ == "__main__":
    sys.exit(main())
