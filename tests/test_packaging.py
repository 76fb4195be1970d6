"""The installed wheel (not the source tree) ships the engine and the built-in rules."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixture_support import FIXTURES, REPO

import nofslint


def _installed() -> bool:
    try:
        importlib.metadata.distribution("nofslint")
    except importlib.metadata.PackageNotFoundError:
        return False
    return not Path(nofslint.__file__).resolve().is_relative_to(REPO)


pytestmark = pytest.mark.skipif(not _installed(), reason="runs against an installed nofslint")


def test_rules_ship_inside_the_package() -> None:
    import nofslint.rules

    rules_dir = Path(nofslint.rules.__file__).parent
    assert rules_dir.parent == Path(nofslint.__file__).parent
    assert (rules_dir / "vmalloc_nofs.py").exists()


def test_console_script_on_fixtures(tmp_path: Path) -> None:
    exe = shutil.which("nofslint", path=str(Path(sys.executable).parent))
    assert exe, "console script not installed"
    result = subprocess.run([exe, "check", str(FIXTURES)], capture_output=True, text=True,
                            cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    assert "[vmalloc-nofs]" in result.stdout
