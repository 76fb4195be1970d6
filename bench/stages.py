"""Where a cold run's per-file time goes: read, mask, parse, query, extraction stages.

Takes every Nth .c/.h file of a tree (deterministic), runs each stage over the
sample in one process and reports seconds and the ratio to the raw parse
floor (tree-sitter on the raw bytes, what bench/whole_tree.py calls the floor),
then the extractor's own functions by cumulative time under cProfile. The
ratios tell which design can reach cold <= 1.5x the floor: everything above the
parse is what a tiered or compiled extractor has to win back.

Usage:
    python bench/stages.py /tmp/linux-source-6.12 [--every 20] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
from pathlib import Path

from nofslint.extract.facts import _MAIN_QUERY, extract
from nofslint.extract.syntax import matches
from nofslint.frontend.mask import mask
from nofslint.frontend.parse import _parser
from nofslint.frontend.source import read_source
from nofslint.kernel.tree import tree_for


def sample(root: Path, every: int) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath, f) for f in sorted(filenames) if f.endswith((".c", ".h")))
    return files[::every]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tree", type=Path)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    root = args.tree.resolve()
    files = sample(root, args.every)
    tree = tree_for(files[0], None)
    tree.gfp_table()
    times: dict[str, float] = {}

    def timed(name: str, fn) -> list:  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        out = [fn(x) for x in inputs]
        times[name] = time.perf_counter() - start
        return out

    inputs: list = files
    raws = timed("read (read_source)", read_source)
    inputs = raws
    timed("floor: parse raw bytes", lambda raw: _parser().parse(raw))
    masked = timed("mask", mask)
    inputs = masked
    trees = timed("parse masked bytes", lambda m: _parser().parse(m))
    inputs = [t.root_node for t in trees]
    timed("main query (all matches)", lambda node: list(matches(_MAIN_QUERY, node)))
    del trees
    inputs = list(zip(raws, files, strict=True))
    timed("extract() in all", lambda rf: extract(rf[0], tree.relpath(rf[1]), tree))
    floor = times["floor: parse raw bytes"]
    print(f"{len(files)} files (every {args.every}th), {sum(map(len, raws)) / 1e6:.0f} MB, "
          f"one process")
    for name, secs in times.items():
        print(f"  {name:<28} {secs:7.2f} s  {secs / floor:5.2f}x floor")
    profile = cProfile.Profile()
    profile.enable()
    for raw, path in inputs:
        extract(raw, tree.relpath(path), tree)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
