"""NMFImputer: fills missing values with the masked-NMF reconstruction; Pipeline-usable."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from nmfkit.impute import NMFImputer


def planted(n=60, m=20, k=3, frac=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) @ rng.random((k, m))
    missing = rng.random((n, m)) < frac
    return X, missing


def test_fills_missing_keeps_observed_and_recovers_low_rank():
    X, missing = planted()
    Xn = np.where(missing, np.nan, X)
    imp = NMFImputer(3, random_state=0, max_iter=600, tol=1e-10)
    out = imp.fit_transform(Xn)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[~missing], X[~missing])
    err = np.linalg.norm((out - X)[missing]) / np.linalg.norm(X[missing])
    assert err < 1e-2
    # better than the column mean, SimpleImputer's default
    means = np.nanmean(Xn, axis=0)
    mean_err = np.linalg.norm((np.broadcast_to(means, X.shape) - X)[missing])
    assert err * np.linalg.norm(X[missing]) < 0.1 * mean_err


def test_transform_new_rows_and_sentinel():
    X, missing = planted(seed=1)
    Xs = np.where(missing, -1.0, X)
    imp = NMFImputer(3, missing_values=-1.0, random_state=0, max_iter=400, tol=1e-8).fit(Xs[:40])
    out = imp.transform(Xs[40:])
    m = missing[40:]
    assert (out >= 0).all()
    np.testing.assert_array_equal(out[~m], X[40:][~m])
    assert np.linalg.norm((out - X[40:])[m]) / np.linalg.norm(X[40:][m]) < 5e-2


def test_pipeline_and_feature_names():
    X, missing = planted(n=80, seed=2)
    y = (X[:, 0] > np.median(X[:, 0])).astype(int)
    Xn = np.where(missing, np.nan, X)
    pipe = make_pipeline(NMFImputer(3, random_state=0, max_iter=100), LogisticRegression())
    pipe.fit(Xn, y)
    assert pipe.score(Xn, y) > 0.7
    names = NMFImputer(2, max_iter=20).fit(Xn).get_feature_names_out()
    assert list(names[:2]) == ["x0", "x1"]


def test_float32_and_empty_feature():
    X, missing = planted(seed=3)
    Xn = np.where(missing, np.nan, X).astype(np.float32)
    Xn[:, 5] = np.nan
    out = NMFImputer(3, random_state=0, max_iter=50).fit_transform(Xn)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 5], 0)


def test_sparse_input_is_rejected_with_a_pointer():
    import scipy.sparse as sp

    with pytest.raises(TypeError, match="RatingsNMF"):
        NMFImputer(2).fit(sp.random(10, 10, density=0.3, format="csr"))


def test_scikit_learn_estimator_checks():
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(NMFImputer(2, max_iter=20), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert not failed
