"""Check a run with a kernel config, and compare it with a run without one.

The issue's "done when": with a config, no finding and no trace step lies in a C file
that config does not build, nor in an ``#if`` branch it removes. This script verifies
that over the JSON output (``nofslint check TREE --kconfig CONFIG --format json``).
Its own reading of the branches is line-based (a directive stack over the file's lines),
not nofslint's masking, so it checks the masking rather than repeating it; the Makefiles
and the expression evaluator are nofslint's (kbuild_makefiles, kconfig).

With ``--without RUN.json`` (the same tree linted with ``--kconfig none``) it also
classifies every finding the config drops -- its file or a step is not built, it or a
step lies in a removed #if branch, or a step lies in an ``if (IS_ENABLED(...))`` body the
config makes dead -- and counts the kept ones that are unchanged (same rule, place,
message and trace), per rule.

Usage:
    python bench/kconfig_check.py WITH.json --tree TREE --kconfig CONFIG [--without NONE.json]
        [--json]

Exit status 1 when a finding or a step lies in code the config removes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from functools import cache
from pathlib import Path

from nofslint.kernel.kbuild_makefiles import KbuildMap, build_map
from nofslint.kernel.kconfig import Kconfig, body_condition, local_defines, read

_DIRECTIVE = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif|elifdef|elifndef|else|endif)\b(.*)$")
_COMMENT = re.compile(r"/\*.*?\*/|//.*$")
_IF = re.compile(rb"\bif\s*\(")


class Source:
    """One file's lines the config removes: #if branches and dead IS_ENABLED bodies."""

    def __init__(self, raw: bytes, config: Kconfig) -> None:
        self.removed = _removed_lines(raw, config)
        self.dead_bodies = _dead_bodies(raw, config)


def _logical(raw: bytes) -> list[tuple[int, str]]:
    """(first line number, text) of each directive line, continuations joined."""
    out = []
    lines = raw.decode("latin-1").split("\n")
    i = 0
    while i < len(lines):
        start, text = i + 1, lines[i]
        while text.endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text[:-1] + " " + lines[i]
        out.append((start, text))
        i += 1
    return out


def _removed_lines(raw: bytes, config: Kconfig) -> set[int]:
    local = local_defines(raw)
    # Each group: [branch conditions], [branch start lines], end line
    groups: list[tuple[list[bool | None], list[int], list[int]]] = []
    stack: list[int] = []
    for number, text in _logical(raw):
        m = _DIRECTIVE.match(text)
        if m is None:
            continue
        kw, rest = m.group(1), _COMMENT.sub(" ", m.group(2)).strip()
        if kw in ("if", "ifdef", "ifndef"):
            groups.append(([], [], []))
            stack.append(len(groups) - 1)
        if not stack:
            continue
        conds, starts, end = groups[stack[-1]]
        if kw == "endif":
            end.append(number)
            stack.pop()
            continue
        if kw == "else":
            value: bool | None = True
        elif kw in ("ifdef", "ifndef", "elifdef", "elifndef"):
            name = rest.split()[0] if rest.split() else ""
            value = config.condition(f"defined({name})", local) if name else None
            if value is not None and kw.endswith("ndef"):
                value = not value
        else:
            value = config.condition(rest, local)
        conds.append(value)
        starts.append(number)
    removed: set[int] = set()
    for conds, starts, end in groups:
        if not end:
            continue
        kept: int | None = None
        decided = True
        for i, value in enumerate(conds):
            if value is None:
                decided = False
                break
            if value:
                kept = i
                break
        if not decided:
            continue
        bounds = [*starts, end[0]]
        for i in range(len(starts)):
            if i != kept:
                removed.update(range(bounds[i], bounds[i + 1] + 1))
    return removed


def _dead_bodies(raw: bytes, config: Kconfig) -> set[int]:
    """Lines of ``if (IS_ENABLED(...))`` bodies the config makes dead (then-branches)."""
    dead: set[int] = set()
    if b"IS_" not in raw:
        return dead
    for m in _IF.finditer(raw):
        open_at = m.end() - 1
        close = _match(raw, open_at, b"(", b")")
        if close < 0:
            continue
        cond = raw[open_at + 1:close].decode("latin-1")
        if "IS_" not in cond or body_condition(" ".join(cond.split()), config) is not False:
            continue
        rest = raw[close + 1:]
        body_start = close + 1 + (len(rest) - len(rest.lstrip()))
        if raw[body_start:body_start + 1] == b"{":
            body_end = _match(raw, body_start, b"{", b"}")
        else:
            body_end = raw.find(b";", body_start)
        if body_end < 0:
            continue
        first = raw.count(b"\n", 0, body_start) + 1
        last = raw.count(b"\n", 0, body_end) + 1
        dead.update(range(first, last + 1))
    return dead


def _match(raw: bytes, pos: int, opener: bytes, closer: bytes) -> int:
    depth = 0
    for i in range(pos, min(len(raw), pos + 200000)):
        c = raw[i:i + 1]
        if c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return i
    return -1


class Checker:
    def __init__(self, tree: Path, config: Kconfig) -> None:
        self.tree = tree
        self.config = config
        self.kmap: KbuildMap = build_map(tree, config)

    @cache  # noqa: B019 - one checker per run
    def source(self, path: str) -> Source | None:
        try:
            return Source((self.tree / path).read_bytes(), self.config)
        except OSError:
            return None

    def places(self, finding: dict) -> list[tuple[str, int]]:
        return [(finding["path"], finding["line"])] + [(s["path"], s["line"])
                                                       for s in finding["trace"]]

    def why_removed(self, finding: dict) -> str | None:
        """Why the config removes this finding's code: None when none of it is removed."""
        for path, _line in self.places(finding):
            if not self.kmap.is_built(path):
                return "file not built"
        for path, line in self.places(finding):
            src = self.source(path)
            if src is not None and line in src.removed:
                return "another #if branch"
        for path, line in self.places(finding):
            src = self.source(path)
            if src is not None and line in src.dead_bodies:
                return "body-level check"
        return None


def _identity(f: dict) -> tuple:
    return f["rule"], f["path"], f["line"], f["function"]


def _same(a: dict, b: dict) -> bool:
    return a["message"] == b["message"] and a["trace"] == b["trace"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("with_config", type=Path)
    ap.add_argument("--tree", type=Path, required=True)
    ap.add_argument("--kconfig", type=Path, required=True)
    ap.add_argument("--without", type=Path, help="the same tree linted with --kconfig none")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    checker = Checker(args.tree, read(args.kconfig))
    run = json.loads(args.with_config.read_text())["findings"]
    bad = [(f, why) for f in run if (why := checker.why_removed(f)) is not None]
    report: dict = {"findings": len(run), "violations": [
        {"rule": f["rule"], "path": f["path"], "line": f["line"], "why": why} for f, why in bad]}
    if args.without is not None:
        before = json.loads(args.without.read_text())["findings"]
        now = {_identity(f): f for f in run}
        old = {_identity(f): f for f in before}
        dropped = [f for k, f in old.items() if k not in now]
        kept = [f for k, f in old.items() if k in now]
        classes = Counter()
        unexplained = []
        for f in dropped:
            why = checker.why_removed(f)
            if why is None:
                why = "other"
                unexplained.append(f)
            classes[(f["rule"], why)] += 1
        report.update({
            "per_rule": {r: {"without": sum(1 for f in before if f["rule"] == r),
                             "with": sum(1 for f in run if f["rule"] == r)}
                         for r in sorted({f["rule"] for f in before + run})},
            "dropped": {f"{r}: {why}": n for (r, why), n in sorted(classes.items())},
            "kept": len(kept),
            "kept_unchanged": sum(1 for f in kept if _same(f, now[_identity(f)])),
            "kept_changed": [{"rule": f["rule"], "path": f["path"], "line": f["line"],
                              "before": f["message"], "after": now[_identity(f)]["message"]}
                             for f in kept if not _same(f, now[_identity(f)])],
            "new": [{"rule": f["rule"], "path": f["path"], "line": f["line"],
                     "message": f["message"]} for k, f in now.items() if k not in old],
            "unexplained": [{"rule": f["rule"], "path": f["path"], "line": f["line"],
                             "message": f["message"]} for f in unexplained],
        })
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['findings']} findings with the config; "
              f"{len(report['violations'])} in code it removes")
        for v in report["violations"]:
            print(f"  VIOLATION {v['path']}:{v['line']} [{v['rule']}]: {v['why']}")
        if args.without is not None:
            for rule, counts in report["per_rule"].items():
                print(f"  {rule}: {counts['without']} -> {counts['with']}")
            for what, n in report["dropped"].items():
                print(f"  dropped {n}: {what}")
            print(f"  kept {report['kept']}, unchanged {report['kept_unchanged']}, "
                  f"changed {len(report['kept_changed'])}, new {len(report['new'])}")
            for f in report["unexplained"]:
                print(f"  UNEXPLAINED {f['path']}:{f['line']} [{f['rule']}] {f['message'][:160]}")
            for f in report["new"]:
                print(f"  NEW {f['path']}:{f['line']} [{f['rule']}] {f['message'][:160]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
