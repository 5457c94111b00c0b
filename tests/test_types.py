"""The type checker runs clean on the package (this is how CI runs mypy)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean():
    # Configuration lives in pyproject.toml ([tool.mypy]).
    result = subprocess.run([sys.executable, "-m", "mypy", "sktransfer"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
