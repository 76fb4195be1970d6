"""Mail recipients against the kernel's own scripts/get_maintainer.pl, on a real tree.

Renders the mails of a saved run (``nofslint check TREE --format json``) with
``nofslint report RUN.json --format email --by-maintainer``, picks N findings
spread over the mails (one per section first, most findings first), and for each
compares the addresses of its mail's To:/Cc: with what

    perl scripts/get_maintainer.pl --no-git --no-rolestats -f FILE

prints in the tree (read only; run from the tree's root). A finding matches when
every address get_maintainer.pl names for its file is in the mail and the mail's
own section's people and lists are exactly get_maintainer.pl's for that file plus
the other files of the same mail; the Cc: added for the other sections a chain
runs through is listed apart. Then, for every file of a finding or of a chain, the
people and lists nofslint's matching names (nofslint.kernel.maintainers) must be
exactly get_maintainer.pl's. ``--random N`` does the same for N random .c/.h files
of the tree (``--seed``). Prints markdown; exit 1 on any mismatch.

Usage:
    python bench/maintainers_compare.py RUN.json TREE [-n 10] [--random 300 --seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path

from nofslint.kernel import maintainers as mnt


def get_maintainer(tree: Path, path: str) -> set[str]:
    out = subprocess.run(["perl", "scripts/get_maintainer.pl", "--no-git", "--no-rolestats",
                          "-f", path], cwd=tree, capture_output=True, text=True, check=True)
    return {a.lower() for _, a in getaddresses(out.stdout.splitlines()) if a}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("tree", type=Path)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--random", type=int, default=0, metavar="N")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    nofslint = Path(sys.executable).with_name("nofslint")
    with tempfile.TemporaryDirectory() as tmp:
        routed = Path(tmp) / "routed.json"
        subprocess.run([nofslint, "report", args.run, "--format", "json", "-o", routed],
                       check=True)
        doc = json.loads(routed.read_text())
        mails = Path(tmp) / "mails"
        subprocess.run([nofslint, "report", routed, "--format", "email", "--by-maintainer",
                        "-o", mails], check=True)
        by_section: dict[str | None, list[dict]] = {}
        for f in doc["findings"]:
            by_section.setdefault(f["owner"]["section"], []).append(f)
        order = sorted(by_section, key=lambda s: -len(by_section[s]))
        picked: list[dict] = []
        while len(picked) < args.n and any(by_section[s] for s in order):
            for s in order:
                if by_section[s] and len(picked) < args.n:
                    picked.append(by_section[s].pop(0))
        print("| finding | mail | get_maintainer.pl | in mail | same files' union | "
              "chain Cc: |")
        print("|---|---|---|---|---|---|")
        bad = 0
        for f in picked:
            section = f["owner"]["section"]
            name = "unmaintained.eml" if section is None else next(
                p.name for p in mails.glob("*.eml")
                if _subject(p).startswith(f"[nofslint] {section}:"))
            msg = BytesParser(policy=policy.default).parsebytes((mails / name).read_bytes())
            got = {a.lower() for _, a in getaddresses([msg["To"] or "", msg["Cc"] or ""]) if a}
            want = get_maintainer(args.tree, f["path"])
            files = {g["path"] for g in doc["findings"] if g["owner"]["section"] == section}
            union = set().union(*(get_maintainer(args.tree, p) for p in files))
            chain = got - union
            ok = want <= got and union <= got
            bad += not ok
            print(f"| {f['path']}:{f['line']} | {name} | {len(want)} | "
                  f"{'all' if want <= got else 'MISSING ' + ', '.join(sorted(want - got))} | "
                  f"{'=' if union <= got else 'MISSING'} ({len(files)} files) | "
                  f"{len(chain)} |")
        paths = sorted({f["path"] for f in doc["findings"]}
                       | {t["path"] for f in doc["findings"] for t in f["trace"]})
        differ = _exact(args.tree, paths)
        print(f"\nEvery file of a finding or a chain: {len(paths) - len(differ)} of {len(paths)} "
              "with exactly get_maintainer.pl's addresses"
              + (f"; differ: {', '.join(differ)}" if differ else "."))
        if args.random:
            sample = random.Random(args.seed).sample(sorted(_sources(args.tree)), args.random)
            odd = _exact(args.tree, sample)
            print(f"\n{args.random} random .c/.h files (seed {args.seed}): "
                  f"{len(sample) - len(odd)} identical"
                  + (f"; differ: {', '.join(odd)}" if odd else "."))
            differ += odd
    return 1 if bad or differ else 0


def _exact(tree: Path, paths: list[str]) -> list[str]:
    """The paths whose addresses differ from get_maintainer.pl's."""
    book, mailmap = mnt.for_tree(tree)
    differ = []
    for path in paths:
        people, lists = mnt.recipients(book.match(path), mailmap)
        ours = {a.lower() for _, a in getaddresses(people + lists) if a}
        if ours != get_maintainer(tree, path):
            differ.append(path)
    return differ


def _sources(tree: Path) -> list[str]:
    out = []
    for top, dirs, files in os.walk(tree):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out += [os.path.relpath(os.path.join(top, f), tree) for f in files
                if f.endswith((".c", ".h"))]
    return out


def _subject(path: Path) -> str:
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    return str(msg["Subject"])


if __name__ == "__main__":
    sys.exit(main())
