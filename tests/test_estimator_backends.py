"""NMF and non_negative_factorization on each backend (the ``backend`` fixture: numpy, and
CPU torch where installed): the same checks run on both. Each fit of the backend's arrays is
compared with the same fit on numpy float64 (on numpy: the fit is reproducible), returns the
input's array type and dtype, and keeps the properties of the fit (monotone objective, frozen
rows bit for bit, sparse == dense, unit-scale fits of extreme data). Torch-only checks (device
memory, autograd, TF32, torch refusals, the batched restarts on a device) stay in
tests/test_torch_*.py.

Folded from tests/test_torch_backend.py, test_torch_solvers.py, test_torch_extensions.py and
test_torch_kl_masked.py; each test names the test it came from.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import Recorder
from conftest import sparse_abs_gauss

from nmfkit import NMF, non_negative_factorization
from nmfkit.graph import knn_affinity
from nmfkit.init import initialize
from nmfkit.losses import beta_divergence
from nmfkit.nnls import nnls_bpp
from nmfkit.penalties import L1, L2, Graph

pytest_plugins = ["pytester"]  # the last test: the fixture without torch


def _data(n=30, m=20, seed=0, cut=0.5):
    return sparse_abs_gauss(n, m, seed, cut=cut)


# ------------------------------------------------------------- from test_torch_backend.py
def test_cd_penalties_and_shuffle(backend):
    """test_torch_backend.py::test_cd_penalties_and_shuffle_on_torch"""
    X = _data()
    kw = dict(solver="cd", alpha_W=0.01, l1_ratio=0.5, shuffle=True, random_state=0,
              max_iter=30, tol=0)
    a, b = NMF(3, **kw), NMF(3, **kw)
    Wa = a.fit_transform(X)
    Wb = b.fit_transform(backend.asarray(X))
    np.testing.assert_allclose(backend.to_numpy(Wb), Wa, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("solver,beta", [("mu", 1.0), ("mu", 1.5), ("mu", 2.0), ("cd", 2.0)])
def test_sparse_equals_dense(backend, solver, beta):
    """test_torch_backend.py::test_sparse_equals_dense_on_torch"""
    X = _data(40, 25, seed=1)
    kw = dict(solver=solver, beta_loss=beta, random_state=0, max_iter=20, tol=0, init="random")
    if solver == "cd":  # the number of inner sweeps depends on nnz: compare plain HALS
        kw["solver_options"] = {"inner": False, "extrapolate": False}
    Wd = NMF(4, **kw).fit_transform(backend.asarray(X))
    Ws = NMF(4, **kw).fit_transform(backend.asarray(X, sparse="csr"))
    backend.assert_close(Ws, Wd, rtol=1e-8, atol=1e-10)
    Wc = NMF(4, **kw).fit_transform(backend.asarray(X, sparse="coo"))  # COO: turned into CSR
    backend.assert_close(Wc, Wd, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_array_in_array_out_same_dtype(backend, dtype):
    """test_torch_backend.py::test_tensor_in_tensor_out_same_dtype"""
    X = backend.asarray(_data(), dtype)
    est = NMF(3, solver="mu", random_state=0, max_iter=20)
    W = est.fit_transform(X)
    assert backend.is_array(W, dtype) and backend.is_array(X)  # both on the CPU
    assert backend.is_array(est.components_, dtype)
    assert isinstance(est.reconstruction_err_, float) and np.isfinite(est.reconstruction_err_)
    T = est.transform(X)
    assert backend.is_array(T, dtype)
    assert est.inverse_transform(T).shape == X.shape
    W2, H2, n_iter = non_negative_factorization(X, n_components=3, solver="mu", max_iter=5)
    assert backend.is_array(W2, dtype) and n_iter == 5


def test_integer_input_is_fitted_in_the_backends_float(backend):
    """test_torch_backend.py::test_integer_tensor_becomes_float32 (numpy: float64)"""
    X = backend.asarray((_data() * 10).astype(np.int64))
    W = NMF(2, solver="cd", random_state=0, max_iter=10).fit_transform(X)
    assert backend.is_array(W, backend.int_float)


@pytest.mark.parametrize("solver", ["mu", "cd"])
def test_backend_kwarg_with_numpy_input_returns_numpy(backend, solver):
    """test_torch_backend.py::test_backend_torch_with_numpy_input_returns_numpy"""
    X = _data().astype(np.float32)
    a = NMF(3, solver=solver, random_state=0, max_iter=30)
    b = NMF(3, solver=solver, random_state=0, max_iter=30, **backend.kwargs)
    Wa, Wb = a.fit_transform(X), b.fit_transform(X)
    assert isinstance(Wb, np.ndarray) and Wb.dtype == np.float32
    assert isinstance(b.components_, np.ndarray)
    np.testing.assert_allclose(Wb, Wa, rtol=1e-4, atol=1e-5)
    assert b.reconstruction_err_ == pytest.approx(a.reconstruction_err_, rel=1e-5)
    np.testing.assert_allclose(b.transform(X), a.transform(X), rtol=1e-4, atol=1e-5)


def test_custom_init_and_update_H_false(backend):
    """test_torch_backend.py::test_custom_init_and_update_H_false_on_torch"""
    Xn = _data()
    X = backend.asarray(Xn)
    W0, H0 = initialize(Xn, 3, init="nndsvda")
    est = NMF(3, init="custom", solver="mu", max_iter=10, tol=0)
    W = est.fit_transform(X, W=backend.asarray(W0), H=backend.asarray(H0))
    ref = NMF(3, init="custom", solver="mu", max_iter=10, tol=0).fit_transform(Xn, W=W0, H=H0)
    np.testing.assert_allclose(backend.to_numpy(W), ref, rtol=1e-10)
    W1, H1, _ = non_negative_factorization(X, H=est.components_, n_components=3, solver="cd",
                                           update_H=False, max_iter=20)
    assert backend.array_equal(H1, est.components_)
    with pytest.raises(TypeError, match="same dtype as X"):
        NMF(3, init="custom").fit(X, W=backend.asarray(W0, "float32"), H=backend.asarray(H0))


def test_input_errors(backend):
    """test_torch_backend.py::test_tensor_input_errors (the messages both backends share; the
    tensor-worded ones stay there)"""
    with pytest.raises(ValueError, match="Negative values in data passed to NMF"):
        NMF(2).fit(backend.asarray([[1.0, -2.0], [0.5, 1.0]]))
    rng = np.random.RandomState(0)
    est = NMF(2, max_iter=5).fit(backend.asarray(np.ones((4, 3)) + rng.rand(4, 3)))
    with pytest.raises(ValueError, match="X has 4 features, but NMF is expecting 3"):
        est.transform(backend.asarray(np.ones((2, 4))))
    with pytest.raises(ValueError, match="beta_loss <= 0 and X contains zeros"):
        NMF(2, solver="mu", beta_loss=0).fit(backend.asarray(_data()))


def test_extreme_scale_dense_and_sparse(backend):
    """test_torch_backend.py::test_extreme_scale_sparse_tensor"""
    X = _data(30, 20, seed=4) * 1e8  # fitted at unit scale inside factorize
    kw = dict(solver="mu", beta_loss=1, max_iter=20, random_state=0)
    ref = NMF(3, **kw).fit(X).reconstruction_err_
    for Xb in (backend.asarray(X), backend.asarray(X, sparse=True)):
        assert NMF(3, **kw).fit(Xb).reconstruction_err_ == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("solver", ["mu", "cd"])
def test_n_init_equals_numpy(backend, solver):
    """test_torch_backend.py::test_n_init_on_torch_equals_numpy"""
    X = _data(40, 25, seed=6)
    a = NMF(4, solver=solver, n_init=3, random_state=0, max_iter=30)
    b = NMF(4, solver=solver, n_init=3, random_state=0, max_iter=30)
    Wa, Wb = a.fit_transform(X), b.fit_transform(backend.asarray(X))
    np.testing.assert_allclose(b.init_objectives_, a.init_objectives_, rtol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(Wb), Wa, rtol=1e-8, atol=1e-12)


# ------------------------------------------------------------ from test_torch_solvers.py
ANLS_PGD = ["anls", "pgd"]


@pytest.mark.parametrize("solver", ANLS_PGD)
def test_sparse_equals_dense_anls_pgd(backend, solver):
    """test_torch_solvers.py::test_sparse_equals_dense_on_torch"""
    X = _data(40, 30, seed=1)
    kw = {"solver": solver, "random_state": 0, "max_iter": 20, "tol": 0, "init": "random",
          "alpha_W": 0.01, "l1_ratio": 0.5}
    Wd = NMF(4, **kw).fit_transform(backend.asarray(X))
    Ws = NMF(4, **kw).fit_transform(backend.asarray(X, sparse=True))
    backend.assert_close(Ws, Wd, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("solver", ANLS_PGD)
def test_array_in_array_out_same_dtype_anls_pgd(backend, solver, dtype):
    """test_torch_solvers.py::test_tensor_in_tensor_out_same_dtype"""
    X = backend.asarray(_data(40, 30), dtype)
    Xn = backend.to_numpy(X)
    est = NMF(4, solver=solver, random_state=0, max_iter=30)
    W = est.fit_transform(X)
    assert backend.is_array(W, dtype) and backend.is_array(X)  # both on the CPU
    assert backend.is_array(est.components_, dtype)
    assert bool((W >= 0).all()) and np.isfinite(backend.to_numpy(W)).all()
    T = est.transform(X)  # transform of a fitted model: the same solver with H fixed
    assert backend.is_array(T, dtype)
    ref = NMF(4, solver=solver, random_state=0, max_iter=30).fit(Xn.astype(np.float64))
    np.testing.assert_allclose(est.reconstruction_err_, ref.reconstruction_err_,
                               rtol=backend.rtol(dtype))
    if dtype == "float64":  # float32: same error, factors only near (not unique)
        np.testing.assert_allclose(backend.to_numpy(T), ref.transform(Xn), rtol=1e-7,
                                   atol=1e-9)


@pytest.mark.parametrize("solver", ANLS_PGD)
def test_float32_close_to_float64_numpy(backend, solver):
    """test_torch_solvers.py::test_float32_torch_close_to_float64_numpy"""
    X = _data(40, 30)
    a = NMF(4, solver=solver, random_state=0, max_iter=20, tol=0, init="nndsvda")
    b = NMF(4, solver=solver, random_state=0, max_iter=20, tol=0, init="nndsvda")
    Wa = a.fit_transform(X)
    Wb = b.fit_transform(backend.asarray(X, "float32"))
    assert backend.is_array(Wb, "float32")
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=backend.rtol("float32"))
    np.testing.assert_allclose(backend.to_numpy(Wb).astype(np.float64), Wa, rtol=1e-2,
                               atol=1e-3 * Wa.max())


def test_anls_transform_is_exact_nnls(backend):
    """test_torch_solvers.py::test_anls_transform_is_exact_nnls_on_torch"""
    X = _data(40, 30)
    est = NMF(4, solver="anls", random_state=0, max_iter=50).fit(backend.asarray(X))
    H = backend.to_numpy(est.components_)
    W = backend.to_numpy(est.transform(backend.asarray(X)))
    ref = nnls_bpp(H @ H.T, H @ X.T).T  # the exact NNLS solution, on numpy
    np.testing.assert_allclose(W, ref, rtol=1e-9, atol=1e-12)


def test_pgd_numpy_input_with_backend_kwarg_returns_numpy(backend):
    """test_torch_solvers.py::test_numpy_input_with_backend_torch_returns_numpy"""
    X = _data(40, 30)
    W = NMF(3, solver="pgd", random_state=0, max_iter=10, **backend.kwargs).fit_transform(X)
    assert isinstance(W, np.ndarray) and W.dtype == np.float64


# --------------------------------------------------------- from test_torch_extensions.py
XE = _data(cut=0.4)
A_W = knn_affinity(XE, 4)  # samples
A_H = knn_affinity(XE.T, 3, weight="heat")  # features
F0 = np.abs(np.random.RandomState(1).rand(2, XE.shape[1]))

EXTENSIONS = {
    "frozen": dict(frozen_components=F0),
    "nsnmf": dict(smoothness=0.4),
    "graph_W": dict(graph=A_W, graph_weight=0.5),
    "graph_knn": dict(graph="binary", graph_weight=0.3, graph_neighbors=4),
    "graph_H": dict(penalties=[Graph(0.7, "H", affinity=A_H)]),
    "l1_l2": dict(alpha_W=0.01, alpha_H=0.02, l1_ratio=0.5),
    "user_l1_l2": dict(penalties=[L1(0.2, "W"), L2(0.3, "H")]),
}


@pytest.mark.parametrize("solver", ["mu", "cd"])
@pytest.mark.parametrize("case", sorted(EXTENSIONS))
def test_extension_trajectory_equals_numpy(backend, case, solver):
    """test_torch_extensions.py::test_torch_trajectory_equals_numpy"""
    kw = dict(n_components=4, solver=solver, init="random", random_state=0, max_iter=15,
              tol=0, **EXTENSIONS[case])
    a = NMF(**kw)
    Wa = a.fit_transform(XE)
    b = NMF(**kw)
    Wb = b.fit_transform(backend.asarray(XE))
    assert backend.is_array(Wb, "float64")
    assert backend.is_array(b.components_)
    # every iteration's objective (nsNMF's steps report none: first and last only, on both)
    assert len(b.loss_curve_) == len(a.loss_curve_) == (2 if case == "nsnmf" else 16)
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=backend.rtol())
    np.testing.assert_allclose(backend.to_numpy(b.components_), a.components_, rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(Wb), Wa, rtol=1e-8, atol=1e-12)
    # monotone on each backend (every one of these updates is a descent step)
    assert np.all(np.diff(b.loss_curve_) <= 1e-12 * b.loss_curve_[0])


@pytest.mark.parametrize("solver", ["mu", "cd"])
def test_graph_on_sparse_equals_numpy(backend, solver):
    """test_torch_extensions.py::test_graph_on_sparse_tensor_equals_numpy"""
    kw = dict(n_components=3, solver=solver, init="random", random_state=2, max_iter=15, tol=0,
              graph=A_W, graph_weight=0.5, penalties=[Graph(0.2, "H", affinity=A_H)])
    a = NMF(**kw).fit(sp.csr_matrix(XE))
    b = NMF(**kw).fit(backend.asarray(XE, sparse=True))
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=backend.rtol())


@pytest.mark.parametrize("solver", ["mu", "cd"])
def test_frozen_rows_exactly_equal(backend, solver):
    """test_torch_extensions.py::test_frozen_rows_exactly_equal_on_torch"""
    Fb = backend.asarray(F0)
    for n_init in (1, 3):  # restarts keep the frozen rows too
        m = NMF(4, solver=solver, frozen_components=Fb, n_init=n_init, random_state=0,
                max_iter=30, tol=0).fit(backend.asarray(XE))
        assert backend.array_equal(m.components_[:2], Fb)
        assert bool((m.components_[2:] != 0).any())
    m32 = NMF(4, solver=solver, frozen_components=F0, random_state=0, max_iter=10,
              tol=0).fit(backend.asarray(XE, "float32"))
    assert backend.is_array(m32.components_, "float32")
    assert backend.array_equal(m32.components_[:2], backend.asarray(F0, "float32"))


def test_nsnmf_components_and_transform(backend):
    """test_torch_extensions.py::test_nsnmf_on_torch_components_and_transform"""
    Xb = backend.asarray(XE, "float32")
    m = NMF(4, smoothness=0.5, solver="mu", random_state=0, max_iter=40).fit(Xb)
    S = m.smoothing_matrix_
    assert backend.is_array(S, "float32")
    # torch.allclose's and np.allclose's default tolerances are the same
    assert np.allclose(backend.to_numpy(m.components_),
                       backend.to_numpy(S @ m.components_unsmoothed_))
    W = m.transform(Xb)
    assert backend.is_array(W) and W.shape == (30, 4) and bool((W >= 0).all())
    # numpy input with backend=: numpy out, the smoothed model included
    h = NMF(4, smoothness=0.5, solver="mu", random_state=0, max_iter=40,
            backend=backend.name).fit(XE)
    assert isinstance(h.components_, np.ndarray)
    assert isinstance(h.components_unsmoothed_, np.ndarray)
    np.testing.assert_allclose(h.components_, h.smoothing_matrix_ @ h.components_unsmoothed_)


# ---------------------------------------------------------- from test_torch_kl_masked.py
def test_kl_cd_array_in_array_out_float32_close_to_float64(backend):
    """test_torch_kl_masked.py::test_kl_cd_estimator_tensor_in_tensor_out_float32_close_to_float64"""
    X = _data(40, 25, seed=4)
    kw = dict(n_components=3, solver="cd", beta_loss=1, init="nndsvda", tol=0, max_iter=30,
              random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = NMF(**kw).fit(X)
        m64 = NMF(**kw)
        W64 = m64.fit_transform(backend.asarray(X))
        m32 = NMF(**kw)
        W32 = m32.fit_transform(backend.asarray(X, "float32", sparse=True))
        host = NMF(**backend.kwargs, **kw)
        Wh = host.fit_transform(X)
    assert backend.is_array(W64, "float64") and backend.is_array(W32, "float32")
    assert backend.is_array(m32.components_, "float32") and isinstance(Wh, np.ndarray)
    assert m64.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-8)
    assert host.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-8)
    assert m32.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-6)
    np.testing.assert_allclose(backend.to_numpy(W32).astype(np.float64),
                               backend.to_numpy(W64), rtol=1e-2, atol=1e-3)
    # float32 accumulation (opt-in): still monotone, close but less accurate
    rec = Recorder(backend)
    fast = NMF(**kw, callback=rec, solver_options={"kl_float64": False})
    fast.fit(backend.asarray(X, "float32"))
    f = rec.objectives(lambda W_, H_: beta_divergence(X, W_.astype(float), H_.astype(float), 1))
    assert np.all(np.diff(f) <= 1e-5 * f[0])
    assert fast.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=3e-3)


def _planted(n=40, m=30, k=3, frac=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) @ rng.random((k, m)) + 0.05 * rng.random((n, m))
    observed = rng.random((n, m)) >= frac
    return X, observed


@pytest.mark.parametrize("beta", [2.0, 1.0, 1.5])
@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_masked_mu_trajectory_equals_numpy(backend, beta, alpha):
    """test_torch_kl_masked.py::test_masked_mu_trajectory_numpy_equals_torch"""
    X, observed = _planted()
    rng = np.random.default_rng(5)
    M = observed * rng.uniform(0.2, 3.0, X.shape)  # real weights
    kw = dict(n_components=3, solver="mu", beta_loss=beta, init="random", random_state=0,
              tol=0, max_iter=15, alpha_W=alpha, alpha_H=alpha, l1_ratio=0.3)
    ref = NMF(**kw)
    W_ref = ref.fit_transform(X, mask=M)
    for Xin, Min, kw_b in [(backend.asarray(X), backend.asarray(M), {}),  # backend arrays in
                           (X, M, backend.kwargs)]:  # numpy in, fitted on the backend
        est = NMF(**kw, **kw_b)
        W = est.fit_transform(Xin, mask=Min)
        f1, f2 = np.array(ref.loss_curve_), np.array(est.loss_curve_)
        np.testing.assert_allclose(f2, f1, rtol=backend.rtol())
        assert np.all(np.diff(f2) <= 1e-12 * f2[0])
        assert isinstance(W, type(Xin))
        np.testing.assert_allclose(backend.to_numpy(W), W_ref, rtol=1e-7, atol=1e-10)
        assert est.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-8)


def test_masked_mu_nan_transform_and_float32(backend):
    """test_torch_kl_masked.py::test_masked_mu_nan_tensor_transform_and_float32"""
    X, observed = _planted(seed=1)
    Xn = np.where(observed, X, np.nan)
    kw = dict(n_components=3, solver="mu", beta_loss=1, missing_values=np.nan, tol=0,
              max_iter=20, random_state=0)
    ref = NMF(**kw)
    ref.fit(Xn)
    est = NMF(**kw)
    W = est.fit_transform(backend.asarray(Xn))
    assert backend.is_array(est.components_) and backend.is_array(W, "float64")
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=backend.rtol())
    Wt = est.transform(backend.asarray(Xn[:10]))
    np.testing.assert_allclose(backend.to_numpy(Wt), ref.transform(Xn[:10]), rtol=1e-7,
                               atol=1e-10)
    e32 = NMF(**kw)
    W32 = e32.fit_transform(backend.asarray(Xn, "float32"))
    assert backend.is_array(W32, "float32") and backend.is_array(e32.components_, "float32")
    assert e32.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-4)
    # non_negative_factorization routes the same way
    W2, H2, _ = non_negative_factorization(backend.asarray(Xn), **kw)
    np.testing.assert_allclose(backend.to_numpy(W2), backend.to_numpy(W), rtol=1e-12)
    assert backend.is_array(H2) and H2.shape == (3, Xn.shape[1])


def test_masked_mu_sparse_unobserved_equals_scipy(backend):
    """test_torch_kl_masked.py::test_masked_mu_sparse_unobserved_tensor_equals_scipy"""
    X, observed = _planted(seed=2)
    S = sp.csr_matrix(np.where(observed, X, 0.0))
    kw = dict(n_components=3, solver="mu", missing_values="unobserved", tol=0, max_iter=10,
              random_state=0, init="nndsvda")
    ref = NMF(**kw).fit(S)
    est = NMF(**kw).fit(backend.asarray(S))  # a CSR tensor from S's own index arrays
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=backend.rtol())


def test_masked_n_init_equals_numpy(backend):
    """test_torch_kl_masked.py::test_masked_n_init_on_torch_equals_numpy"""
    X, observed = _planted(seed=3)
    kw = dict(n_components=3, solver="mu", tol=0, max_iter=8, random_state=0, n_init=3)
    ref = NMF(**kw).fit(X, mask=observed)
    est = NMF(**backend.kwargs, **kw).fit(X, mask=observed)
    np.testing.assert_allclose(est.init_objectives_, ref.init_objectives_, rtol=backend.rtol())
    assert isinstance(est.components_, np.ndarray)


def test_masked_input_errors(backend):
    """test_torch_kl_masked.py::test_masked_torch_input_errors"""
    X, observed = _planted()
    Xb = backend.asarray(X)
    est = NMF(n_components=3, solver="mu", max_iter=5)
    with pytest.raises(ValueError, match="mask has shape"):
        est.fit(Xb, mask=backend.asarray(np.ones((3, 3), dtype=bool)))
    with pytest.raises(ValueError, match="non-negative finite weights"):
        est.fit(Xb, mask=backend.asarray(-np.ones(X.shape)))
    with pytest.raises(ValueError, match="with a sparse X is ambiguous"):
        NMF(n_components=3, missing_values=np.nan).fit(backend.asarray(X, sparse=True))
    Xneg = X.copy()
    Xneg[0, 1] = -1.0
    with pytest.raises(ValueError, match="smallest observed value is -1.0 at row 0, column 1"):
        est.fit(backend.asarray(Xneg), mask=backend.asarray(observed | True))
    with pytest.raises(ValueError, match="contains NaN at observed entries"):
        NMF(n_components=3, missing_values=-1.0).fit(backend.asarray(np.full((4, 3), np.nan)))
    # a negative sentinel is a missing entry, not an error
    Xs = X.copy()
    Xs[observed == 0] = -1.0
    NMF(n_components=3, solver="mu", missing_values=-1.0, max_iter=3, tol=0).fit(
        backend.asarray(Xs))


def test_masked_backend_kwarg_numpy_in_numpy_out_transform_and_fixed_H(backend):
    """test_torch_kl_masked.py::test_masked_backend_torch_numpy_in_numpy_out_transform_and_fixed_H"""
    X, observed = _planted(seed=4)
    Xn = np.where(observed, X, np.nan)
    kw = dict(n_components=3, solver="mu", missing_values=np.nan, tol=0, max_iter=10,
              random_state=0)
    ref = NMF(**kw).fit(Xn)
    est = NMF(**kw, backend=backend.name).fit(Xn)
    assert isinstance(est.components_, np.ndarray)
    Wt = est.transform(Xn[:7])
    assert isinstance(Wt, np.ndarray)
    np.testing.assert_allclose(Wt, ref.transform(Xn[:7]), rtol=1e-7, atol=1e-10)
    # the public function with H fixed (update_H=False), numpy in on the backend, and its
    # arrays in
    H = ref.components_
    W1, _, _ = non_negative_factorization(Xn, H=H, update_H=False, **kw)
    W2, H2, _ = non_negative_factorization(Xn, H=H, update_H=False, backend=backend.name, **kw)
    W3, _, _ = non_negative_factorization(backend.asarray(Xn), H=backend.asarray(H),
                                          update_H=False, **kw)
    assert isinstance(W2, np.ndarray) and backend.is_array(W3)
    np.testing.assert_allclose(W2, W1, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(W3), W1, rtol=1e-7, atol=1e-10)
    np.testing.assert_array_equal(H2, H)


@pytest.mark.parametrize("scale", [1e10, 1e-10])
def test_masked_extreme_scale_fitted_at_unit_scale(backend, scale):
    """test_torch_kl_masked.py::test_masked_torch_extreme_scale_fitted_at_unit_scale"""
    rng = np.random.default_rng(0)
    X = (rng.random((30, 3)) @ rng.random((3, 20))) * scale
    obs = rng.random(X.shape) > 0.3
    kw = dict(n_components=3, solver="mu", tol=0, max_iter=10, random_state=0)
    ref = NMF(**kw).fit(X, mask=obs)
    est = NMF(**kw).fit(backend.asarray(X), mask=backend.asarray(obs))
    e32 = NMF(**kw).fit(backend.asarray(X, "float32"), mask=obs)
    assert est.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-10)
    assert e32.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-5)
    np.testing.assert_allclose(backend.to_numpy(est.components_), ref.components_, rtol=1e-8)


@pytest.mark.parametrize("mask_kind", ["dense", "scipy", "sparse"])
def test_masked_sparse_X_with_a_mask_equals_scipy(backend, mask_kind):
    """test_torch_kl_masked.py::test_masked_sparse_tensor_with_a_mask_equals_scipy
    (mask_kind "sparse": the backend's sparse array, a CSR tensor on torch)"""
    # the mask's positive entries are observed; X's absent entries there are observed zeros
    X, observed = _planted(seed=5)
    rng = np.random.default_rng(6)
    S = sp.csr_matrix(np.where(rng.random(X.shape) < 0.5, X, 0.0))
    M = observed * rng.uniform(0.5, 2.0, X.shape)
    masks = {"dense": backend.asarray(M), "scipy": sp.csr_matrix(M),
             "sparse": backend.asarray(M, sparse=True)}
    kw = dict(n_components=3, solver="mu", tol=0, max_iter=10, random_state=0)
    ref = NMF(**kw).fit(S, mask=sp.csr_matrix(M))
    est = NMF(**kw).fit(backend.asarray(S.toarray(), sparse=True), mask=masks[mask_kind])
    assert backend.is_array(est.components_)
    assert est.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-10)
    np.testing.assert_allclose(backend.to_numpy(est.components_), ref.components_, rtol=1e-8)
    with pytest.raises(ValueError, match="mask has shape"):
        NMF(**kw).fit(backend.asarray(S.toarray(), sparse=True), mask=sp.csr_matrix(M[:5]))


# ------------------------------------------------------------------- the fixture itself
_WITHOUT_TORCH = '''
import numpy as np

def test_both(backend):
    assert backend.to_numpy(backend.asarray(np.ones((2, 2)))).sum() == 4.0
'''


@pytest.mark.parametrize("ci", [False, True])
def test_backend_fixture_without_torch_skips_or_fails_under_ci(pytester, monkeypatch, ci):
    """Where torch cannot be imported, the fixture's torch side is a skip for the README's
    command and a failure under CI=true (tests/conftest.py's rule); numpy runs either way."""
    from pathlib import Path

    conftest = (Path(__file__).parent / "conftest.py").read_text()
    pytester.makeconftest(conftest + "\nimport sys\n\nsys.modules['torch'] = None  # hidden\n")
    pytester.makepyfile(test_inner=_WITHOUT_TORCH)
    if ci:
        monkeypatch.setenv("CI", "true")
    else:
        monkeypatch.delenv("CI", raising=False)
    res = pytester.runpytest("-p", "no:cacheprovider")
    if ci:
        res.assert_outcomes(passed=1, errors=1)
        res.stdout.fnmatch_lines(["*CI=true: skipped for want of an optional package*torch*"])
    else:
        res.assert_outcomes(passed=1, skipped=1)
