"""The robust solver's host kernels (``nmfkit.solvers._robust_kernels``) compute what the array
expressions of ``nmfkit.robust`` compute: the target, the objective, the weighted arrays and
the scale estimate, entry by entry; and a fit with them equals a fit without them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nmfkit import NMF
from nmfkit.backends import get_backend
from nmfkit.robust import estimate_scale, estimate_scale_at, psi, rho_sum, weights
from nmfkit.solvers import _robust_kernels as K

pytestmark = pytest.mark.skipif(not K.HAVE_NUMBA, reason="the kernels are compiled by numba")

ENTRYWISE = ["huber", "cauchy", "sparse"]


def _arrays(dtype, seed=0, shape=(37, 53)):
    rng = np.random.default_rng(seed)
    X = rng.random(shape).astype(dtype)
    Y = rng.random(shape).astype(dtype)
    X[rng.random(shape) < 0.1] = 9.0  # gross residuals of both signs
    Y[rng.random(shape) < 0.1] = 7.0
    M = ((rng.random(shape) < 0.7) * rng.uniform(0.5, 2.0, shape)).astype(dtype)
    return X, Y, M


@pytest.mark.parametrize("kind", ENTRYWISE)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("masked", [False, True], ids=["all", "mask"])
def test_kernels_equal_the_array_expressions(kind, dtype, masked):
    X, Y, M = _arrays(dtype)
    M = M if masked else None
    nx = get_backend(X)
    s = 0.3
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    inv_mu = 1.0 / float(M.max()) if masked else 1.0

    T = K.target_inplace(X, Y.copy(), kind, s, M, inv_mu)
    P = psi(kind, X - Y, s)
    expected = Y + (P if M is None else P * M * inv_mu)
    np.testing.assert_allclose(T, expected, rtol=rtol, atol=rtol)

    total = K.rho_total(X, Y, kind, s, M)
    assert total == pytest.approx(rho_sum(nx, kind, (X - Y).astype(np.float64), s, M),
                                  rel=1e-10 if dtype == np.float64 else 1e-4)

    Om, OX, Yw = np.empty_like(X), np.empty_like(X), Y.copy()
    K.weigh(X, Yw, kind, s, M, Om, OX)
    w = weights(nx, kind, X - Y, s)
    w = w if M is None else w * M
    for got, want in ((Om, w), (OX, w * X), (Yw, w * Y)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("masked", [False, True], ids=["all", "mask"])
def test_scale_from_the_sample_equals_the_scale_of_the_residual(masked):
    nx = get_backend(np.zeros(1))
    X, Y, M = _arrays(np.float64, seed=1, shape=(700, 500))  # above the 2¹⁸ sample
    obs = M if masked else None
    assert estimate_scale_at(nx, X, Y, obs) == estimate_scale(nx, X - Y, obs)


def test_availability_follows_layout_and_dtype():
    X = np.ones((4, 5))
    assert K.available(X) and K.available(X, X.copy())
    assert not K.available(np.asfortranarray(X))
    assert not K.available(X, X.astype(np.float32))
    assert not K.available(X.astype(np.int64))
    assert not K.available(None)


@pytest.mark.parametrize("kw", [dict(loss="huber"), dict(loss="cauchy"),
                                dict(outliers="sparse"), dict(loss="cauchy", solver="mu")],
                         ids=["huber", "cauchy", "sparse", "cauchy-mu"])
@pytest.mark.parametrize("masked", [False, True], ids=["all", "mask"])
def test_a_fit_with_the_kernels_equals_one_without(kw, masked, monkeypatch):
    rng = np.random.default_rng(2)
    X = rng.random((50, 3)) @ rng.random((3, 30))
    X[rng.random(X.shape) < 0.1] = 8.0
    mask = (rng.random(X.shape) < 0.8) * 1.5 if masked else None

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = NMF(3, random_state=0, max_iter=80, **kw)
            return m.fit(X, mask=mask) if masked else m.fit(X)

    calls = []
    for name in ("target_inplace", "weigh", "rho_total"):
        def spy(*args, _f=getattr(K, name), _n=name):
            calls.append(_n)
            return _f(*args)
        monkeypatch.setattr(K, name, spy)
    a = fit()
    # the kernels ran: the pilot's weights, the fit's target and objective
    assert {"rho_total", "weigh", "target_inplace"} <= set(calls)
    monkeypatch.setattr(K, "HAVE_NUMBA", False)  # the array expressions
    calls.clear()
    b = fit()
    assert not calls
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-10, atol=1e-13)
    assert a.loss_scale_ == b.loss_scale_
    assert a.loss_curve_[-1] == pytest.approx(b.loss_curve_[-1], rel=1e-10)


@pytest.mark.parametrize("size", [1, 2, 7, 20_000, 20_001])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scale_is_the_mad_of_numpy_medians_and_leaves_the_residual(size, dtype):
    # the in-place medians (one selection each, the second in the same array) give exactly
    # 1.4826·median(|r − median(r)|) of np.median, for odd and even counts and with ties,
    # and never reorder the caller's residual
    rng = np.random.default_rng(size)
    R = rng.standard_normal(size).astype(dtype)
    R[rng.random(size) < 0.2] = 3.0  # ties, and gross values
    R = R.reshape(1, -1)
    before = R.copy()
    nx = get_backend(R)
    r = R.astype(np.float64).ravel()
    mad = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    if mad > 0:
        assert estimate_scale(nx, R) == mad
        assert estimate_scale_at(nx, R, np.zeros_like(R)) == mad
    else:  # every residual equal to its median: the mean |r| (or the smallest float)
        assert estimate_scale(nx, R) == (float(np.mean(np.abs(r))) or np.finfo(float).tiny)
    np.testing.assert_array_equal(R, before)


def test_scale_falls_back_when_the_mad_is_zero_or_entries_are_not_finite():
    nx = get_backend(np.zeros(1))
    R = np.zeros((4, 5))
    R[0, :3] = [2.0, -4.0, 6.0]  # more than half the residuals 0: MAD 0, the mean |r|
    assert estimate_scale(nx, R) == estimate_scale_at(nx, R, np.zeros_like(R)) == 0.6
    R[1, 0] = np.nan  # not finite entries are left out of the estimate
    R[1, 1] = np.inf
    assert estimate_scale(nx, R) == estimate_scale_at(nx, R, np.zeros_like(R)) == 12.0 / 18
    assert estimate_scale(nx, np.zeros((3, 3))) == np.finfo(np.float64).tiny
