"""MAINTAINERS matching by get_maintainer.pl's rules, on a fixture covering every entry
type (tests/maintainers/MAINTAINERS), and against the script itself when a kernel tree
with scripts/get_maintainer.pl is at hand."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nofslint.kernel import maintainers as mnt

HERE = Path(__file__).resolve().parent / "maintainers"
FILES = ["fs/alpha/super.c", "fs/alpha/shrinker.c", "fs/alpha/legacy/old.c",
         "lib/blockhelp/x.c", "include/linux/alpha1.h", "include/linux/list.h",
         "drivers/net/foo.c", "drivers/net/x/y.c", "drivers/misc/gamma_drv.c",
         "drivers/widget/w.c", "drivers/broken/x.c", "drivers/misc/thing.c"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The fixture's files in a tree (lib/blockhelp is a directory of it)."""
    for rel in FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("int x; /* alpha_magic */\n")
    shutil.copy(HERE / "MAINTAINERS", tmp_path / "MAINTAINERS")
    shutil.copy(HERE / "mailmap", tmp_path / ".mailmap")
    return tmp_path


def names(sections: list[mnt.Section]) -> list[str]:
    return [s.name for s in sections]


def test_sections_parsed(tree: Path) -> None:
    book, _ = mnt.for_tree(tree)
    assert names(book.sections)[0] == "ALPHA FILESYSTEM"  # the indented preamble is no entry
    alpha = book.section("ALPHA FILESYSTEM")
    assert alpha is not None
    assert alpha.maintainers == ["Alice Alpha <alice@example.org>",
                                 '"Bob B. Beta" <bob@example.org>']
    assert alpha.reviewers == ["Rita Review <rita@example.org>"]
    assert alpha.status == "Maintained"
    assert alpha.mail_lists() == ["linux-alpha@lists.example.org"]  # not subscribers-only
    assert alpha.files == ["fs/alpha/"] and alpha.excludes == ["fs/alpha/legacy/"]
    assert alpha.keywords == [r"\balpha_magic\b"]
    gamma = book.section("GAMMA DRIVERS (by regex)")
    assert gamma is not None and gamma.status == "Maintained"  # a blank line inside a section
    assert book.section("ORPHANED WIDGET").orphan  # type: ignore[union-attr]


@pytest.mark.parametrize(("path", "expected"), [
    ("fs/alpha/super.c", ["ALPHA FILESYSTEM", "THE REST"]),
    # the most specific first: fs/alpha/shrink*.c (depth 3) before fs/alpha/ (depth 2)
    ("fs/alpha/shrinker.c", ["ALPHA SHRINKER", "ALPHA FILESYSTEM", "THE REST"]),
    # X: takes the whole section out
    ("fs/alpha/legacy/old.c", ["ALPHA LEGACY CODE", "THE REST"]),
    # a directory named without its trailing slash covers its subtree
    ("lib/blockhelp/x.c", ["BLOCK HELPERS (directory named without a trailing slash)",
                           "THE REST"]),
    ("include/linux/alpha1.h", ["CORE HEADERS", "THE REST"]),
    # */net/* : any top-level directory, files directly in net/ only
    ("drivers/net/foo.c", ["DRIVERS NET (any top-level directory)", "THE REST"]),
    ("drivers/net/x/y.c", ["THE REST"]),
    # N: a regex anywhere in the path
    ("drivers/misc/gamma_drv.c", ["GAMMA DRIVERS (by regex)", "THE REST"]),
    ("drivers/widget/w.c", ["ORPHANED WIDGET", "THE REST"]),
    # patterns that are not valid regexes never match (get_maintainer.pl dies on them)
    ("drivers/broken/x.c", ["THE REST"]),
    ("drivers/misc/thing.c", ["THE REST"]),
])
def test_match(tree: Path, path: str, expected: list[str]) -> None:
    book, _ = mnt.for_tree(tree)
    assert names(book.match(path)) == expected


def test_directory_without_slash_needs_the_directory(tree: Path) -> None:
    """``F: lib/blockhelp`` is a directory only because the tree has one: without it the
    value must match the whole path (as many ``/``)."""
    book = mnt.Maintainers((tree / "MAINTAINERS").read_text())  # no tree to ask
    assert names(book.match("lib/blockhelp/x.c")) == ["THE REST"]
    assert names(book.match("lib/blockhelp")) == [
        "BLOCK HELPERS (directory named without a trailing slash)", "THE REST"]


def test_keywords_only_with_content(tree: Path) -> None:
    book, _ = mnt.for_tree(tree)
    assert names(book.match("drivers/misc/thing.c")) == ["THE REST"]
    assert names(book.match("drivers/misc/thing.c", "int alpha_magic;")) == [
        "THE REST", "ALPHA FILESYSTEM"]
    assert names(book.match("drivers/misc/thing.c", "int alpha_magical;")) == ["THE REST"]


def test_owner_skips_the_rest(tree: Path) -> None:
    book, _ = mnt.for_tree(tree)
    assert book.owner("drivers/net/x/y.c") is None
    owner = book.owner("fs/alpha/shrinker.c")
    assert owner is not None and owner.name == "ALPHA SHRINKER"


EXPECTED = {
    "fs/alpha/super.c": ["Alice Alpha <alice@example.org>", '"Bob B. Beta" <bob@example.org>',
                         "Rita Review <rita@example.org>", "linux-alpha@lists.example.org",
                         "linux-kernel@vger.kernel.org"],
    # Alice is listed once (R: of the shrinker, M: of alpha): duplicates dropped
    "fs/alpha/shrinker.c": ["Sam Shrink <sam@example.org>", "Alice Alpha <alice@example.org>",
                            '"Bob B. Beta" <bob@example.org>', "Rita Review <rita@example.org>",
                            "linux-alpha@lists.example.org", "linux-kernel@vger.kernel.org"],
    # a moderated list is kept
    "lib/blockhelp/x.c": ["Dana Dir <dana@example.org>", "linux-block@lists.example.org",
                          "linux-kernel@vger.kernel.org"],
    # .mailmap: "Name <new> <old>" and "<new> <old>"
    "include/linux/list.h": ["Chris Core <chris@example.org>", "linux-kernel@vger.kernel.org"],
    "drivers/misc/gamma_drv.c": ["Gina Gamma <gina@new.example.org>",
                                 "linux-kernel@vger.kernel.org"],
    # the chief penguin is never listed; an orphan's lists are
    "drivers/widget/w.c": ["widgets@lists.example.org", "linux-kernel@vger.kernel.org"],
    "drivers/net/x/y.c": ["linux-kernel@vger.kernel.org"],
}


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_recipients(tree: Path, path: str) -> None:
    book, mailmap = mnt.for_tree(tree)
    people, lists = mnt.recipients(book.match(path), mailmap)
    assert people + lists == EXPECTED[path]


def test_bounded_and_no_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "MAINTAINERS"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        mnt.for_tree(tmp_path)


def _get_maintainer() -> Path | None:
    for root in (os.environ.get("NOFSLINT_KERNEL_TREE"), "/var/tmp/k/linux-source-6.12",
                 "/usr/src/linux-source-6.12"):
        if root and (Path(root) / "scripts" / "get_maintainer.pl").is_file():
            return Path(root) / "scripts" / "get_maintainer.pl"
    return None


@pytest.mark.skipif(_get_maintainer() is None or shutil.which("perl") is None,
                    reason="needs perl and a kernel tree with scripts/get_maintainer.pl "
                           "(NOFSLINT_KERNEL_TREE)")
def test_same_as_get_maintainer(tree: Path) -> None:
    """The script itself on the fixture (its broken section left out: the script dies
    on an invalid regex), for every fixture file: the same people and lists."""
    text = (tree / "MAINTAINERS").read_text()
    start, end = text.index("BROKEN PATTERNS"), text.index("THE REST")
    (tree / "MAINTAINERS").write_text(text[:start] + text[end:])
    book, mailmap = mnt.for_tree(tree)
    for path in FILES:
        out = subprocess.run(
            ["perl", str(_get_maintainer()), "--no-tree", "--no-git", "--no-rolestats",
             "--mpath", "MAINTAINERS", "-f", path],
            cwd=tree, capture_output=True, text=True, check=True).stdout
        people, lists = mnt.recipients(book.match(path), mailmap)
        assert sorted(people + lists) == sorted(out.split("\n")[:-1]), path


HOSTILE = """\
STARS
M:	A <a@example.org>
F:	""" + "*a" * 40 + """
N:	(a+)+$
N:	(x|x)*y
N:	a*a*a*a*a*a*a*a*a*a*b
N:	(a)\\1
K:	(.*a){20}

THE REST
L:	l@example.org
F:	*/
"""


def test_hostile_patterns_cost_nothing(tmp_path: Path) -> None:
    """Patterns built to backtrack for ever, against paths built to make them: a real
    process that must finish (each pattern is linear or refused)."""
    (tmp_path / "MAINTAINERS").write_text(HOSTILE)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from nofslint.kernel import maintainers as mnt\n"
        "book, _ = mnt.for_tree(Path(sys.argv[1]))\n"
        "path = 'dir/' + 'a' * 3000 + '!'\n"
        "print([s.name for s in book.match(path, 'a' * 100000)])\n")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.strip() == "['THE REST']"
