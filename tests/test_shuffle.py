"""``shuffle=True`` (a random component order in each coordinate-descent sweep) reaches every
solver that has coordinates to shuffle: ``cd``, masked coordinate descent and the robust
losses' HALS; with a mask, ``solver="cd"`` / ``"auto"`` then run masked coordinate descent
(masked ALS solves whole rows: it has no coordinate order)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nmfkit
from nmfkit.solvers import SOLVERS
from nmfkit.solvers._auto import resolve_solver


def _missing(seed=0, n=70, m=45):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 5)) @ rng.random((5, m))
    X[rng.random(X.shape) < 0.2] = np.nan
    return X


def _fit(X, **kw):
    est = nmfkit.NMF(4, random_state=0, max_iter=25, tol=0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W = est.fit_transform(X)
    return W, est


def test_the_solvers_that_shuffle_are_the_coordinate_descents():
    assert {n for n, c in SOLVERS.items() if c.shuffles} >= {"cd", "masked_cd"}
    for name in ("mu", "anls", "pgd", "masked_als", "masked_mu"):
        assert not SOLVERS[name].shuffles, name


@pytest.mark.parametrize("solver", ["cd", "auto", "masked_cd"])
def test_shuffle_reaches_masked_coordinate_descent(solver):
    X = _missing()
    W_sh, est = _fit(X, solver=solver, shuffle=True, missing_values=np.nan)
    W_ref, _ = _fit(X, solver="masked_cd", shuffle=True, missing_values=np.nan)
    W_plain, _ = _fit(X, solver="masked_cd", missing_values=np.nan)
    np.testing.assert_array_equal(W_sh, W_ref)  # cd / auto with a mask and shuffle: masked_cd
    assert not np.array_equal(W_sh, W_plain)  # the order changed the iterates
    W_again, _ = _fit(X, solver=solver, shuffle=True, missing_values=np.nan)
    np.testing.assert_array_equal(W_sh, W_again)  # the order is drawn from random_state
    curve = np.asarray(est.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-10 * curve[:-1])  # still exact block descent


def test_without_shuffle_a_mask_keeps_masked_als():
    X = _missing(1)
    W_cd, _ = _fit(X, solver="cd", missing_values=np.nan)
    W_als, _ = _fit(X, solver="masked_als", missing_values=np.nan)
    np.testing.assert_array_equal(W_cd, W_als)


def test_the_auto_rule_prefers_a_solver_with_coordinates_when_shuffle_is_asked():
    assert resolve_solver(2.0, masked=True) == "masked_als"
    assert resolve_solver(2.0, masked=True, shuffle=True) == "masked_cd"
    assert resolve_solver(2.0, shuffle=True) == "cd"
    assert resolve_solver(1.0, shuffle=True) == "cd"
    # no masked solver with coordinates fits β = 0.5: the usual pick (shuffle means nothing)
    assert resolve_solver(0.5, masked=True, shuffle=True) == "masked_mu"
