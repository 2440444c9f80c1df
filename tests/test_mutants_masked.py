"""The observed-entries layer and the masked row solver against their definitions, for what
mutation testing showed no other test reached: every way of saying what is observed against
a dense reference (values, weights, both CSR orders, the transpose), the sampled product and
the weighted divergence for every β, the row kernel's KKT point with unbounded coordinates
and per-coordinate L2, and Gram matrices formed without the upper-triangle product."""

import warnings

import numpy as np
import pytest

import scipy.sparse as sp

import nmfkit.solvers.masked_als as masked_als
from nmfkit import NMF
from nmfkit.masked import observed_entries, sampled_product, weighted_divergence
from nmfkit.solvers.masked_als import cd_rows


def _box_qp_rows(seed, B=6, k=5):
    rng = np.random.RandomState(seed)
    A = rng.randn(B, k + 3, k)
    G = np.einsum("bij,bik->bjk", A, A)  # symmetric positive definite, one per row
    R = rng.randn(B, k) * 3.0
    return G, R


def _kkt_residual(F, G, R, l1, l2, free):
    """The largest violation of the KKT conditions of
    min ½ fᵀGf − Rᵀf + l1·Σ_bounded f + ½ Σ l2 f², f ≥ 0 on the bounded coordinates."""
    grad = np.einsum("bjk,bk->bj", G, F) - R + l2 * F
    grad = grad + np.where(free[None, :], 0.0, l1[:, None])
    bounded = ~free[None, :]
    viol = np.where(bounded, np.where(F > 0, np.abs(grad), np.maximum(-grad, 0.0)),
                    np.abs(grad))
    neg = np.where(bounded, np.maximum(-F, 0.0), 0.0)
    return max(viol.max(), neg.max())


def test_row_kernel_reaches_the_kkt_point_with_free_coordinates_and_per_coordinate_l2():
    G, R = _box_qp_rows(0)
    B, k = R.shape
    rng = np.random.RandomState(1)
    l1 = rng.rand(B) * 0.5
    l2 = rng.rand(B, k)  # one L2 weight per row and coordinate
    free = np.zeros(k, dtype=bool)
    free[0] = True  # an unbounded coordinate (a bias): no bound, no L1
    F = np.zeros((B, k))
    cd_rows(F, G, R, l1, l2, n_sweeps=3000, tol=0.0, free=free)
    assert _kkt_residual(F, G, R, l1, l2, free) < 1e-8
    # the unbounded coordinate is negative somewhere here: the bound is really lifted
    assert (F[:, 0] < 0).any()
    assert (F[:, 1:] >= 0).all()


def test_row_kernel_with_scalar_penalties_matches_the_per_row_form():
    G, R = _box_qp_rows(2)
    B, k = R.shape
    F1 = np.zeros((B, k))
    F2 = np.zeros((B, k))
    cd_rows(F1, G, R, 0.3, 0.2, n_sweeps=2000, tol=0.0)
    cd_rows(F2, G, R, np.full(B, 0.3), np.full((B, k), 0.2), n_sweeps=2000, tol=0.0)
    np.testing.assert_allclose(F1, F2, rtol=1e-12, atol=1e-14)
    assert _kkt_residual(F1, G, R, np.full(B, 0.3), 0.2, np.zeros(k, dtype=bool)) < 1e-8


@pytest.mark.parametrize("density", [0.05, 0.6])
def test_masked_als_does_not_depend_on_how_gram_matrices_are_formed(density, monkeypatch):
    # small blocks turn off the one-product Gram path: very sparse rows (< 4 observations on
    # average) take the segmented sum, the others one product per row; same fit either way
    rng = np.random.RandomState(3)
    X = rng.rand(60, 3) @ rng.rand(3, 40)
    M = (rng.rand(60, 40) < density) * rng.uniform(0.2, 3.0, size=(60, 40))  # real weights
    M[np.arange(60), rng.randint(0, 40, 60)] = 1.5  # every row observed at least once
    M[rng.randint(0, 60, 40), np.arange(40)] = 0.7

    def fit():
        # a fixed number of inner sweeps: the inner stopping rule is per block of rows
        model = NMF(3, solver="masked_als", init="random", random_state=0, tol=0, max_iter=6,
                    alpha_W=0.01, l1_ratio=0.5,
                    solver_options={"inner_max_iter": 10, "inner_tol": 0.0})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W = model.fit_transform(X, mask=M)
        return W, model.components_

    W1, H1 = fit()
    # blocks of at most 5 observations (45 // k²), several rows each, and no upper-triangle
    # product (n·k(k+1)/2 > 4 · 45 on both sides)
    monkeypatch.setattr(masked_als, "_BLOCK_ELEMENTS", 45)
    W2, H2 = fit()
    np.testing.assert_allclose(W2, W1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(H2, H1, rtol=1e-9, atol=1e-12)


def _check_observed(obs, X, W_dense):
    """obs holds exactly the entries where W_dense > 0, with X's values and those weights, in
    CSR order, and its transposed structure is the same set in CSC order."""
    n, m = X.shape
    r, c = np.nonzero(W_dense > 0)  # row-major: CSR order
    assert obs.shape == (n, m) and obs.nnz == r.size
    np.testing.assert_array_equal(obs.rows, r)
    np.testing.assert_array_equal(obs.indices, c)
    np.testing.assert_array_equal(obs.indptr, np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))]))
    np.testing.assert_array_equal(obs.values, X[r, c])
    assert obs.values.dtype == obs.weights.dtype == X.dtype  # weights in X's precision
    np.testing.assert_array_equal(obs.weights, W_dense[r, c].astype(X.dtype))
    np.testing.assert_array_equal(obs.csr().toarray(), np.where(W_dense > 0, X, 0.0))
    ct, rt = np.nonzero((W_dense > 0).T)  # column-major: the transposed order
    np.testing.assert_array_equal(obs.t_indices, rt)
    np.testing.assert_array_equal(obs.t_indptr, np.concatenate([[0], np.cumsum(np.bincount(ct, minlength=m))]))
    np.testing.assert_array_equal(obs.rows[obs.t_perm], rt)
    np.testing.assert_array_equal(obs.indices[obs.t_perm], ct)


def _X(seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = rng.rand(7, 5).astype(dtype)
    X[X < 0.2] = 0.0  # observed zeros are observations too
    X[:, -1] = 0.0  # and a last column and last row with nothing observed below
    return X


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_observed_entries_of_every_input_form_match_a_dense_reference(dtype):
    X = _X(dtype=dtype)
    ones = np.ones(X.shape)
    rng = np.random.RandomState(1)
    # NaN marks missing
    Xn = X.copy()
    Xn[rng.rand(*X.shape) < 0.3] = np.nan
    Xn[-1] = np.nan
    ref = np.where(np.isnan(Xn), 0.0, 1.0)
    _check_observed(observed_entries(Xn, missing_values=np.nan), np.nan_to_num(Xn), ref)
    _check_observed(observed_entries(Xn, missing_values="nan"), np.nan_to_num(Xn), ref)
    # a sentinel number marks missing
    Xs = np.where(np.isnan(Xn), -1.0, X).astype(dtype)
    _check_observed(observed_entries(Xs, missing_values=-1.0), Xs, ref)
    # a sparse X whose stored entries (zeros included) are the observations
    S = sp.coo_matrix((X[ref > 0], np.nonzero(ref > 0)), shape=X.shape)
    _check_observed(observed_entries(S.tocsr(), missing_values="unobserved"), X, ref)
    # a boolean mask, a weight matrix (dense and sparse; weight 0 = unobserved)
    Wt = np.round(rng.rand(*X.shape) * 3, 1)
    Wt[:, -1] = 0.0
    _check_observed(observed_entries(X, mask=Wt > 0), X, (Wt > 0).astype(float))
    _check_observed(observed_entries(X, mask=Wt), X, Wt)
    _check_observed(observed_entries(X, mask=sp.csr_matrix(Wt)), X, Wt)
    _check_observed(observed_entries(sp.csr_matrix(X), mask=Wt), X, Wt)
    # a mask and NaN together: observed where the weight is > 0 and the value is known
    _check_observed(observed_entries(Xn, mask=Wt, missing_values=np.nan), np.nan_to_num(Xn),
                    np.where(np.isnan(Xn), 0.0, Wt))
    _check_observed(observed_entries(Xs, mask=Wt, missing_values=-1.0), Xs,
                    np.where(Xs == -1.0, 0.0, Wt))
    assert observed_entries(X, mask=ones).unit_weights
    assert not observed_entries(X, mask=Wt).unit_weights


def test_stored_duplicates_of_a_sparse_X_are_summed_into_one_observation():
    S = sp.coo_matrix(([1.0, 2.0, 5.0], ([0, 0, 1], [1, 1, 0])), shape=(2, 3))
    obs = observed_entries(S, missing_values="unobserved")
    _check_observed(obs, np.array([[0.0, 3.0, 0.0], [5.0, 0.0, 0.0]]),
                    np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))


def test_the_transposed_observed_set_is_the_observed_set_of_the_transpose():
    X = _X(2)
    Wt = np.round(np.random.RandomState(3).rand(*X.shape) * 3, 1)
    obs = observed_entries(X, mask=Wt).transposed()
    _check_observed(obs, X.T.copy(), Wt.T.copy())
    # transposing twice gives the original back
    back = obs.transposed()
    _check_observed(back, X, Wt)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sampled_product_is_WH_at_the_observations_in_any_block_size(dtype):
    X = _X(4)
    Wt = (np.random.RandomState(5).rand(*X.shape) < 0.6).astype(float)
    obs = observed_entries(X, mask=Wt)
    rng = np.random.RandomState(6)
    W, H = rng.rand(7, 3).astype(dtype), rng.rand(3, 5).astype(dtype)
    ref = (W @ H)[obs.rows, obs.indices]
    for block in (1, 3, obs.nnz, 65536):
        y = sampled_product(obs, W, H, block=block)
        assert y.dtype == dtype
        np.testing.assert_allclose(y, ref, rtol=1e-6)


def _d_beta(x, y, beta):
    if beta == 2.0:
        return 0.5 * (x - y) ** 2
    if beta == 1.0:
        return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0) / y), 0.0) - x + y
    if beta == 0.0:
        return x / y - np.log(x / y) - 1.0
    return (x**beta + (beta - 1) * y**beta - beta * x * y ** (beta - 1)) / (beta * (beta - 1))


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
def test_weighted_divergence_is_the_weighted_sum_over_observed_entries(beta):
    X = _X(7)
    if beta <= 0:
        X = X + 0.1  # Itakura-Saito needs X > 0
    rng = np.random.RandomState(8)
    Wt = np.round(rng.rand(*X.shape) * 3, 1)
    W, H = rng.rand(7, 3) + 0.1, rng.rand(3, 5) + 0.1
    o = Wt > 0
    ref = float(np.sum(Wt[o] * _d_beta(X[o], (W @ H)[o], beta)))
    assert weighted_divergence(observed_entries(X, mask=Wt), W, H, beta) == pytest.approx(ref, rel=1e-10)


def test_weighted_kl_where_WH_is_zero_at_an_observation_is_finite_and_scale_covariant():
    X = _X(9) + 0.5
    W, H = np.random.RandomState(10).rand(7, 3), np.random.RandomState(11).rand(3, 5)
    W[0] = 0.0  # WH = 0 on row 0, where X > 0 is observed
    obs, obs_c = observed_entries(X, mask=np.ones(X.shape)), observed_entries(1e3 * X, mask=np.ones(X.shape))
    d = weighted_divergence(obs, W, H, 1.0)
    assert np.isfinite(d) and d > 0
    # KL is homogeneous of degree 1; the floor scales with the observed values
    assert weighted_divergence(obs_c, 1e3 * W, H, 1.0) == pytest.approx(1e3 * d, rel=1e-9)


def test_weighted_divergence_defaults_to_frobenius():
    X = _X(12)
    W, H = np.random.RandomState(13).rand(7, 3), np.random.RandomState(14).rand(3, 5)
    obs = observed_entries(X, mask=np.ones(X.shape))
    assert weighted_divergence(obs, W, H) == pytest.approx(0.5 * np.sum((X - W @ H) ** 2), rel=1e-12)


def test_refusals_name_the_fix():
    X = _X(15)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    fix = r"Pass missing_values=np.nan to treat NaN as a missing entry, or give those entries weight 0 in mask\."
    with pytest.raises(ValueError, match="NaN at observed entries. " + fix):
        observed_entries(Xn)
    with pytest.raises(ValueError, match="NaN at entries the mask marks as observed. " + fix):
        observed_entries(Xn, mask=np.ones(X.shape))
    with pytest.raises(ValueError, match=r"^missing_values='unobserved' means the stored entries of a "
                       r"sparse X are the observations, but X is dense\. Pass a scipy\.sparse X, or use "
                       r"missing_values=np\.nan with NaN at the missing entries of a dense X\.$"):
        observed_entries(X, missing_values="unobserved")
    S = sp.csr_matrix(X)
    with pytest.raises(ValueError, match=r"^missing_values=0\.0 with a sparse X is ambiguous \(are the "
                       r"absent entries zeros or missing\?\)\. Use missing_values='unobserved' \(absent = "
                       r"missing\) or pass a mask\.$"):
        observed_entries(S, missing_values=0.0)
    with pytest.raises(ValueError, match=r"^A sparse X has no missing entries unless "
                       r"missing_values='unobserved' says that its absent entries are unknown; or pass "
                       r"a mask\.$"):
        observed_entries(S)
    Sn = S.copy()
    Sn.data[0] = np.nan
    with pytest.raises(ValueError, match="^Input X contains NaN at stored entries. " + fix):
        observed_entries(Sn, missing_values="unobserved")
    # a sentinel marks the missing entries: a NaN elsewhere is an observed NaN, refused
    Xs = X.copy()
    Xs[1, 1] = -1.0
    Xs[2, 2] = np.nan
    with pytest.raises(ValueError, match="^Input X contains NaN at observed entries. " + fix):
        observed_entries(Xs, missing_values=-1.0)


def test_mask_refusals_name_the_problem_and_the_fix():
    X = _X(16)
    with pytest.raises(ValueError, match=r"^mask has shape \(5, 7\) but X has shape \(7, 5\); pass a "
                       r"mask of X's shape \(True/weight > 0 where observed\)\.$"):
        observed_entries(X, mask=np.ones((5, 7)))
    with pytest.raises(ValueError, match=r"^mask must be 2-D with X's shape \(7, 5\), got ndim=1\.$"):
        observed_entries(X, mask=np.ones(35))
    for bad in (-0.5, np.inf):
        M = np.ones(X.shape)
        M[3, 2] = 0.0  # an unobserved entry: weight 0 is allowed
        M[4, 1] = bad
        with pytest.raises(ValueError, match=r"^mask must hold non-negative finite weights \(or "
                           rf"booleans\); found {bad!r}\.$"):
            observed_entries(X, mask=M)
        with pytest.raises(ValueError, match=rf"found {bad!r}\.$"):
            observed_entries(X, mask=sp.csr_matrix(M))


def test_a_stored_zero_weight_in_a_sparse_mask_is_unobserved():
    X = _X(17)
    M = sp.csr_matrix(np.ones(X.shape))
    M.data[[0, 5]] = 0.0  # stored, but weight 0
    assert M.nnz == X.size
    ref = M.toarray()
    _check_observed(observed_entries(X, mask=M), X, ref)


def test_an_unobserved_extra_row_changes_nothing_else_in_masked_als():
    # a row with no observation has no data: the other rows of W and all of H come out the
    # same with or without it (the L1/L2 penalty on W scales with n_features, unchanged)
    rng = np.random.RandomState(18)
    X = rng.rand(12, 3) @ rng.rand(3, 9)
    M = (rng.rand(12, 9) < 0.7) * rng.uniform(0.5, 2.0, size=(12, 9))
    W0, H0 = rng.rand(12, 3) + 0.1, rng.rand(3, 9) + 0.1
    kw = dict(solver="masked_als", init="custom", tol=0, max_iter=5, alpha_W=0.05,
              alpha_H=0.0, l1_ratio=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = NMF(3, **kw)
        W = base.fit_transform(X, mask=M, W=W0.copy(), H=H0.copy())
        more = NMF(3, **kw)
        W_more = more.fit_transform(np.vstack([X, X[:1]]), mask=np.vstack([M, np.zeros((1, 9))]),
                                    W=np.vstack([W0, W0[:1]]), H=H0.copy())
    np.testing.assert_allclose(W_more[:-1], W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(more.components_, base.components_, rtol=1e-12, atol=1e-14)
