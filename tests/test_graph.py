"""Affinity graphs and graph-regularised NMF (GNMF, issue 4)."""

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF
from nmfkit.graph import check_affinity, knn_affinity, laplacian
from nmfkit.penalties import Graph


@pytest.fixture(scope="module")
def blobs():
    """Three well-separated groups of non-negative samples."""
    rng = np.random.RandomState(0)
    centers = rng.rand(3, 12) * 4
    labels = np.repeat(np.arange(3), 20)
    X = np.abs(centers[labels] + 0.3 * rng.randn(60, 12))
    return X, labels


@pytest.mark.parametrize("weight", ["binary", "heat", "cosine"])
def test_knn_affinity_is_a_symmetric_graph(blobs, weight):
    X, labels = blobs
    A = knn_affinity(X, 5, weight=weight)
    assert sp.issparse(A) and A.shape == (60, 60)
    assert abs(A - A.T).max() == 0
    assert A.diagonal().max() == 0
    assert A.data.min() > 0 and A.data.max() <= 1.0
    # every sample keeps its own 5 neighbours (the union can only add edges)
    assert np.all(np.diff(A.indptr) >= 5)
    if weight == "binary":
        assert np.all(A.data == 1.0)
    # on well-separated groups, neighbours are in the same group
    rows, cols = A.nonzero()
    assert np.mean(labels[rows] == labels[cols]) > 0.95


def test_heat_kernel_values_and_bandwidth(blobs):
    X, _ = blobs
    A = knn_affinity(X, 3, weight="heat", bandwidth=2.0)
    i, j = A.nonzero()
    d2 = ((X[i] - X[j]) ** 2).sum(axis=1)
    np.testing.assert_allclose(np.asarray(A[i, j]).ravel(), np.exp(-d2 / 2.0), rtol=1e-10)


def test_laplacian_rows_sum_to_zero(blobs):
    L = laplacian(knn_affinity(blobs[0], 4))
    np.testing.assert_allclose(np.asarray(L.sum(axis=1)).ravel(), 0.0, atol=1e-12)
    assert np.linalg.eigvalsh(L.toarray()).min() > -1e-10


def test_check_affinity_errors():
    with pytest.raises(ValueError, match="must be a square matrix"):
        check_affinity(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"has shape \(3, 3\) but the factor .* has 4"):
        check_affinity(np.ones((3, 3)), 4)
    with pytest.raises(ValueError, match="negative entries"):
        check_affinity(-np.ones((3, 3)))
    with pytest.raises(ValueError, match="not symmetric.*A.maximum\\(A.T\\)"):
        check_affinity(np.triu(np.ones((3, 3))))
    with pytest.raises(ValueError, match="NaN or infinity"):
        check_affinity(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="affinity is missing"):
        Graph(1.0, "W")
    A = check_affinity(np.ones((3, 3)))
    assert A.diagonal().max() == 0  # self-loops dropped: they do not change tr(WᵀLW)
    with pytest.raises(ValueError, match=r"n_neighbors must be an int in \[1, n_samples - 1\]"):
        knn_affinity(np.ones((4, 2)), 4)
    with pytest.raises(ValueError, match="weight must be one of"):
        knn_affinity(np.ones((4, 2)), 2, weight="gauss")


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_graph_weight_zero_equals_plain_nmf(blobs, solver):
    X, _ = blobs
    a = NMF(3, solver=solver, random_state=0, max_iter=30, tol=0).fit(X)
    b = NMF(3, solver=solver, random_state=0, max_iter=30, tol=0, graph="heat",
            graph_weight=0.0).fit(X)
    c = NMF(3, solver=solver, random_state=0, max_iter=30, tol=0,
            penalties=[Graph(0.0, "W", affinity=knn_affinity(X, 5))]).fit(X)
    assert np.array_equal(a.components_, b.components_)
    assert np.array_equal(a.components_, c.components_)


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_graph_makes_neighbours_coefficients_smoother(blobs, solver):
    X, _ = blobs
    A = knn_affinity(X, 5)
    L = laplacian(A)

    def roughness(W):
        Wn = W / np.linalg.norm(W)
        return float(np.trace(Wn.T @ (L @ Wn)))

    r = [roughness(NMF(3, solver=solver, graph=A, graph_weight=lam, random_state=0,
                       max_iter=200, tol=0).fit_transform(X)) for lam in (0.0, 10.0, 100.0)]
    assert r[0] > r[1] > r[2], r


def test_string_graph_equals_given_affinity(blobs):
    X, _ = blobs
    A = knn_affinity(X, 4, weight="cosine")
    a = NMF(3, graph="cosine", graph_neighbors=4, graph_weight=5.0, random_state=0,
            max_iter=20, tol=0).fit(X)
    b = NMF(3, graph=A.toarray(), graph_weight=5.0, random_state=0, max_iter=20, tol=0).fit(X)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-10)


def test_graph_parameter_errors(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="graph_weight=1.0 needs a graph"):
        NMF(3, graph_weight=1.0).fit(X)
    with pytest.raises(ValueError, match=r"affinity has shape \(5, 5\), but X has 60 samples"):
        NMF(3, graph=np.ones((5, 5)), graph_weight=1.0).fit(X)
    with pytest.raises(ValueError, match="'nmfsc' cannot honour the penalty Graph on W"):
        NMF(3, solver="nmfsc", sparseness_H=0.5, graph="binary", graph_weight=1.0).fit(X)


def test_transform_ignores_the_training_sample_graph(blobs):
    X, _ = blobs
    m = NMF(3, graph="binary", graph_weight=10.0, random_state=0, max_iter=50).fit(X)
    W = m.transform(X[:7])  # 7 new samples: the 60-sample graph does not apply
    assert W.shape == (7, 3) and np.all(np.isfinite(W))
    # the same components without a graph give the same transform, and the graph did shape
    # the training fit (so the equality is not that of two identical models)
    plain = NMF(3, random_state=0, max_iter=50).fit(X)
    assert not np.allclose(plain.components_, m.components_, rtol=1e-3)
    plain.components_ = m.components_.copy()
    np.testing.assert_allclose(W, plain.transform(X[:7]), rtol=1e-10, atol=1e-12)


def test_feature_graph_on_H(blobs):
    X, _ = blobs
    B = knn_affinity(X.T, 3)
    L = laplacian(B)
    rough = []
    for lam in (0.0, 50.0):
        m = NMF(3, penalties=[Graph(lam, "H", affinity=B)], random_state=0, max_iter=100,
                tol=0).fit(X)
        Hn = m.components_ / np.linalg.norm(m.components_)
        rough.append(float(np.trace(Hn @ (L @ Hn.T))))
    assert rough[1] < rough[0]
