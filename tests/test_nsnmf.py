"""nsNMF (issue 4): X ≈ W S H, S = (1−θ)I + (θ/k)11ᵀ."""

import numpy as np
import pytest

from nmfkit import NMF, _fit
from nmfkit._fit import run
from nmfkit.backends import get_backend
from nmfkit.init import initialize
from nmfkit.losses import beta_divergence
from nmfkit.metrics import hoyer_sparseness
from nmfkit.nsnmf import smoothed_solver, smoothing_matrix
from nmfkit.solvers import SOLVERS, Problem


@pytest.fixture(scope="module")
def X():
    from sklearn.datasets import load_digits

    return load_digits().data[:150]


def test_smoothing_matrix():
    S = smoothing_matrix(4, 0.5)
    np.testing.assert_allclose(S.sum(axis=1), 1.0)
    np.testing.assert_allclose(S, 0.5 * np.eye(4) + 0.125)
    assert np.array_equal(smoothing_matrix(3, 0.0), np.eye(3))
    with pytest.raises(ValueError, match=r"smoothness \(theta\) must lie in \[0, 1\], got 1.5"):
        smoothing_matrix(3, 1.5)
    assert smoothing_matrix(3, 0.2, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_theta_zero_equals_plain_nmf(X, solver):
    a = NMF(6, solver=solver, random_state=0, max_iter=40, tol=0).fit(X)
    b = NMF(6, solver=solver, random_state=0, max_iter=40, tol=0, smoothness=0.0).fit(X)
    assert np.array_equal(a.components_, b.components_)


@pytest.mark.parametrize("solver, beta", [("mu", 2.0), ("mu", 1.0), ("cd", 2.0)])
def test_smoothed_wrapper_at_theta_zero_matches_the_solver(X, solver, beta):
    """The wrapper's two half-steps (a W-step and a transposed W-step) at θ=0 reproduce the
    solver's own iteration, so the wrapper adds nothing but S."""
    W0, H0 = initialize(X, 5, init="nndsvda")
    nx = get_backend(X)

    def fit(cls):
        Xp, Xt = nx.prepare_X(X)
        p = Problem(X=Xp, Xt=Xt, W=W0.copy(), H=H0.copy(), beta=beta, nx=nx,
                    options={"inner": False} if solver == "cd" else {})
        return run(cls(p), tol=0, max_iter=15)

    plain = fit(SOLVERS[solver])
    wrapped = fit(smoothed_solver(SOLVERS[solver], 0.0))
    np.testing.assert_allclose(wrapped.H, plain.H, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(wrapped.W, plain.W, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("solver, beta", [("mu", 2.0), ("mu", 1.0), ("cd", 2.0)])
def test_nsnmf_objective_non_increasing(X, solver, beta):
    W0, H0 = initialize(X + 0.01, 6, init="random", random_state=0)
    S = smoothing_matrix(6, 0.5)
    objs = []
    _fit.factorize(
        X + 0.01, W0, H0, solver=solver, beta=beta, nx=get_backend(X), tol=0, max_iter=40,
        smoothing=0.5,
        callback=lambda i: objs.append(beta_divergence(X + 0.01, i.W, S @ i.H, beta)),
    )
    assert objs[-1] < objs[0]
    assert np.all(np.diff(objs) <= 1e-10 * objs[0])


def test_transform_and_inverse_transform_consistent_with_smoothing(X):
    m = NMF(6, smoothness=0.6, random_state=0, max_iter=200)
    W = m.fit_transform(X)
    S = smoothing_matrix(6, 0.6)
    np.testing.assert_allclose(m.components_, S @ m.components_unsmoothed_, rtol=1e-12)
    np.testing.assert_allclose(m.smoothing_matrix_, S)
    # the reported error is the error of W S H, which inverse_transform reproduces
    assert np.linalg.norm(X - m.inverse_transform(W)) == pytest.approx(m.reconstruction_err_)
    # transform solves for W against S H: on the training data it reconstructs as well as fit
    Wt = m.transform(X)
    err_t = np.linalg.norm(X - m.inverse_transform(Wt))
    assert err_t <= 1.01 * m.reconstruction_err_


def test_theta_concentrates_sparseness(X):
    """Larger θ gives sparser raw factors (the point of nsNMF)."""
    sp = []
    for theta in (0.0, 0.5, 0.8):
        m = NMF(8, smoothness=theta, solver="mu", random_state=0, max_iter=200, tol=0)
        W = m.fit_transform(X)
        H = m.components_unsmoothed_ if theta else m.components_
        sp.append(hoyer_sparseness(H, axis=1).mean() + hoyer_sparseness(W, axis=0).mean())
    assert sp[0] < sp[1] < sp[2], sp


def test_refit_without_smoothing_drops_the_raw_factor(X):
    m = NMF(4, smoothness=0.5, max_iter=10, tol=0, random_state=0).fit(X)
    assert hasattr(m, "components_unsmoothed_")
    m.set_params(smoothness=0.0).fit(X)
    assert not hasattr(m, "components_unsmoothed_") and not hasattr(m, "smoothing_matrix_")


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_nsnmf_sparse_equals_dense_and_float32(X, solver):
    import scipy.sparse as sp

    kw = dict(smoothness=0.4, solver=solver, max_iter=20, tol=0, random_state=0)
    a = NMF(5, **kw).fit(X)
    b = NMF(5, **kw).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-7, atol=1e-9)
    c = NMF(5, **kw).fit(X.astype(np.float32))
    assert c.components_.dtype == np.float32 and c.components_unsmoothed_.dtype == np.float32
