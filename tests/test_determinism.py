"""The same findings in the same order, whatever the jobs, the cache or the run.

Every fixture tree at once (all rules, fixes included): one job or several,
no cache, a cold cache, a warm one (facts from the cache, rules run again), the
saved results of an identical run, and fresh interpreters with different hash
seeds (set and dict order must never leak into the output).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixture_support import FIXTURES

from nofslint.output import report
from nofslint.plugins.registry import builtin_rules, select_rules
from nofslint.run.engine import run


def lint(paths: list[Path], jobs: int, cache: Path | None, reuse: bool = False) -> str:
    rules = select_rules(builtin_rules(), ["ALL"], None)
    result = run(paths, rules, jobs=jobs, cache_root=cache, reuse_results=reuse)
    assert not result.errors
    return report.to_json(result)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy, so a warm cache sees the same stat data throughout."""
    dest = tmp_path_factory.mktemp("det") / "fixtures"
    shutil.copytree(FIXTURES, dest)
    return dest


@pytest.fixture(scope="module")
def reference(fixtures: Path) -> str:
    out = lint([fixtures], 1, None)
    assert len(json.loads(out)["findings"]) > 40
    return out


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_jobs_cold_warm_and_saved_runs_agree(fixtures: Path, reference: str, tmp_path: Path,
                                             jobs: int) -> None:
    cache = tmp_path / "cache"
    assert lint([fixtures], jobs, cache) == reference  # cold
    assert lint([fixtures], jobs, cache) == reference  # warm facts, rules again
    assert lint([fixtures], jobs, cache, reuse=True) == reference  # records the results
    assert lint([fixtures], jobs, cache, reuse=True) == reference  # the saved results


def test_the_order_of_the_paths_does_not_matter(fixtures: Path, reference: str) -> None:
    trees = sorted(p for p in fixtures.iterdir() if p.is_dir())
    forward = json.loads(lint(trees, 2, None))
    backward = json.loads(lint(trees[::-1], 2, None))
    assert forward["findings"] == backward["findings"] == json.loads(reference)["findings"]


def test_hash_seeds_do_not_leak_into_the_output(fixtures: Path, reference: str,
                                                tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-m", "nofslint", "check", str(fixtures),
                               "--select", "ALL", "--format", "json", "--no-cache", "-j", "2"],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
        assert proc.returncode == 1, proc.stderr[-2000:]
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["findings"] == json.loads(reference)["findings"]
