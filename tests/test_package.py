"""The public surface, and the README's quick start (executed)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import sktransfer

README = Path(__file__).resolve().parents[1] / "README.md"


def test_all_is_sorted_and_complete():
    assert sktransfer.__all__ == sorted(sktransfer.__all__)
    for name in sktransfer.__all__:
        assert getattr(sktransfer, name) is not None


def test_import_is_cheap_and_offline():
    code = "import sys, sktransfer; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "False"


def _quickstart() -> str:
    text = README.read_text()
    match = re.search(r"<!-- quickstart[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert match, "README has no marked quick start"
    return match.group(1)


def test_quickstart_is_short():
    assert len(_quickstart().strip().splitlines()) <= 15


@pytest.mark.slow
def test_readme_quickstart_runs(capsys):
    namespace = {}
    exec(compile(_quickstart(), "README quick start", "exec"), namespace)
    search = namespace["search"]
    assert search.score(namespace["X_test"], namespace["y_test"]) > 0.7
    assert "logisticregression__C" in capsys.readouterr().out
