"""The facts cache: per-file facts keyed by content hash and nofslint version.

One small file per source file, sharded by hash, under a per-tree directory
in the user's cache (``$XDG_CACHE_HOME/nofslint`` or ``~/.cache/nofslint``),
never inside the tree: a tree someone sends you cannot plant entries.
Entries are ``marshal`` data (plain tuples; loading runs no code), written
with a temporary file and a rename. Anything unexpected in an entry (truncated,
corrupt, another version's, another file's) means a miss: it is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import tempfile
import time
from pathlib import Path

from nofslint import __version__
from nofslint.facts import FileFacts

SCHEMA = 3  # bump when FileFacts.to_data changes shape
_MAGIC = "nofslint-facts"
# Entries not used for this long are pruned at the end of a run.
MAX_AGE_SECONDS = 30 * 24 * 3600


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nofslint"


class FactsCache:
    """Facts of one kernel tree (or of loose files) under ``root/<tree id>``."""

    def __init__(self, root: Path, tree_root: Path | None, salt: str) -> None:
        ident = hashlib.sha256(str(tree_root or "loose").encode()).hexdigest()[:16]
        self.dir = root / ident
        # The salt covers what facts depend on besides the file: the version of
        # nofslint and the tree's GFP definitions.
        self.salt = f"{_MAGIC}:{SCHEMA}:{__version__}:{salt}"

    def key(self, raw: bytes) -> str:
        return hashlib.sha256(self.salt.encode() + b"\0" + raw).hexdigest()

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / key

    def load(self, key: str, rel: str) -> FileFacts | None:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                data = marshal.load(fh)
            magic, stored_key, stored_rel, payload = data
            if magic != _MAGIC or stored_key != key or stored_rel != rel:
                return None
            facts = FileFacts.from_data(payload)
        except Exception:  # noqa: BLE001 - any damage is a miss, never trusted
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept by pruning
        return facts

    def store(self, key: str, facts: FileFacts) -> None:
        path = self._path(key)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                marshal.dump((_MAGIC, key, facts.path, facts.to_data()), fh)
            os.replace(tmp, path)
        except (OSError, ValueError):
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def prune(self, max_age: float = MAX_AGE_SECONDS) -> int:
        """Delete entries unused for ``max_age`` seconds; returns how many."""
        cutoff = time.time() - max_age
        removed = 0
        if not self.dir.is_dir():
            return 0
        for shard in self.dir.iterdir():
            if not shard.is_dir():
                continue
            for entry in shard.iterdir():
                try:
                    if entry.stat().st_mtime < cutoff:
                        entry.unlink()
                        removed += 1
                except OSError:
                    continue
        return removed
