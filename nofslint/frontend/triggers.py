"""Triggers: the words a file must contain for the selected rules to report there.

A rule names the identifiers without which it cannot report in a file (the
allocator names it checks, ``GFP_NOFS``, ``memalloc_nofs_save``...). A run whose
rules all name them reads each file's raw bytes and parses only the files that
contain one: tree-sitter, masking and extraction are most of a run's cost, and
for a local rule most files of a tree cannot matter.

A trigger is matched as a byte substring of the raw file, before masking or
preprocessing: every identifier tree-sitter can report is spelled in the file's
bytes, so a file without the word has no call, mask or scope with that name.
A substring also matches longer names (``kvmalloc`` matches ``kvmalloc_node``)
and comments: the filter only ever parses too much, never too little.
"""

from __future__ import annotations

from collections.abc import Iterable


class Triggers:
    """The union of the selected rules' triggers, reduced to the fewest words.

    A word that contains a shorter one is dropped (``__vmalloc_node`` goes
    when ``__vmalloc`` is there): a file with it has the shorter one too.
    Each remaining word is one ``bytes.find`` over the file (memchr-speed C);
    measured on v6.12, a few such scans cost less than one alternation regex.
    """

    def __init__(self, words: Iterable[str]) -> None:
        kept: list[bytes] = []
        for word in sorted({w.encode() for w in words}, key=lambda w: (len(w), w)):
            if not any(k in word for k in kept):
                kept.append(word)
        self.words: tuple[bytes, ...] = tuple(kept)

    def matches(self, raw: bytes) -> bool:
        """True when ``raw`` may matter: it contains one of the words."""
        return any(word in raw for word in self.words)

    def __repr__(self) -> str:
        return f"Triggers({[w.decode() for w in self.words]!r})"


def combine(declared: Iterable[Iterable[str] | None]) -> Triggers | None:
    """One filter for a run's rules; None (parse every file) when a rule declares no
    triggers, which is what a rule without them means."""
    words: set[str] = set()
    for rule_words in declared:
        if rule_words is None:
            return None
        words.update(rule_words)
    if not words:
        return None  # no rules at all: nothing to filter for
    return Triggers(words)
