"""Tests of restarts (NMF n_init), consensus clustering, stability and rank selection."""

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF
from nmfkit._restarts import restart_seeds
from nmfkit.selection import (
    amari_distance,
    connectivity_matrix,
    consensus_components,
    consensus_matrix,
    consensus_nmf,
    cophenetic_correlation,
    cross_validation_error,
    dispersion,
    fit_restarts,
    match_components,
    permute_columns,
    reorder_consensus,
    select_rank,
    stability,
)


def planted(n=60, m=48, k=4, noise=0.5, seed=0):
    """X = W H + noise with k disjoint blocks of features and one component per sample."""
    rng = np.random.RandomState(seed)
    labels = np.arange(n) % k
    W = np.zeros((n, k))
    W[np.arange(n), labels] = 1 + rng.rand(n)
    H = np.zeros((k, m))
    for c in range(k):
        H[c, c * (m // k):(c + 1) * (m // k)] = 1 + rng.rand(m // k)
    H += 0.1 * rng.rand(k, m)
    return W @ H + noise * rng.rand(n, m), labels, H


# ------------------------------------------------------------------------------ restarts
def test_n_init_keeps_best_and_records_every_run():
    X, _, _ = planted(noise=0.3, seed=1)
    params = dict(n_components=6, max_iter=60, tol=0, random_state=3)
    model = NMF(n_init=4, **params).fit(X)
    objs = model.init_objectives_
    assert objs.shape == (4,)
    # never worse than any of its runs: the kept model is the best one
    assert model.loss_curve_[-1] == objs.min()
    # run 0 is the plain n_init=1 fit, bit for bit
    single = NMF(**params).fit(X)
    assert objs[0] == single.loss_curve_[-1]
    assert single.init_objectives_.tolist() == [single.loss_curve_[-1]]
    assert model.loss_curve_[-1] <= single.loss_curve_[-1]
    # runs 1.. are init="random" fits from seeds drawn from random_state, recorded exactly
    seeds = restart_seeds(3, 3)
    for i, s in enumerate(seeds, start=1):
        other = NMF(init="random", **{**params, "random_state": int(s)}).fit(X)
        assert objs[i] == pytest.approx(other.loss_curve_[-1], rel=1e-12)
        assert model.loss_curve_[-1] <= other.loss_curve_[-1]


def test_n_init_threads_match_sequential_and_validation():
    X, _, _ = planted(noise=0.3, seed=2)
    a = NMF(5, n_init=3, max_iter=40, tol=0, random_state=0).fit(X)
    b = NMF(5, n_init=3, n_jobs=2, max_iter=40, tol=0, random_state=0).fit(X)
    np.testing.assert_array_equal(a.init_objectives_, b.init_objectives_)
    np.testing.assert_array_equal(a.components_, b.components_)
    with pytest.raises(ValueError, match="n_init"):
        NMF(2, n_init=0).fit(X)


def test_fit_restarts_best_and_convergence_count():
    X, _, _ = planted(seed=3)
    runs = fit_restarts(X, 4, n_runs=3, random_state=0, max_iter=5)
    assert len(runs.W) == len(runs.H) == 3 and runs.W[0].shape == (60, 4)
    assert runs.best_index == int(np.argmin(runs.objectives))
    assert runs.n_not_converged == 3  # max_iter=5 cannot converge; counted, not warned
    import warnings

    filters = list(warnings.filters)
    threaded = fit_restarts(X, 4, n_runs=3, random_state=0, max_iter=5, n_jobs=2)
    np.testing.assert_array_equal(threaded.objectives, runs.objectives)
    assert threaded.n_not_converged == 3
    assert warnings.filters == filters  # the global warning filters are left as they were
    with pytest.raises(ValueError, match="n_runs"):
        fit_restarts(X, 2, n_runs=0)


# ----------------------------------------------------------------------------- consensus
def test_consensus_symmetric_unit_diagonal():
    X, _, _ = planted(noise=2.0, seed=4)
    runs = fit_restarts(X, 3, n_runs=4, random_state=1, max_iter=50)
    C = consensus_matrix(runs)
    assert C.shape == (60, 60)
    np.testing.assert_array_equal(C, C.T)
    np.testing.assert_array_equal(np.diag(C), 1.0)
    assert C.min() >= 0 and C.max() <= 1
    # label vectors and the W matrices give the same matrix
    np.testing.assert_array_equal(C, consensus_matrix([w.argmax(axis=1) for w in runs.W]))


def test_cophenetic_one_for_perfect_separation():
    labels = np.repeat([0, 1, 2], 5)
    C = consensus_matrix([labels, labels[::-1] * 0 + labels, labels + 3])  # same partition
    np.testing.assert_array_equal(C, connectivity_matrix(labels))
    assert cophenetic_correlation(C) == pytest.approx(1.0)
    assert dispersion(C) == 1.0
    # on planted clusters, NMF restarts agree perfectly
    X, _, _ = planted(noise=0.2, seed=5)
    C = consensus_matrix(fit_restarts(X, 4, n_runs=5, random_state=0))
    assert cophenetic_correlation(C) == pytest.approx(1.0)
    # disagreeing runs: below 1; a constant matrix is defined (never NaN)
    mixed = consensus_matrix([np.repeat([0, 1], 6), np.tile([0, 1], 6), np.arange(12) % 3])
    assert cophenetic_correlation(mixed) < 1.0 and dispersion(mixed) < 1.0
    assert cophenetic_correlation(np.ones((4, 4))) == 1.0


def test_connectivity_unassigned_label():
    C = connectivity_matrix([0, -1, 0, -1])
    assert C.tolist() == [[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]]


def test_reorder_consensus_groups_blocks():
    labels = np.array([0, 1, 0, 2, 1, 2, 0])
    out = reorder_consensus(connectivity_matrix(labels))
    assert sorted(out["order"].tolist()) == list(range(7))
    assert out["linkage"].shape == (6, 4)
    ordered = labels[out["order"]]
    assert (np.diff(ordered) != 0).sum() == 2  # each cluster is one contiguous block
    np.testing.assert_array_equal(out["matrix"], connectivity_matrix(ordered))


# ----------------------------------------------------------------------------- stability
def test_match_components_and_amari():
    rng = np.random.RandomState(0)
    H = rng.rand(4, 30)
    perm = np.array([2, 0, 3, 1])
    p, sim = match_components(H, H[perm] * 3.0)
    np.testing.assert_array_equal(H[perm][p], H)
    np.testing.assert_allclose(sim, 1.0)
    assert amari_distance(H, H[perm]) == pytest.approx(0.0, abs=1e-12)
    d = amari_distance(H, rng.rand(4, 30))
    assert 0.3 < d <= 1.0
    assert stability([H, H[perm], H[::-1]])["amari"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="same number of features"):
        amari_distance(H, H[:, :5])


def test_consensus_components_recover_truth():
    X, _, H_true = planted(noise=0.2, seed=6)
    runs = fit_restarts(X, 4, n_runs=6, random_state=0)
    H, info = consensus_components(runs, 4)
    np.testing.assert_allclose(H.sum(axis=1), 1.0)
    assert info["n_kept"] == 24 and info["silhouette"] > 0.9
    _, sim = match_components(H_true, H)
    assert sim.min() > 0.95
    with pytest.raises(ValueError, match="density filter"):
        # components of different runs that share nothing are all outliers
        consensus_components([np.eye(30)[4 * r:4 * r + 4] for r in range(3)], 4)


# ------------------------------------------------------------------------ rank selection
def test_permute_columns_keeps_each_column():
    rng = np.random.RandomState(0)
    X = rng.rand(20, 5)
    P = permute_columns(X, 0)
    np.testing.assert_array_equal(np.sort(P, axis=0), np.sort(X, axis=0))
    assert not np.array_equal(P, X)
    S = sp.random(30, 8, density=0.3, format="csr", random_state=1)
    PS = permute_columns(S, 0)
    assert sp.issparse(PS) and PS.format == "csr" and PS.nnz == S.nnz
    np.testing.assert_array_equal(np.sort(PS.toarray(), axis=0), np.sort(S.toarray(), axis=0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masked_cv_finds_planted_rank(seed):
    X, _, _ = planted(seed=seed)
    res = select_rank(X, range(2, 7), methods=("cv",), cv="mask", random_state=seed)
    assert res.cv_method == "mask"
    assert int(res.ks[np.argmin(res.table["cv_error"])]) == 4  # minimised at the truth
    assert res.suggested_k == 4
    assert "held-out error" in res.reason


@pytest.mark.parametrize("seed", [0, 3])
def test_bicv_suggests_planted_rank(seed):
    X, _, _ = planted(seed=seed)
    res = select_rank(X, range(2, 7), methods=("cv",), cv="bicv", random_state=seed)
    assert res.cv_method == "bicv" and res.suggested_k == 4


def test_select_rank_full_table_and_progress():
    X, _, _ = planted(noise=0.3, seed=7)
    calls = []
    res = select_rank(X, [3, 4, 5], n_runs=4, random_state=0, max_iter=150,
                      progress=lambda done, total, msg: calls.append((done, total)))
    assert calls[-1] == (9, 9)
    assert res.suggested_k == 4 and res.suggestions["cv"] == 4
    assert res.suggestions["permutation"] == 4
    t = res.table
    assert np.all(np.isfinite([t[c] for c in t]))
    assert t["cophenetic"][1] == pytest.approx(1.0)
    assert np.all(t["perm_explained_variance"] < t["explained_variance"])
    curves = res.curves()
    assert curves["k"] == [3, 4, 5] and len(curves["cv_error"]) == 3
    assert set(res.consensus) == {3, 4, 5} and res.consensus[4]["matrix"].shape == (60, 60)
    assert "suggested k = 4" in str(res)


def test_select_rank_sparse_kl_and_errors():
    X, _, _ = planted(noise=0.3, seed=8)
    S = sp.csr_matrix(np.where(X > 1.0, np.round(X), 0.0))
    res = select_rank(S, [2, 4], methods=("cv", "explained_variance"), cv="bicv", n_runs=2,
                      solver="mu", beta_loss="kullback-leibler", max_iter=100, random_state=0)
    assert np.all(np.isfinite(res.table["cv_error"]))
    auto = cross_validation_error(S, 2, n_folds=1, solver="mu", beta_loss="kullback-leibler",
                                  max_iter=20, random_state=0)
    assert auto["method"] == "bicv"  # sparse X: no dense mask of X's size
    out = cross_validation_error(S, 3, method="bicv", n_folds=2, solver="mu",
                                 beta_loss="kullback-leibler", max_iter=50, random_state=0)
    assert out["folds"].shape == (2,) and out["error"] >= 0
    with pytest.raises(ValueError, match="unknown methods"):
        select_rank(X, [2, 3], methods=("aic",))
    with pytest.raises(ValueError, match="ks must be positive"):
        select_rank(X, [0, 2])
    with pytest.raises(ValueError, match="method must be"):
        cross_validation_error(X, 2, method="kfold")
    with pytest.raises(ValueError, match="cannot be disjoint"):
        cross_validation_error(X, 2, method="mask", n_folds=30, holdout=0.05)


def test_suggestion_rules_on_a_given_table():
    from nmfkit.selection import _suggest

    ks = np.array([2, 3, 4, 5])
    nan = np.full(4, np.nan)
    t = {
        "cv_error": np.array([5.0, 3.0, 2.9, 3.5]),
        "cv_se": np.array([0.1, 0.1, 0.2, 0.1]),
        # Brunet's Medulloblastoma pattern: flat at 2-3, falling from 4
        "cophenetic": np.array([0.9882, 0.9883, 0.9685, 0.913]),
        "explained_variance": np.array([0.3, 0.5, 0.6, 0.65]),
        "perm_explained_variance": np.array([0.1, 0.15, 0.25, 0.4]),
        "amari": np.array([0.01, 0.02, 0.0, 0.1]),
    }
    s = _suggest(ks, t)
    assert s["cv"] == 3  # 3.0 is within one SE (0.2) of the lowest, 2.9 at k = 4
    assert s["cophenetic"] == 3  # the first k at which it starts decreasing
    assert s["permutation"] == 3  # gain 3 → 4 (0.1) no longer beats the permuted gain (0.1)
    assert s["explained_variance"] == 3 and s["stability"] == 4
    t["cophenetic"] = np.array([0.9, 0.95, 0.97, 0.99])  # never decreasing: its maximum
    assert _suggest(ks, t)["cophenetic"] == 5
    assert _suggest(ks, {**t, "cv_error": nan, "cv_se": nan}).keys() == {
        "cophenetic", "permutation", "explained_variance", "stability"}


def test_consensus_nmf_refits_coefficients():
    X, labels, _ = planted(noise=0.2, seed=9)
    W, H, info = consensus_nmf(X, 4, n_runs=4, random_state=0)
    assert W.shape == (60, 4) and H.shape == (4, 48) and W.min() >= 0
    np.testing.assert_allclose(H.sum(axis=1), 1.0)
    assert len(info["restarts"].W) == 4
    rel = np.linalg.norm(X - W @ H) / np.linalg.norm(X)
    best = info["restarts"].reconstruction_errors.min() / np.linalg.norm(X)
    assert rel < best * 1.05  # consensus H with refitted W is as good as the best run
    from nmfkit.clustering import cluster_labels, clustering_scores

    assert clustering_scores(labels, cluster_labels(W))["ari"] == 1.0
