"""Held-out error for choosing the rank: masked cross-validation and bi-cross-validation.

"mask" holds out random entries and predicts them from a fit on the rest (needs masked
fitting, ``NMF.fit_transform(X, mask=M)``); "bicv" (Owen & Perry 2009) holds out a block of
rows × columns, fits NMF on the complement D ≈ W_D H_D and predicts the block A as W_A H_A with
W_A = NNLS(B, H_D), H_A = NNLS(C, W_D) from the off-diagonal blocks B = X[I, ~J], C = X[~I, J].
Also the column-permuted baseline data. Public names are re-exported from
:mod:`nmfkit.selection`.
"""

from __future__ import annotations

import inspect

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from .losses import beta_divergence, beta_loss_to_float

__all__ = ["cross_validation_error", "permute_columns"]

# cv="auto" forms a boolean mask of X's size only below this many entries (50 MB)
_AUTO_MASK_MAX_ENTRIES = 50_000_000


def permute_columns(X, random_state=None):
    """X with the entries of each column (feature) permuted independently across samples.

    Keeps every feature's distribution and destroys the structure between features: the R NMF
    package's randomised baseline. A sparse X stays sparse (same number of non-zeros).
    """
    rng = check_random_state(random_state)
    n = X.shape[0]
    if sp.issparse(X):
        Xc = sp.csc_matrix(X, copy=True)
        for j in range(Xc.shape[1]):
            a, b = Xc.indptr[j], Xc.indptr[j + 1]
            Xc.indices[a:b] = rng.choice(n, b - a, replace=False)
        Xc.sort_indices()
        return Xc.asformat(X.format)
    X = np.asarray(X)
    order = np.argsort(rng.random_sample(X.shape), axis=0)
    return np.take_along_axis(X, order, axis=0)


def _divergence_sum(x, p, beta: float) -> float:
    """Σ d_β(x, p) over paired 1-D arrays (½(x−p)² for β = 2), p floored at eps."""
    x = np.asarray(x, dtype=np.float64)
    p = np.maximum(np.asarray(p, dtype=np.float64), np.finfo(np.float64).eps)
    if beta == 2.0:
        return float(0.5 * np.sum((x - p) ** 2))
    if beta == 1.0:
        pos = x > 0
        return float(np.sum(x[pos] * np.log(x[pos] / p[pos])) - x.sum() + p.sum())
    if beta == 0.0:
        return float(np.sum(x / p - np.log(x / p) - 1.0))
    return float(np.sum((x**beta + (beta - 1) * p**beta - beta * x * p ** (beta - 1))
                        / (beta * (beta - 1))))


def _check_mask_memory(n: int, m: int) -> None:
    """Masked CV holds a shuffled index of every entry (8 bytes) and an n × m boolean mask:
    refuse it before allocating when that passes half of the memory available."""
    from ._validation import require_memory

    require_memory(9 * n * m, f"cv='mask' on a {n}×{m} X needs about {{gb}} GB (an index of "
                   "every entry and an n×m mask)",
                   "use cv='bicv' (bi-cross-validation holds out blocks, no mask of X's size).")


def _mask_supported() -> bool:
    from ._estimator import NMF

    return "mask" in inspect.signature(NMF.fit_transform).parameters


def cross_validation_error(X, n_components: int, *, method: str = "auto", n_folds: int = 4,
                           holdout: float = 0.05, random_state=None, **nmf_params) -> dict:
    """Held-out error of an NMF of rank ``n_components`` (lower is better).

    Parameters
    ----------
    X : array-like or sparse (n_samples, n_features), non-negative.
    n_components : int
    method : {"auto", "mask", "bicv"}
        "mask": ``n_folds`` disjoint random sets, each a fraction ``holdout`` of the entries, are
        held out in turn (needs masked fitting; forms an n_samples × n_features boolean mask).
        "bicv": ``n_folds`` blocks from successive random 2 × 2 splits of rows and columns.
        "auto": "mask" for a dense X of at most 5·10⁷ entries (when masked fitting exists),
        else "bicv" (no mask of X's size, and the plain solvers, fast on sparse X).
    n_folds : int ≥ 1, default=4
    holdout : float in (0, 1), default=0.05, the fraction of entries per fold ("mask" only).
    random_state : int, RandomState or None.
    **nmf_params : parameters of :class:`nmfkit.NMF` for every fit.

    Returns
    -------
    dict with "error" (mean over folds), "se" (standard error over folds, 0 for one fold),
    "folds" (ndarray (n_folds,)) and "method". A fold's error is Σ (x − x̂)² / Σ x² over its
    held-out entries for Frobenius, and the mean β-divergence per held-out entry otherwise.
    """
    from ._estimator import NMF, non_negative_factorization

    if method == "auto":
        small = X.shape[0] * X.shape[1] <= _AUTO_MASK_MAX_ENTRIES
        method = "mask" if _mask_supported() and not sp.issparse(X) and small else "bicv"
    if method not in ("mask", "bicv"):
        raise ValueError(f"method must be 'auto', 'mask' or 'bicv'; got {method!r}.")
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 1:
        raise ValueError(f"n_folds must be a positive int; got {n_folds!r}.")
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) \
            or not 1 <= n_components <= min(X.shape):
        raise ValueError(f"n_components must be a whole rank in 1..{min(X.shape)} (X is "
                         f"{X.shape[0]}×{X.shape[1]}); got {n_components!r}.")
    beta = beta_loss_to_float(nmf_params.get("beta_loss", "frobenius"))
    rng = check_random_state(random_state)
    n, m = X.shape
    folds = []

    def record(num, x_sq, count):
        if beta == 2.0:
            folds.append(num / (0.5 * x_sq) if x_sq > 0 else 0.0)
        else:
            folds.append(num / max(count, 1))

    if method == "mask":
        if not (isinstance(holdout, (int, float, np.floating)) and 0 < holdout < 1):
            raise ValueError(f"holdout must be a fraction in (0, 1); got {holdout!r}.")
        n_test = max(1, int(holdout * n * m))
        _check_mask_memory(n, m)
        if n_folds * n_test > n * m:
            raise ValueError(
                f"n_folds * holdout = {n_folds * holdout!r} > 1: the held-out sets cannot be "
                "disjoint; lower n_folds or holdout."
            )
        perm = rng.permutation(n * m)
        Xr = sp.csr_matrix(X) if sp.issparse(X) else np.asarray(X)
        # masked fits take one start each (masked NMF has no n_init)
        params = {k: v for k, v in nmf_params.items() if k not in ("n_init", "n_jobs")}
        for f in range(n_folds):
            rows, cols = np.unravel_index(perm[f * n_test:(f + 1) * n_test], (n, m))
            mask = np.ones((n, m), dtype=bool)
            mask[rows, cols] = False
            model = NMF(n_components, random_state=rng.randint(2**31 - 1), **params)
            W = model.fit_transform(X, mask=mask)
            H = model.components_
            x = np.asarray(Xr[rows, cols], dtype=np.float64).ravel()
            p = np.einsum("ik,ki->i", W[rows], H[:, cols])
            record(_divergence_sum(x, p, beta), float(x @ x), x.size)
    else:
        params = {k: v for k, v in nmf_params.items() if k not in ("n_init", "n_jobs", "init")}
        Xr = sp.csr_matrix(X) if sp.issparse(X) else np.asarray(X)
        for f in range(n_folds):
            if f % 4 == 0:
                rsplit = rng.permutation(n) < n // 2
                csplit = rng.permutation(m) < m // 2
            I = rsplit if f % 2 == 0 else ~rsplit
            J = csplit if (f // 2) % 2 == 0 else ~csplit
            top, bottom = Xr[np.flatnonzero(I)], Xr[np.flatnonzero(~I)]
            A, B = top[:, np.flatnonzero(J)], top[:, np.flatnonzero(~J)]
            C, D = bottom[:, np.flatnonzero(J)], bottom[:, np.flatnonzero(~J)]
            k = min(n_components, *D.shape)
            model = NMF(k, random_state=rng.randint(2**31 - 1), **nmf_params)
            W_D = model.fit_transform(D)
            H_D = model.components_
            W_A, _, _ = non_negative_factorization(B, H=H_D, n_components=k, update_H=False,
                                                   **params)
            Ct = sp.csr_matrix(C.T) if sp.issparse(C) else np.ascontiguousarray(C.T)
            H_At, _, _ = non_negative_factorization(Ct, H=np.ascontiguousarray(W_D.T),
                                                    n_components=k, update_H=False, **params)
            a = A.data if sp.issparse(A) else A.ravel()
            num = beta_divergence(A, W_A, np.ascontiguousarray(H_At.T), beta)
            record(num, float(np.dot(a, a)), A.shape[0] * A.shape[1])
    folds = np.asarray(folds)
    se = float(folds.std(ddof=1) / np.sqrt(folds.size)) if folds.size > 1 else 0.0
    return {"error": float(folds.mean()), "se": se, "folds": folds, "method": method}
