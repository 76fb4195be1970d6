"""Patch-check benchmark: `nofslint check-patch` on a one-function patch, warm cache.

Builds a plain unified diff that changes one function of a real file (a new
local allocation with GFP_NOFS inside the function body; nothing is written
to the tree), warms a private cache with one run, then times --repeat runs
of the installed ``nofslint check-patch`` and reports the median, once with
the default linking (the touched directories and the fs/mm/block core), and
with --whole-tree also linking the whole tree, and with --kconfig FILE once more with
that kernel config (the Kbuild reading is kept in the cache like the facts).

Usage:
    python bench/check_patch.py /tmp/linux-source-6.12 [--file fs/ext4/ioctl.c]
        [--function ext4_getfsmap_format] [--repeat 5] [--whole-tree] [--kconfig FILE]
"""

from __future__ import annotations

import argparse
import difflib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_function_patch(tree: Path, rel: str, function: str) -> str:
    """A diff adding an allocation at the top of ``function``'s body."""
    text = (tree / rel).read_text()
    m = re.search(rf"^\w[^\n;]*\b{re.escape(function)}\([^;{{]*\)\s*\n\{{\n", text, re.M)
    if m is None:
        sys.exit(f"{function}() not found in {rel}")
    new = text[:m.end()] + "\tvoid *bench_buf = kmalloc(64, GFP_NOFS);\n\n" \
        "\tkfree(bench_buf);\n" + text[m.end():]
    lines = difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                 f"a/{rel}", f"b/{rel}", n=3)
    return "".join(lines)


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr.decode()[-2000:]}")
    return elapsed, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--file", default="fs/ext4/ioctl.c")
    parser.add_argument("--function", default="ext4_getfsmap_format")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--nofslint", default="nofslint", help="the command to time")
    parser.add_argument("--kconfig", metavar="FILE",
                        help="also time check-patch --kconfig FILE (the same patch, same cache)")
    parser.add_argument("--whole-tree", action="store_true",
                        help="also time check-patch --whole-tree (minutes per run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nofslint-bench-") as tmp:
        patch = Path(tmp, "one-function.patch")
        patch.write_text(one_function_patch(args.tree, args.file, args.function))
        base = [args.nofslint, "check-patch", "--tree", str(args.tree), "--cache-dir",
                str(Path(tmp, "cache")), str(patch)]
        print(f"patch: {args.file}: {args.function}() "
              f"({patch.read_text().count(chr(10))} diff lines)")
        modes = [("touched dirs + core", [])]
        if args.kconfig:
            modes.append((f"touched dirs + core, --kconfig {args.kconfig}",
                          ["--kconfig", args.kconfig]))
        if args.whole_tree:
            modes.append(("--whole-tree", ["--whole-tree"]))
        for label, extra in modes:
            cmd = base + extra
            cold, _ = timed(cmd)  # fills the facts cache for this region
            runs = [timed(cmd)[0] for _ in range(args.repeat)]
            print(f"{label}: first (cold cache) {cold:.1f} s; warm median "
                  f"{statistics.median(runs):.2f} s (min {min(runs):.2f}, max {max(runs):.2f}, "
                  f"{args.repeat} runs)")


if __name__ == "__main__":
    main()
