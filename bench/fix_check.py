"""Check every fix nofslint proposes on a real tree: applies, re-parses, stays balanced.

For each finding with a fix (all rules, opt-in ones included, unless --select),
the fix's own diff must pass ``git apply --check`` at the tree root; all fixes
merged must apply together; every patched file must parse with no more errors
than before; and nofs-scope-balance must report nothing new in the patched
files (a scope a fix opens is closed on every path). The tree is never
modified: patched files are written to a temporary copy.

Usage:
    python bench/fix_check.py /tmp/linux-source-6.12 [--select RULE,...] [--jobs N]

Exit 0 when every check holds, 1 otherwise (each failure is printed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from nofslint.fixing.fixes import apply_edits, error_score, merge
from nofslint.frontend.parse import parse_source
from nofslint.plugins.registry import builtin_rules, select_rules
from nofslint.run.engine import default_jobs, run
from nofslint.run.settings import apply_filters, resolve


def _apply_check(root: Path, diff: str) -> str | None:
    proc = subprocess.run(["git", "apply", "--check", "-"], cwd=root, input=diff.encode(),
                          capture_output=True)
    return proc.stderr.decode().strip() if proc.returncode else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree", type=Path)
    ap.add_argument("--select", default="ALL")
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args()
    root = args.tree.resolve()
    # The tree's config (its select, ignore and tables) as `nofslint check` reads it,
    # with --select replacing its selection; no plugin of the tree runs.
    settings = resolve(root, [root], select=args.select.split(","))
    # The facts cache makes a second check of the same tree fast; findings are
    # recomputed (fix edits are not kept in saved results).
    result = run([root], settings.rules, None, jobs=args.jobs or default_jobs(),
                 cache_root=settings.cache_root, extras=settings.extras)
    apply_filters(result, settings)
    fixed = [f for f in result.findings if f.fix]
    failures: list[str] = []
    per_rule = Counter(f.rule for f in fixed)
    for f in fixed:
        problem = _apply_check(root, f.fix or "")
        if problem:
            failures.append(f"{f.path}:{f.line} [{f.rule}] does not apply: {problem}")
    by_file: dict[Path, list] = {}
    for f in fixed:
        by_file.setdefault(f.fix_file or f.file, []).append(f)
    with tempfile.TemporaryDirectory() as tmp:
        copy_root = Path(tmp)
        (copy_root / "Makefile").write_bytes((root / "Makefile").read_bytes())
        patched: list[Path] = []
        for file, findings in sorted(by_file.items()):
            edits, dropped = merge(f.edits for f in findings)
            raw = file.read_bytes()
            new = apply_edits(raw, edits)
            rel = file.relative_to(root)
            if dropped:
                failures.append(f"{rel}: {dropped} fixes conflict with others in the file")
            if error_score(parse_source(new)[1]) > error_score(parse_source(raw)[1]):
                failures.append(f"{rel}: the fixed file parses worse")
            (copy_root / rel).parent.mkdir(parents=True, exist_ok=True)
            (copy_root / rel).write_bytes(new)
            patched.append(copy_root / rel)
        balance = select_rules(builtin_rules(), ["nofs-scope-balance"], None)
        before = Counter(f.file.relative_to(root) for f in result.findings
                         if f.rule == "nofs-scope-balance" and f.file)
        after = run(patched, balance, None, jobs=1)
        for rel, n in Counter(f.file.relative_to(copy_root) for f in after.findings
                              if f.file).items():
            if n > before.get(rel, 0):
                failures.append(f"{rel}: the fix leaves a scope open on some path")
    counts = ", ".join(f"{r} {n}" for r, n in sorted(per_rule.items()))
    print(f"fixes proposed: {len(fixed)} ({counts}) in {len(by_file)} files")
    for line in failures:
        print("FAIL", line)
    print("all fixes apply, re-parse and stay balanced" if not failures
          else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
