"""Properties of the issue-3 solvers: ANLS (block principal pivoting), projected gradient,
accelerated HALS ("cd") and KL coordinate descent, plus ``solver="auto"`` and ``n_jobs``.

Each property is checked on small problems with the exact objective (nmfkit.losses +
penalty values, never the solvers' cheap forms): non-increasing objective per outer
iteration, exact-rank recovery, dense == sparse, float32 ≈ float64, BPP == scipy's NNLS.
"""

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp

from nmfkit import NMF, non_negative_factorization
from nmfkit.losses import beta_divergence
from nmfkit.nnls import nnls_bpp
from nmfkit.penalties import sklearn_penalties
from nmfkit.solvers._auto import resolve_solver
from nmfkit.solvers._kl_kernels import HAVE_NUMBA

FROB = [
    ("anls", None),
    ("anls", {"extrapolate": False, "warm_start": False}),
    ("pgd", None),
    ("pgd", {"extrapolate": False}),
    ("cd", None),  # plain HALS, scikit-learn's trajectory
    ("cd", {"inner": True}),  # compiled column-wise sweeps when numba is installed
    ("cd", {"inner": True, "kernel": "numpy"}),
    ("cd", {"extrapolate": True}),
    ("cd", {"inner": True, "extrapolate": True}),  # what solver="auto" uses
]
KL_KERNELS = ["numpy"] + (["numba"] if HAVE_NUMBA else [])


def _lowrank(n=40, m=30, k=4, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) @ rng.random((k, m))
    if noise:
        X += noise * rng.random((n, m))
    return X


def _counts(n=40, m=30, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, m, density=density, random_state=seed, format="csr")
    X.data = rng.integers(1, 6, X.nnz).astype(float)
    return X


def _start(X, k, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.random((X.shape[0], k)).astype(dtype), rng.random((k, X.shape[1])).astype(dtype)


def _exact_objectives(X, k, solver, beta, opts, alpha=0.0, l1_ratio=0.0, max_iter=30):
    """The exact objective after every outer iteration of a fit."""
    pens = sklearn_penalties(alpha, "same", l1_ratio, *X.shape)
    W0, H0 = _start(X, k)
    out = []

    def penalty(W, H):
        return sum(p.value(W.T if p.factor == "W" else H) for p in pens)

    def cb(info):
        out.append(beta_divergence(X, info.W, info.H, beta) + penalty(info.W, info.H))

    NMF(k, init="custom", solver=solver, beta_loss=beta, tol=0, max_iter=max_iter,
        alpha_W=alpha, l1_ratio=l1_ratio, callback=cb, solver_options=opts).fit_transform(
        X, W=W0, H=H0)
    out.insert(0, beta_divergence(X, W0, H0, beta) + penalty(W0, H0))
    return np.array(out)


# ---------------------------------------------------------------- NNLS kernel
@pytest.mark.parametrize("seed", range(6))
def test_bpp_equals_scipy_nnls(seed):
    rng = np.random.default_rng(seed)
    m, k, N = 25, 7, 12
    U = rng.standard_normal((m, k))
    M = rng.standard_normal((m, N))
    F = nnls_bpp(U.T @ U, U.T @ M)
    ref = np.stack([scipy.optimize.nnls(U, M[:, j])[0] for j in range(N)], axis=1)
    np.testing.assert_allclose(F, ref, atol=1e-9)
    # a warm start from the solution (or from anything) gives the same answer
    np.testing.assert_allclose(nnls_bpp(U.T @ U, U.T @ M, init=ref), ref, atol=1e-9)
    np.testing.assert_allclose(nnls_bpp(U.T @ U, U.T @ M, init=rng.random((k, N))), ref,
                               atol=1e-9)


def test_bpp_with_penalties_matches_augmented_nnls():
    # ½‖Uf − m‖² + ½ l2‖f‖² is NNLS on [U; √l2 I]; the L1 term shifts the linear part
    rng = np.random.default_rng(3)
    m, k, N, l2, l1 = 20, 6, 5, 0.7, 0.3
    U = rng.standard_normal((m, k))
    M = rng.standard_normal((m, N))
    F = nnls_bpp(U.T @ U, U.T @ M, l1=l1, l2=l2)
    Ua = np.vstack([U, np.sqrt(l2) * np.eye(k)])
    # l1 enters as −l1 in U M: absorb it with a shift c solving Uaᵀ c = l1·1
    c = np.linalg.lstsq(Ua.T, np.full(k, l1), rcond=None)[0]
    Ma = np.vstack([M, np.zeros((k, N))]) - c[:, None]
    ref = np.stack([scipy.optimize.nnls(Ua, Ma[:, j])[0] for j in range(N)], axis=1)
    np.testing.assert_allclose(F, ref, atol=1e-8)


def test_bpp_rank_deficient_is_optimal():
    rng = np.random.default_rng(0)
    U = rng.standard_normal((3, 6))  # more unknowns than equations
    M = rng.standard_normal((3, 8))
    F = nnls_bpp(U.T @ U, U.T @ M)
    assert (F >= 0).all()
    for j in range(8):
        ref = scipy.optimize.nnls(U, M[:, j])[0]
        assert np.linalg.norm(U @ F[:, j] - M[:, j]) <= np.linalg.norm(U @ ref - M[:, j]) + 1e-9


def test_bpp_keeps_float32():
    G = np.eye(3, dtype=np.float32)
    R = np.ones((3, 4), dtype=np.float32)
    assert nnls_bpp(G, R).dtype == np.float32


# ---------------------------------------------------------------- monotone objective
@pytest.mark.parametrize("solver,opts", FROB)
@pytest.mark.parametrize("alpha,l1_ratio", [(0.0, 0.0), (0.01, 0.5)])
@pytest.mark.parametrize("sparse", [False, True])
def test_frobenius_objective_non_increasing(solver, opts, alpha, l1_ratio, sparse):
    X = _lowrank(noise=0.3)
    if sparse:
        X[X < 0.8] = 0.0
        X = sp.csr_matrix(X)
    f = _exact_objectives(X, 5, solver, 2.0, opts, alpha, l1_ratio)
    assert np.all(np.diff(f) <= 1e-10 * f[0]), np.diff(f).max()
    assert f[-1] < f[0]


@pytest.mark.parametrize("kernel", KL_KERNELS)
@pytest.mark.parametrize("alpha,l1_ratio", [(0.0, 0.0), (0.01, 0.5)])
@pytest.mark.parametrize("sparse", [False, True])
def test_kl_cd_objective_non_increasing(kernel, alpha, l1_ratio, sparse):
    X = _counts()
    X = X if sparse else X.toarray()
    f = _exact_objectives(X, 4, "cd", 1.0, {"kernel": kernel, "mu_warmup": 2}, alpha, l1_ratio)
    assert np.all(np.diff(f) <= 1e-10 * f[0]), np.diff(f).max()
    assert f[-1] < f[0]


def test_kl_cd_without_warmup_is_monotone_and_reaches_a_kkt_point():
    X = _counts(30, 20, 0.5).toarray()
    f = _exact_objectives(X, 3, "cd", 1.0, {"mu_warmup": 0}, max_iter=300)
    assert np.all(np.diff(f) <= 1e-10 * f[0])
    W0, H0 = _start(X, 3)
    W, H, _ = non_negative_factorization(X, W0, H0, 3, init="custom", solver="cd",
                                         beta_loss=1, tol=0, max_iter=300)
    WH = W @ H
    Q = np.divide(X, WH, out=np.zeros_like(X), where=X > 0)
    gW = np.ones_like(X) @ H.T - Q @ H.T
    gH = W.T @ np.ones_like(X) - W.T @ Q
    for F, g in ((W, gW), (H, gH)):
        pg = np.where(F > 0, g, np.minimum(g, 0))
        assert np.abs(pg).max() < 1e-4 * np.abs(g).max()


# ---------------------------------------------------------------- exact rank
@pytest.mark.parametrize("solver,opts,iters", [
    ("anls", None, 300), ("pgd", None, 800), ("cd", {"extrapolate": True}, 800),
    ("cd", {"inner": True, "extrapolate": True}, 800), ("auto", None, 800),
])
def test_exact_rank_recovery_frobenius(solver, opts, iters):
    X = _lowrank(30, 24, 3, seed=2)
    W, H, _ = non_negative_factorization(X, n_components=3, init="nndsvda", solver=solver,
                                         tol=0, max_iter=iters, solver_options=opts)
    assert np.linalg.norm(X - W @ H) / np.linalg.norm(X) < 1e-6


def test_exact_rank_recovery_kl():
    X = _lowrank(25, 20, 3, seed=4) + 0.01
    rng = np.random.default_rng(0)
    U, V = rng.random((25, 3)), rng.random((3, 20))
    X = U @ V
    W, H, _ = non_negative_factorization(X, n_components=3, init="nndsvda", solver="cd",
                                         beta_loss=1, tol=0, max_iter=1500)
    assert np.linalg.norm(X - W @ H) / np.linalg.norm(X) < 1e-6


# ---------------------------------------------------------------- dense == sparse
# the number of repeated sweeps follows a cost model (nnz for sparse X, n·m for dense), so the
# comparison fixes it with max_inner: then the arithmetic is the same
DENSE_SPARSE = [(s, {**(o or {}), "max_inner": 2} if s in ("cd", "pgd") else o, 2.0)
                for s, o in FROB]


@pytest.mark.parametrize("solver,opts,beta", [*DENSE_SPARSE,
                                              *[("cd", {"kernel": k}, 1.0) for k in KL_KERNELS]])
def test_dense_equals_sparse(solver, opts, beta):
    X = _counts(30, 25, 0.4, seed=5)
    W0, H0 = _start(X, 4)
    kw = dict(init="custom", solver=solver, beta_loss=beta, tol=0, max_iter=15,
              solver_options=opts, alpha_W=0.01, l1_ratio=0.3)
    Wd, Hd, _ = non_negative_factorization(X.toarray(), W0.copy(), H0.copy(), 4, **kw)
    Ws, Hs, _ = non_negative_factorization(X, W0.copy(), H0.copy(), 4, **kw)
    np.testing.assert_allclose(Wd, Ws, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(Hd, Hs, rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------- float32
@pytest.mark.parametrize("solver,opts,beta", [*[(s, o, 2.0) for s, o in FROB],
                                              *[("cd", {"kernel": k}, 1.0) for k in KL_KERNELS]])
def test_float32_close_to_float64(solver, opts, beta):
    X = _lowrank(30, 20, 3, seed=6, noise=0.2)
    W0, H0 = _start(X, 3)
    kw = dict(init="custom", solver=solver, beta_loss=beta, tol=0, max_iter=10,
              solver_options=opts)
    W64, H64, _ = non_negative_factorization(X, W0, H0, 3, **kw)
    W32, H32, _ = non_negative_factorization(X.astype(np.float32), W0.astype(np.float32),
                                             H0.astype(np.float32), 3, **kw)
    assert W32.dtype == np.float32 and H32.dtype == np.float32
    f64 = beta_divergence(X, W64, H64, beta)
    f32 = beta_divergence(X, W32.astype(float), H32.astype(float), beta)
    assert abs(f32 - f64) <= 1e-3 * f64
    np.testing.assert_allclose(W32 @ H32, W64 @ H64, rtol=2e-2, atol=2e-3 * X.max())


# ---------------------------------------------------------------- KL kernels agree
@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed (pip install 'nmfkit[fast]')")
def test_kl_numba_equals_numpy():
    X = _counts(50, 40, 0.3, seed=7)
    W0, H0 = _start(X, 5)
    out = []
    for kernel in ("numba", "numpy"):
        out.append(non_negative_factorization(
            X, W0.copy(), H0.copy(), 5, init="custom", solver="cd", beta_loss=1, tol=0,
            max_iter=20, alpha_W=0.01, l1_ratio=0.5,
            solver_options={"kernel": kernel, "newton_steps": 2})[:2])
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed (pip install 'nmfkit[fast]')")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_hals_sweep_equals_numpy_sweep(dtype):
    from nmfkit.nnls import hals_sweep
    from nmfkit.solvers._hals_kernel import hals_inner_sweeps

    rng = np.random.default_rng(9)
    U = rng.random((6, 30)).astype(dtype)
    G, R = U @ U.T, (U @ rng.random((30, 40))).astype(dtype)
    F1 = rng.random((6, 40)).astype(dtype)
    F2 = F1.copy()
    order = [4, 0, 2, 1, 5]  # component 3 frozen
    hals_sweep(F1, G, R, 0.1, 0.2, order)
    hals_inner_sweeps(F2, G, R, 0.1, 0.2, order, 1, 0.1)
    assert F2.dtype == dtype
    np.testing.assert_allclose(F1, F2, rtol=1e-4 if dtype == np.float32 else 1e-10)
    F3 = F1.copy()
    hals_inner_sweeps(F3, G, R, 0.1, 0.2, order, 30, 0.0)
    assert np.array_equal(F3[3], F1[3])


def test_kl_bad_kernel_option():
    with pytest.raises(ValueError, match="solver_options\\['kernel'\\] must be"):
        NMF(3, solver="cd", beta_loss=1, solver_options={"kernel": "gpu"}).fit(_counts())
    with pytest.raises(ValueError, match="solver_options\\['kernel'\\] must be"):
        NMF(3, solver="cd", solver_options={"kernel": "gpu"}).fit(_counts())


def test_cd_still_rejects_other_betas():
    with pytest.raises(ValueError, match="solver 'cd' does not handle beta_loss = 0.5"):
        NMF(3, solver="cd", beta_loss=0.5).fit(_counts().toarray() + 1)


# ---------------------------------------------------------------- transform = exact NNLS
def test_anls_transform_is_exact_nnls():
    X = _lowrank(30, 20, 4, seed=8, noise=0.3)
    model = NMF(4, solver="anls", init="nndsvda", max_iter=50).fit(X)
    H = model.components_
    W = model.transform(X)
    ref = np.stack([scipy.optimize.nnls(H.T, X[i])[0] for i in range(X.shape[0])])
    np.testing.assert_allclose(W, ref, atol=1e-8)


# ---------------------------------------------------------------- auto and n_jobs
def test_auto_resolution():
    assert resolve_solver(2.0) == "cd"
    assert resolve_solver(1.0, sparse=True) == "cd"
    assert resolve_solver(0.5) == "mu"
    assert resolve_solver(0.0) == "mu"

    class OnlyMU:
        solvers = frozenset({"mu"})

    assert resolve_solver(2.0, penalties=[OnlyMU()]) == "mu"


@pytest.mark.parametrize("beta", [2.0, 1.0, 0.5])
def test_auto_fits(beta):
    X = _counts().toarray() + 0.1
    W = NMF(3, solver="auto", beta_loss=beta, init="nndsvda", max_iter=30).fit_transform(X)
    assert W.shape == (40, 3) and np.isfinite(W).all()


def test_n_jobs_limits_threads():
    from threadpoolctl import threadpool_info

    seen = []

    def cb(info):
        seen.append(max((p["num_threads"] for p in threadpool_info()), default=1))

    X = _lowrank()
    NMF(3, n_jobs=1, max_iter=3, tol=0, callback=cb).fit(X)
    assert seen and max(seen) == 1
    with pytest.raises(ValueError, match="n_jobs"):
        NMF(3, n_jobs=0).fit(X)


# ---------------------------------------------------------------- sklearn deviation
def test_sklearn_parameter_checking_without_the_cd_kl_line():
    """scikit-learn's test_parameter_checking is a strict xfail in test_sklearn_suite.py
    (its first assert expects cd to reject KL); its other checks run here."""
    import re

    import nmfkit

    A = np.ones((2, 2))
    NMF(solver="cd", beta_loss=1.0, max_iter=5).fit(A)  # the deviation: KL works with cd
    msg = "Negative values in data passed to"
    with pytest.raises(ValueError, match=msg):
        NMF().fit(-A)
    clf = NMF(2, tol=0.1).fit(A)
    with pytest.raises(ValueError, match=msg):
        clf.transform(-A)
    estimators = [NMF] + ([nmfkit.MiniBatchNMF] if hasattr(nmfkit, "MiniBatchNMF") else [])
    for init in ["nndsvd", "nndsvda", "nndsvdar"]:
        msg = re.escape(f"init = '{init}' can only be used when "
                        "n_components <= min(n_samples, n_features)")
        for est in estimators:
            with pytest.raises(ValueError, match=msg):
                est(3, init=init).fit(A)


def test_cd_sparse_cross_products_as_views_match_dense():
    """Sparse X: the cross products are transposed views of scipy's products (no contiguous
    copy, W6 memory); the fit equals the dense path's, with and without the compiled
    repeated sweeps."""
    Xs = sp.random(300, 45, density=0.3, format="csr", random_state=1)
    # same sweep count on both paths (the cost model differs between dense and sparse X)
    fixed = {"inner": True, "extrapolate": True, "alpha": 1e6, "max_inner": 4, "delta": 0.0}
    for k, opts in [(21, None), (5, fixed)]:
        kw = dict(solver="cd", init="random", random_state=0, tol=0, max_iter=15,
                  solver_options=opts)
        ms = NMF(k, **kw).fit(Xs)
        md = NMF(k, **kw).fit(Xs.toarray())
        np.testing.assert_allclose(ms.components_, md.components_, rtol=1e-7, atol=1e-9)
        assert ms.reconstruction_err_ == pytest.approx(md.reconstruction_err_, rel=1e-10)


def test_dense_cross_products_are_the_same_in_either_orientation():
    # cd forms W^T X and H X^T on dense X in whichever orientation BLAS runs faster (a timed
    # trial on the first call): every orientation must give the same products
    from nmfkit.backends import get_backend
    from nmfkit.solvers import Problem
    from nmfkit.solvers.cd import CoordinateDescent

    rng = np.random.default_rng(0)
    X = rng.random((600, 400))
    W, H = rng.random((600, 50)), rng.random((50, 400))
    nx = get_backend(X)
    cd = CoordinateDescent(Problem(X=X, Xt=X.T, W=W.copy(), H=H.copy(), beta=2.0, nx=nx))
    for picks in ({}, {"W": 0, "H": 0}, {"W": 1, "H": 1}):
        cd._cross_pick = dict(picks)
        np.testing.assert_allclose(cd._cross_W(cd.Hc), H @ X.T, rtol=1e-12)
        np.testing.assert_allclose(cd._cross_H(cd.Wt), W.T @ X, rtol=1e-12)
        assert set(cd._cross_pick) == {"W", "H"}  # the trial's choice is kept


def test_a_products_form_is_chosen_once_per_shape_in_a_process(monkeypatch):
    # the form of a dense product (F @ X or (Xᵀ Fᵀ)ᵀ) rounds differently: it is timed once
    # per shape, layout and threads in a process and kept, so the same fit repeated in a
    # process gives the same numbers even when a second trial would time the other way
    from nmfkit.solvers import cd as cd_module

    monkeypatch.setattr(cd_module, "_FORMS", {})
    calls = []

    def alternating(self, F, X, Xt, split):
        calls.append((F.shape, X.shape, split))
        return len(calls) % 2  # a trial that would flip on every call

    monkeypatch.setattr(cd_module.CoordinateDescent, "_pick_form", alternating)
    rng = np.random.default_rng(0)
    X = rng.random((700, 5)) @ rng.random((5, 500)) + 0.01 * rng.random((700, 500))
    fits = [NMF(30, init="nndsvda", random_state=0, max_iter=8, tol=0).fit(X)
            for _ in range(2)]
    assert calls, "the products of this shape are above the trial's size"
    first = len(calls)
    assert first == len(set(calls))  # one trial per product kind, none in the second fit
    np.testing.assert_array_equal(fits[0].components_, fits[1].components_)
