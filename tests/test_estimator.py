"""The scikit-learn surface: pipelines, clone, grid search, feature names, set_output, pickle
(pickle and transform on numpy and torch: the ``backend`` fixture)."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from nmfkit import NMF


@pytest.fixture
def Xy():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data[:300], d.target[:300]


def test_pipeline_and_grid_search(Xy):
    X, y = Xy
    pipe = make_pipeline(MinMaxScaler(), NMF(8, max_iter=100, random_state=0), LogisticRegression(max_iter=300))
    grid = GridSearchCV(pipe, {"nmf__n_components": [4, 8]}, cv=2)
    grid.fit(X, y)
    assert grid.best_params_["nmf__n_components"] in (4, 8)
    assert grid.score(X, y) > 0.5


def test_clone_keeps_params():
    m = NMF(3, solver="mu", beta_loss="kullback-leibler", alpha_W=0.1, max_time=5.0)
    c = clone(m)
    assert c.get_params() == m.get_params()


def test_feature_names_and_set_output(Xy):
    X, _ = Xy
    m = NMF(3, max_iter=50, random_state=0).fit(X)
    np.testing.assert_array_equal(m.get_feature_names_out(), ["nmf0", "nmf1", "nmf2"])
    assert m.n_features_in_ == 64 and m.n_components_ == 3
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    m = NMF(3, max_iter=50, random_state=0).set_output(transform="pandas").fit(df)
    out = m.transform(df)
    assert list(out.columns) == ["nmf0", "nmf1", "nmf2"]
    np.testing.assert_array_equal(m.feature_names_in_, df.columns)


def test_pickle_round_trip(Xy, backend):
    X = backend.asarray(Xy[0])
    m = NMF(3, max_iter=50, random_state=0).fit(X)
    m2 = pickle.loads(pickle.dumps(m))
    assert backend.is_array(m2.components_)
    T, T2 = m.transform(X), m2.transform(X)
    assert backend.is_array(T2, T.dtype)
    np.testing.assert_array_equal(backend.to_numpy(T), backend.to_numpy(T2))


def test_transform_does_not_change_fit_attributes(Xy, backend):
    X = backend.asarray(Xy[0])
    m = NMF(3, max_iter=50, random_state=0).fit(X)
    curve, n_iter = list(m.loss_curve_), m.n_iter_
    m.transform(X[:10])
    assert m.loss_curve_ == curve and m.n_iter_ == n_iter
