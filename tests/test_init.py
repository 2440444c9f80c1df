"""Initialisation: identical to scikit-learn's for the same random_state, non-negative, deterministic."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import _nmf as sk_nmf

from nmfkit.init import initialize

METHODS = ["random", "nndsvd", "nndsvda", "nndsvdar", None]


@pytest.mark.parametrize("init", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_scikit_learn(init, dtype):
    X = np.abs(np.random.RandomState(3).randn(25, 15)).astype(dtype)
    W, H = initialize(X, 6, init=init, random_state=7)
    Ws, Hs = sk_nmf._initialize_nmf(X, 6, init=init, random_state=7)
    np.testing.assert_allclose(W, Ws, rtol=1e-6)
    np.testing.assert_allclose(H, Hs, rtol=1e-6)
    assert W.dtype == dtype and H.dtype == dtype
    assert (W >= 0).all() and (H >= 0).all()


@pytest.mark.parametrize("init", METHODS)
def test_deterministic_and_sparse(init):
    X = np.abs(np.random.RandomState(0).randn(30, 20))
    X[X < 0.8] = 0
    W1, H1 = initialize(X, 5, init=init, random_state=0)
    W2, H2 = initialize(sp.csr_matrix(X), 5, init=init, random_state=0)
    np.testing.assert_allclose(W1, W2, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(H1, H2, rtol=1e-8, atol=1e-12)


def test_nndsvd_rank_too_large():
    with pytest.raises(ValueError, match="can only be used when n_components <= min"):
        initialize(np.ones((3, 4)), 4, init="nndsvd")


def test_all_zero_X_gives_finite_zeros():
    X = np.zeros((6, 5))
    for init in METHODS:
        W, H = initialize(X, 3, init=init, random_state=0)
        assert W.shape == (6, 3) and H.shape == (3, 5)
        assert np.isfinite(W).all() and np.isfinite(H).all()
        assert not W.any() and not H.any(), init  # zeros: nothing to scale a start by


def test_unknown_method():
    with pytest.raises(ValueError, match="Invalid init parameter"):
        initialize(np.ones((3, 3)), 2, init="svd")


def test_randomized_svd_with_given_products_is_scikit_learns():
    # the default start's SVD with its products passed in (the engine passes threaded ones)
    # is scikit-learn's algorithm: the same numbers with scikit-learn's products
    import scipy.sparse as sp
    from sklearn.utils.extmath import randomized_svd

    from nmfkit.init import randomized_svd_with

    rng = np.random.default_rng(0)
    Xs = sp.random(120, 300, density=0.1, format="csr", random_state=1)
    for X in (Xs, Xs.T.tocsr(), rng.random((200, 50))):
        for n_iter in (1, 4):
            ref = randomized_svd(X, 6, n_iter=n_iter, random_state=3)
            got = randomized_svd_with(X, 6, n_iter, 3, lambda Q, X=X: X @ Q,
                                      lambda Q, X=X: X.T @ Q)
            for a, b in zip(ref, got):
                np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_the_default_start_of_a_large_sparse_x_uses_threaded_products():
    import scipy.sparse as sp

    from nmfkit import _engine
    from nmfkit.backends import get_backend
    from nmfkit.solvers._blocked import csr_tdot
    from nmfkit.solvers._threads import kernel_threads

    pytest.importorskip("numba")
    X = sp.random(900, 1500, density=0.2, format="csr", random_state=0)  # nnz·k above 4M
    assert _engine._threaded_products(get_backend(X), X, 10) is not None
    assert _engine._threaded_products(get_backend(X), X[:50], 10) is None  # small: sklearn's
    Q = np.random.default_rng(1).random((900, 20))
    with kernel_threads():
        np.testing.assert_allclose(csr_tdot(X, Q), np.asarray(X.T @ Q), rtol=1e-12)
    # the start with threaded products is the start with scikit-learn's, to rounding
    _assert_start_is_scikit_learns(X)


@pytest.mark.parametrize("shape", [(1200, 500), (500, 1200)])
def test_the_default_start_of_a_large_dense_x_runs_its_products_on_the_kernel_threads(shape):
    """Dense X: the range finder's products split over the kernels' threads (each part one
    single-threaded BLAS call; the thin QR/LU/SVD then on one BLAS thread): the same start
    as scikit-learn's products give, to rounding; a small X keeps scikit-learn's SVD."""
    from nmfkit import _engine
    from nmfkit.backends import get_backend
    from nmfkit.solvers._threads import kernel_threads

    X = np.random.default_rng(2).random(shape)  # n·m·k above 4M
    nx = get_backend(X)
    products = _engine._threaded_products(nx, X, 10)
    assert products is not None
    assert _engine._threaded_products(nx, X[:40, :40], 10) is None
    Q = np.random.default_rng(3).random((shape[1], 20))
    Qt = np.random.default_rng(4).random((shape[0], 20))
    with kernel_threads():
        np.testing.assert_allclose(products[0](Q), X @ Q, rtol=1e-12)
        np.testing.assert_allclose(products[1](Qt), X.T @ Qt, rtol=1e-12)
    _assert_start_is_scikit_learns(X)


def _assert_start_is_scikit_learns(X):
    """The default fit's first W with the engine's threaded products equals the one with
    scikit-learn's own products, to rounding."""
    from nmfkit import NMF, _engine

    W1 = NMF(10, random_state=0, max_iter=1).fit_transform(X)
    orig = _engine._threaded_products
    try:
        _engine._threaded_products = lambda *args: None
        W2 = NMF(10, random_state=0, max_iter=1).fit_transform(X)
    finally:
        _engine._threaded_products = orig
    np.testing.assert_allclose(W1, W2, rtol=1e-7, atol=1e-9)
