"""Solver steps against references written from their definitions, for the cases mutation
testing showed no other test reached: the multiplicative warm-up of KL coordinate descent
(exactly ``mu_warmup`` Lee & Seung steps), stored zeros and frozen components in KL CD, the
penalised objective the masked solvers report, frozen components and unobserved rows and
columns under a mask, masked solvers on complete data, transform as a non-negative
least-squares solve, and the fallback of ``solver="auto"``."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF


def _kl_mu_step(X, W, H, l1=0.0, l2=0.0):
    """One Lee & Seung KL multiplicative update, W then H, with L1 and L2 in the denominator."""
    def factor(num, den):  # a component with nothing to fit (den = 0) keeps its values
        return np.divide(num, den, out=np.ones_like(num), where=den > 0)

    WH = W @ H
    Q = np.divide(X, WH, out=np.zeros_like(X), where=X > 0)
    W = W * factor(Q @ H.T, np.broadcast_to(H.sum(axis=1)[None, :] + l1 + l2 * W, W.shape))
    WH = W @ H
    Q = np.divide(X, WH, out=np.zeros_like(X), where=X > 0)
    H = H * factor(W.T @ Q, np.broadcast_to(W.sum(axis=0)[:, None] + l1 + l2 * H, H.shape))
    return W, H


def _start(seed=0, n=30, m=20, k=4):
    rng = np.random.RandomState(seed)
    X = rng.poisson(3.0, size=(n, m)).astype(np.float64)
    W0 = rng.rand(n, k) + 0.1
    H0 = rng.rand(k, m) + 0.1
    return X, W0, H0


def _fit(X, W0, H0, **params):
    model = NMF(W0.shape[1], init="custom", tol=0.0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the point here
        W = model.fit_transform(X, W=W0.copy(), H=H0.copy())
    return model, W, model.components_


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("warmup", [1, 2])
@pytest.mark.parametrize("scale", [1.0, 1e-4])
def test_kl_cd_warmup_iterations_are_multiplicative_updates(sparse, warmup, scale):
    # the first `mu_warmup` iterations are exactly Lee & Seung's updates, the next one is not;
    # an empty last row and column, and factors whose sums lie below 1 (scale 1e-4)
    X, W0, H0 = _start()
    X[-1, :] = 0.0
    X[:, -1] = 0.0
    X, W0, H0 = X * scale, W0 * np.sqrt(scale), H0 * np.sqrt(scale)
    Xin = sp.csr_matrix(X) if sparse else X
    kw = dict(solver="cd", beta_loss="kullback-leibler", solver_options={"mu_warmup": warmup})
    _, W, H = _fit(Xin, W0, H0, max_iter=warmup, **kw)
    Wr, Hr = W0, H0
    for _ in range(warmup):
        Wr, Hr = _kl_mu_step(X, Wr, Hr)
    np.testing.assert_allclose(W @ H, Wr @ Hr, rtol=1e-9, atol=1e-12 * scale)
    _, W, H = _fit(Xin, W0, H0, max_iter=warmup + 1, **kw)
    Wr, Hr = _kl_mu_step(X, Wr, Hr)
    assert not np.allclose(W @ H, Wr @ Hr, rtol=1e-6)  # a Newton sweep, not another MU step


def test_kl_cd_warmup_leaves_a_dead_component_in_place():
    X, W0, H0 = _start(seed=2)
    H0[1] = 0.0  # component 1 contributes nothing: its W column has nothing to fit
    _, W, H = _fit(X, W0, H0, solver="cd", beta_loss="kullback-leibler", max_iter=1,
                   solver_options={"mu_warmup": 3})
    Wr, Hr = _kl_mu_step(X, W0, H0)
    assert np.isfinite(W).all() and np.isfinite(H).all()
    np.testing.assert_allclose(W, Wr, rtol=1e-9)
    np.testing.assert_allclose(H, Hr, rtol=1e-9)
    np.testing.assert_array_equal(W[:, 1], W0[:, 1])


def test_kl_cd_ignores_explicitly_stored_zeros():
    X, W0, H0 = _start(seed=3)
    Xs = sp.csr_matrix(X)
    stored = sp.csr_matrix((np.where(X > 0, X, 0.0).ravel(), np.tile(np.arange(X.shape[1]), X.shape[0]),
                            np.arange(0, X.size + 1, X.shape[1])), shape=X.shape)
    assert stored.nnz == X.size > Xs.nnz  # every zero stored explicitly
    kw = dict(solver="cd", beta_loss="kullback-leibler", max_iter=8)
    _, W1, H1 = _fit(Xs, W0, H0, **kw)
    _, W2, H2 = _fit(stored, W0, H0, **kw)
    np.testing.assert_allclose(W2, W1, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(H2, H1, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("warmup", [0, 5])
def test_kl_cd_keeps_frozen_components(warmup):
    X, _, _ = _start(seed=4)
    H0 = np.random.RandomState(5).rand(2, X.shape[1]) + 0.1
    model = NMF(4, solver="cd", beta_loss="kullback-leibler", frozen_components=H0,
                init="random", random_state=0, max_iter=12,
                solver_options={"mu_warmup": warmup})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    np.testing.assert_array_equal(model.components_[:2], H0)
    assert not np.allclose(model.components_[2:], 0.0)


@pytest.mark.parametrize("solver", ["anls", "cd", "mu"])
def test_transform_solves_the_nonnegative_least_squares_problem(solver):
    # transform fixes H and solves for W: at the answer the KKT conditions of
    # min_{W ≥ 0} ½‖X − WH‖² hold (anls exactly; cd and mu to their tolerance)
    rng = np.random.RandomState(6)
    X = rng.rand(40, 4) @ rng.rand(4, 15) + 0.01 * rng.rand(40, 15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NMF(4, solver=solver, init="nndsvda", max_iter=400, tol=1e-10).fit(X)
        Xn = np.abs(rng.randn(7, 15))
        W = model.transform(Xn)
    H = model.components_
    grad = W @ H @ H.T - Xn @ H.T
    scale = np.abs(Xn @ H.T).max()
    tol = 1e-8 if solver == "anls" else 1e-3
    assert (W >= 0).all()
    assert (grad >= -tol * scale).all()
    assert np.abs(W * grad).max() <= tol * scale * max(W.max(), 1.0)


def test_kl_cd_warmup_with_l1_and_l2_matches_the_penalised_multiplicative_update():
    X, W0, H0 = _start(seed=1)
    n, m = X.shape
    alpha, l1_ratio = 0.01, 0.5
    _, W, H = _fit(X, W0, H0, solver="cd", beta_loss="kullback-leibler", max_iter=1,
                   alpha_W=alpha, l1_ratio=l1_ratio, solver_options={"mu_warmup": 5})
    # scikit-learn's scaling of the penalties: by n_features for W, by n_samples for H
    l1W, l2W = alpha * l1_ratio * m, alpha * (1 - l1_ratio) * m
    l1H, l2H = alpha * l1_ratio * n, alpha * (1 - l1_ratio) * n
    WH = W0 @ H0
    Wr = W0 * ((X / WH) @ H0.T) / (H0.sum(axis=1)[None, :] + l1W + l2W * W0)
    WH = Wr @ H0
    Hr = H0 * (Wr.T @ (X / WH)) / (Wr.sum(axis=0)[:, None] + l1H + l2H * H0)
    np.testing.assert_allclose(W, Wr, rtol=1e-9)
    np.testing.assert_allclose(H, Hr, rtol=1e-9)


def _masked_problem(seed=0, n=25, m=18, k=3):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, k) @ rng.rand(k, m) + 0.05
    M = (rng.rand(n, m) < 0.7).astype(np.float64)
    M[:, -1] = 0.0  # the last column and the last row are never observed
    M[-1, :] = 0.0
    return X, M


def _weighted_objective(X, M, W, H, beta, alpha_W, alpha_H, l1_ratio):
    """Σ M d_β(X | WH) + scikit-learn's scaled L1/L2 penalties, from the definitions."""
    n, m = X.shape
    Y = W @ H
    if beta == 2.0:
        f = 0.5 * np.sum(M * (X - Y) ** 2)
    else:  # KL, on the observed entries only (WH may be 0 where nothing is observed)
        o = M > 0
        f = np.sum(M[o] * (X[o] * np.log(X[o] / Y[o]) - X[o] + Y[o]))
    for a, F, scale in ((alpha_W, W, m), (alpha_H, H, n)):
        f += a * scale * (l1_ratio * F.sum() + 0.5 * (1.0 - l1_ratio) * (F * F).sum())
    return f


@pytest.mark.parametrize("solver,beta", [("masked_als", 2.0), ("masked_cd", 2.0),
                                         ("masked_mu", 2.0), ("masked_mu", 1.0)])
def test_masked_solvers_report_the_penalised_weighted_objective(solver, beta):
    X, M = _masked_problem()
    kw = dict(alpha_W=0.02, alpha_H=0.01, l1_ratio=0.3)
    model = NMF(3, solver=solver, beta_loss=beta, init="random", random_state=0, tol=0,
                max_iter=8, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W = model.fit_transform(X, mask=M)
    H = model.components_
    assert np.isfinite(W).all() and np.isfinite(H).all()
    # an unobserved column or row carries no data: only the penalties act on it
    assert model.loss_curve_[-1] == pytest.approx(
        _weighted_objective(X, M, W, H, beta, **kw), rel=1e-7)


@pytest.mark.parametrize("solver,beta", [("masked_cd", 2.0), ("masked_mu", 2.0),
                                         ("masked_mu", 1.0)])
def test_masked_solvers_keep_frozen_components(solver, beta):
    X, M = _masked_problem(seed=1)
    H0 = np.random.RandomState(2).rand(1, X.shape[1]) + 0.1
    model = NMF(3, solver=solver, beta_loss=beta, frozen_components=H0, init="random",
                random_state=0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, mask=M)
    np.testing.assert_array_equal(model.components_[:1], H0)


def test_auto_without_a_solver_for_everything_names_the_preferred_one():
    # nothing honours a backend no solver runs on: "auto" returns the preferred solver of the
    # loss so that get_solver explains what is unsupported
    from nmfkit.solvers._auto import resolve_solver

    assert resolve_solver(0.5, backend="no-such-backend") == "mu"
    assert resolve_solver(2.0, backend="no-such-backend") == "cd"
    assert resolve_solver(2.0, masked=True, backend="no-such-backend") == "masked_als"
    assert resolve_solver(1.0, masked=True, backend="no-such-backend") == "masked_mu"


def test_auto_turns_both_accelerations_on_for_frobenius_cd_only():
    from nmfkit.solvers._auto import auto_options

    assert auto_options("cd", 2.0) == {"inner": True, "extrapolate": True,
                                       "stop_rule": "violation"}
    assert auto_options("cd", 1.0) == {}
    assert auto_options("mu", 2.0) == {}


@pytest.mark.parametrize("solver", ["masked_als", "masked_cd", "masked_mu"])
@pytest.mark.parametrize("sparse", [False, True])
def test_masked_solver_without_a_mask_fits_every_entry(solver, sparse):
    # asked for by name on complete data, a masked solver observes every entry (stored zeros
    # of a sparse X included): the same fit as with a mask of ones
    rng = np.random.RandomState(7)
    X = rng.rand(20, 3) @ rng.rand(3, 15)
    X[X < 0.5] = 0.0
    kw = dict(solver=solver, init="random", random_state=0, max_iter=6, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = NMF(3, **kw).fit(sp.csr_matrix(X) if sparse else X)
        masked = NMF(3, **kw).fit(X, mask=np.ones(X.shape))
    np.testing.assert_allclose(plain.components_, masked.components_, rtol=1e-12, atol=1e-14)
    assert plain.reconstruction_err_ == pytest.approx(masked.reconstruction_err_, rel=1e-12)


@pytest.mark.parametrize("solver,beta", [("cd", 2.0), ("mu", 2.0), ("mu", 1.0), ("mu", 0.5)])
@pytest.mark.parametrize("sparse", [False, True])
def test_frozen_components_stay_bit_identical(solver, beta, sparse):
    X, _, _ = _start(seed=8)
    X = X + 0.1 if beta < 1 else X
    H0 = np.random.RandomState(9).rand(2, X.shape[1]) + 0.1
    model = NMF(4, solver=solver, beta_loss=beta, frozen_components=H0, init="random",
                random_state=0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(sp.csr_matrix(X) if sparse else X)
    np.testing.assert_array_equal(model.components_[:2], H0)
    assert not np.allclose(model.components_[2:], 0.0)
