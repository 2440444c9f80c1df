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
