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
import json
import marshal
import os
import tempfile
import time
from pathlib import Path

from nofslint import __version__
from nofslint.facts import FileFacts

SCHEMA = 11  # bump when the facts change: their shape, or what extraction puts in them
_MAGIC = "nofslint-facts"
# Entries not used for this long are pruned at the end of a run.
MAX_AGE_SECONDS = 30 * 24 * 3600


def code_fingerprint() -> str:
    """A hash of nofslint's own code (engine and rules).

    Saved run results depend on every rule's code, not only on the version
    number: an edited rule (a development checkout, a patched install) must
    not be answered with the old rule's findings.
    """
    global _CODE
    if _CODE is None:
        digest = hashlib.sha256()
        here = Path(__file__).resolve().parent
        rules = here / "rules"
        if not rules.is_dir():  # a source checkout: rules/ sits next to the package
            rules = here.parent / "rules"
        for folder in (here, rules):
            for path in sorted(folder.glob("*.py")):
                with contextlib.suppress(OSError):
                    digest.update(path.name.encode() + b"\0" + path.read_bytes())
        _CODE = digest.hexdigest()[:16]
    return _CODE


_CODE: str | None = None


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
        self._manifest_path = self.dir / ("manifest-" + hashlib.sha256(
            self.salt.encode()).hexdigest()[:16])
        self._manifest: dict[str, tuple[int, int, int, str]] | None = None
        self._seen: dict[str, tuple[int, int, int, str]] = {}

    # -- the stat manifest: unchanged files are neither read nor hashed -----------
    @staticmethod
    def stat_key(path: Path) -> tuple[int, int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns, st.st_ino

    def _load_manifest(self) -> dict[str, tuple[int, int, int, str]]:
        if self._manifest is None:
            try:
                data = marshal.loads(self._manifest_path.read_bytes())
                ok = isinstance(data, dict) and all(
                    isinstance(v, tuple) and len(v) == 4 for v in data.values())
                self._manifest = data if ok else {}
            except Exception:  # noqa: BLE001 - a damaged manifest is an empty one
                self._manifest = {}
        return self._manifest

    def known_key(self, path: Path, rel: str) -> str | None:
        """The content key recorded for a file whose size, mtime and inode are unchanged."""
        stat = self.stat_key(path)
        entry = self._load_manifest().get(rel)
        return entry[3] if stat is not None and entry is not None and entry[:3] == stat else None

    def lookup(self, path: Path, rel: str) -> tuple | None:
        """The cached facts data of a file whose size, mtime and inode are unchanged."""
        stat = self.stat_key(path)
        entry = self._load_manifest().get(rel)
        if stat is None or entry is None or entry[:3] != stat:
            return None
        data = self.load_data(entry[3], rel)
        if data is not None:
            self._seen[rel] = entry
        return data

    def remember(self, rel: str, stat: tuple[int, int, int] | None, key: str) -> None:
        if stat is not None:
            self._seen[rel] = (*stat, key)

    def save_manifest(self) -> None:
        """Record this run's files (others, from earlier runs of subtrees, are kept)."""
        if not self._seen:
            return
        manifest = dict(self._load_manifest())
        manifest.update(self._seen)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                marshal.dump(manifest, fh)
            os.replace(tmp, self._manifest_path)
            self._manifest = manifest
        except OSError:
            pass

    def key(self, raw: bytes) -> str:
        return hashlib.sha256(self.salt.encode() + b"\0" + raw).hexdigest()

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / key

    def load_data(self, key: str, rel: str) -> tuple | None:
        """The entry's facts data (FileFacts.to_data() shape), checked; None for a miss
        or any damage."""
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                magic, stored_key, stored_rel, data = marshal.loads(fh.read())
            if magic != _MAGIC or stored_key != key or stored_rel != rel:
                return None
            FileFacts.check_data(data)
        except Exception:  # noqa: BLE001 - any damage is a miss, never trusted
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept by pruning
        return data

    def load(self, key: str, rel: str) -> FileFacts | None:
        data = self.load_data(key, rel)
        return FileFacts.from_data(data) if data is not None else None

    def store(self, key: str, facts: FileFacts) -> tuple:
        """Write the entry; returns the facts data either way."""
        data = facts.to_data()
        path = self._path(key)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                marshal.dump((_MAGIC, key, facts.path, data), fh)
            os.replace(tmp, path)
        except (OSError, ValueError):
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return data

    def prune(self, max_age: float = MAX_AGE_SECONDS) -> int:
        """Delete entries unused for ``max_age`` seconds; returns how many."""
        cutoff = time.time() - max_age
        removed = 0
        if not self.dir.is_dir():
            return 0
        for shard in self.dir.iterdir():
            if not shard.is_dir() or len(shard.name) != 2:
                continue
            for entry in shard.iterdir():
                try:
                    if entry.stat().st_mtime < cutoff:
                        entry.unlink()
                        removed += 1
                except OSError:
                    continue
        return removed


class ResultCache:
    """Whole-run results, reused when not one input changed.

    The key covers every file's path and content key (from the stat
    manifests), the rules run, the version override, nofslint's version and
    a hash of its code, so any edit, added or removed file, other option or
    changed rule is a miss.
    """

    def __init__(self, root: Path) -> None:
        self.dir = root / "results"

    @staticmethod
    def signature(parts: list[str]) -> str:
        digest = hashlib.sha256(f"{_MAGIC}:{SCHEMA}:{__version__}:{code_fingerprint()}".encode())
        for part in parts:
            digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
        return digest.hexdigest()

    def load(self, signature: str) -> dict | None:
        path = self.dir / signature
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("signature") != signature:
                return None
        except Exception:  # noqa: BLE001 - damaged results are a miss
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return data

    def store(self, signature: str, data: dict) -> None:
        tmp: str | None = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({**data, "signature": signature}, fh)
            os.replace(tmp, self.dir / signature)
        except (OSError, ValueError, TypeError):
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def prune(self, max_age: float = MAX_AGE_SECONDS) -> None:
        cutoff = time.time() - max_age
        with contextlib.suppress(OSError):
            for entry in self.dir.iterdir():
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < cutoff:
                        entry.unlink()
