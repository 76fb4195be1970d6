"""A run's settings, resolved once: the config file, which plugins may run, which rules
run, where the cache is; and the filter stage that applies them to a result.

``check``, ``check-patch``, ``kbuild`` and the bench scripts all go through
``resolve``, so trust and selection are decided in one place.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nofslint.api.rule import Rule
from nofslint.fixing.fixes import remerged
from nofslint.incremental.cache import default_root as default_cache_root
from nofslint.kernel.kconfig import Kconfig, KconfigError
from nofslint.kernel.kconfig import read as read_kconfig
from nofslint.kernel.tree import Extras, enclosing_roots
from nofslint.plugins.loading import load_rules
from nofslint.plugins.registry import PluginProblem, RuleError, select_rules, unknown_rules
from nofslint.run import config, filters
from nofslint.run.results import RunResult


class SettingsError(Exception):
    """Settings that cannot be used (config, plugin trust, rule selection): exit 2."""


@dataclass
class Settings:
    rules: list[Rule]
    available: dict[str, type[Rule]]
    config: config.Config
    cache_root: Path | None
    problems: list[PluginProblem]  # plugins that could not be used: exit 2 at the end
    # Where the kernel config in force came from (None: every alternative, every file).
    kconfig_source: str | None = None

    @property
    def kconfig(self) -> Kconfig | None:
        return self.config.extras.kconfig

    @property
    def extras(self) -> Extras:
        return self.config.extras


def split_ids(values: Iterable[str]) -> list[str] | None:
    """``--select a,b --select c`` -> [a, b, c]; None when nothing was given."""
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


def untrusted_paths(root: Path | None, linted: Iterable[Path | str]) -> list[str]:
    """Where the linted tree's code lives, as realpaths: each linted path, the root,
    and every kernel root around them (not only the nearest: a fake root inside
    a tree must not make the real one look like the outside)."""
    out: list[str] = []
    for path in [*linted, *([root] if root is not None else [])]:
        for real in [os.path.realpath(path), *enclosing_roots(path)]:
            if real not in out:
                out.append(real)
    return out


def inside(path: Path | str, tops: Sequence[str]) -> str | None:
    """The first of ``tops`` (realpaths) holding ``path``'s realpath, or None.

    Realpaths on both sides: ``tree-link``, ``tree/../tree`` and ``tree/fs/..``
    are the tree.
    """
    real = os.path.realpath(path)
    return next((t for t in tops if real == t or real.startswith(t.rstrip("/") + "/")), None)


def resolve(root: Path | None, linted: Sequence[Path], *, config_file: Path | None = None,
            select: Sequence[str] | None = None, ignore: Sequence[str] = (),
            rules_dirs: Sequence[Path] = (), allow_config_plugins: bool = False,
            no_cache: bool = False, cache_dir: Path | None = None,
            on_problem: Callable[[PluginProblem], None] | None = None,
            untrusted: Sequence[Path | str] = (), kconfig: str | None = None,
            build_dir: Path | None = None) -> Settings:
    """The settings of a run over ``linted`` inside the tree ``root`` (None: loose files).

    Rule directories given here are imported; those named by a config only
    with ``allow_config_plugins`` when the directory or the config lies in the
    linted tree (see untrusted_paths; ``untrusted`` adds more of it, such as
    kbuild's srctree): linting someone's tree must not run its code, and the
    tree's own config may point just outside it. ``select`` replaces the
    config's select and ignore. Plugin problems go to ``on_problem`` and are
    kept in ``problems``; anything else wrong raises SettingsError.

    The kernel config in force (choose_kconfig): ``kconfig`` (a path or "none"), the
    config file's ``kconfig``, ``$KCONFIG_CONFIG``, the tree root's ``.config``, then
    ``build_dir``'s ``include/config/auto.conf`` (kbuild mode, run in the build directory).
    """
    path = config_file or config.find(root)
    tree = untrusted_paths(root, [*linted, *untrusted])
    try:
        conf = config.load(path)
        dirs = list(rules_dirs)
        from_tree = path is not None and inside(path, tree) is not None
        for plugin in conf.plugins:
            if not allow_config_plugins and inside(plugin, tree) is not None:
                raise config.ConfigError(
                    f"{conf.path}: plugins: {plugin} is code from the linted tree; pass "
                    "--allow-config-plugins to run it (nofslint rules --rules-dir lists it "
                    "without running it)")
            if not allow_config_plugins and from_tree:
                raise config.ConfigError(
                    f"{conf.path}: plugins: {plugin} is named by the linted tree's own "
                    "config; pass --allow-config-plugins (or --rules-dir) to run it")
            dirs.append(plugin)
        available, problems = load_rules(dirs, linted=[Path(t) for t in tree])
        for problem in problems:
            if on_problem is not None:
                on_problem(problem)
        unknown = sorted(conf.rule_ids() - set(available))
        if unknown:
            raise config.ConfigError(f"{conf.path}: {unknown_rules(unknown, available)}")
        chosen = list(select) if select else None
        dropped = list(ignore)
        if chosen is None:
            chosen = list(conf.select) if conf.select else None
            dropped += conf.ignore
        rules = select_rules(available, chosen, dropped)
        kernel_config, source = choose_kconfig(kconfig, conf, root, build_dir)
    except (config.ConfigError, RuleError, KconfigError) as exc:
        raise SettingsError(str(exc)) from None
    if kernel_config is not None:
        conf = dataclasses.replace(
            conf, extras=dataclasses.replace(conf.extras, kconfig=kernel_config))
    cache_root = None if no_cache else (cache_dir or _cache_root(conf, tree, from_tree))
    return Settings(rules, available, conf, cache_root, problems, source)


def choose_kconfig(option: str | None, conf: config.Config, root: Path | None,
                   build_dir: Path | None = None) -> tuple[Kconfig | None, str | None]:
    """The kernel config in force and where it came from (None: every alternative).

    In order: the option, the config file's ``kconfig``, ``$KCONFIG_CONFIG`` (relative to
    the tree root, as kbuild reads it), the tree root's ``.config``, the build directory's
    ``include/config/auto.conf``. "none" in the first two forces every alternative.
    Raises KconfigError for a config that is named but cannot be used.
    """
    named = [(option, "--kconfig"), (conf.kconfig, f"{conf.path}: kconfig")]
    for value, how in named:
        if value is None:
            continue
        if value == "none":
            return None, f"{how} none"
        return read_kconfig(Path(value)), f"{how} {value}"
    env = os.environ.get("KCONFIG_CONFIG")
    if env:  # kbuild exports it relative to the build directory
        base = build_dir if build_dir is not None else root
        path = Path(env) if os.path.isabs(env) or base is None else base / env
        return _found(path, "$KCONFIG_CONFIG"), f"$KCONFIG_CONFIG {path}"
    found = [(root / ".config", "the tree root's .config")] if root is not None else []
    if build_dir is not None:
        found.append((build_dir / "include/config/auto.conf", "the build directory's auto.conf"))
    for path, how in found:
        if path.is_file():
            return _found(path, how), f"{how} {path}"
    return None, None


def _found(path: Path, how: str) -> Kconfig:
    """A config nobody named on the command line: its error says where it came from and
    how to do without it."""
    try:
        return read_kconfig(path)
    except KconfigError as exc:
        raise KconfigError(f"{exc} (found as {how}; --kconfig none lints every #if "
                           "alternative and every file instead)") from None


CACHE_ENV = "NOFSLINT_CACHE_DIR"


def _cache_root(conf: config.Config, tree: Sequence[str], from_tree: bool) -> Path | None:
    """Where the cache lives without ``--cache-dir``: ``$NOFSLINT_CACHE_DIR``, else the
    config's ``cache-dir``, else the XDG default.

    Never inside the linted tree (it could plant facts that hide findings). The
    tree's own config may move the cache only within the user's home: a tree
    someone sent must not make a run as root create directories elsewhere.
    """
    env = os.environ.get(CACHE_ENV, "")
    if env:
        if not os.path.isabs(env):
            raise SettingsError(f"{CACHE_ENV}={env!r}: must be an absolute path")
        chosen, where = Path(env), CACHE_ENV
    elif conf.cache_dir is not None:
        chosen, where = conf.cache_dir, f"{conf.path}: cache-dir"
        home = os.path.realpath(os.path.expanduser("~"))
        if from_tree and inside(chosen, [home]) is None:
            raise SettingsError(f"{where}: {chosen} is outside your home ({home}); the "
                                f"tree's own config may not put the cache there: use "
                                f"{CACHE_ENV} or --cache-dir")
    else:
        return default_cache_root()
    if inside(chosen, tree) is not None:
        raise SettingsError(f"{where}: {chosen} is inside the linted tree; the cache must "
                            "be outside it (a tree could plant entries)")
    return chosen


def apply_filters(result: RunResult, settings: Settings, baseline: Path | None = None) -> None:
    """The filter stage: the config (per-file ignores, severities), then the baseline.

    Each finding's fix was built once, with the run (saved runs keep its diff);
    here each file's fix is merged again from the findings left, so --diff and
    --fix never carry the edits of a silenced finding. Raises
    filters.BaselineError for a baseline that cannot be used.
    """
    result.findings = filters.configured(result.findings, settings.config)
    if baseline is not None:
        result.findings = filters.subtract(result.findings, filters.load_baseline(baseline))
    if result.fixes:
        result.fixes = remerged(result.fixes, result.findings)
