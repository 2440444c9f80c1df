"""Frozen components (issue 4): given rows of H stay bit-identical, the others are learned."""

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF, _fit, non_negative_factorization
from nmfkit.backends import get_backend
from nmfkit.init import initialize
from nmfkit.losses import beta_divergence


@pytest.fixture(scope="module")
def planted():
    """X = W H with two known components (the ones we freeze) and two unknown ones."""
    rng = np.random.RandomState(0)
    H = rng.rand(4, 25) ** 3
    W = rng.rand(50, 4)
    return W @ H + 0.01 * rng.rand(50, 25), H


@pytest.mark.parametrize(
    "solver, beta_loss", [("cd", "frobenius"), ("mu", "frobenius"), ("mu", "kullback-leibler"),
                          ("cd", "kullback-leibler")]
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_frozen_rows_are_bit_identical(planted, solver, beta_loss, dtype):
    from nmfkit.solvers import SOLVERS

    options = None
    if solver == "cd" and beta_loss != "frobenius":
        if not SOLVERS["cd"].supports_beta(1.0):
            pytest.skip("solver 'cd' has no KL kernel in this build")
        options = {"kernel": "numpy"}  # no JIT compilation in a unit test
    X, H_true = planted
    X = X.astype(dtype)
    frozen = H_true[:2].astype(dtype)
    m = NMF(4, solver=solver, beta_loss=beta_loss, frozen_components=frozen, max_iter=50,
            tol=0, random_state=0, init="nndsvda", solver_options=options)
    W = m.fit_transform(X)
    assert np.array_equal(m.components_[:2], frozen)
    assert m.components_.dtype == dtype and W.dtype == dtype
    # the free components did move away from their start
    W0, H0 = initialize(X, 4, init="nndsvda", random_state=0)
    assert not np.allclose(m.components_[2:], H0[2:])


def test_frozen_with_sparse_X_and_shuffle(planted):
    X, H_true = planted
    Xs = sp.csr_matrix(np.where(X > 0.3, X, 0))
    for solver in ("cd", "mu"):
        m = NMF(4, solver=solver, frozen_components=H_true[:1], shuffle=True, max_iter=30,
                tol=0, random_state=0)
        m.fit(Xs)
        assert np.array_equal(m.components_[0], H_true[0])


@pytest.mark.parametrize("solver, beta", [("mu", 2.0), ("mu", 1.0), ("cd", 2.0)])
def test_objective_non_increasing_with_frozen(planted, solver, beta):
    X, H_true = planted
    W0, H0 = initialize(X, 4, init="random", random_state=0)
    H0[:2] = H_true[:2]
    objs = []
    res = _fit.factorize(
        X, W0, H0.copy(), solver=solver, beta=beta, nx=get_backend(X), tol=0, max_iter=40,
        frozen_H=(0, 1), callback=lambda i: objs.append(beta_divergence(X, i.W, i.H, beta)),
    )
    assert np.all(np.diff(objs) <= 1e-10 * objs[0])
    assert np.array_equal(res.H[:2], H_true[:2])


def test_frozen_W_columns_at_solver_level(planted):
    X, _ = planted
    W0, H0 = initialize(X, 3, init="random", random_state=1)
    for solver in ("mu", "cd"):
        res = _fit.factorize(X, W0.copy(), H0.copy(), solver=solver, beta=2.0,
                             nx=get_backend(X), tol=0, max_iter=20, frozen_W=(1,))
        assert np.array_equal(res.W[:, 1], W0[:, 1])


def test_known_components_help_recover_the_rest(planted):
    """Freezing the two true components, the fit still explains X well."""
    X, H_true = planted
    m = NMF(4, frozen_components=H_true[:2], max_iter=300, random_state=0, init="nndsvda")
    m.fit(X)
    rel = m.reconstruction_err_ / np.linalg.norm(X)
    assert rel < 0.05


def test_refit_on_new_data_keeps_them_and_function_api(planted):
    X, H_true = planted
    m = NMF(4, frozen_components=H_true[:2], max_iter=30, tol=0, random_state=0)
    m.fit(X[:25])
    m.fit(X[25:] * 2.0)
    assert np.array_equal(m.components_[:2], H_true[:2])
    W, H, _ = non_negative_factorization(X, n_components=4, frozen_components=H_true[:2],
                                         max_iter=20, tol=0, random_state=0)
    assert np.array_equal(H[:2], H_true[:2])
    # transform uses the whole (partly frozen) model unchanged
    Wt = m.transform(X[:5])
    assert Wt.shape == (5, 4) and np.array_equal(m.components_[:2], H_true[:2])


def test_frozen_errors(planted):
    X, H_true = planted
    with pytest.raises(ValueError, match=r"frozen_components must have shape \(n_frozen, "
                       r"n_features\) = \(<= 4, 25\), got \(2, 24\)"):
        NMF(4, frozen_components=H_true[:2, :24]).fit(X)
    with pytest.raises(ValueError, match="got \\(5, 25\\)"):
        NMF(4, frozen_components=np.vstack([H_true, H_true[:1]])).fit(X)
    with pytest.raises(ValueError, match="finite and non-negative"):
        NMF(4, frozen_components=-H_true[:1]).fit(X)
    with pytest.raises(ValueError, match="cannot be combined with smoothness"):
        NMF(4, frozen_components=H_true[:1], smoothness=0.3).fit(X)
    with pytest.raises(ValueError, match="solver 'nmfsc' cannot keep frozen_components"):
        NMF(4, solver="nmfsc", sparseness_H=0.5, frozen_components=H_true[:1]).fit(X)


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_frozen_rows_survive_restarts(planted, solver):
    """n_init > 1: every restart starts from and keeps the frozen rows; best run kept."""
    X, H_true = planted
    m = NMF(4, n_init=3, frozen_components=H_true[:2], solver=solver, random_state=0,
            max_iter=50, tol=0).fit(X)
    assert np.array_equal(m.components_[:2], H_true[:2])
    assert len(m.init_objectives_) == 3
    single = NMF(4, frozen_components=H_true[:2], solver=solver, random_state=0,
                 max_iter=50, tol=0).fit(X)
    assert m.history_["objective"][-1] <= single.history_["objective"][-1] * (1 + 1e-12)
