"""Whole-tree smoke run: every rule on a whole kernel tree, with nothing left to chance.

Runs the installed ``nofslint`` (the console script beside this Python) as CI does:

1. ``nofslint check TREE --select ALL --format json`` with a fresh private cache (cold).
   Records the wall time and the peak memory (max RSS of nofslint or any of its
   workers), prints the findings per rule and every file nofslint could not lint,
   with its reason. Fails on any internal error, on an exit status other than
   0/1 (findings are expected), and when the run exceeds --timeout.
2. Determinism on a subtree (--subtree, default fs/btrfs, analysed alone: ``--scope
   paths``, or each run would analyse the whole tree): ``--jobs 1`` cold,
   ``--jobs N`` cold, ``--jobs N`` warm (facts from the cache, rules run again)
   and ``--jobs N`` with the saved results must print the same report.

Prints a markdown table row for the README. Exit status 0 when everything passed.

Usage:
    python bench/smoke.py /tmp/linux-source-6.12 [--jobs N] [--subtree fs/btrfs]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nofslint.kernel.tree import discover


def nofslint_command() -> list[str]:
    """The console script installed beside this interpreter (the one CI built)."""
    script = Path(sys.executable).parent / "nofslint"
    if script.exists():
        return [str(script)]
    found = shutil.which("nofslint")
    if found is None:
        sys.exit("smoke: no installed nofslint next to this Python or on PATH")
    return [found]


def check(paths: list[Path], cache: Path, jobs: int, report: Path,
          timeout: float, *extra: str) -> tuple[int, float, str]:
    """One ``nofslint check`` run: (exit status, seconds, stderr)."""
    cmd = [*nofslint_command(), "check", *map(str, paths), *extra, "--select", "ALL",
           "--format", "json", "-o", str(report), "--cache-dir", str(cache), "-j", str(jobs)]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            status = -1
        seconds = time.perf_counter() - start
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return status, seconds, stderr


def peak_rss_bytes() -> int:
    """Largest RSS of any finished child or grandchild so far (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def whole_tree(tree: Path, jobs: int, scratch: Path, timeout: float) -> tuple[bool, str]:
    report = scratch / "whole.json"
    status, seconds, stderr = check([tree], scratch / "cache-whole", jobs, report, timeout)
    rss = peak_rss_bytes()
    if status == -1:
        print(f"FAIL: the whole-tree run took longer than {timeout:.0f} s")
        return False, ""
    if not report.exists():
        print(f"FAIL: nofslint exited {status} without a report:\n{stderr[-4000:]}")
        return False, ""
    doc = json.loads(report.read_text())
    rules = collections.Counter(f["rule"] for f in doc["findings"])
    internal = [e for e in doc["errors"] if e["internal"]]
    other = [e for e in doc["errors"] if not e["internal"]]
    fixes = sum(1 for f in doc["findings"] if f["fix"])
    files = sum(1 for _ in discover([tree]))
    print(f"whole tree {tree}: exit {status}, {seconds:.0f} s wall, peak RSS "
          f"{rss / 1e9:.2f} GB, {jobs} jobs")
    print(f"  {len(doc['findings'])} findings ({fixes} with a fix), "
          f"{len(other)} files not linted, {len(internal)} internal errors")
    for rule, count in sorted(rules.items()):
        print(f"  {rule:24} {count}")
    for error in other:
        print(f"  not linted: {error['path']}: {error['reason']}")
    for error in internal:
        print(f"  INTERNAL: {error['path']}: {error['reason']}")
    ok = status in (0, 1) and not internal
    if status not in (0, 1):
        print(f"FAIL: exit status {status}\n{stderr[-4000:]}")
    version = doc.get("kernel_version") or "?"
    per_rule = ", ".join(f"{r} {n}" for r, n in sorted(rules.items()))
    row = (f"| {version} | {files} | {seconds:.0f} s | {rss / 1e9:.2f} GB | "
           f"{len(internal)} | {len(other)} | {per_rule} |")
    return ok, row


def determinism(tree: Path, subtrees: list[str], jobs: int, scratch: Path,
                timeout: float) -> bool:
    """The same report for one job and many, cold and warm, fresh and saved."""
    paths = [tree / s for s in subtrees]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"FAIL: no such subtree: {', '.join(map(str, missing))}")
        return False
    cold_one, cold_many = scratch / "cache-one", scratch / "cache-many"
    runs = [("jobs 1, cold", cold_one, 1, None),
            (f"jobs {jobs}, cold", cold_many, jobs, None),
            (f"jobs {jobs}, warm facts", cold_many, jobs, "drop results"),
            (f"jobs {jobs}, saved results", cold_many, jobs, None)]
    reports: list[tuple[str, str]] = []
    for name, cache, n, drop in runs:
        if drop:  # facts from the cache, but the rules must run again
            shutil.rmtree(cache / "results", ignore_errors=True)
        out = scratch / f"det-{len(reports)}.json"
        status, seconds, stderr = check(paths, cache, n, out, timeout, "--scope", "paths")
        if status not in (0, 1) or not out.exists():
            print(f"FAIL: {name}: exit {status}\n{stderr[-4000:]}")
            return False
        reports.append((name, _comparable(out.read_text())))
        print(f"  {', '.join(subtrees)}: {name}: {seconds:.1f} s")
    first_name, first = reports[0]
    same = True
    for name, text in reports[1:]:
        if text != first:
            same = False
            print(f"FAIL: {name} differs from {first_name}")
    if same:
        count = len(json.loads(first)["findings"])
        print(f"  deterministic: {len(reports)} runs, {count} findings, identical reports")
    return same


def _comparable(text: str) -> str:
    """The report without the command line that made it (``run.command`` and
    ``run.reproduce`` name the jobs, cache and output of each run: they differ)."""
    doc = json.loads(text)
    for key in ("command", "reproduce"):
        (doc.get("run") or {}).pop(key, None)
    return json.dumps(doc, indent=2, sort_keys=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--jobs", "-j", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--subtree", action="append", default=None,
                        help="subtree for the determinism runs (repeatable; default fs/btrfs)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds one nofslint run may take before the smoke fails")
    parser.add_argument("--keep", type=Path, help="copy the whole-tree JSON report here")
    args = parser.parse_args()
    tree = args.tree.resolve()
    if not (tree / "Makefile").exists():
        print(f"smoke: {tree} is not a kernel tree (no Makefile)")
        return 1
    with tempfile.TemporaryDirectory(prefix="nofslint-smoke-") as tmp:
        scratch = Path(tmp)
        ok, row = whole_tree(tree, args.jobs, scratch, args.timeout)
        if args.keep and (scratch / "whole.json").exists():
            shutil.copyfile(scratch / "whole.json", args.keep)
        same = determinism(tree, args.subtree or ["fs/btrfs"], args.jobs, scratch, args.timeout)
    print("\n| kernel | files | cold run | peak RSS | internal errors | not linted | "
          "findings per rule |\n| --- | --- | --- | --- | --- | --- | --- |")
    print(row)
    passed = ok and same
    print("smoke: passed" if passed else "smoke: FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
