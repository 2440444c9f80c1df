"""NMF as a clustering method: labels from the factors, scores against known classes, top features.

With X ≈ W H (X is n_samples × n_features), sample i belongs to the component with the largest
coefficient in row i of W, and feature j to the component with the largest entry in column j of
H (Brunet et al. 2004; Kim & Park 2007). Purity and entropy follow the definitions nimfa and
Kim & Park use; adjusted Rand and NMI come from :mod:`sklearn.metrics`.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

__all__ = [
    "cluster_labels",
    "purity",
    "entropy",
    "clustering_scores",
    "top_features",
]


def cluster_labels(factor, *, of: str = "samples") -> np.ndarray:
    """Hard cluster labels from an NMF factor.

    Parameters
    ----------
    factor : array-like
        ``W`` of shape (n_samples, n_components) when ``of="samples"``; ``H`` of shape
        (n_components, n_features) when ``of="features"``.
    of : {"samples", "features"}, default="samples"

    Returns
    -------
    labels : ndarray of int, shape (n_samples,) or (n_features,)
        The index of the largest coefficient; -1 for a sample (feature) whose coefficients are
        all zero, which belongs to no component.
    """
    if of not in ("samples", "features"):
        raise ValueError(
            f"of must be 'samples' (labels from the rows of W) or 'features' (labels from the "
            f"columns of H); got {of!r}."
        )
    F = np.asarray(factor)
    if F.ndim != 2:
        raise ValueError(f"factor must be a 2-D array (W or H); got shape {F.shape}.")
    if of == "features":
        F = F.T
    labels = np.argmax(F, axis=1).astype(np.intp)
    labels[~(F > 0).any(axis=1)] = -1
    return labels


def _contingency(labels_true, labels_pred):
    labels_true = np.asarray(labels_true).ravel()
    labels_pred = np.asarray(labels_pred).ravel()
    if labels_true.shape != labels_pred.shape:
        raise ValueError(
            f"labels_true and labels_pred must have the same length; got {labels_true.size} "
            f"and {labels_pred.size}."
        )
    if labels_true.size == 0:
        raise ValueError("labels_true and labels_pred are empty; pass at least one label.")
    classes, t = np.unique(labels_true, return_inverse=True)
    clusters, p = np.unique(labels_pred, return_inverse=True)
    table = np.zeros((clusters.size, classes.size), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    return table  # rows: clusters, columns: classes


def purity(labels_true, labels_pred) -> float:
    """Fraction of samples in the majority class of their cluster, in (0, 1]; 1 is best.

    purity = (1/n) Σ_clusters max_class n_(cluster, class).
    """
    table = _contingency(labels_true, labels_pred)
    return float(table.max(axis=1).sum() / table.sum())


def entropy(labels_true, labels_pred) -> float:
    """Class entropy within clusters, normalised to [0, 1]; 0 is best (every cluster is pure).

    entropy = −1/(n log q) Σ_clusters Σ_classes n_ij log(n_ij / n_i), with q the number of
    classes and n_i the size of cluster i (Kim & Park 2007; nimfa's ``entropy``). 0 when there
    is a single class.
    """
    table = _contingency(labels_true, labels_pred)
    q = table.shape[1]
    if q <= 1:
        return 0.0
    n_i = table.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(table > 0, table * np.log(table / n_i), 0.0)
    return float(-terms.sum() / (table.sum() * math.log(q)))


def clustering_scores(labels_true, labels_pred) -> dict:
    """Purity, entropy, adjusted Rand index and normalised mutual information in one dict.

    Returns
    -------
    dict with keys "purity", "entropy", "ari", "nmi" (floats).
    """
    return {
        "purity": purity(labels_true, labels_pred),
        "entropy": entropy(labels_true, labels_pred),
        "ari": float(adjusted_rand_score(labels_true, labels_pred)),
        "nmi": float(normalized_mutual_info_score(labels_true, labels_pred)),
    }


def top_features(H, n_top: int = 10, *, feature_names=None, by: str = "weight"):
    """The highest-ranked features of each component (for topics: the top words).

    Parameters
    ----------
    H : array-like of shape (n_components, n_features)
        ``components_`` of a fitted model.
    n_top : int, default=10
    feature_names : sequence of str of length n_features, optional
        Return names instead of column indices.
    by : {"weight", "specificity"}, default="weight"
        "weight": the largest entries of each row of H. "specificity": the largest share
        H[c, j] / Σ_c' H[c', j] (features that belong to this component rather than to all),
        ties broken by weight.

    Returns
    -------
    list of length n_components of lists of (feature, score) pairs, best first; a feature is
    its name when ``feature_names`` is given, else its column index.
    """
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 2:
        raise ValueError(f"H must have shape (n_components, n_features); got shape {H.shape}.")
    if n_top < 1:
        raise ValueError(f"n_top must be a positive int; got {n_top!r}.")
    if by not in ("weight", "specificity"):
        raise ValueError(f"by must be 'weight' or 'specificity'; got {by!r}.")
    if feature_names is not None and len(feature_names) != H.shape[1]:
        raise ValueError(
            f"feature_names has {len(feature_names)} entries but H has {H.shape[1]} columns "
            "(features); pass one name per column."
        )
    if by == "weight":
        score = H
    else:
        total = H.sum(axis=0, keepdims=True)
        score = np.divide(H, total, out=np.zeros_like(H), where=total > 0)
    out = []
    for c in range(H.shape[0]):
        order = np.lexsort((-H[c], -score[c]))[:n_top]
        names = order if feature_names is None else [feature_names[j] for j in order]
        out.append([(names[i] if feature_names is not None else int(names[i]), float(score[c, j]))
                    for i, j in enumerate(order)])
    return out
