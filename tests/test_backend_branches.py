"""Backend-identity branches outside ``backends/`` are counted, and cannot grow unnoticed.

Code outside ``src/nmfkit/backends`` asks the backend to do an operation (a method of the
contract, ``NumpyBackend`` with its ``TorchBackend`` overrides) instead of asking which backend
it has. What still decides by backend identity is listed in ``ALLOWED`` below, file by file,
each with the reason it stays (docs/architecture.md, "Backend-identity branches"); a file
with more such lines than it is allowed, or a file not listed that has one, fails here.

A branch, read from the syntax tree (comments and docstrings do not count), is a line with:
``<x>.host_arrays``; a call of ``is_tensor(...)``; a comparison of ``<x>.name`` with
``"numpy"`` or ``"torch"``; ``isinstance(..., torch.<...>)``; or ``type(...).__module__``
(is_tensor written out). A solver's ``backends`` set, read by the registry, is a capability
the solver declares and is not counted.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "src" / "nmfkit"

#: file (relative to src/nmfkit) -> one reason per allowed line
ALLOWED = {
    "_engine.py": [
        "custom starts where input arrives: numpy W/H given with a tensor X follow X's dtype "
        "(numpy's default float64 against torch's float32), W/H in X's own framework must "
        "match it",
    ],
    "_minibatch_steps.py": [
        "MiniBatchNMF refuses masks and Graph penalties on a device, by name: its online "
        "masked steps (_minibatch_masked) and the Graph term of its batch cost are host code",
        "the batch cost: a host float from the penalties' own values on numpy, a device "
        "scalar (L1/L2 in float64, read with H's change in one transfer) on torch; one "
        "formula for both would change the numpy cost's rounding, which the stopping rule reads",
    ],
    "_validation.py": [
        "the device= parameter: a torch.device recognised by its type without importing "
        "torch (a user's parameter, not an array)",
    ],
    "_robust_fit.py": [
        "robust losses with a mask take host arrays (the dense entry weights are built on the "
        "host); a tensor is refused by name",
    ],
    "solvers/cd.py": [
        "the Frobenius objective from the sweeps' products on host dense X (BLAS "
        "orientation, kernel threads); a device keeps the generic objective's numbers",
        "the sample-major layout (F-ordered H) of sparse host X: scipy's products read the "
        "factor without a copy; the one layout rule, read by _blocked and the engine through "
        "CoordinateDescent.sample_major(_for)",
    ],
}

#: the most backend-identity lines allowed outside backends/ (94 when counting began)
CEILING = sum(len(v) for v in ALLOWED.values())


def branches(source: str) -> list[int]:
    """Line numbers (sorted, each once) of the backend-identity branches in ``source``."""
    lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "host_arrays":
            lines.add(node.lineno)
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name == "is_tensor":
                lines.add(node.lineno)
            elif name == "isinstance" and len(node.args) == 2 and any(
                    isinstance(n, ast.Name) and n.id == "torch" for n in ast.walk(node.args[1])):
                lines.add(node.lineno)
        elif isinstance(node, ast.Compare) and any(
                isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            sides = [node.left, *node.comparators]
            named = any(isinstance(s, ast.Attribute) and s.attr == "name" for s in sides)
            literal = any(isinstance(s, ast.Constant) and s.value in ("numpy", "torch")
                          for s in sides)
            if named and literal:
                lines.add(node.lineno)
        if (isinstance(node, ast.Attribute) and node.attr == "__module__"
                and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "type"):
            lines.add(node.lineno)
    return sorted(lines)


def found() -> dict:
    """file -> [(line number, text)] for every file outside backends/ with a branch."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("backends/"):
            continue
        text = path.read_text(encoding="utf-8")
        hits = branches(text)
        if hits:
            src = text.splitlines()
            out[rel] = [(n, src[n - 1].strip()) for n in hits]
    return out


def test_the_rule_sees_each_form_and_ignores_comments_and_docstrings():
    src = '''
def f(nx, X, a):
    """nx.host_arrays and is_tensor(X) in a docstring do not count."""
    # nor nx.name == "torch" in a comment
    if nx.host_arrays:
        pass
    if is_tensor(X):
        pass
    if nx.name == "numpy":
        pass
    if "torch" != est._nx.name:
        pass
    if isinstance(a, torch.Tensor):
        pass
    if type(a).__module__.startswith("torch"):
        pass
    if backend == "numpy" or nx.name in ("numpy",) or nx.issparse(X):
        pass
'''
    assert branches(src) == [5, 7, 9, 11, 13, 15]


def test_backend_identity_branches_outside_backends_stay_within_the_allowed_list():
    hits = found()
    over = []
    for rel, lines in hits.items():
        allowed = len(ALLOWED.get(rel, ()))
        if len(lines) > allowed:
            listing = "\n".join(f"    {rel}:{n}: {t}" for n, t in lines)
            over.append(f"{rel}: {len(lines)} backend-identity lines, {allowed} allowed\n"
                        f"{listing}")
    assert not over, (
        "code outside backends/ decides by backend identity; move the decision into the "
        "backend contract (a NumpyBackend method or attribute that TorchBackend overrides), "
        "or, where it must stay (a compiled host kernel, a host memory layout), list it in "
        "tests/test_backend_branches.py ALLOWED with its reason and in docs/architecture.md:\n"
        + "\n".join(over))
    total = sum(len(v) for v in hits.values())
    assert total <= CEILING
    assert CEILING <= 7  # lower it as branches go; never raise it to let one in


def test_the_allowed_list_names_files_that_exist():
    for rel in ALLOWED:
        assert (ROOT / rel).is_file(), rel
