"""``n_jobs`` reaches the fit of observed entries (missing values, a mask) as it reaches the
plain fit: BLAS threads capped during the fit, small fits on one BLAS thread with
``n_jobs=None``, restarts over ``n_jobs`` threads with the result of a sequential run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import nmfkit
from nmfkit import _threads

from _helpers import with_missing

needs_two = pytest.mark.skipif(
    not any(i["user_api"] == "blas" for i in threadpool_info()),
    reason="no BLAS library found by threadpoolctl")


def _blas_threads():
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def _data(seed=0):
    return with_missing(60, 40, 0.15, seed=seed)


def _fit_seeing_threads(X, **params):
    seen = []
    est = nmfkit.NMF(4, max_iter=5, random_state=0, missing_values=np.nan,
                     callback=lambda info: seen.append(_blas_threads()), **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W = est.fit_transform(X)
    return est, W, seen


@needs_two
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_n_jobs_caps_blas_threads_during_a_masked_fit(n_jobs):
    with threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() < 2:
            pytest.skip("BLAS runs on one thread here")
        _, _, seen = _fit_seeing_threads(_data(), n_jobs=n_jobs)
        assert seen and set(seen) == {n_jobs}
        assert _blas_threads() == 2  # restored after the fit


@needs_two
def test_a_small_masked_fit_runs_blas_on_one_thread_unless_n_jobs_says_otherwise(monkeypatch):
    with threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() < 2:
            pytest.skip("BLAS runs on one thread here")
        _, _, seen = _fit_seeing_threads(_data())
        assert set(seen) == {1}
        # the same fit counted as large keeps BLAS's own threads
        monkeypatch.setattr(_threads, "SMALL_WORK", 1)
        _, _, seen = _fit_seeing_threads(_data())
        assert set(seen) == {2}


def test_masked_transform_and_function_honour_n_jobs():
    X = _data()
    est = nmfkit.NMF(4, max_iter=20, random_state=0, missing_values=np.nan, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
        W = est.transform(X)
        W2, H2, _ = nmfkit.non_negative_factorization(
            X, H=est.components_, n_components=4, update_H=False, max_iter=20,
            missing_values=np.nan)
    assert np.isfinite(W).all() and W.shape == (60, 4)
    np.testing.assert_allclose(W, W2, rtol=1e-6, atol=1e-9)


def test_masked_restarts_over_threads_equal_the_sequential_restarts():
    X = _data(seed=3)
    fits = {}
    for n_jobs in (None, 2):
        est = nmfkit.NMF(4, max_iter=30, random_state=0, missing_values=np.nan, n_init=4,
                         n_jobs=n_jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W = est.fit_transform(X)
        fits[n_jobs] = (W, est.components_, est.init_objectives_, est.n_iter_)
    (Wa, Ha, fa, na), (Wb, Hb, fb, nb) = fits[None], fits[2]
    assert len(fa) == 4 and na == nb
    np.testing.assert_allclose(fa, fb, rtol=1e-12)
    np.testing.assert_allclose(Wa, Wb, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Ha, Hb, rtol=1e-10, atol=1e-12)
    # the kept run is the lowest final objective
    assert est.loss_curve_[-1] == pytest.approx(fb.min(), rel=1e-12)
