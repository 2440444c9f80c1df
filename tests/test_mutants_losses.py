"""Properties of the β-divergence values that mutation testing showed the other tests left open:
the value does not depend on the block size, float32 inputs are summed in float64, β < 0,
homogeneity of degree β (also where the floor acts), exact factorisations, and the square
root for every β."""

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit.losses as losses
from nmfkit.losses import beta_divergence, frobenius_from_grams

BETAS = [-0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0]


def _reference(X, W, H, beta):
    """The divergence from its definition, entry by entry, in float64 (WH > 0 here)."""
    X = np.asarray(X, dtype=np.float64)
    WH = np.asarray(W, dtype=np.float64) @ np.asarray(H, dtype=np.float64)
    if beta == 2:
        return 0.5 * np.sum((X - WH) ** 2)
    nz = X > 0
    if beta == 1:
        return np.sum(X[nz] * np.log(X[nz] / WH[nz])) - X.sum() + WH.sum()
    if beta == 0:
        return np.sum(X[nz] / WH[nz] - np.log(X[nz] / WH[nz]) - 1)
    return (np.sum(X[nz] ** beta) + (beta - 1) * np.sum(WH**beta)
            - beta * np.sum(X[nz] * WH[nz] ** (beta - 1))) / (beta * (beta - 1))


def _data(seed=0, n=23, m=17, k=3, zeros=True):
    rng = np.random.RandomState(seed)
    X = np.abs(rng.randn(n, m)) + 0.1
    if zeros:
        X[X < 0.6] = 0
    W = np.abs(rng.randn(n, k)) + 0.05
    H = np.abs(rng.randn(k, m)) + 0.05
    return X, W, H


def _x_for(beta, X):
    # Itakura-Saito and β < 0 are defined for X > 0 only
    return X + 0.3 if beta <= 0 else X


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("sparse", [False, True])
def test_value_does_not_depend_on_the_row_block_size(beta, sparse, monkeypatch):
    X, W, H = _data()
    X = _x_for(beta, X)
    if sparse:
        X = sp.csr_matrix(X)
    whole = beta_divergence(X, W, H, beta)
    # a few rows per block: every block's terms must be summed, none dropped or repeated
    monkeypatch.setattr(losses, "_BLOCK_ELEMENTS", 40)
    assert beta_divergence(X, W, H, beta) == pytest.approx(whole, rel=1e-12)
    assert whole == pytest.approx(_reference(X.toarray() if sparse else X, W, H, beta), rel=1e-10)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("sparse", [False, True])
def test_float32_inputs_give_the_float64_value_of_the_same_numbers(beta, sparse):
    X, W, H = _data(seed=1)
    X = _x_for(beta, X)
    X32, W32, H32 = X.astype(np.float32), W.astype(np.float32), H.astype(np.float32)
    X64, W64, H64 = X32.astype(np.float64), W32.astype(np.float64), H32.astype(np.float64)
    if sparse:
        X32, X64 = sp.csr_matrix(X32), sp.csr_matrix(X64)
    # the casts are exact, so a float64 accumulation gives the float64 value to rounding;
    # two products are formed in the data's precision, so float32 rounding separates the two
    # there: a sparse X's sampled product WH at its non-zeros (β ≠ 2), and the dense
    # Frobenius residual (as scikit-learn's); sparse Frobenius works from float64 Grams
    in_float32 = (sparse and beta != 2.0) or (not sparse and beta == 2.0)
    assert beta_divergence(X32, W32, H32, beta) == pytest.approx(
        beta_divergence(X64, W64, H64, beta), rel=1e-6 if in_float32 else 1e-12)


@pytest.mark.parametrize("beta", [-0.5, 0.5, 1.5, 3.0])
def test_float32_sum_over_all_of_WH_is_accumulated_in_float64(beta):
    # one stored entry: the value is almost all Σ (WH)^β over the n·m entries, which a
    # float64 accumulation gives to rounding from float32 factors
    _, W, H = _data(seed=7, n=40, m=30)
    X = sp.csr_matrix(([1.0], ([0], [0])), shape=(40, 30))
    W32, H32 = W.astype(np.float32), H.astype(np.float32)
    d32 = beta_divergence(X.astype(np.float32), W32, H32, beta)
    d64 = beta_divergence(X, W32.astype(np.float64), H32.astype(np.float64), beta)
    assert d32 == pytest.approx(d64, rel=1e-10)


@pytest.mark.parametrize("beta", [-1.0, -0.5])
def test_negative_beta_dense_sparse_and_reference_agree(beta):
    X, W, H = _data(seed=2, zeros=False)
    ref = _reference(X, W, H, beta)
    assert beta_divergence(X, W, H, beta) == pytest.approx(ref, rel=1e-10)
    assert beta_divergence(sp.csr_matrix(X), W, H, beta) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("beta", [-1.0, -0.5, 0.5])
def test_zero_in_WH_is_floored_the_same_way_dense_and_sparse(beta):
    # (WH)^β with β < 0 at WH = 0 is infinite: the floor keeps the value finite, and the
    # dense and the sparse path floor the same entries
    X, W, H = _data(seed=3, zeros=False)
    W[0] = 0.0
    dense = beta_divergence(X, W, H, beta)
    assert np.isfinite(dense) and dense > 0
    assert beta_divergence(sp.csr_matrix(X), W, H, beta) == pytest.approx(dense, rel=1e-10)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("sparse", [False, True])
def test_square_root_is_sqrt_of_twice_the_divergence(beta, sparse):
    X, W, H = _data(seed=4)
    X = _x_for(beta, X)
    # a far and a near fit: the square root of a divergence below ½ too
    for Xin in (X, 0.999 * (W @ H) + 0.001 * X):
        Xin = sp.csr_matrix(Xin) if sparse else Xin
        d = beta_divergence(Xin, W, H, beta)
        assert beta_divergence(Xin, W, H, beta, square_root=True) == pytest.approx(
            np.sqrt(2 * d), rel=1e-12)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("sparse", [False, True])
def test_divergence_is_homogeneous_of_degree_beta_even_where_WH_is_zero(beta, sparse):
    # d_β(cx | cy) = c^β d_β(x | y); the floor that keeps WH = 0 finite where X > 0 scales
    # with X, so the property holds there too
    X, W, H = _data(seed=8, zeros=False)
    W[0] = 0.0
    c = 1e3
    Xc = c * X
    if sparse:
        X, Xc = sp.csr_matrix(X), sp.csr_matrix(Xc)
    assert beta_divergence(Xc, c * W, H, beta) == pytest.approx(
        c**beta * beta_divergence(X, W, H, beta), rel=1e-9)


@pytest.mark.parametrize("beta", [0.5, 1.5, 3.0])
def test_rows_where_X_and_WH_are_both_zero_contribute_nothing(beta):
    X, W, H = _data(seed=9)
    X[0] = 0.0
    W[0] = 0.0
    ref = _reference(X[1:], W[1:], H, beta)
    assert beta_divergence(X, W, H, beta) == pytest.approx(ref, rel=1e-10)
    assert beta_divergence(sp.csr_matrix(X), W, H, beta) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("beta", BETAS)
def test_exact_factorisation_has_divergence_zero(beta):
    rng = np.random.RandomState(5)
    W = rng.rand(12, 3) + 0.1
    H = rng.rand(3, 9) + 0.1
    X = W @ H
    for Xin in (X, sp.csr_matrix(X)):
        # zero to rounding (the general-β sum of three terms can round to −1e−14)
        assert abs(beta_divergence(Xin, W, H, beta)) < 1e-9 * np.sum(X)


def test_frobenius_from_grams_is_half_the_expanded_square_clamped_at_zero():
    assert frobenius_from_grams(10.0, 3.0, 2.0) == pytest.approx(3.0)  # ½(10 − 6 + 2)
    assert frobenius_from_grams(1.0, 1.0, 1.0 - 1e-12) == 0.0  # rounding below zero


def test_sparse_frobenius_of_a_near_exact_factorisation_is_not_negative():
    rng = np.random.RandomState(6)
    W = rng.rand(40, 4)
    H = rng.rand(4, 30)
    X = sp.csr_matrix(W @ H)
    d = beta_divergence(X, W, H, 2)
    assert 0.0 <= d < 1e-8
