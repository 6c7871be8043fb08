"""The plasticity core and palr_habitat must run on Python 3.9 (habitat-sim's Python)."""
import ast
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TREES = [ROOT / "palr_plasticity_aware_lr" / "src" / "palr", ROOT / "palr_habitat" / "src"]
SOURCES = sorted(p for tree in TREES for p in tree.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_parses_with_python39_grammar(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))


def test_vermin_finds_no_python310_feature():
    vermin = shutil.which("vermin") or str(pathlib.Path(sys.executable).parent / "vermin")
    if not pathlib.Path(vermin).exists():
        pytest.skip("vermin not installed (pip install -e .[dev])")
    out = subprocess.run([vermin, "-t=3.9-", "--violations", "--no-tips", "--eval-annotations",
                          *map(str, TREES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
