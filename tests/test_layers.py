"""The import-layer contract of docs/architecture.md, read from the source (no import runs).

Every ``import`` / ``from ... import`` inside ``src/nmfkit`` — at module level and inside
functions alike (a lazy import is still a dependency) — must point to the importer's own layer
or one below it; the import graph has no cycle; nothing imports the package root; ``backends/``
imports nothing else from nmfkit; and a private name (``_x``) is imported only from a module of
the importer's own package directory.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "src" / "nmfkit"

#: layer of each module, bottom (0) to top; a module missing here fails the test, so that a
#: new module is placed on purpose
LAYERS = {
    "backends": ["nmfkit.backends", "nmfkit.backends.*"],
    "math": ["nmfkit._version", "nmfkit._threads", "nmfkit.losses", "nmfkit.metrics",
             "nmfkit.penalties", "nmfkit.nnls", "nmfkit.graph", "nmfkit.sparseness",
             "nmfkit._unit_scale", "nmfkit.robust"],
    "data": ["nmfkit._validation", "nmfkit.init", "nmfkit.masked", "nmfkit._file_checks",
             "nmfkit._tables", "nmfkit._model_checks", "nmfkit.model_io", "nmfkit.checkpoint"],
    "solvers": ["nmfkit.solvers", "nmfkit.solvers.*", "nmfkit.nsnmf"],
    "engine": ["nmfkit._fit", "nmfkit._extensions", "nmfkit._blocks", "nmfkit._engine",
               "nmfkit._masked_fit", "nmfkit._robust_fit", "nmfkit._restarts",
               "nmfkit._batched_runs"],
    "estimators": ["nmfkit._topics", "nmfkit._estimator", "nmfkit._minibatch_*",
                   "nmfkit.minibatch", "nmfkit.impute", "nmfkit._topn", "nmfkit._ratings_eval",
                   "nmfkit.recommend"],
    "applications": ["nmfkit.clustering", "nmfkit.plot", "nmfkit._consensus",
                     "nmfkit._cv", "nmfkit._rank_verdict", "nmfkit.selection",
                     "nmfkit.outofcore", "nmfkit.distributed", "nmfkit.batched", "nmfkit.io",
                     "nmfkit.text", "nmfkit.datasets", "nmfkit.report", "nmfkit.cli",
                     "nmfkit.cli.*"],
    "package": ["nmfkit", "nmfkit.__main__"],
}
ORDER = list(LAYERS)


def _modules() -> dict:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


MODULES = _modules()


def layer_of(module: str) -> int:
    for i, layer in enumerate(ORDER):
        for pattern in LAYERS[layer]:
            if module == pattern or (pattern.endswith("*") and module.startswith(pattern[:-1])
                                     and module != pattern[:-2]):
                return i
    raise AssertionError(f"{module} has no layer in tests/test_layers.py: place it on purpose")


def _package(module: str) -> str:
    path = MODULES[module]
    name = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return name


def imports() -> list:
    """(importer, imported module, [names], line) for every nmfkit import in src/nmfkit."""
    out = []
    for module, path in MODULES.items():
        package = _package(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "nmfkit":
                        out.append((module, alias.name, [], node.lineno))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "nmfkit":
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in MODULES:  # "from . import _fit": the module itself
                        out.append((module, sub, [], node.lineno))
                    else:
                        out.append((module, target, [alias.name], node.lineno))
    return out


IMPORTS = imports()


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_imports_point_down():
    bad = [f"{a} ({ORDER[layer_of(a)]}) imports {b} ({ORDER[layer_of(b)]}) at line {line}"
           for a, b, _, line in IMPORTS if b in MODULES and layer_of(b) > layer_of(a)]
    assert not bad, "imports that point up a layer:\n" + "\n".join(bad)


def test_nothing_imports_the_package_root():
    bad = [f"{a}:{line}" for a, b, _, line in IMPORTS
           if b == "nmfkit" and a not in ("nmfkit.__main__",)]
    assert not bad, "modules importing the package root nmfkit: " + ", ".join(bad)


def test_backends_import_nothing_else_from_nmfkit():
    bad = [f"{a}:{line} imports {b}" for a, b, _, line in IMPORTS
           if a.startswith("nmfkit.backends") and not b.startswith("nmfkit.backends")]
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    edges = {m: set() for m in MODULES}
    for a, b, _, _ in IMPORTS:
        if b in MODULES and b != a:
            edges[a].add(b)
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in MODULES:
        if v not in index:
            visit(v)
    assert not cycles, "import cycles (function-level imports included):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_private_names_stay_in_their_package():
    bad = []
    for a, b, names, line in IMPORTS:
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private and b in MODULES and _package(b) != _package(a):
            bad.append(f"{a}:{line} imports {private} from {b}")
    assert not bad, "private names imported from another package:\n" + "\n".join(bad)


@pytest.mark.parametrize("module,expected", [
    ("nmfkit.backends._torch", "backends"), ("nmfkit.solvers.cd", "solvers"),
    ("nmfkit.cli.fit", "applications"), ("nmfkit._minibatch_steps", "estimators"),
])
def test_layer_map_reads_patterns(module, expected):
    if module in MODULES:
        assert ORDER[layer_of(module)] == expected
