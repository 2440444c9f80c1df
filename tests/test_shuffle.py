"""``shuffle=True`` (a random component order in each coordinate-descent sweep) reaches every
solver that has coordinates to shuffle: ``cd``, masked ALS (coordinate descent within each
row's weighted least squares), masked coordinate descent and the robust losses' HALS."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nmfkit
from nmfkit.solvers import SOLVERS

from _helpers import with_missing


def _missing(seed=0):
    return with_missing(70, 45, 0.2, seed=seed)


def _fit(X, **kw):
    est = nmfkit.NMF(4, random_state=0, max_iter=25, tol=0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W = est.fit_transform(X)
    return W, est


def test_the_solvers_that_shuffle_are_the_coordinate_descents():
    assert {n for n, c in SOLVERS.items() if c.shuffles} >= {"cd", "masked_als", "masked_cd"}
    for name in ("mu", "anls", "pgd", "masked_mu"):
        assert not SOLVERS[name].shuffles, name


@pytest.mark.parametrize("solver, runs", [("cd", "masked_als"), ("auto", "masked_als"),
                                          ("masked_als", "masked_als"),
                                          ("masked_cd", "masked_cd")])
def test_shuffle_reaches_the_masked_coordinate_descents(solver, runs):
    X = _missing()
    W_sh, est = _fit(X, solver=solver, shuffle=True, missing_values=np.nan)
    W_ref, _ = _fit(X, solver=runs, shuffle=True, missing_values=np.nan)
    W_plain, _ = _fit(X, solver=runs, missing_values=np.nan)
    np.testing.assert_array_equal(W_sh, W_ref)
    assert not np.array_equal(W_sh, W_plain)  # the order changed the iterates
    W_again, _ = _fit(X, solver=solver, shuffle=True, missing_values=np.nan)
    np.testing.assert_array_equal(W_sh, W_again)  # the order is drawn from random_state
    curve = np.asarray(est.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-10 * curve[:-1])  # still exact block descent


def test_masked_als_with_an_identity_order_is_the_cyclic_fit():
    from nmfkit.solvers.masked_als import cd_rows

    rng = np.random.default_rng(2)
    A = rng.random((6, 4, 3))
    G = np.einsum("bij,bkj->bik", A, A)
    R = rng.random((6, 4))
    F1, F2, F3 = (np.zeros((6, 4)) for _ in range(3))
    cd_rows(F1, G, R, n_sweeps=3, tol=0)
    cd_rows(F2, G, R, n_sweeps=3, tol=0, order=np.arange(4))
    cd_rows(F3, G, R, n_sweeps=3, tol=0, order=np.array([3, 1, 0, 2]))
    np.testing.assert_array_equal(F1, F2)
    assert not np.array_equal(F1, F3)


@pytest.mark.parametrize("loss", [dict(loss="huber"), dict(loss="cauchy"),
                                  dict(outliers="sparse"), dict(loss="l21")])
def test_shuffle_reaches_the_robust_losses_hals(loss):
    rng = np.random.default_rng(4)
    X = rng.random((50, 4)) @ rng.random((4, 36))
    X[rng.random(X.shape) < 0.03] += 5.0  # a few gross errors
    W_sh, est = _fit(X, shuffle=True, **loss)
    W_plain, _ = _fit(X, **loss)
    W_again, _ = _fit(X, shuffle=True, **loss)
    assert not np.array_equal(W_sh, W_plain), "shuffle=True gave the cyclic fit"
    np.testing.assert_array_equal(W_sh, W_again)
    curve = np.asarray(est.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-9 * np.abs(curve[:-1]))  # the majoriser still descends
