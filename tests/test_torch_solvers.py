"""``anls`` (block principal pivoting) and ``pgd`` on the torch backend (issue 7), on CPU torch:
numpy and torch objective trajectories agree, sparse == dense on torch, tensors come back in
their dtype, float32 torch ≈ float64 numpy, and the BPP kernel matches numpy's on hard cases
(cold start, dead components, more than 62 components)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import sparse_abs_gauss

torch = pytest.importorskip("torch")

from nmfkit import NMF, _fit
from nmfkit.backends import get_backend
from nmfkit.init import initialize
from nmfkit.nnls import nnls_bpp
from nmfkit.penalties import sklearn_penalties
from nmfkit.solvers import get_solver
from nmfkit.solvers.pgd import accelerated_pg

SOLVERS = ["anls", "pgd"]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _data(n=40, m=30, seed=0):
    return sparse_abs_gauss(n, m, seed, cut=0.5)


def _pair(solver, sparse, penalized, iters=20, **opts):
    """numpy and torch fits of X from the same start: (numpy result, torch result)."""
    X = _data()
    Xn = sp.csr_matrix(X) if sparse else X
    W, H = initialize(X, 5, init="random", random_state=0)
    pens = sklearn_penalties(0.01 if penalized else 0.0, 0.02 if penalized else 0.0, 0.5,
                             *X.shape)
    kw = {"solver": solver, "beta": 2.0, "tol": 0, "max_iter": iters,
          "solver_options": opts or None,
          "penalties_W": [p for p in pens if p.factor == "W"],
          "penalties_H": [p for p in pens if p.factor == "H"]}
    r1 = _fit.factorize(Xn, W.copy(), H.copy(), nx=get_backend(Xn), **kw)
    nx = get_backend(backend="torch")
    r2 = _fit.factorize(nx.asarray(Xn), torch.as_tensor(W.copy()), torch.as_tensor(H.copy()),
                        nx=nx, **kw)
    return r1, r2


@pytest.mark.parametrize("penalized", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("solver", SOLVERS)
def test_trajectory_numpy_equals_torch(solver, sparse, penalized):
    r1, r2 = _pair(solver, sparse, penalized)
    assert isinstance(r2.W, torch.Tensor) and r2.W.dtype == torch.float64
    assert len(r2.history["objective"]) == len(r1.history["objective"]) == 21
    np.testing.assert_allclose(r2.history["objective"], r1.history["objective"], rtol=1e-8)
    np.testing.assert_allclose(r2.H.numpy(), r1.H, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(r2.W.numpy(), r1.W, rtol=1e-7, atol=1e-10)
    obj = np.asarray(r2.history["objective"])
    assert np.all(np.diff(obj) <= 1e-12 * obj[0])  # monotone on torch as on numpy


@pytest.mark.parametrize("solver", SOLVERS)
def test_trajectory_without_extrapolation(solver):
    r1, r2 = _pair(solver, False, False, iters=10, extrapolate=False)
    np.testing.assert_allclose(r2.history["objective"], r1.history["objective"], rtol=1e-8)


@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_equals_dense_on_torch(solver):
    X = torch.as_tensor(_data(seed=1))
    kw = {"solver": solver, "random_state": 0, "max_iter": 20, "tol": 0, "init": "random",
          "alpha_W": 0.01, "l1_ratio": 0.5}
    Wd = NMF(4, **kw).fit_transform(X)
    Ws = NMF(4, **kw).fit_transform(X.to_sparse_csr())
    torch.testing.assert_close(Ws, Wd, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("solver", SOLVERS)
def test_tensor_in_tensor_out_same_dtype(solver, dtype):
    X = torch.as_tensor(_data(), dtype=dtype)
    est = NMF(4, solver=solver, random_state=0, max_iter=30)
    W = est.fit_transform(X)
    assert isinstance(W, torch.Tensor) and W.dtype == dtype and W.device == X.device
    assert isinstance(est.components_, torch.Tensor) and est.components_.dtype == dtype
    assert bool((W >= 0).all()) and bool(torch.isfinite(W).all())
    T = est.transform(X)  # transform on a torch model: the same solver with H fixed
    assert isinstance(T, torch.Tensor) and T.dtype == dtype
    ref = NMF(4, solver=solver, random_state=0, max_iter=30).fit(X.numpy().astype(np.float64))
    rtol = 1e-3 if dtype == torch.float32 else 1e-8
    np.testing.assert_allclose(est.reconstruction_err_, ref.reconstruction_err_, rtol=rtol)
    if dtype == torch.float64:  # float32: same error, factors only near (not unique)
        np.testing.assert_allclose(T.numpy(), ref.transform(X.numpy()), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_torch_close_to_float64_numpy(solver):
    X = _data()
    a = NMF(4, solver=solver, random_state=0, max_iter=20, tol=0, init="nndsvda")
    b = NMF(4, solver=solver, random_state=0, max_iter=20, tol=0, init="nndsvda")
    Wa = a.fit_transform(X)
    Wb = b.fit_transform(torch.as_tensor(X, dtype=torch.float32))
    assert Wb.dtype == torch.float32
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-3)
    np.testing.assert_allclose(Wb.double().numpy(), Wa, rtol=1e-2, atol=1e-3 * Wa.max())


def test_anls_transform_is_exact_nnls_on_torch():
    X = _data()
    est = NMF(4, solver="anls", random_state=0, max_iter=50).fit(torch.as_tensor(X))
    H = est.components_.numpy()
    W = est.transform(torch.as_tensor(X)).numpy()
    ref = nnls_bpp(H @ H.T, H @ X.T).T  # the exact NNLS solution, on numpy
    np.testing.assert_allclose(W, ref, rtol=1e-9, atol=1e-12)


def test_numpy_input_with_backend_torch_returns_numpy():
    X = _data()
    W = NMF(3, solver="pgd", backend="torch", random_state=0, max_iter=10).fit_transform(X)
    assert isinstance(W, np.ndarray) and W.dtype == np.float64


@pytest.mark.parametrize("k,N", [(6, 60), (70, 40)])
@pytest.mark.parametrize("warm", [False, True])
def test_bpp_torch_matches_numpy(k, N, warm):
    """Cold and warm starts, a dead component (singular G_PP: the pseudo-inverse path) and
    k > 62 (passive-set keys over two int64 words)."""
    rng = np.random.default_rng(k)
    U = rng.random((k, 2 * k))  # full rank but for the dead component: a unique solution
    U[1] = 0.0  # a dead component
    M = rng.random((2 * k, N)) - 0.3
    G, R = U @ U.T, U @ M
    init = rng.random((k, N)) if warm else None
    nx = get_backend(backend="torch")
    ref = nnls_bpp(G, R, 0.05, 0.0, init=init)  # warm: G_PP singular at the first solve
    out = nnls_bpp(torch.as_tensor(G), torch.as_tensor(R), 0.05, 0.0,
                   init=None if init is None else torch.as_tensor(init), nx=nx)
    assert out.dtype == torch.float64 and bool((out >= 0).all())
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-10)
    # the solution is optimal: KKT conditions of min ½fᵀG'f − (r − l1)ᵀf, f ≥ 0
    Y = G @ ref - (R - 0.05)
    assert Y.min() > -1e-9 and np.abs(ref * Y).max() < 1e-9


def test_accelerated_pg_same_on_both_backends():
    rng = np.random.default_rng(3)
    U = rng.random((5, 20))
    G, R = U @ U.T, U @ rng.random((20, 30))
    F0 = rng.random((5, 30))
    a = accelerated_pg(F0, G, R, 0.01, 0.02, 30, 0.0)
    b = accelerated_pg(torch.as_tensor(F0), torch.as_tensor(G), torch.as_tensor(R), 0.01, 0.02,
                       30, 0.0, nx=get_backend(backend="torch"))
    np.testing.assert_allclose(b.numpy(), a, rtol=1e-10, atol=1e-13)

    def val(F):
        return 0.5 * np.vdot(F, G @ F) - np.vdot(R, F) + 0.01 * F.sum() + 0.01 * np.vdot(F, F)

    assert val(a) < val(F0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_registry_accepts_torch(solver):
    assert "torch" in get_solver(solver, beta=2.0, backend="torch").backends


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
