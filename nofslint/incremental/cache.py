"""The facts cache: per-file facts keyed by content hash and nofslint version.

One small file per source file, sharded by hash, under a per-tree directory
in the user's cache (``$XDG_CACHE_HOME/nofslint`` or ``~/.cache/nofslint``),
never inside the tree: a tree someone sends you cannot plant entries.
Entries are ``marshal`` data (plain tuples; loading runs no code) with a
CRC of the facts, written by the one writer (frontend.files). Anything
unexpected in an entry (truncated, a flipped bit, another version's, another
file's) means a miss: it is rebuilt.

The cache is bounded: entries unused for 30 days go, and beyond 4 GiB in all
(every tree, every version) the least recently used go first; a stat-manifest
line whose entry went is dropped with it. Pruning walks the whole cache, so it
runs at most once an hour.

``--cache-dir`` may name a directory that holds the user's own files, so the
cache prunes only a directory it owns (marked with a ``CACHEDIR.TAG`` it
wrote: see cache_home) and there only files named as it names them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import re
import stat
import time
import zlib
from pathlib import Path

from nofslint import __version__
from nofslint.frontend.files import TEMP_TAIL, write_atomic
from nofslint.model.facts import FileFacts

SCHEMA = 17  # bump when the facts change: their shape, or what extraction puts in them
_MAGIC = "nofslint-facts"
# Entries not used for this long are pruned at the end of a run.
MAX_AGE_SECONDS = 30 * 24 * 3600
# Facts of every tree together (one whole v6.12 tree is about 550 MB); the least
# recently used entries beyond this are pruned.
MAX_CACHE_BYTES = 4 * 1024 ** 3
# Pruning looks at every entry of every tree; once an hour is plenty.
PRUNE_INTERVAL = 3600.0
# Saved run results kept: records and the blobs they share (a whole v6.12 run's record
# is about 4 MB, its blob of what the whole-tree rules read about 3 MB).
MAX_RESULTS = 64
# An entry's mtime is its last use (what pruning goes by); refreshing it at most
# once a day spares a warm whole-tree run 60,000 inode writes.
_TOUCH_AFTER_SECONDS = 24 * 3600.0
# A temporary file older than this belongs to a writer that was killed.
_STALE_TMP_SECONDS = 3600.0
# The names the cache gives what it writes; pruning touches nothing else.
_TREE_DIR = re.compile(r"[0-9a-f]{16}")
_SHARD = re.compile(r"[0-9a-f]{2}")
_ENTRY = re.compile(r"[0-9a-f]{64}")
_MANIFEST = re.compile(r"manifest-[0-9a-f]{16}")
_RESULT = re.compile(r"(?:latest-|blob-)?[0-9a-f]{64}")
_BLOB = re.compile(r"blob-[0-9a-f]{64}")
# kbuild/: markers of builds already told there is no saved whole-tree run (cli/kbuild.py).
_ROOT_NAMES = re.compile(r"[0-9a-f]{16}|results|kbuild|\.last-prune|CACHEDIR\.TAG")
# The cache directory tag (https://bford.info/cachedir/: backup tools skip the
# directory); the second line makes it nofslint's.
_TAG_NAME = "CACHEDIR.TAG"
_TAG = (b"Signature: 8a477f597d28d172789f06886806bc55\n"
        b"# nofslint's cache: nofslint prunes only the files it wrote here.\n")


def code_fingerprint() -> str:
    """A hash of nofslint's own code (engine and rules).

    Saved run results depend on every rule's code, not only on the version
    number: an edited rule (a development checkout, a patched install) must
    not be answered with the old rule's findings.
    """
    global _CODE
    if _CODE is None:
        digest = hashlib.sha256()
        package = Path(__file__).resolve().parents[1]  # every layer of nofslint
        folders = [package]
        if not (package / "rules").is_dir():  # a source checkout: rules/ beside the package
            folders.append(package.parent / "rules")
        for folder in folders:
            for path in sorted(folder.rglob("*.py")):
                with contextlib.suppress(OSError):
                    name = path.relative_to(folder.parent).as_posix()
                    digest.update(name.encode() + b"\0" + path.read_bytes())
        _CODE = digest.hexdigest()[:16]
    return _CODE


_CODE: str | None = None


def default_root() -> Path | None:
    """``$XDG_CACHE_HOME/nofslint``, else ``~/.cache/nofslint``; None (no cache)
    without an absolute home.

    A relative XDG_CACHE_HOME is invalid (XDG Base Directory spec) and ignored:
    relative to the linted tree, the tree could plant entries in it.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nofslint" if os.path.isabs(base) else None


def cache_home(root: Path) -> tuple[Path, bool]:
    """Where the cache lives for ``root``, and whether nofslint owns it (may prune it).

    ``root`` itself when it holds nofslint's tag, or can take it: it did not
    exist, or holds only names the cache gives (a cache of an earlier version).
    Otherwise ``root/nofslint`` by the same rule: a directory where the user
    keeps other files is never pruned. Found once per process.
    """
    key = str(root)
    if key not in _HOMES:
        _HOMES[key] = next(((d, True) for d in (root, root / "nofslint") if _claim(d)),
                           (root / "nofslint", False))
    return _HOMES[key]


_HOMES: dict[str, tuple[Path, bool]] = {}
# Looks at a tag another run is still writing, 10 ms apart, before taking it as foreign.
_TAG_LOOKS = 50


def _claim(directory: Path) -> bool:
    """True when ``directory`` is nofslint's, tagging it when it can take it."""
    tag = directory / _TAG_NAME
    for look in range(_TAG_LOOKS):  # again when another run tags it meanwhile
        try:  # non-blocking: a named pipe there must not hang the run
            fd = os.open(tag, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                text = fh.read(len(_TAG) + 1)
                regular = stat.S_ISREG(os.fstat(fd).st_mode)
            if regular and text != _TAG and _TAG.startswith(text) and look + 1 < _TAG_LOOKS:
                time.sleep(0.01)  # another run created it and is writing it (parallel kbuild)
                continue
            return regular and text == _TAG
        except FileNotFoundError:
            pass
        except OSError:
            return False
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not all(_ROOT_NAMES.fullmatch(name) for name in os.listdir(directory)):
                return False
            fd = os.open(tag, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | getattr(os, "O_NOFOLLOW", 0), 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(_TAG)
            return True
        except FileExistsError:
            continue
        except OSError:
            return False
    return False


class FactsCache:
    """Facts of one kernel tree (or of loose files) under ``root/<tree id>``."""

    def __init__(self, root: Path, tree_root: Path | None, salt: str, variant: str = "") -> None:
        name = os.fsencode(tree_root) if tree_root is not None else b"loose"
        ident = hashlib.sha256(name).hexdigest()[:16]
        home, self._owned = cache_home(root)
        self.dir = home / ident
        self._dir_text = str(self.dir)
        # The salt covers what facts depend on besides the file: the version of
        # nofslint and the tree's GFP definitions.
        self.salt = f"{_MAGIC}:{SCHEMA}:{__version__}:{salt}"
        # One stat manifest per kernel config (``variant``): the stat of a file says
        # nothing of which config its recorded key was made under.
        self._manifest_path = self.dir / ("manifest-" + hashlib.sha256(
            _bytes(self.salt + (f"\0{variant}" if variant else ""))).hexdigest()[:16])
        self._manifest: dict[str, tuple[int, int, int, str]] | None = None
        self._seen: dict[str, tuple[int, int, int, str]] = {}

    # -- the stat manifest: unchanged files are neither read nor hashed -----------
    @staticmethod
    def stat_key(path: Path | str) -> tuple[int, int, int] | None:
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

    def known_key(self, path: Path | str, rel: str) -> str | None:
        """The content key recorded for a file whose size, mtime and inode are unchanged."""
        stat = self.stat_key(path)
        entry = self._load_manifest().get(rel)
        return entry[3] if stat is not None and entry is not None and entry[:3] == stat else None

    def lookup(self, path: Path | str, rel: str) -> tuple | None:
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
        if _write_marshal(self._manifest_path, manifest):
            self._manifest = manifest

    def key(self, raw: bytes, rel: str, config: bytes = b"") -> str:
        """The entry key: facts hold the file's path, so two files with the same
        text (the many one-line uapi headers) need entries of their own. ``config``
        is what the file's facts depend on in the kernel config (Kconfig.key_of): a
        config switch re-extracts only the files whose conditionals it changes."""
        head = _bytes(f"{self.salt}\0{rel}\0")
        if config:
            head += b"kconfig\0" + config + b"\0"
        return hashlib.sha256(head + raw).hexdigest()

    def _path(self, key: str) -> str:
        return f"{self._dir_text}/{key[:2]}/{key}"  # a string: built for every file of a run

    def load_data(self, key: str, rel: str) -> tuple | None:
        """The entry's facts data (FileFacts.to_data() shape), checked; None for a miss
        or any damage."""
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                magic, stored_key, stored_rel, crc, blob = marshal.loads(fh.read())
                used = os.fstat(fh.fileno()).st_mtime
            if (magic != _MAGIC or stored_key != key or stored_rel != rel
                    or zlib.crc32(blob) != crc):
                return None
            data = marshal.loads(blob)
            FileFacts.check_data(data)
        except Exception:  # noqa: BLE001 - any damage is a miss, never trusted
            return None
        if time.time() - used > _TOUCH_AFTER_SECONDS:
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: kept by pruning
        return data

    def load(self, key: str, rel: str) -> FileFacts | None:
        data = self.load_data(key, rel)
        return FileFacts.from_data(data) if data is not None else None

    def store(self, key: str, facts: FileFacts) -> tuple:
        """Write the entry; returns the facts data either way."""
        data = facts.to_data()
        blob = marshal.dumps(data)
        _write_marshal(Path(self._path(key)), (_MAGIC, key, facts.path, zlib.crc32(blob), blob))
        return data

    def prune(self, max_age: float = MAX_AGE_SECONDS, max_bytes: int = MAX_CACHE_BYTES,
              interval: float = PRUNE_INTERVAL) -> int:
        """Bound the whole cache (every tree under the root); returns entries deleted.

        Deletes entries unused for ``max_age`` seconds, then the least recently
        used until all trees' entries fit in ``max_bytes``; then manifests
        unused for ``max_age``, manifest lines whose entry is gone, leftovers of
        killed writers and emptied directories. Skipped when the last prune of
        this cache root was less than ``interval`` seconds ago, and in a cache
        directory nofslint does not own (cache_home); only files named as the
        cache names them are ever deleted.
        """
        if not self._owned:
            return 0
        root = self.dir.parent
        now = time.time()
        stamp = root / ".last-prune"
        with contextlib.suppress(OSError):
            if now - stamp.stat().st_mtime < interval:
                return 0
        cutoff = now - max_age
        removed = 0
        kept: list[tuple[float, int, Path]] = []
        for tree_dir in _tree_dirs(root):
            children = _children(tree_dir)
            _sweep([c for c in children if not _SHARD.fullmatch(c.name)], now, cutoff, _MANIFEST)
            for shard in children:
                if _SHARD.fullmatch(shard.name) and _is_dir(shard):
                    live, gone = _sweep(_children(shard), now, cutoff, _ENTRY)
                    removed += gone
                    kept += live
        total = sum(size for _, size, _ in kept)
        if total > max_bytes:
            kept.sort(key=lambda k: k[0])
            evict = 0
            while evict < len(kept) and total > max_bytes:
                total -= kept[evict][1]
                removed += _unlink(kept[evict][2])
                evict += 1
            kept = kept[evict:]
        live_names: dict[Path, set[str]] = {}
        for _, _, entry in kept:
            live_names.setdefault(entry.parent.parent, set()).add(entry.name)
        for tree_dir in _tree_dirs(root):
            _drop_dead_lines(tree_dir, live_names.get(tree_dir, set()))
            _remove_empty(tree_dir)
        with contextlib.suppress(OSError):
            root.mkdir(parents=True, exist_ok=True)
            stamp.touch()
        self._manifest = None  # reread: lines may have gone
        return removed


def _bytes(text: str) -> bytes:
    """UTF-8, with a file name that is not UTF-8 (surrogate-escaped) as its own bytes."""
    return text.encode("utf-8", "surrogateescape")


# The writer's temporary names (TEMP_NAME) for the names the cache writes, cut
# to 64 bytes. Not 0.1's ``.tmp-XXXXXXXX``: a user's file may be named so.
_TEMP = re.compile(r"\.(?:latest-|blob-|manifest-)?[0-9a-f]{16,64}" + TEMP_TAIL)


def _is_temp(name: str) -> bool:
    return _TEMP.fullmatch(name) is not None


def _sweep(entries: list[Path], now: float, cutoff: float, named: re.Pattern[str]
           ) -> tuple[list[tuple[float, int, Path]], int]:
    """Delete killed writers' leftovers and the entries (regular files ``named``)
    unused since ``cutoff``; return the other entries as (last use, size, path)
    and how many went. Anything else is not the cache's and stays."""
    live: list[tuple[float, int, Path]] = []
    removed = 0
    for entry in entries:
        try:
            st = entry.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and named.fullmatch(entry.name):
            with contextlib.suppress(OSError):  # damage where an entry belongs
                entry.rmdir()  # only when empty: never a tree of someone's files
        elif not stat.S_ISREG(st.st_mode):
            continue
        elif _is_temp(entry.name):
            if st.st_mtime < now - _STALE_TMP_SECONDS:
                _unlink(entry)
        elif named.fullmatch(entry.name):
            if st.st_mtime < cutoff:
                removed += _unlink(entry)
            else:
                live.append((st.st_mtime, st.st_size, entry))
    return live, removed


def _children(directory: Path) -> list[Path]:
    """A directory's entries; none when it cannot be listed (damaged or unreadable)."""
    try:
        return list(directory.iterdir())
    except OSError:
        return []


def _tree_dirs(root: Path) -> list[Path]:
    return [d for d in _children(root) if _TREE_DIR.fullmatch(d.name) and _is_dir(d)]


def _is_dir(path: Path) -> bool:
    """A directory itself, not a symlink to one (pruning never leaves the cache)."""
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def _unlink(path: Path) -> int:
    """1 when the file ``path`` was deleted."""
    try:
        path.unlink()
    except OSError:
        return 0
    return 1


def _write_file(path: Path, body: bytes) -> bool:
    """Write with the one writer; False (and no leftover) on failure. No fsync:
    entries are checked when read (damage is a miss), and a cold whole-tree
    run writes 60,000 of them (an fsync costs milliseconds)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, body, durable=False, devices=False)
    except OSError:
        return False
    return True


def _write_marshal(path: Path, data: object) -> bool:
    try:
        body = marshal.dumps(data)
    except ValueError:
        return False
    return _write_file(path, body)


def _drop_dead_lines(tree_dir: Path, live: set[str]) -> None:
    """Remove manifest lines whose entry is gone: they could only ever miss."""
    for manifest in _children(tree_dir):
        if not _MANIFEST.fullmatch(manifest.name):
            continue
        if _is_dir(manifest):
            with contextlib.suppress(OSError):
                manifest.rmdir()
            continue
        try:
            if not stat.S_ISREG(manifest.lstat().st_mode):
                continue
            lines = marshal.loads(manifest.read_bytes())
            if not isinstance(lines, dict):
                raise ValueError("not a manifest")
        except Exception:  # noqa: BLE001 - a damaged manifest is worth nothing
            _unlink(manifest)
            continue
        alive = {rel: line for rel, line in lines.items()
                 if isinstance(line, tuple) and len(line) == 4 and line[3] in live}
        if len(alive) != len(lines):
            _write_marshal(manifest, alive)


def _remove_empty(tree_dir: Path) -> None:
    for child in [*_children(tree_dir), tree_dir]:
        if (child is tree_dir or _SHARD.fullmatch(child.name)) and _is_dir(child):
            with contextlib.suppress(OSError):
                child.rmdir()  # only succeeds when empty


class ResultCache:
    """Saved run results: a record per set of files, rules and options.

    A record is named by its signature (the rules, options, nofslint's version
    and a hash of its code, the files' paths: engine._record_signature) and
    holds each file's content key, so the engine can tell which files an edit
    changed. Large parts that rarely change (what each whole-tree rule read)
    are blobs of their own, named by their hash and kept once for every record
    that shares them.
    """

    def __init__(self, root: Path) -> None:
        home, self._owned = cache_home(root)
        self.dir = home / "results"

    @staticmethod
    def signature(parts: list[str]) -> str:
        digest = hashlib.sha256(f"{_MAGIC}:{SCHEMA}:{__version__}:{code_fingerprint()}".encode())
        for part in parts:
            digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
        return digest.hexdigest()

    def load(self, signature: str) -> dict | None:
        try:
            data = json.loads(self._read(signature) or b"null")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def store(self, signature: str, data: dict) -> None:
        with contextlib.suppress(ValueError, TypeError):
            self._write(signature, json.dumps(data).encode())

    def store_blob(self, data: object) -> str | None:
        """Keep ``data`` (compressed) under its hash; returns the name, None on failure."""
        try:
            body = zlib.compress(json.dumps(data, sort_keys=True).encode(), 6)
        except (ValueError, TypeError):
            return None
        name = "blob-" + hashlib.sha256(body).hexdigest()
        path = self.dir / name
        if path.exists():
            with contextlib.suppress(OSError):
                os.utime(path)  # used again: kept by pruning
            return name
        return name if self._write(name, body) else None

    def load_blob(self, name: object) -> object | None:
        if not isinstance(name, str) or not _BLOB.fullmatch(name):
            return None  # never a path out of the results directory
        body = self._read(name)
        try:
            return json.loads(zlib.decompress(body)) if body is not None else None
        except (ValueError, zlib.error):
            return None

    # A header line names the entry and carries a CRC of the bytes after it: a
    # flipped digit in a saved line number is a miss, never a wrong answer.
    def _read(self, name: str) -> bytes | None:
        path = self.dir / name
        try:
            header, _, body = path.read_bytes().partition(b"\n")
        except OSError:
            return None
        if header != self._header(name, body):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return body

    @staticmethod
    def _header(name: str, body: bytes) -> bytes:
        return f"nofslint-results {name} {zlib.crc32(body):08x}".encode()

    def _write(self, name: str, body: bytes) -> bool:
        return _write_file(self.dir / name, self._header(name, body) + b"\n" + body)

    def prune(self, max_age: float = MAX_AGE_SECONDS, keep: int = MAX_RESULTS) -> None:
        """Delete results unused for ``max_age`` seconds, all but the ``keep`` most
        recently used, and leftovers of killed writers: in a cache directory
        nofslint owns, and only files named as results are (see FactsCache.prune)."""
        if not self._owned or not _is_dir(self.dir):
            return
        now = time.time()
        saved, _ = _sweep(_children(self.dir), now, now - max_age, _RESULT)
        saved.sort(key=lambda s: s[0], reverse=True)
        for _, _, entry in saved[keep:]:
            _unlink(entry)
