"""Quality metrics: dense == sparse, known values, no NaN."""

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF
from nmfkit import metrics


@pytest.fixture
def fit():
    rng = np.random.RandomState(0)
    X = np.abs(rng.randn(30, 20))
    X[X < 0.6] = 0
    m = NMF(4, max_iter=400, tol=1e-6, random_state=0)
    W = m.fit_transform(X)
    return X, W, m.components_


def test_dense_equals_sparse(fit):
    X, W, H = fit
    d = metrics.summary(X, W, H)
    s = metrics.summary(sp.csr_matrix(X), W, H)
    for key in d:
        assert d[key] == pytest.approx(s[key], rel=1e-8, abs=1e-12)


def test_values(fit):
    X, W, H = fit
    R = X - W @ H
    assert metrics.reconstruction_error(X, W, H) == pytest.approx(np.linalg.norm(R))
    assert metrics.relative_error(X, W, H) == pytest.approx(np.linalg.norm(R) / np.linalg.norm(X))
    Xc = X - X.mean(axis=0)
    assert metrics.explained_variance(X, W, H) == pytest.approx(1 - (R**2).sum() / (Xc**2).sum())


def test_hoyer_sparseness_extremes():
    assert metrics.hoyer_sparseness(np.array([0, 0, 5.0, 0])) == pytest.approx(1.0)
    assert metrics.hoyer_sparseness(np.ones(7)) == pytest.approx(0.0)
    assert metrics.hoyer_sparseness(np.zeros(4)) == pytest.approx(1.0)
    cols = metrics.hoyer_sparseness(np.array([[1.0, 0], [1.0, 3.0]]), axis=0)
    np.testing.assert_allclose(cols, [0.0, 1.0], atol=1e-12)


def test_kkt_residual_small_at_convergence_and_large_at_start(fit):
    X, W, H = fit
    rng = np.random.RandomState(1)
    assert metrics.kkt_residual(X, W, H) < 1e-2
    assert metrics.kkt_residual(X, rng.rand(*W.shape), rng.rand(*H.shape)) > 0.1
    m = NMF(4, solver="mu", beta_loss=1, max_iter=2000, tol=1e-8, random_state=0)
    Wk = m.fit_transform(X + 0.01)
    assert metrics.kkt_residual(X + 0.01, Wk, m.components_, beta_loss=1) < 0.05
    assert metrics.kkt_residual(sp.csr_matrix(X), W, H, beta_loss=1) == pytest.approx(
        metrics.kkt_residual(X, W, H, beta_loss=1), rel=1e-8
    )


def test_all_zero_data_is_finite():
    X = np.zeros((4, 3))
    W, H = np.zeros((4, 2)), np.zeros((2, 3))
    s = metrics.summary(X, W, H)
    assert all(np.isfinite(v) for v in s.values() if v is not None)
