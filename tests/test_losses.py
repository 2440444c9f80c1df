"""β-divergence values: dense == sparse == a direct reference == scikit-learn's."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import _nmf as sk_nmf

from nmfkit.losses import beta_divergence, beta_loss_to_float

BETAS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]


def _reference(X, W, H, beta):
    WH = W @ H
    if beta == 2:
        return 0.5 * np.sum((X - WH) ** 2)
    nz = X > 0
    Xn, WHn = X[nz], WH[nz]
    if beta == 1:
        return np.sum(Xn * np.log(Xn / WHn)) - X.sum() + WH.sum()
    if beta == 0:
        return np.sum(Xn / WHn - np.log(Xn / WHn) - 1)
    return (np.sum(Xn**beta) + (beta - 1) * np.sum(WH**beta) - beta * np.sum(Xn * WHn ** (beta - 1))) / (
        beta * (beta - 1)
    )


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = np.abs(rng.randn(20, 12)) + 0.1
    X[X < 0.5] = 0  # zeros, for the sparse path
    W = np.abs(rng.randn(20, 4)) + 0.05
    H = np.abs(rng.randn(4, 12)) + 0.05
    return X, W, H


@pytest.mark.parametrize("beta", BETAS)
def test_dense_sparse_reference_agree(data, beta):
    X, W, H = data
    if beta == 0:
        X = X + 0.3  # Itakura-Saito needs X > 0
    ref = _reference(X, W, H, beta)
    assert beta_divergence(X, W, H, beta) == pytest.approx(ref, rel=1e-10)
    assert beta_divergence(sp.csr_matrix(X), W, H, beta) == pytest.approx(ref, rel=1e-10)
    assert beta_divergence(sp.csc_array(X), W, H, beta) == pytest.approx(ref, rel=1e-10)
    assert beta_divergence(X, W, H, beta) == pytest.approx(sk_nmf._beta_divergence(X, W, H, beta), rel=1e-8)


@pytest.mark.parametrize("name,value", [("frobenius", 2.0), ("kullback-leibler", 1.0), ("itakura-saito", 0.0)])
def test_names(name, value):
    assert beta_loss_to_float(name) == value
    with pytest.raises(ValueError, match="Unknown beta_loss"):
        beta_loss_to_float("euclid")


def test_square_root_is_reconstruction_error(data):
    X, W, H = data
    assert beta_divergence(X, W, H, 2, square_root=True) == pytest.approx(np.linalg.norm(X - W @ H))


def test_zero_WH_where_X_positive_is_finite():
    X = np.array([[1.0, 0.0], [0.0, 2.0]])
    W = np.array([[1.0], [0.0]])
    H = np.array([[0.0, 1.0]])
    for beta in BETAS[1:]:
        v = beta_divergence(X, W, H, beta)
        assert np.isfinite(v) and v > 0


def test_float32_inputs_accumulate_in_float64():
    rng = np.random.RandomState(1)
    X = np.abs(rng.randn(300, 200)).astype(np.float32)
    W = np.abs(rng.randn(300, 5)).astype(np.float32)
    H = np.abs(rng.randn(5, 200)).astype(np.float32)
    ref = _reference(X.astype(np.float64), W.astype(np.float64), H.astype(np.float64), 2)
    assert beta_divergence(X, W, H, 2) == pytest.approx(ref, rel=1e-6)
    assert beta_divergence(sp.csr_matrix(X), W, H, 2) == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0])
def test_dense_equals_sparse_where_the_model_is_zero_under_data(beta):
    # WH = 0 at a stored X > 0: the floor on WH is read from mean(X) over all n·m entries
    # for both storages, so the divergence agrees there too (it once differed by 1-33 %)
    import scipy.sparse as sp

    rng = np.random.RandomState(0)
    X = np.abs(rng.randn(20, 12))
    X[X < 0.8] = 0.0
    W = np.abs(rng.randn(20, 3)) + 0.05
    W[0] = 0.0
    H = np.abs(rng.randn(3, 12)) + 0.05
    if beta == 0.0:
        X[X == 0] = 0.5  # Itakura-Saito needs X > 0
    dense = beta_divergence(X, W, H, beta)
    sparse = beta_divergence(sp.csr_matrix(X), W, H, beta)
    assert np.isfinite(dense) and dense == pytest.approx(sparse, rel=1e-12)


@pytest.mark.parametrize("beta", [2.0, 1.5, 1.0, 0.5, 0.0])
def test_divergence_of_an_exact_factorisation_is_not_negative(beta):
    rng = np.random.RandomState(1)
    W, H = rng.rand(30, 4) + 0.1, rng.rand(4, 25) + 0.1
    X = W @ H
    for value in (beta_divergence(X, W, H, beta), beta_divergence(X, W, H, beta, square_root=True)):
        assert value >= 0.0 and value < 1e-8
