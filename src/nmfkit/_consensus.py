"""Restarts kept whole, their consensus and the stability of their factors (behind selection).

- ``fit_restarts``: ``NMF`` fitted from many seeds, every run kept (``Restarts``), threads
  over joblib.
- Consensus clustering (Brunet et al. 2004): the connectivity matrix of each run's hard
  clusters, their mean (the consensus matrix), its cophenetic correlation and its dispersion
  (Kim & Park 2007), and the consensus matrix reordered by average-linkage clustering.
- Consensus components in the style of cNMF (Kotliar et al. 2019): pool the components of all
  runs, drop outliers by local density, cluster them with k-means and take the median.
- Stability (Wu et al. 2016, staNMF): match the components of two runs by the Hungarian
  assignment on their correlations and score them with an Amari-type distance.

Public names are re-exported from :mod:`nmfkit.selection`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy.cluster.hierarchy import cophenet, leaves_list, linkage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import squareform
from sklearn.utils import check_random_state

from ._estimator import NMF
from ._restarts import parallel_map, restart_seeds
from .clustering import cluster_labels

__all__ = [
    "Restarts",
    "fit_restarts",
    "check_consensus_memory",
    "connectivity_matrix",
    "consensus_matrix",
    "cophenetic_correlation",
    "dispersion",
    "reorder_consensus",
    "match_components",
    "amari_distance",
    "stability",
    "consensus_components",
]


# ------------------------------------------------------------------------ restarts
@dataclass
class Restarts:
    """The factors of several NMF runs on the same data, one entry per run.

    Attributes
    ----------
    W : list of ndarray (n_samples, k)
    H : list of ndarray (k, n_features)
    objectives : ndarray (n_runs,), the final objective (loss + penalties) of each run.
    seeds : ndarray (n_runs,), the ``random_state`` of each run.
    n_not_converged : int, runs that stopped at ``max_iter``.
    """

    W: list
    H: list
    objectives: np.ndarray
    seeds: np.ndarray
    n_not_converged: int = 0
    reconstruction_errors: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def best_index(self) -> int:
        return int(np.argmin(self.objectives))

    @property
    def best(self):
        """(W, H) of the run with the lowest objective."""
        i = self.best_index
        return self.W[i], self.H[i]


def fit_restarts(
    X,
    n_components: int,
    *,
    n_runs: int = 10,
    random_state=None,
    n_jobs=None,
    prefer: str = "threads",
    **nmf_params,
) -> Restarts:
    """Fit ``NMF(n_components, **nmf_params)`` from ``n_runs`` seeds (init="random" by default).

    Parameters
    ----------
    X : array-like or sparse matrix (n_samples, n_features), non-negative.
    n_components : int
    n_runs : int, default=10
    random_state : int, RandomState or None; the seeds of the runs are drawn from it.
    n_jobs : int or None; runs in parallel with joblib (``prefer`` "threads" or "processes").
    **nmf_params : any other :class:`nmfkit.NMF` parameter (solver, beta_loss, max_iter, ...).

    Returns
    -------
    Restarts
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    if int(n_runs) < 1:
        raise ValueError(f"n_runs must be a positive int; got {n_runs!r}.")
    params = {"init": "random", **nmf_params}
    seeds = restart_seeds(random_state, int(n_runs))

    def one(seed):
        model = NMF(n_components=n_components, random_state=int(seed), **params)
        W = model.fit_transform(X)
        # stop_reason_, not a caught warning: catch_warnings is not thread-safe
        late = model.stop_reason_ == "max_iter" and model.tol > 0
        return W, model.components_, float(model.loss_curve_[-1]), model.reconstruction_err_, late

    with warnings.catch_warnings():
        # each run records its own ConvergenceWarning; report a count instead of n_runs warnings
        warnings.simplefilter("ignore", ConvergenceWarning)
        out = parallel_map(one, [(s,) for s in seeds], n_jobs, prefer)
    return Restarts(
        W=[o[0] for o in out],
        H=[o[1] for o in out],
        objectives=np.array([o[2] for o in out]),
        seeds=seeds,
        n_not_converged=sum(o[4] for o in out),
        reconstruction_errors=np.array([o[3] for o in out]),
    )


# ------------------------------------------------------------------------ consensus clustering
def consensus_bytes(n_samples: int, n_matrices: int = 1) -> int:
    """Peak bytes of consensus clustering of n samples, keeping ``n_matrices`` results: each
    kept (n, n) float64 matrix, plus the working set of one (the sum, the symmetrised
    distances, the condensed distances and the reordered copy: about 3.5 more)."""
    return int(8 * n_samples * n_samples * (n_matrices + 3.5))


def check_consensus_memory(n_samples: int, n_matrices: int = 1, available=None) -> None:
    """Refuse, before anything is allocated, consensus matrices that would not fit in half of
    the memory available now."""
    from ._validation import require_memory

    require_memory(
        consensus_bytes(n_samples, n_matrices),
        f"consensus clustering of {n_samples} samples needs about {{gb}} GB ({n_matrices} n×n "
        "consensus matrices and their working copies)",
        "leave 'consensus' out of the methods (cv, stability and explained_variance do not "
        "need it), or choose k on a random subset of the samples.",
        available)


def connectivity_matrix(labels) -> np.ndarray:
    """C[i, j] = 1 when items i and j share a cluster label, else 0; shape (n, n).

    A label of −1 (an item with all-zero coefficients) joins no cluster: its row is zero except
    the diagonal, which is always 1. The consensus matrix of one run.
    """
    return consensus_matrix([np.asarray(labels).ravel()])


def consensus_matrix(runs, *, of: str = "samples") -> np.ndarray:
    """The mean connectivity matrix over runs (Brunet et al. 2004), shape (n, n), in [0, 1].

    Parameters
    ----------
    runs : sequence of factors or label vectors
        ``W`` (n_samples, k) of each run when ``of="samples"``, ``H`` (k, n_features) when
        ``of="features"``, or 1-D label vectors (then ``of`` is ignored). A :class:`Restarts`
        is accepted too.
    of : {"samples", "features"}

    Returns
    -------
    ndarray (n, n), symmetric, ones on the diagonal; C[i, j] is the fraction of runs that put
    i and j in the same cluster.
    """
    if isinstance(runs, Restarts):
        runs = runs.W if of == "samples" else runs.H
    runs = list(runs)
    if not runs:
        raise ValueError("consensus_matrix needs at least one run; got an empty sequence.")
    C = buf = None
    for r in runs:
        r = np.asarray(r)
        labels = (r if r.ndim == 1 else cluster_labels(r, of=of)).ravel()
        if C is None:
            check_consensus_memory(labels.size)
            C = np.zeros((labels.size, labels.size))
            buf = np.empty(C.shape, dtype=bool)
        elif labels.size != C.shape[0]:
            raise ValueError(
                f"every run must cluster the same items; got {labels.size} and {C.shape[0]}."
            )
        # in place: one (n, n) sum and one boolean buffer, whatever the number of runs
        np.equal(labels[:, None], labels[None, :], out=buf)
        buf &= (labels >= 0)[:, None]
        C += buf
    C /= len(runs)
    np.fill_diagonal(C, 1.0)
    return C


def _distances(C) -> np.ndarray:
    C = np.asarray(C, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"a consensus matrix must be square; got shape {C.shape}.")
    D = C + C.T
    D *= -0.5
    D += 1.0
    np.fill_diagonal(D, 0.0)
    np.clip(D, 0.0, 1.0, out=D)
    return squareform(D, checks=False)


def cophenetic_correlation(C, *, method: str = "average") -> float:
    """Pearson correlation between 1 − C and the cophenetic distances of its hierarchical tree.

    1 for a consensus matrix of 0s and 1s (every run agrees); lower values mean the clusters
    are not reproducible across runs. Defined as 1.0 when all distances are equal (a tree that
    fits them exactly), so the result is never NaN.
    """
    d = _distances(C)
    if d.size < 2 or np.ptp(d) == 0:
        return 1.0
    Z = linkage(d, method=method)
    c = float(cophenet(Z, d)[0])
    if not np.isfinite(c):
        return 1.0 if np.allclose(cophenet(Z), d) else 0.0
    return c


def dispersion(C) -> float:
    """Kim & Park's dispersion (1/n²) Σ 4(C_ij − ½)² in [0, 1]; 1 when C holds only 0s and 1s."""
    C = np.asarray(C, dtype=np.float64)
    return float(np.mean(4.0 * (C - 0.5) ** 2))


def reorder_consensus(C, *, method: str = "average") -> dict:
    """The consensus matrix reordered by hierarchical clustering of 1 − C (plot-ready).

    Returns
    -------
    dict with "matrix" (n, n) the reordered C, "order" (n,) the permutation applied to rows and
    columns, and "linkage" the scipy linkage matrix ((n − 1, 4), for a dendrogram).
    """
    C = np.asarray(C, dtype=np.float64)
    n = C.shape[0]
    if n < 2:
        return {"matrix": C.copy(), "order": np.arange(n), "linkage": np.zeros((0, 4))}
    Z = linkage(_distances(C), method=method)
    order = leaves_list(Z)
    return {"matrix": C[np.ix_(order, order)], "order": order, "linkage": Z}


# ---------------------------------------------------------------------------------- stability
def _similarity(A, B, metric: str) -> np.ndarray:
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"components must have the same number of features; got {A.shape[1]} and "
            f"{B.shape[1]}."
        )
    if metric == "correlation":
        A = A - A.mean(axis=1, keepdims=True)
        B = B - B.mean(axis=1, keepdims=True)
    elif metric != "cosine":
        raise ValueError(f"metric must be 'correlation' or 'cosine'; got {metric!r}.")
    na = np.linalg.norm(A, axis=1, keepdims=True)
    nb = np.linalg.norm(B, axis=1, keepdims=True)
    A = np.divide(A, na, out=np.zeros_like(A), where=na > 0)
    B = np.divide(B, nb, out=np.zeros_like(B), where=nb > 0)
    return np.clip(A @ B.T, -1.0, 1.0)


def match_components(H1, H2, *, metric: str = "correlation"):
    """Pair each component of H1 with one of H2 (Hungarian assignment on similarities).

    Parameters
    ----------
    H1, H2 : array-like (k, n_features), the components of two runs (or of a run and a truth).
    metric : {"correlation", "cosine"}

    Returns
    -------
    perm : ndarray (k,), H2[perm] is aligned with H1.
    similarity : ndarray (k,), the similarity of each matched pair.
    """
    S = _similarity(H1, H2, metric)
    rows, cols = linear_sum_assignment(-S)
    perm = np.empty(S.shape[0], dtype=np.intp)
    perm[rows] = cols
    return perm, S[rows, cols][np.argsort(rows)]


def amari_distance(H1, H2, *, metric: str = "correlation") -> float:
    """Amari-type distance between two sets of components, in [0, 1]; 0 = equal up to order.

    With S the (clipped at 0) similarity matrix between the rows of H1 and H2,
    d = 1 − ½ (mean_i max_j S_ij + mean_j max_i S_ij) (Wu et al. 2016, staNMF).
    """
    S = np.clip(_similarity(H1, H2, metric), 0.0, 1.0)
    return float(1.0 - 0.5 * (S.max(axis=1).mean() + S.max(axis=0).mean()))


def stability(components, *, metric: str = "correlation", max_pairs: int = 200, random_state=0):
    """How reproducible the components are across runs (a :class:`Restarts` or a list of H).

    Returns
    -------
    dict with "amari" (mean pairwise Amari-type distance, 0 = perfectly stable),
    "similarity" (mean matched similarity after Hungarian matching, 1 = perfectly stable)
    and "n_pairs". At most ``max_pairs`` pairs of runs are compared (a random subset).
    """
    if isinstance(components, Restarts):
        components = components.H
    components = list(components)
    if len(components) < 2:
        return {"amari": 0.0, "similarity": 1.0, "n_pairs": 0}
    pairs = list(combinations(range(len(components)), 2))
    if len(pairs) > max_pairs:
        rng = check_random_state(random_state)
        pairs = [pairs[i] for i in rng.choice(len(pairs), max_pairs, replace=False)]
    amari = [amari_distance(components[i], components[j], metric=metric) for i, j in pairs]
    sim = [match_components(components[i], components[j], metric=metric)[1].mean()
           for i, j in pairs]
    return {"amari": float(np.mean(amari)), "similarity": float(np.mean(sim)),
            "n_pairs": len(pairs)}


def consensus_components(
    components,
    n_components: int,
    *,
    density_threshold: float = 0.5,
    n_neighbors: int | None = None,
    random_state=0,
):
    """cNMF-style consensus of the components of many runs.

    Each component (a row of some run's H) is scaled to unit L2 norm; a component whose mean
    Euclidean distance to its ``n_neighbors`` nearest neighbours exceeds ``density_threshold``
    is an outlier and is dropped; k-means with ``n_components`` clusters groups the rest and the
    median of each cluster, scaled to unit L1 norm, is a consensus component.

    Parameters
    ----------
    components : :class:`Restarts` or sequence of ndarray (k, n_features)
    n_components : int, the number of consensus components.
    density_threshold : float in (0, 2], default=0.5 (2 keeps everything).
    n_neighbors : int, default ≈ 30 % of the number of runs (at least 1).
    random_state : seed of k-means.

    Returns
    -------
    H : ndarray (n_components, n_features), rows sum to 1.
    info : dict with "n_kept", "n_total", "labels" (cluster of each kept component) and
        "silhouette" (k-means silhouette on the kept components, −1..1; NaN-free: 0 when
        undefined).
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    if isinstance(components, Restarts):
        components = components.H
    comps = np.vstack([np.asarray(h, dtype=np.float64) for h in components])
    n_runs = len(components)
    norms = np.linalg.norm(comps, axis=1, keepdims=True)
    U = np.divide(comps, norms, out=np.zeros_like(comps), where=norms > 0)
    U = U[norms.ravel() > 0]
    if n_neighbors is None:
        n_neighbors = max(1, int(round(0.3 * n_runs)))
    n_neighbors = min(int(n_neighbors), len(U) - 1)
    if n_neighbors >= 1:
        G = U @ U.T
        D = np.sqrt(np.clip(2.0 - 2.0 * G, 0.0, None))
        np.fill_diagonal(D, np.inf)
        local = np.sort(D, axis=1)[:, :n_neighbors].mean(axis=1)
        U = U[local <= density_threshold]
    if len(U) < n_components:
        raise ValueError(
            f"only {len(U)} components passed the density filter (density_threshold="
            f"{density_threshold!r}), fewer than n_components={n_components}; raise "
            "density_threshold (2 keeps every component) or fit more runs."
        )
    km = KMeans(n_clusters=n_components, n_init=10, random_state=random_state).fit(U)
    if np.unique(km.labels_).size < n_components:
        raise ValueError(
            f"the kept components form fewer than n_components={n_components} distinct "
            "clusters; lower n_components or fit more runs."
        )
    H = np.vstack([np.median(U[km.labels_ == c], axis=0) for c in range(n_components)])
    H = np.maximum(H, 0.0)
    s = H.sum(axis=1, keepdims=True)
    H = np.divide(H, s, out=np.zeros_like(H), where=s > 0)
    sil = 0.0
    if 1 < n_components < len(U):
        sil = float(silhouette_score(U, km.labels_, metric="euclidean"))
    return H, {"n_kept": len(U), "n_total": len(comps), "labels": km.labels_, "silhouette": sil}
