"""Tests of nmfkit.clustering: labels from W / H, purity, entropy, ARI/NMI, top features."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from nmfkit import NMF
from nmfkit.clustering import (
    cluster_labels,
    clustering_scores,
    entropy,
    purity,
    top_features,
)


def test_cluster_labels_samples_and_features():
    W = np.array([[1.0, 0.0], [0.2, 0.9], [0.0, 0.0]])
    assert cluster_labels(W).tolist() == [0, 1, -1]
    H = np.array([[3.0, 0.0, 1.0], [1.0, 2.0, 0.0]])
    assert cluster_labels(H, of="features").tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="of must be 'samples'"):
        cluster_labels(W, of="rows")
    with pytest.raises(ValueError, match="2-D"):
        cluster_labels(np.ones(3))


def test_purity_entropy_known_values():
    truth = [0, 0, 0, 1, 1, 1]
    # perfect up to renaming
    assert purity(truth, [5, 5, 5, 2, 2, 2]) == 1.0
    assert entropy(truth, [5, 5, 5, 2, 2, 2]) == 0.0
    # one cluster holding everything: purity 1/2, entropy 1 (log base = number of classes)
    assert purity(truth, [0] * 6) == 0.5
    assert entropy(truth, [0] * 6) == pytest.approx(1.0)
    # 2 of 3 right in each cluster: purity 4/6, entropy by hand
    pred = [0, 0, 1, 1, 1, 0]
    assert purity(truth, pred) == pytest.approx(4 / 6)
    h = -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3)) / np.log(2)
    assert entropy(truth, pred) == pytest.approx(h)
    assert entropy([1, 1, 1], [0, 1, 2]) == 0.0  # a single class
    with pytest.raises(ValueError, match="same length"):
        purity([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        purity([], [])


def test_clustering_scores_recover_planted_clusters():
    rng = np.random.RandomState(0)
    labels = np.repeat(np.arange(3), 20)
    H = np.kron(np.eye(3), np.ones((1, 10))) + 0.05 * rng.rand(3, 30)
    W = np.eye(3)[labels] * (1 + rng.rand(60, 1))
    X = W @ H + 0.01 * rng.rand(60, 30)
    Wfit = NMF(3, init="nndsvda", random_state=0, max_iter=400).fit_transform(X)
    scores = clustering_scores(labels, cluster_labels(Wfit))
    assert scores == {"purity": 1.0, "entropy": 0.0, "ari": 1.0, "nmi": pytest.approx(1.0)}
    pred = rng.randint(0, 3, 60)
    noisy = clustering_scores(labels, pred)
    assert noisy["purity"] < 0.7 and noisy["entropy"] > 0.5
    assert noisy["ari"] == adjusted_rand_score(labels, pred)
    assert abs(noisy["ari"]) < 0.2


def test_top_features_weight_and_specificity():
    H = np.array([[5.0, 4.0, 0.0, 3.0], [0.0, 4.5, 1.0, 0.0]])
    top = top_features(H, 2)
    assert [f for f, _ in top[0]] == [0, 1]
    assert [f for f, _ in top[1]] == [1, 2]
    named = top_features(H, 2, feature_names=["a", "b", "c", "d"])
    assert named[1] == [("b", 4.5), ("c", 1.0)]
    spec = top_features(H, 2, by="specificity", feature_names=list("abcd"))
    # "a" and "d" belong only to component 0 (share 1); ties broken by weight
    assert [f for f, _ in spec[0]] == ["a", "d"]
    assert [f for f, _ in spec[1]] == ["c", "b"]
    with pytest.raises(ValueError, match="feature_names has 3 entries"):
        top_features(H, 2, feature_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="by must be"):
        top_features(H, 2, by="rank")
