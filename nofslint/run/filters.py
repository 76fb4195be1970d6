"""The filter stage: which findings a user sees.

Findings come out of the rules complete; here the config silences rules per
path and changes severities, a baseline hides known findings, and a change
(a patch, a commit range, the staged index) keeps only what it introduced.
All matching is by ``Finding.fingerprint()`` (rule, path, function and the
rule's key for the finding), counted, so that moving code or rewording a
message does not make a known finding new, and a second identical finding in
the same function is still new. Baselines written by 0.1.0 hold the older
message-based fingerprints (``Finding.legacy_fingerprint``) and still match.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from nofslint import __version__
from nofslint.model.findings import Finding
from nofslint.run.config import Config
from nofslint.run.results import RunResult

BASELINE_FORMAT = "nofslint-baseline/2"
LEGACY_BASELINE_FORMAT = "nofslint-baseline/1"  # 0.1.0: message-based fingerprints


class BaselineError(Exception):
    """A baseline file that cannot be used."""


def report_scope(root: Path, paths: Iterable[Path]) -> list[str] | None:
    """The tree-relative places ``paths`` name inside ``root``, resolved first (a link
    into the tree counts where it leads); None when one is the whole tree or lies
    outside it."""
    top = os.path.realpath(root)
    out = []
    for path in paths:
        real = os.path.realpath(path)
        if real == top or not real.startswith(top + os.sep):
            return None
        out.append(os.path.relpath(real, top).replace(os.sep, "/"))
    return sorted(set(out))


def within(result: RunResult, places: list[str]) -> None:
    """Keep the findings whose location lies in ``places`` (tree-relative files or
    directories): the report scope of a run that analysed the whole tree."""
    result.findings = [f for f in result.findings
                       if any(f.path == p or f.path.startswith(p + "/") for p in places)]
    result.reported_in = places


def configured(findings: Iterable[Finding], config: Config) -> list[Finding]:
    """Per-file ignores and severity overrides from the config."""
    levels = dict(config.severity)
    out = []
    for f in findings:
        if config.ignored(f.rule, f.path):
            continue
        level = levels.get(f.rule)
        out.append(replace(f, severity=level) if level and level != f.severity else f)
    return out


@dataclass
class Baseline:
    """Known findings by fingerprint, with counts; ``legacy``: 0.1.0 fingerprints."""

    known: Counter[str] = field(default_factory=Counter)
    legacy: bool = False

    def identity(self) -> Callable[[Finding], str]:
        return Finding.legacy_fingerprint if self.legacy else Finding.fingerprint


def introduced(before: Iterable[Finding], after: Iterable[Finding]) -> list[Finding]:
    """Findings of ``after`` that ``before`` does not already have."""
    return subtract(after, Baseline(Counter(f.fingerprint() for f in before)))


def baseline_text(findings: Iterable[Finding]) -> str:
    """A baseline file: one entry per finding, readable and diffable in review."""
    entries = sorted(({"rule": f.rule, "path": f.path, "function": f.function,
                       "fingerprint": f.fingerprint(), "message": f.message}
                      for f in findings),
                     key=lambda e: (e["path"], e["rule"], e["function"] or "", e["fingerprint"]))
    doc = {"format": BASELINE_FORMAT, "nofslint": __version__, "findings": entries}
    return json.dumps(doc, indent=2) + "\n"


MAX_BASELINE_BYTES = 64 * 1024 * 1024


def load_baseline(path: Path) -> Baseline:
    """The known findings of a baseline file (this version's or 0.1.0's)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BASELINE_BYTES + 1)
        if len(data) > MAX_BASELINE_BYTES:
            raise BaselineError(f"{path}: larger than {MAX_BASELINE_BYTES >> 20} MiB; "
                                "not a nofslint baseline")
        doc = json.loads(data.decode("utf-8"))
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: not a JSON baseline: {exc}") from None
    except RecursionError:
        raise BaselineError(f"{path}: nested too deeply to be a nofslint baseline") from None
    if not isinstance(doc, dict) \
            or doc.get("format") not in (BASELINE_FORMAT, LEGACY_BASELINE_FORMAT) \
            or not isinstance(doc.get("findings"), list):
        raise BaselineError(f"{path}: not a nofslint baseline (write one with "
                            "--write-baseline)")
    known: Counter[str] = Counter()
    for i, entry in enumerate(doc["findings"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("fingerprint"), str):
            raise BaselineError(f"{path}: findings[{i}] has no fingerprint")
        known[entry["fingerprint"]] += 1
    return Baseline(known, legacy=doc["format"] == LEGACY_BASELINE_FORMAT)


def subtract(findings: Iterable[Finding], baseline: Baseline) -> list[Finding]:
    """The findings left after each known fingerprint has hidden as many as it counts."""
    left = Counter(baseline.known)
    identity = baseline.identity()
    out = []
    for f in findings:
        key = identity(f)
        if left[key] > 0:
            left[key] -= 1
        else:
            out.append(f)
    return out
