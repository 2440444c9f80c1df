"""The solvers, kernels, losses and batched restarts on each backend (the ``backend`` fixture:
numpy, and CPU torch where installed), below the estimators: from the same start, the
per-iteration objectives and factors equal numpy float64's (on numpy: the fit is
reproducible), the objective is monotone, frozen rows stay bit for bit. Folded from
tests/test_torch_backend.py, test_torch_solvers.py, test_torch_extensions.py and
test_torch_kl_masked.py (each test names the one it came from); the torch-only checks (host
synchronisation, SDDMM fallback, device memory, the KL safeguard's bisection) stay there."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import Recorder
from conftest import sparse_abs_gauss

from nmfkit import _batched_runs, _fit
from nmfkit.backends import get_backend
from nmfkit.batched import batched_factorize
from nmfkit.graph import knn_affinity
from nmfkit.init import initialize
from nmfkit.losses import beta_divergence
from nmfkit.nnls import hals_sweep, nnls_bpp
from nmfkit.penalties import L1, Graph, sklearn_penalties
from nmfkit.solvers import get_solver
from nmfkit.solvers.pgd import accelerated_pg


def _data(n=30, m=20, seed=0, zeros=True):
    """|N(0, 1)|, the entries below 0.5 set to zero unless ``zeros`` is False."""
    return sparse_abs_gauss(n, m, seed, cut=0.5 if zeros else 0.0)


def _factorize_pair(backend, X, W, H, sparse=False, **kw):
    """The same _fit.factorize on numpy float64 and on the backend, from the start (W, H)."""
    Xn = sp.csr_matrix(X) if sparse else X
    r1 = _fit.factorize(Xn, W.copy(), H.copy(), nx=get_backend(Xn), **kw)
    r2 = _fit.factorize(backend.asarray(Xn), backend.asarray(W.copy()),
                        backend.asarray(H.copy()), nx=backend.nx, **kw)
    return r1, r2


# ------------------------------------------------------------- from test_torch_backend.py
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
def test_mu_trajectory_equals_numpy(backend, beta, sparse):
    """test_torch_backend.py::test_mu_trajectory_numpy_equals_torch"""
    # β ≤ 0 needs X > 0 everywhere: shifted positive, a sparse X then stores every entry
    # (the CSR code path still runs: sampled products at the stored entries)
    X = _data(zeros=beta > 0) + (0.1 if beta <= 0 else 0.0)
    W, H = initialize(X, 4, init="random", random_state=0)
    r1, r2 = _factorize_pair(backend, X, W, H, sparse, solver="mu", beta=beta, tol=0,
                             max_iter=15)
    assert backend.is_array(r2.W, "float64")
    np.testing.assert_allclose(r2.history["objective"], r1.history["objective"], rtol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(r2.W), r1.W, rtol=1e-8, atol=1e-12)
    # monotone on each backend
    assert np.all(np.diff(r2.history["objective"]) <= 1e-12 * r2.history["objective"][0])


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    "opts", [{"inner": False, "extrapolate": False}, {}, {"extrapolate": True}]
)
def test_cd_trajectory_equals_numpy(backend, sparse, opts):
    """test_torch_backend.py::test_cd_trajectory_numpy_equals_torch"""
    X = _data()
    W, H = initialize(X, 4, init="random", random_state=0)
    r1, r2 = _factorize_pair(backend, X, W, H, sparse, solver="cd", beta=2.0, tol=0,
                             max_iter=15, solver_options=opts or None)
    np.testing.assert_allclose(r2.history["objective"], r1.history["objective"], rtol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(r2.H), r1.H, rtol=1e-8, atol=1e-12)


def test_losses_match_numpy(backend):
    """test_torch_backend.py::test_losses_on_device_match_numpy"""
    X = _data() + 0.0
    W, H = initialize(X, 4, init="random", random_state=0)
    Wb, Hb = backend.asarray(W), backend.asarray(H)
    for beta in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0):
        Xb = X + 0.1 if beta <= 0 else X
        ref = beta_divergence(Xb, W, H, beta)
        got = beta_divergence(backend.asarray(Xb), Wb, Hb, beta)
        assert got == pytest.approx(ref, rel=1e-12)
        if beta > 0:
            got_s = beta_divergence(backend.asarray(Xb, sparse=True), Wb, Hb, beta)
            assert got_s == pytest.approx(beta_divergence(sp.csr_matrix(Xb), W, H, beta),
                                          rel=1e-12)


def test_hals_kernel_matches_numpy_and_keeps_dead_components(backend):
    """test_torch_backend.py::test_hals_kernel_matches_numpy_and_keeps_dead_components"""
    rng = np.random.RandomState(0)
    U = np.abs(rng.randn(4, 30))
    U[2] = 0.0  # a dead component: G[2, 2] = 0
    M = np.abs(rng.randn(30, 12))
    G, R = U @ U.T, U @ M
    F = np.abs(rng.randn(4, 12))
    Fb = backend.asarray(F.copy())
    hals_sweep(F, G, R, 0.1, 0.2)
    hals_sweep(Fb, backend.asarray(G), backend.asarray(R), 0.1, 0.2, nx=get_backend(Fb))
    np.testing.assert_allclose(backend.to_numpy(Fb), F, rtol=1e-12)
    assert np.isfinite(backend.to_numpy(Fb)).all()


@pytest.mark.parametrize("solver", ["mu", "cd"])
@pytest.mark.parametrize("sparse", [False, True])
def test_batched_restarts_match_single_fits(backend, solver, sparse):
    """test_torch_backend.py::test_batched_restarts_match_single_fits"""
    X = _data(40, 25)
    Xin = sp.csr_matrix(X) if sparse else X
    r = batched_factorize(Xin, 4, n_restarts=3, solver=solver, random_state=0, max_iter=15,
                          tol=0)
    assert r.W.shape == (3, 40, 4) and r.H.shape == (3, 4, 25) and r.n_iter == 15
    for b in range(3):
        W, H = initialize(Xin, 4, init="random", random_state=int(r.seeds[b]))
        plain = {"inner": False, "extrapolate": False} if solver == "cd" else None
        s = _fit.factorize(Xin, W, H, solver=solver, beta=2.0, nx=get_backend(Xin), tol=0,
                           max_iter=15, solver_options=plain)
        assert r.objectives[b] == pytest.approx(s.objective, rel=1e-10)
        np.testing.assert_allclose(r.W[b], s.W, rtol=1e-8, atol=1e-12)
    rt = batched_factorize(backend.asarray(X, sparse=sparse), 4, seeds=r.seeds, solver=solver,
                           max_iter=15, tol=0)
    assert backend.is_array(rt.W)
    np.testing.assert_allclose(rt.objectives, r.objectives, rtol=1e-10)
    Wb, Hb = r.best_factors()
    assert r.objectives[r.best] == r.objectives.min() and Wb.shape == (40, 4)
    hist = np.array(r.history["objective"])
    assert np.all(np.diff(hist, axis=0) <= 1e-9 * hist[0])


def test_batched_errors_and_stopping(backend):
    """test_torch_backend.py::test_batched_errors_and_stopping"""
    X = _data()
    with pytest.raises(ValueError, match="frobenius"):
        batched_factorize(X, 2, beta_loss="kullback-leibler")
    with pytest.raises(ValueError, match="solver must be"):
        batched_factorize(X, 2, solver="anls")
    with pytest.raises(ValueError, match="Negative values"):
        batched_factorize(-X - 1, 2)
    r = batched_factorize(X, 3, n_restarts=2, max_iter=500, tol=1e-3, random_state=0)
    assert r.n_iter < 500
    rn = batched_factorize(X, 3, n_restarts=2, max_iter=10, tol=0, random_state=0,
                           backend=backend.name)
    assert isinstance(rn.W, np.ndarray)


# ------------------------------------------------------------ from test_torch_solvers.py
ANLS_PGD = ["anls", "pgd"]


def _anls_pgd_pair(backend, solver, sparse, penalized, iters=20, **opts):
    X = _data(40, 30)
    W, H = initialize(X, 5, init="random", random_state=0)
    pens = sklearn_penalties(0.01 if penalized else 0.0, 0.02 if penalized else 0.0, 0.5,
                             *X.shape)
    return _factorize_pair(backend, X, W, H, sparse, solver=solver, beta=2.0, tol=0,
                           max_iter=iters, solver_options=opts or None,
                           penalties_W=[p for p in pens if p.factor == "W"],
                           penalties_H=[p for p in pens if p.factor == "H"])


@pytest.mark.parametrize("penalized", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("solver", ANLS_PGD)
def test_anls_pgd_trajectory_equals_numpy(backend, solver, sparse, penalized):
    """test_torch_solvers.py::test_trajectory_numpy_equals_torch"""
    r1, r2 = _anls_pgd_pair(backend, solver, sparse, penalized)
    assert backend.is_array(r2.W, "float64")
    assert len(r2.history["objective"]) == len(r1.history["objective"]) == 21
    np.testing.assert_allclose(r2.history["objective"], r1.history["objective"],
                               rtol=backend.rtol())
    np.testing.assert_allclose(backend.to_numpy(r2.H), r1.H, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(r2.W), r1.W, rtol=1e-7, atol=1e-10)
    obj = np.asarray(r2.history["objective"])
    assert np.all(np.diff(obj) <= 1e-12 * obj[0])  # monotone on each backend


@pytest.mark.parametrize("solver", ANLS_PGD)
def test_anls_pgd_trajectory_without_extrapolation(backend, solver):
    """test_torch_solvers.py::test_trajectory_without_extrapolation"""
    r1, r2 = _anls_pgd_pair(backend, solver, False, False, iters=10, extrapolate=False)
    np.testing.assert_allclose(r2.history["objective"], r1.history["objective"],
                               rtol=backend.rtol())


@pytest.mark.parametrize("k,N", [(6, 60), (70, 40)])
@pytest.mark.parametrize("warm", [False, True])
def test_bpp_matches_numpy(backend, k, N, warm):
    """test_torch_solvers.py::test_bpp_torch_matches_numpy: cold and warm starts, a dead
    component (singular G_PP: the pseudo-inverse path) and k > 62 (passive-set keys over two
    int64 words)."""
    rng = np.random.default_rng(k)
    U = rng.random((k, 2 * k))  # full rank but for the dead component: a unique solution
    U[1] = 0.0  # a dead component
    M = rng.random((2 * k, N)) - 0.3
    G, R = U @ U.T, U @ M
    init = rng.random((k, N)) if warm else None
    ref = nnls_bpp(G, R, 0.05, 0.0, init=init)  # warm: G_PP singular at the first solve
    out = nnls_bpp(backend.asarray(G), backend.asarray(R), 0.05, 0.0,
                   init=None if init is None else backend.asarray(init), nx=backend.nx)
    assert backend.is_array(out, "float64") and bool((out >= 0).all())
    np.testing.assert_allclose(backend.to_numpy(out), ref, atol=1e-10)
    # the solution is optimal: KKT conditions of min ½fᵀG'f − (r − l1)ᵀf, f ≥ 0
    Y = G @ ref - (R - 0.05)
    assert Y.min() > -1e-9 and np.abs(ref * Y).max() < 1e-9


def test_accelerated_pg_same_on_both_backends(backend):
    """test_torch_solvers.py::test_accelerated_pg_same_on_both_backends"""
    rng = np.random.default_rng(3)
    U = rng.random((5, 20))
    G, R = U @ U.T, U @ rng.random((20, 30))
    F0 = rng.random((5, 30))
    a = accelerated_pg(F0, G, R, 0.01, 0.02, 30, 0.0)
    b = accelerated_pg(backend.asarray(F0), backend.asarray(G), backend.asarray(R), 0.01, 0.02,
                       30, 0.0, nx=backend.nx)
    np.testing.assert_allclose(backend.to_numpy(b), a, rtol=1e-10, atol=1e-13)

    def val(F):
        return 0.5 * np.vdot(F, G @ F) - np.vdot(R, F) + 0.01 * F.sum() + 0.01 * np.vdot(F, F)

    assert val(a) < val(F0)


@pytest.mark.parametrize("solver", ANLS_PGD)
def test_registry_accepts_the_backend(backend, solver):
    """test_torch_solvers.py::test_registry_accepts_torch"""
    assert backend.name in get_solver(solver, beta=2.0, backend=backend.name).backends


# --------------------------------------------------------- from test_torch_kl_masked.py
def _kl_pair(backend, X, sparse, alpha=0.0, iters=15, **opts):
    """Per-iteration objectives (numpy, backend) and results of KL-CD fits from one start."""
    W, H = initialize(X, 4, init="random", random_state=0)
    pens = sklearn_penalties(alpha, alpha, 0.5, *X.shape)
    rec1, rec2 = Recorder(backend), Recorder(backend)
    kw = dict(solver="cd", beta=1.0, tol=0, max_iter=iters, solver_options=opts or None,
              penalties_W=[p for p in pens if p.factor == "W"],
              penalties_H=[p for p in pens if p.factor == "H"])
    Xn = sp.csr_matrix(X) if sparse else X
    r1 = _fit.factorize(Xn, W.copy(), H.copy(), nx=get_backend(Xn), callback=rec1, **kw)
    r2 = _fit.factorize(backend.asarray(Xn), backend.asarray(W.copy()),
                        backend.asarray(H.copy()), nx=backend.nx, callback=rec2, **kw)
    loss = lambda W_, H_: beta_divergence(X, W_, H_, 1.0)  # noqa: E731
    return rec1.objectives(loss, pens), rec2.objectives(loss, pens), r1, r2


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.05])
@pytest.mark.parametrize("kernel", ["numpy", "auto"])
def test_kl_cd_trajectory_equals_numpy(backend, sparse, alpha, kernel):
    """test_torch_kl_masked.py::test_kl_cd_trajectory_numpy_equals_torch"""
    # "numpy": the vectorised numpy kernel (component-outer, as torch); "auto": numba when
    # installed (row-outer): the same updates since rows do not interact given the other factor
    f1, f2, r1, r2 = _kl_pair(backend, _data(), sparse, alpha, kernel=kernel)
    assert backend.is_array(r2.W, "float64")
    assert len(f1) == len(f2) == 15
    np.testing.assert_allclose(f2, f1, rtol=backend.rtol())
    np.testing.assert_allclose(backend.to_numpy(r2.H), r1.H, rtol=1e-6, atol=1e-9)
    # monotone on each backend (MU warm-up and Newton sweeps alike)
    assert np.all(np.diff(f2) <= 1e-12 * f2[0])


def test_kl_cd_more_newton_steps_no_warmup_and_shuffle(backend):
    """test_torch_kl_masked.py::test_kl_cd_more_newton_steps_no_warmup_and_shuffle"""
    f1, f2, _, _ = _kl_pair(backend, _data(seed=1), True, 0.02, newton_steps=3, mu_warmup=0,
                            kernel="numpy")
    np.testing.assert_allclose(f2, f1, rtol=backend.rtol())
    assert np.all(np.diff(f2) <= 1e-12 * f2[0])
    X = _data(seed=2)
    W, H = initialize(X, 4, init="random", random_state=0)
    a, b = _factorize_pair(backend, X, W, H, solver="cd", beta=1.0, tol=0, max_iter=10,
                           shuffle=True, random_state=3)
    np.testing.assert_allclose(b.history["objective"], a.history["objective"],
                               rtol=backend.rtol())


def test_kl_cd_frozen_components(backend):
    """test_torch_kl_masked.py::test_kl_cd_frozen_components_on_torch"""
    X = _data()
    W, H = initialize(X, 4, init="random", random_state=0)
    a, b = _factorize_pair(backend, X, W, H, solver="cd", beta=1.0, tol=0, max_iter=8,
                           frozen_W=(1,), frozen_H=(2,))
    np.testing.assert_allclose(b.history["objective"], a.history["objective"],
                               rtol=backend.rtol())
    assert np.array_equal(backend.to_numpy(b.W[:, 1]), W[:, 1])
    assert np.array_equal(backend.to_numpy(b.H[2]), H[2])


# --------------------------------------------------------- from test_torch_extensions.py
XE = sparse_abs_gauss(30, 20, 0, cut=0.4)
A_W = knn_affinity(XE, 4)


@pytest.mark.parametrize("solver", ["mu", "cd"])
def test_batched_runs_keep_frozen_W_columns(backend, solver):
    """test_torch_extensions.py::test_batched_runs_keep_frozen_W_columns: frozen_W (used by
    internal callers) in the batched kernels, against _fit.factorize"""
    nx = backend.nx
    Xb = backend.asarray(XE)
    starts = [tuple(backend.asarray(a) for a in initialize(XE, 3, init="random",
                                                           random_state=s))
              for s in (0, 1)]
    kw = dict(solver=solver, beta=2.0, nx=nx, tol=0, max_iter=12, frozen_W=(1,), frozen_H=(2,))
    out = _batched_runs.factorize_starts(Xb, starts, **kw)
    for (W0, H0), r in zip(starts, out):
        s = _fit.factorize(Xb, backend.asarray(backend.to_numpy(W0).copy()),
                           backend.asarray(backend.to_numpy(H0).copy()), **kw)
        assert backend.array_equal(r.W[:, 1], W0[:, 1]) and backend.array_equal(r.H[2], H0[2])
        np.testing.assert_allclose(r.history["objective"], s.history["objective"], rtol=1e-10)


def test_batched_runs_and_exact_stop(backend):
    """test_torch_extensions.py::test_batched_runs_on_numpy_and_exact_stop (numpy there; here
    on each backend): a zero objective stops at once"""
    nx = backend.nx
    Xs = backend.asarray(XE, sparse=True)
    starts = [initialize(XE, 3, init="random", random_state=s) for s in (0, 1)]
    kw = dict(solver="cd", beta=2.0, nx=nx, tol=1e-3, max_iter=100,
              penalties_W=[Graph(0.5, "W", affinity=A_W), L1(0.1, "W")], frozen_H=(1,))
    out = _batched_runs.factorize_starts(
        Xs, [(backend.asarray(W0), backend.asarray(H0)) for W0, H0 in starts], **kw)
    for (W0, H0), r in zip(starts, out):
        s = _fit.factorize(Xs, backend.asarray(W0.copy()), backend.asarray(H0.copy()), **kw)
        assert (r.n_iter, r.stop_reason) == (s.n_iter, s.stop_reason)
        np.testing.assert_allclose(r.history["objective"], s.history["objective"], rtol=1e-10)
        assert np.array_equal(backend.to_numpy(r.H[1]), H0[1])
    Z = backend.asarray(np.zeros((6, 4)))
    zero = [(backend.asarray(np.zeros((6, 2))), backend.asarray(np.zeros((2, 4))))] * 2
    res = _batched_runs.factorize_starts(Z, zero, solver="mu", beta=2.0, nx=nx, max_iter=50)
    assert [(r.n_iter, r.stop_reason, r.objective) for r in res] == [(1, "exact", 0.0)] * 2


def test_batched_runs_ctrl_c_returns_the_last_complete_iteration(backend, monkeypatch):
    """test_torch_extensions.py::test_batched_runs_ctrl_c_returns_the_last_complete_iteration"""

    class Pressed(_fit._DeferredInterrupt):  # Ctrl-C arrives during the first iteration
        def __init__(self):
            super().__init__()
            self.requested = True

    monkeypatch.setattr(_fit, "_DeferredInterrupt", Pressed)
    Xb = backend.asarray(XE)
    starts = [(backend.asarray(np.full((30, 2), 0.5)),
               backend.asarray(np.full((2, 20), 0.5 + 0.1 * s))) for s in range(2)]
    with pytest.warns(RuntimeWarning, match="interrupted by the user after 1"):
        res = _batched_runs.factorize_starts(Xb, starts, solver="mu", beta=2.0,
                                             nx=get_backend(Xb), max_iter=50)
    assert [(r.n_iter, r.stop_reason) for r in res] == [(1, "interrupted")] * 2
    assert all(len(r.history["objective"]) == 2 for r in res)
