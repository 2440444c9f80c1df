"""Top-n recommendation: RatingsNMF.recommend / recommend_many, precision@n, the titles the
MovieLens reader finds beside a ratings file, and ``nmfkit recommend``."""

import importlib.util
import json

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import _topn
from nmfkit.recommend import (
    RatingsNMF,
    popularity_scores,
    precision_at_n,
    split_observed,
)


def planted(n=60, m=40, k=3, seed=0, density=0.35):
    """Users in k taste groups; each rates (4–5) a random part of its group's items."""
    rng = np.random.RandomState(seed)
    group_u = rng.randint(k, size=n)
    group_i = np.arange(m) % k
    rows, cols = [], []
    for u in range(n):
        for j in np.flatnonzero(group_i == group_u[u]):
            if rng.rand() < density:
                rows.append(u)
                cols.append(j)
    vals = rng.choice([4.0, 5.0], size=len(rows))
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, m)), group_u, group_i


def test_lists_exclude_seen_and_follow_the_planted_groups():
    X, gu, gi = planted()
    m = RatingsNMF(3, random_state=0).fit(X)
    recs = m.recommend_many(n=5)
    assert len(recs) == X.shape[0]
    in_group = []
    for u, lst in enumerate(recs):
        items = [j for j, _ in lst]
        assert len(items) == 5 and len(set(items)) == 5
        assert not set(items) & set(X[u].indices)  # never an item the user rated
        scores = [s for _, s in lst]
        assert scores == sorted(scores, reverse=True) and np.all(np.isfinite(scores))
        in_group.append(np.mean(gi[items] == gu[u]))
    assert np.mean(in_group) > 0.9
    # one user at a time gives the same lists; including seen items may list rated ones
    assert m.recommend(7, 5) == recs[7]
    with_seen = [j for j, _ in m.recommend(7, 5, exclude_seen=False)]
    assert set(with_seen) & set(X[7].indices)


def test_min_count_names_and_blocks(monkeypatch):
    X, _, _ = planted(seed=1)
    m = RatingsNMF(3, random_state=0).fit(X)
    counts = np.diff(X.tocsc().indptr)
    assert np.array_equal(m.item_count_, counts)
    floor = int(np.median(counts))
    for lst in m.recommend_many(n=8, min_count=floor):
        assert all(counts[j] >= floor for j, _ in lst)
    names = [f"film {j}" for j in range(X.shape[1])]
    named = m.recommend(3, 4, item_names=names)
    assert [nm for nm, _ in named] == [names[j] for j, _ in m.recommend(3, 4)]
    # scoring by blocks of users gives the same lists as all at once
    whole = m.recommend_many(n=6)
    monkeypatch.setattr(_topn, "_BLOCK_ENTRIES", X.shape[1] * 7)
    assert m.recommend_many(n=6) == whole


def test_lists_are_shorter_only_when_too_few_items_remain():
    X, _, _ = planted(n=20, m=12, seed=2, density=0.9)
    m = RatingsNMF(2, random_state=0).fit(X)
    for u, lst in enumerate(m.recommend_many(n=12)):
        assert len(lst) == X.shape[1] - X[u].nnz
    assert m.recommend_many(n=5, min_count=10**6) == [[] for _ in range(X.shape[0])]


def test_ratings_path_ranks_by_predicted_rating():
    X, _, _ = planted(seed=3)
    m = RatingsNMF(3, recommend_from="ratings", random_state=0).fit(X)
    assert m.interaction_embedding_ is None
    lst = m.recommend(0, 5)
    P = m.predict_matrix(rows=[0])[0]
    P[X[0].indices] = -np.inf
    assert [j for j, _ in lst] == list(np.argsort(-P, kind="stable")[:5])
    np.testing.assert_allclose([s for _, s in lst], np.sort(P)[::-1][:5])


@pytest.mark.parametrize("call, match", [
    (lambda m: m.recommend(10**6), "out of range"),
    (lambda m: m.recommend(-1), "out of range"),
    (lambda m: m.recommend(1.5), "one row index"),
    (lambda m: m.recommend_many([0, 1], 0), "n must be a positive int"),
    (lambda m: m.recommend(0, 3, min_count=-1), "min_count"),
    (lambda m: m.recommend(0, item_names=["a", "b"]), "one name per item"),
    (lambda m: m.recommend_many(["alice"]), "row indices"),
])
def test_bad_arguments_are_named(call, match):
    X, _, _ = planted(n=10, m=8, seed=4, density=0.6)
    m = RatingsNMF(2, max_iter=3, random_state=0).fit(X)
    with pytest.raises(ValueError, match=match):
        call(m)


def test_bad_recommend_from_and_unfitted():
    X, _, _ = planted(n=10, m=8)
    with pytest.raises(ValueError, match="recommend_from"):
        RatingsNMF(2, recommend_from="popular").fit(X)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        RatingsNMF(2).recommend(0)


def test_precision_at_n_counts_hits_over_users_with_something_to_find():
    X = sp.csr_matrix(np.array([[5, 4, 1, 0], [2, 0, 0, 0], [0, 0, 4, 5]], dtype=float))
    test = sp.csr_matrix(X > 0)
    # user 0: relevant {0, 1}; user 1: none (left out); user 2: relevant {2, 3}
    p = precision_at_n([[0, 2], [0, 1], [3]], X, test, n=2)
    assert p == pytest.approx((1 + 1) / (2 * 2))
    assert precision_at_n([[0], [], []], X, test, users=[0, 1, 2], n=1) == 0.5
    np.testing.assert_array_equal(popularity_scores(X), [2, 1, 2, 1])


def test_titles_beside_the_ratings(tmp_path):
    from nmfkit.datasets import read_movielens

    (tmp_path / "u.data").write_text("1\t10\t4\t100\n2\t10\t3\t101\n2\t7\t5\t102\n")
    (tmp_path / "u.item").write_text("7|Seven (1995)|x\n10|Ten (1979)|y\nbroken line\n",
                                     encoding="latin-1")
    d = read_movielens(tmp_path)
    assert list(d.item_ids) == [7, 10]
    assert list(d.item_names) == ["Seven (1995)", "Ten (1979)"]
    (tmp_path / "r.inter").write_text("u:token\ti:token\tr:float\n1\t1\t3\n1\t2\t4\n")
    (tmp_path / "r.item").write_text("id\ttitle\tyear\n1\tOne\t2001\n")
    assert list(read_movielens(tmp_path / "r.inter").item_names) == ["One (2001)", "2"]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "ratings.csv").write_text("userId,movieId,rating\n1,5,4.5\n")
    assert read_movielens(tmp_path / "x" / "ratings.csv").item_names is None


needs_ml = pytest.mark.skipif(importlib.util.find_spec("recbole") is None,
                              reason="pip install --no-deps recbole==1.2.1 for MovieLens-100k")


@needs_ml
def test_movielens_top10_beats_popularity():
    from nmfkit.datasets import load_movielens_100k

    d = load_movielens_100k()
    assert d.item_names[0] == "Toy Story (1995)"
    train, test = next(split_observed(d.X, n_splits=5, random_state=0))
    m = RatingsNMF(15, rating_range=(1, 5), random_state=0).fit(d.X, mask=train)
    recs = m.recommend_many(n=10)
    seen = sp.csr_matrix(train)
    for u, lst in enumerate(recs):
        assert len(lst) == 10 and not {j for j, _ in lst} & set(seen[u].indices)
    ours = precision_at_n([[j for j, _ in r] for r in recs], d.X, test)
    pop = popularity_scores(seen)
    base, _ = _topn.top_n(lambda rows: np.tile(pop, (len(rows), 1)), np.arange(943), 10,
                          n_users=943, n_items=1682, seen=seen)
    baseline = precision_at_n(base, d.X, test)
    assert ours > baseline + 0.05, (ours, baseline)
    for lst in m.recommend_many(n=10, min_count=20):
        assert all(m.item_count_[j] >= 20 for j, _ in lst)




def test_cli_recommend(tmp_path):
    pytest.importorskip("click")
    from click.testing import CliRunner

    from nmfkit.cli._app import cli

    X, _, _ = planted(n=30, m=20, seed=5)
    coo = X.tocoo()
    lines = ["user,item,rating"] + [f"u{r},{c + 100},{v:g}" for r, c, v in
                                    zip(coo.row, coo.col, coo.data)]
    f = tmp_path / "ratings.csv"
    f.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["recommend", str(f), "-n", "3", "-k", "3", "--users",
                                   "u1,u2", "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = (out / "recommendations.csv").read_text().splitlines()
    assert rows[0] == "user,rank,item,title,score,n_ratings"
    assert len(rows) == 1 + 2 * 3 and rows[1].startswith("u1,1,")
    rated_by_u1 = {str(c + 100) for c in X[1].indices}
    assert not {r.split(",")[2] for r in rows[1:4]} & rated_by_u1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 3 and summary["n_users_listed"] == 2
    for args, needle in ((["--users", "nobody"], "--users"), (["-n", "0"], "--top"),
                         (["--min-count", "-3"], "--min-count")):
        res = CliRunner().invoke(cli, ["recommend", str(f), "--out", str(out), *args])
        assert res.exit_code == 2 and needle in res.output, res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\n1,2,good\n")
    res = CliRunner().invoke(cli, ["recommend", str(bad), "--out", str(out)])
    assert res.exit_code == 2 and "bad.csv" in res.output and "Traceback" not in res.output


def test_dense_prediction_is_estimated_before_allocating(monkeypatch):
    import nmfkit._validation as validation

    X, _, _ = planted(n=20, m=12)
    m = RatingsNMF(2, max_iter=2, random_state=0).fit(X)
    assert m.predict_matrix(rows=[0, 1]).shape == (2, 12)
    monkeypatch.setattr(validation, "available_memory", lambda: 100)
    with pytest.raises(MemoryError, match="recommend_many"):
        m.predict_matrix()
