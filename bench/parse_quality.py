"""Measure how well tree-sitter-c parses (masked) kernel C.

Measured (2-core machine, --jobs 2; all .c and .h files; timings are summed
per-file wall clock in the workers):

  tree           mode    functions  with errors      %   lost bodies  mask s  parse s
  linux 6.12     raw       714370      112097     15.692     2513         -     338.5
  linux 6.12     masked    712856        4078      0.572     2523      105.8    233.8
  linux 6.1      masked    653838        3024      0.462     1741      105.3    238.1

Masking costs ~45% of the masked parse time over the whole tree, a share
inflated by the huge AMD register headers (drivers/gpu/drm/amd/include/asic_reg,
mostly #define lines) that tree-sitter parses at ~25 MB/s; on ordinary C (first
1500 files of fs/) it is ~20%.  Error-free input parses faster, so mask+parse
(340 s) costs the same as parsing raw (338 s).  The 1514 functions raw finds
and masked does not are mostly bogus: `for_each_x(i) { ... }` statements and
`struct __packed foo { ... }` that raw tree-sitter turns into definitions.

Usage:
    python bench/parse_quality.py /tmp/linux-source-6.12 [--jobs N] [--raw] [--top K] [--json]

"functions with errors" are function_definition nodes containing an ERROR or
MISSING node.  "lost bodies" are compound statements that ended up outside any
function_definition (a top-level block or inside a top-level ERROR), i.e.
function bodies tree-sitter silently dropped; it keeps the error metric from
being improved by losing functions.  "causes" are the first identifier on the line
of (and the token at) the first error node of each erroring function, with an
example location, so the next person knows what to mask next.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tree_sitter import Node  # noqa: E402

from nofslint.frontend.mask import mask  # noqa: E402
from nofslint.frontend.parse import function_error_counts, parse_masked  # noqa: E402

_IDENT = re.compile(rb"[A-Za-z_]\w*")
_TOKEN = re.compile(rb"[A-Za-z_]\w*|\S")
# Containers whose direct compound_statement children are stray bodies.
_DESCEND = {"translation_unit", "ERROR", "preproc_if", "preproc_ifdef", "preproc_else",
            "preproc_elif", "preproc_elifdef", "linkage_specification", "declaration_list",
            "expression_statement", "declaration", "init_declarator", "call_expression",
            "argument_list", "parenthesized_expression", "macro_type_specifier"}


def lost_bodies(root: Node) -> int:
    """Count compound statements tree-sitter left outside any function definition."""
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node.children:
            kind = child.type
            if kind == "compound_statement":
                count += 1
            elif kind in _DESCEND:
                stack.append(child)
    return count


def _first_error(node: Node) -> Node | None:
    """Depth-first first ERROR or MISSING node below node."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if cur.is_error or cur.is_missing:
            return cur
        stack.extend(c for c in reversed(cur.children) if c.has_error or c.is_missing)
    return None


def _cause(src: bytes, err: Node) -> str:
    """First identifier of the error's line (often the culprit macro) | token at the error."""
    start = err.start_byte
    line_start = src.rfind(b"\n", 0, start) + 1
    head = _IDENT.search(src, line_start, start + 1)
    if head is None:  # error at line start: use the previous line's first identifier
        prev_start = src.rfind(b"\n", 0, max(0, line_start - 1)) + 1
        head = _IDENT.search(src, prev_start, line_start)
    at = _TOKEN.search(src, start, min(len(src), start + 80))
    first = head.group().decode("latin-1") if head else "^"
    here = at.group().decode("latin-1") if at else "$"
    if err.is_missing:
        here = f"MISSING {err.type}"
    return f"{first} | {here}"


def measure_file(args: tuple[str, bool, bool]) -> dict[str, Any]:
    """Mask and parse one file; return counts, timings and error causes."""
    path, raw_mode, want_causes = args
    try:
        src = Path(path).read_bytes()
    except OSError:
        return {"files": 0}
    t0 = time.perf_counter()
    masked = src if raw_mode else mask(src)
    t1 = time.perf_counter()
    tree = parse_masked(masked)
    t2 = time.perf_counter()
    funcs, errs = function_error_counts(tree)
    result: dict[str, Any] = {
        "files": 1, "bytes": len(src), "functions": funcs, "errors": errs,
        "lost": lost_bodies(tree.root_node), "mask_s": t1 - t0, "parse_s": t2 - t1,
        "causes": {},
    }
    if want_causes and errs:
        from nofslint.frontend.parse import captures

        causes: dict[str, list[Any]] = {}
        for f in captures("(function_definition) @f", tree.root_node).get("f", []):
            if not f.has_error:
                continue
            err = _first_error(f)
            if err is None:
                continue
            key = _cause(masked, err)
            entry = causes.setdefault(key, [0, f"{path}:{err.start_point[0] + 1}"])
            entry[0] += 1
        result["causes"] = causes
    return result


def iter_files(root: Path) -> list[str]:
    """All .c and .h files below root, sorted for reproducibility."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend(os.path.join(dirpath, n) for n in filenames if n.endswith((".c", ".h")))
    out.sort()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("roots", nargs="+", type=Path, help="kernel tree(s) or subdirectories")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--raw", action="store_true", help="parse without masking")
    ap.add_argument("--top", type=int, default=0, help="show the K most frequent causes")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ns = ap.parse_args(argv)

    files = [f for r in ns.roots for f in (iter_files(r) if r.is_dir() else [str(r)])]
    totals: Counter[str] = Counter()
    timing = {"mask_s": 0.0, "parse_s": 0.0}
    causes: dict[str, list[Any]] = {}
    start = time.perf_counter()
    work = [(f, ns.raw, ns.top > 0) for f in files]
    with Pool(ns.jobs) as pool:
        for res in pool.imap_unordered(measure_file, work, chunksize=16):
            for k in ("files", "bytes", "functions", "errors", "lost"):
                totals[k] += res.get(k, 0)
            for k in timing:
                timing[k] += res.get(k, 0.0)
            for key, (n, example) in res.get("causes", {}).items():
                entry = causes.setdefault(key, [0, example])
                entry[0] += n
    elapsed = time.perf_counter() - start
    funcs = totals["functions"]
    report: dict[str, Any] = {
        "mode": "raw" if ns.raw else "masked",
        "files": totals["files"], "bytes": totals["bytes"], "functions": funcs,
        "functions_with_errors": totals["errors"],
        "percent": round(100.0 * totals["errors"] / funcs, 3) if funcs else 0.0,
        "lost_top_level_bodies": totals["lost"],
        "seconds": round(elapsed, 1),
        "cpu_mask_s": round(timing["mask_s"], 1), "cpu_parse_s": round(timing["parse_s"], 1),
        "mask_vs_parse": round(timing["mask_s"] / timing["parse_s"], 3) if timing["parse_s"] else 0,
    }
    top = sorted(causes.items(), key=lambda kv: -kv[1][0])[: ns.top]
    if ns.json:
        report["causes"] = [{"cause": k, "count": n, "example": ex} for k, (n, ex) in top]
        print(json.dumps(report, indent=2))
        return 0
    for k, v in report.items():
        print(f"{k:24} {v}")
    if top:
        print(f"\ntop {len(top)} causes (first identifier of the line | token at first error):")
        for k, (n, ex) in top:
            print(f"{n:7}  {k:50} {ex}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
