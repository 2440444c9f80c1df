"""The observed-entries layer and the masked row solver against their definitions, for what
mutation testing showed no other test reached: the row kernel's KKT point with unbounded
coordinates and per-coordinate L2, and Gram matrices formed without the upper-triangle
product (large factors, very sparse rows)."""

import warnings

import numpy as np
import pytest

import nmfkit.solvers.masked_als as masked_als
from nmfkit import NMF
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
    M = (rng.rand(60, 40) < density).astype(float)
    M[np.arange(60), rng.randint(0, 40, 60)] = 1.0  # every row observed at least once
    M[rng.randint(0, 60, 40), np.arange(40)] = 1.0

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
    monkeypatch.setattr(masked_als, "_BLOCK_ELEMENTS", 9)
    W2, H2 = fit()
    np.testing.assert_allclose(W2, W1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(H2, H1, rtol=1e-9, atol=1e-12)
