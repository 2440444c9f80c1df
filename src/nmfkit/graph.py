"""Affinity graphs and Laplacians for graph-regularised NMF (GNMF).

GNMF (Cai, He, Han & Huang 2011) adds ½λ·tr(Wᵀ L W) to the NMF objective, L = D − A the
Laplacian of an affinity A between samples (or between features, for a penalty on H). This
module builds A from data — k nearest neighbours with binary, heat-kernel or cosine weights,
through scikit-learn's neighbour search — and validates an affinity given by the user.
Affinities are returned as symmetric scipy CSR matrices with an empty diagonal.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["knn_affinity", "check_affinity", "laplacian", "GRAPH_WEIGHTS"]

#: the weightings ``knn_affinity`` knows
GRAPH_WEIGHTS = ("binary", "heat", "cosine")


def knn_affinity(
    X,
    n_neighbors: int = 5,
    *,
    weight: str = "binary",
    bandwidth: float | None = None,
    n_jobs: int | None = None,
) -> sp.csr_matrix:
    """Symmetric k-nearest-neighbour affinity between the rows of X.

    Row i and row j are joined when either is among the other's ``n_neighbors`` nearest
    neighbours (A = max(A_knn, A_knnᵀ), as in Cai et al. 2011). Weights:

    * ``"binary"``: 1 on every edge;
    * ``"heat"``: exp(−‖x_i − x_j‖² / t), t = ``bandwidth`` (default: the mean squared
      distance over the edges);
    * ``"cosine"``: the cosine similarity x_iᵀx_j / (‖x_i‖‖x_j‖), neighbours taken by
      cosine distance (for non-negative data the weights lie in [0, 1]).

    Parameters
    ----------
    X : array or sparse matrix (n, m).
    n_neighbors : int ≥ 1, less than n.
    weight : {"binary", "heat", "cosine"}.
    bandwidth : float > 0 or None, the heat kernel's t.
    n_jobs : passed to :class:`sklearn.neighbors.NearestNeighbors`.

    Returns
    -------
    A : scipy.sparse.csr_matrix (n, n), symmetric, non-negative, zero diagonal.
    """
    from sklearn.neighbors import NearestNeighbors

    if weight not in GRAPH_WEIGHTS:
        raise ValueError(f"weight must be one of {GRAPH_WEIGHTS}, got {weight!r}.")
    n = X.shape[0]
    if not (isinstance(n_neighbors, (int, np.integer)) and 1 <= n_neighbors < n):
        raise ValueError(
            f"n_neighbors must be an int in [1, n_samples - 1] = [1, {n - 1}], got "
            f"{n_neighbors!r}; lower it or give more samples."
        )
    if bandwidth is not None and not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0 or None, got {bandwidth!r}.")
    metric = "cosine" if weight == "cosine" else "euclidean"
    nn = NearestNeighbors(n_neighbors=n_neighbors, metric=metric, n_jobs=n_jobs).fit(X)
    # neighbours of each sample other than itself (ask for one more and drop self)
    dist, ind = nn.kneighbors(X, n_neighbors=n_neighbors + 1)
    rows = np.repeat(np.arange(n), n_neighbors + 1)
    keep = ind.ravel() != rows
    rows, cols, dist = rows[keep], ind.ravel()[keep], dist.ravel()[keep]
    if weight == "binary":
        vals = np.ones_like(dist)
    elif weight == "cosine":
        vals = np.clip(1.0 - dist, 0.0, 1.0)
    else:
        sq = dist**2
        t = bandwidth if bandwidth is not None else float(sq.mean()) if sq.size else 1.0
        vals = np.exp(-sq / (t if t > 0 else 1.0))
    A = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    A = A.maximum(A.T).tocsr()
    A.setdiag(0)
    A.eliminate_zeros()
    return A


def check_affinity(A, n: int | None = None, *, name: str = "affinity") -> sp.csr_matrix:
    """Validate an affinity matrix and return it as float64 CSR with an empty diagonal.

    It must be square (n × n when ``n`` is given), finite, non-negative and symmetric.
    """
    if A is None:
        raise ValueError(
            f"{name} is missing: give an (N, N) affinity matrix, e.g. "
            "nmfkit.graph.knn_affinity(X, n_neighbors=5)."
        )
    A = sp.csr_matrix(A, dtype=np.float64) if sp.issparse(A) else sp.csr_matrix(
        np.asarray(A, dtype=np.float64)
    )
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {A.shape}.")
    if n is not None and A.shape[0] != n:
        raise ValueError(
            f"{name} has shape {A.shape} but the factor it regularises has {n} rows/columns: "
            f"pass an ({n}, {n}) affinity (samples for a W graph, features for an H graph)."
        )
    if A.nnz and not np.all(np.isfinite(A.data)):
        raise ValueError(f"{name} contains NaN or infinity.")
    if A.nnz and A.data.min() < 0:
        raise ValueError(
            f"{name} has negative entries (the smallest is {A.data.min()!r}); an affinity "
            "must be non-negative."
        )
    asym = abs(A - A.T)
    if asym.nnz and asym.max() > 1e-10 * max(abs(A).max(), 1.0):
        raise ValueError(
            f"{name} is not symmetric (largest |A - A.T| = {asym.max()!r}); symmetrise it, "
            "e.g. (A + A.T) / 2 or A.maximum(A.T)."
        )
    A = A.copy()
    A.setdiag(0)
    A.eliminate_zeros()
    A.sort_indices()
    return A


def laplacian(A) -> sp.csr_matrix:
    """L = D − A, D = diag(A·1), for a validated affinity A."""
    A = check_affinity(A)
    return (sp.diags(np.asarray(A.sum(axis=1)).ravel()) - A).tocsr()
