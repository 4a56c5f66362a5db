"""``ruff check`` over the library, the tests and the chapters, with pyproject.toml's rules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_tree_passes_ruff():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed; it comes with the test extra: pip install -c constraints.txt -e '.[test]'"
    done = subprocess.run([ruff, "check", "--no-cache", "mmlib", "tests", "notebooks"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"ruff check found problems (fix them, or say why in pyproject.toml):\n{done.stdout}"
