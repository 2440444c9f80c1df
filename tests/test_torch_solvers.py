"""``anls`` (block principal pivoting) and ``pgd`` on the torch backend (issue 7), what only
torch has: the device-to-host reads of PGD and BPP (per inner step / pivoting round, never
per column). Their trajectories, sparse == dense, dtypes and the BPP / PGD kernels against
numpy run on numpy and torch alike (the ``backend`` fixture): tests/test_solver_backends.py
and tests/test_estimator_backends.py."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nmfkit.backends import get_backend
from nmfkit.nnls import nnls_bpp
from nmfkit.solvers.pgd import accelerated_pg

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class _HostReads:
    """Counts explicit device-to-host reads (Tensor.item/tolist/numpy/__bool__/__float__)."""

    NAMES = ("item", "tolist", "numpy", "__bool__", "__float__")

    def __init__(self, monkeypatch):
        self.n = 0
        for name in self.NAMES:
            orig = getattr(torch.Tensor, name)

            def wrapped(t, *a, _orig=orig, **kw):
                self.n += 1
                return _orig(t, *a, **kw)

            monkeypatch.setattr(torch.Tensor, name, wrapped)


def test_pgd_host_reads_one_per_inner_step(monkeypatch):
    """On torch, accelerated_pg reads the host only through nx.floats (once per inner step,
    twice on a restart) and once for the step size — never per component or column."""
    rng = np.random.default_rng(4)
    U = rng.random((6, 40))
    G, R = torch.as_tensor(U @ U.T), torch.as_tensor(U @ rng.random((40, 50)))
    F0 = torch.as_tensor(rng.random((6, 50)))
    nx = get_backend(backend="torch")
    calls = {"floats": 0}
    orig_floats = type(nx).floats

    def floats(*v):
        calls["floats"] += 1
        return orig_floats(*v)

    monkeypatch.setattr(type(nx), "floats", staticmethod(floats))
    reads = _HostReads(monkeypatch)
    n_inner = 15
    accelerated_pg(F0, G, R, 0.0, 0.0, n_inner, 0.0, nx=nx)
    assert 1 + 1 <= calls["floats"] <= 1 + 2 * n_inner
    assert reads.n == calls["floats"] + 1  # + the k×k G copied once for λ_max


def test_bpp_host_reads_per_round_not_per_column(monkeypatch):
    rng = np.random.default_rng(5)
    U = rng.random((8, 30))
    G, R = torch.as_tensor(U @ U.T), torch.as_tensor(U @ (rng.random((30, 400)) - 0.3))
    nx = get_backend(backend="torch")
    rounds = {"n": 0}
    orig = type(nx).flatnonzero

    def flatnonzero(a):
        rounds["n"] += 1
        return orig(a)

    monkeypatch.setattr(type(nx), "flatnonzero", staticmethod(flatnonzero))
    reads = _HostReads(monkeypatch)
    nnls_bpp(G, R, nx=nx)
    assert rounds["n"] >= 2
    # two scale reads, then at most one explicit read per pivoting round (singular check)
    assert reads.n <= 2 + rounds["n"]
