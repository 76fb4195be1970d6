"""``.nofslint.toml``: which rules run, where they are quiet, and the tree's own tables.

The file sits at the kernel tree's root (or is named with ``--config``)::

    select = ["ALL"]                      # rule ids, or ALL (default: rules on by default)
    kconfig = "build/.config"             # the kernel config to lint (or "none"; see --kconfig)
    ignore = ["prefer-nofs-scope"]
    plugins = ["tools/nofslint"]          # rule directories (need --allow-config-plugins)
    cache-dir = "~/.cache/nofslint-linux" # where the facts cache lives (absolute or ~/)

    [per-file-ignores]
    "drivers/staging/**" = ["nofail-in-reclaim"]

    [severity]
    nofail-in-reclaim = "error"

    [[reclaim-entry]]                     # an ops slot that memory reclaim calls
    struct = "myfs_cache_ops"
    field = "shrink"
    why = "myfs's cache shrinker runs from kswapd"

    [[transaction]]                       # a transaction start that is not a NOFS scope
    filesystem = "myfs"
    opens = ["myfs_trans_begin"]
    closes = ["myfs_trans_end"]
    returns = "error"                     # or "handle" (ERR_PTR on failure)

Every problem is a ``ConfigError`` naming the file and the key: a typo must not
silently turn a rule off.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from nofslint.kernel.reclaim import EntryPoint
from nofslint.kernel.transactions import Transaction
from nofslint.kernel.tree import Extras

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILENAME = ".nofslint.toml"
# A config is a few hundred bytes; a larger file is refused rather than read into memory.
MAX_CONFIG_BYTES = 1024 * 1024
_SEVERITIES = ("error", "warning", "info")
_C_NAME = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    severity: tuple[tuple[str, str], ...] = ()
    plugins: tuple[Path, ...] = ()
    extras: Extras = field(default_factory=Extras)
    cache_dir: Path | None = None
    kconfig: str | None = None  # "none", or a path relative to the config's directory

    def ignored(self, rule: str, path: str) -> bool:
        """Is ``rule`` silenced for ``path`` (relative to the tree root)?"""
        return any(rule in rules and _matches(path, pattern)
                   for pattern, rules in self.per_file_ignores)

    def rule_ids(self) -> set[str]:
        """Every rule id the file names, to check against the known rules."""
        ids = set(self.select or ()) | set(self.ignore) | {r for r, _ in self.severity}
        ids |= {r for _, rules in self.per_file_ignores for r in rules}
        return ids - {"ALL"}


def _matches(path: str, pattern: str) -> bool:
    """Glob on the tree-relative path, as in .gitignore: ``*`` stays within a directory,
    ``**`` crosses them, and ``dir/`` covers the subtree."""
    if pattern.endswith("/"):
        pattern += "**"
    return _glob(pattern).fullmatch(path) is not None


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def find(root: Path | None) -> Path | None:
    if root is None:
        return None
    candidate = root / FILENAME
    return candidate if candidate.is_file() else None


def load(path: Path | None) -> Config:
    """The config at ``path`` (None: the defaults)."""
    if path is None:
        return Config()
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB, not a config")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad config, never a crash
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return _Reader(path).config(data)
    except RecursionError:  # a deep value that parsed, met in a message's repr
        raise ConfigError(f"{path}: values nested too deeply") from None


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, "must be a list of non-empty strings")
        return tuple(value)

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        return value

    def config(self, data: dict[str, Any]) -> Config:
        known = {"select", "ignore", "plugins", "per-file-ignores", "severity",
                 "reclaim-entry", "transaction", "cache-dir", "kconfig"}
        for key in data:
            if key not in known:
                raise self.error(key, f"unknown key (known: {', '.join(sorted(known))})")
        select = self.strings(data["select"], "select") if "select" in data else None
        ignore = self.strings(data.get("ignore", []), "ignore")
        plugins = tuple(self.plugin(p) for p in self.strings(data.get("plugins", []), "plugins"))
        per_file = tuple(
            (pattern, self.strings(rules, f"per-file-ignores.{pattern!r}"))
            for pattern, rules in self.table(data.get("per-file-ignores", {}),
                                             "per-file-ignores").items())
        severity = []
        for rule, level in self.table(data.get("severity", {}), "severity").items():
            if level not in _SEVERITIES:
                raise self.error(f"severity.{rule}", f"{level!r} is not one of "
                                 f"{', '.join(_SEVERITIES)}")
            severity.append((rule, level))
        extras = Extras(
            tuple(self.entry(e, i) for i, e in enumerate(self.array(data, "reclaim-entry"))),
            tuple(self.transaction(t, i) for i, t in enumerate(self.array(data, "transaction"))))
        cache_dir = self.cache_dir(data["cache-dir"]) if "cache-dir" in data else None
        kconfig = data.get("kconfig")
        if kconfig is not None:
            if not isinstance(kconfig, str) or not kconfig:
                raise self.error("kconfig", "must be a path to a kernel .config, or \"none\"")
            if kconfig != "none":
                kconfig = str(self.path.parent / kconfig)
        return Config(self.path, select, ignore, per_file, tuple(severity), plugins, extras,
                      cache_dir, kconfig)

    def cache_dir(self, value: Any) -> Path:
        """The cache directory: absolute or ``~/...``, never relative to the config (the
        tree's own config would put the cache, which must not be plantable, in the tree)."""
        if not isinstance(value, str) or not value or "\0" in value:
            raise self.error("cache-dir", "must be a non-empty path")
        path = Path(value).expanduser() if value.startswith("~/") else Path(value)
        if not path.is_absolute():
            raise self.error("cache-dir", f"{value!r} must be absolute or start with ~/")
        return path

    def plugin(self, value: str) -> Path:
        """A plugin directory, relative to the config's directory."""
        try:
            return (self.path.parent / value).resolve()
        except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a symlink loop
            raise self.error("plugins", f"{value!r} is not a usable path: {exc}") from None

    def array(self, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, f"must be an array of tables ([[{key}]])")
        return value

    def fields(self, entry: dict[str, Any], key: str, required: tuple[str, ...],
               optional: tuple[str, ...] = ()) -> None:
        for name in entry:
            if name not in required + optional:
                raise self.error(f"{key}.{name}", "unknown key (known: "
                                 f"{', '.join(required + optional)})")
        for name in required:
            if name not in entry:
                raise self.error(key, f"missing {name!r}")

    def identifier(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value or not set(value) <= set(_C_NAME) \
                or value[0].isdigit():
            raise self.error(key, f"{value!r} is not a C identifier")
        return value

    def entry(self, entry: dict[str, Any], i: int) -> EntryPoint:
        key = f"reclaim-entry[{i}]"
        self.fields(entry, key, ("struct", "field"), ("why",))
        why = entry.get("why", "listed as a reclaim entry point in the tree's config")
        if not isinstance(why, str):
            raise self.error(f"{key}.why", "must be a string")
        return EntryPoint(self.identifier(entry["struct"], f"{key}.struct"),
                          self.identifier(entry["field"], f"{key}.field"), why)

    def transaction(self, entry: dict[str, Any], i: int) -> Transaction:
        key = f"transaction[{i}]"
        self.fields(entry, key, ("filesystem", "opens", "closes"), ("returns", "handle"))
        if not isinstance(entry["filesystem"], str) or not entry["filesystem"]:
            raise self.error(f"{key}.filesystem", "must be a non-empty string")
        opens = [self.identifier(n, f"{key}.opens")
                 for n in self.strings(entry["opens"], f"{key}.opens")]
        closes = [self.identifier(n, f"{key}.closes")
                  for n in self.strings(entry["closes"], f"{key}.closes")]
        returns = entry.get("returns", "handle")
        if returns not in ("handle", "error"):
            raise self.error(f"{key}.returns", f"{returns!r} is not 'handle' or 'error'")
        handle = entry.get("handle")
        if handle is not None:
            handle = self.identifier(handle, f"{key}.handle")
        return Transaction(entry["filesystem"], frozenset(opens), frozenset(closes), returns,
                           handle)
