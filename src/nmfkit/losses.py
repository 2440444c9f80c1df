"""Objective values of the β-divergence family, dense and sparse, without densifying X.

Conventions (scikit-learn's): X ≈ W H, X of shape (n_samples, n_features).

* β = 2, Frobenius: ½‖X − WH‖²_F. For a sparse X it is computed from Gram products,
  ½(‖X‖² − 2⟨WᵀX, H⟩ + ⟨WᵀW, HHᵀ⟩), never forming WH.
* β = 1, generalised Kullback–Leibler: Σ X log(X/WH) − X + WH. For a sparse X, WH is needed
  only at X's non-zeros (a sampled product, O(nnz·k)); Σ WH = (1ᵀW)(H1).
* β = 0, Itakura–Saito: Σ X/WH − log(X/WH) − 1.
* other β: Σ (X^β + (β−1)(WH)^β − β X (WH)^(β−1)) / (β(β−1)).

All sums are accumulated in float64; values are floats, never NaN: quotients use a
dtype-aware floor so that an exact zero in WH where X > 0 gives a large finite value.
"""

from __future__ import annotations

import math

import numpy as np

from .backends import get_backend, row_blocks

__all__ = [
    "beta_loss_to_float",
    "beta_divergence",
    "frobenius_from_grams",
    "BETA_NAMES",
]

BETA_NAMES = {"frobenius": 2.0, "kullback-leibler": 1.0, "itakura-saito": 0.0}

# entries per block when a dense W @ H has to be formed, to bound temporary memory
_BLOCK_ELEMENTS = 1 << 22


def beta_loss_to_float(beta_loss) -> float:
    """Map 'frobenius' / 'kullback-leibler' / 'itakura-saito' or a number to a float β."""
    if isinstance(beta_loss, str):
        try:
            return BETA_NAMES[beta_loss]
        except KeyError:
            raise ValueError(
                f"Unknown beta_loss {beta_loss!r}; use one of {sorted(BETA_NAMES)} or a float."
            ) from None
    return float(beta_loss)


def frobenius_from_grams(sq_norm_X: float, cross: float, gram_term: float) -> float:
    """½(‖X‖² − 2⟨WᵀX, H⟩ + ⟨WᵀW, HHᵀ⟩), clamped at 0 against rounding."""
    return max(0.5 * (sq_norm_X - 2.0 * cross + gram_term), 0.0)


def _floor(dtype, X_scale: float) -> float:
    """The smallest value WH may take inside a quotient or a logarithm."""
    return float(np.finfo(dtype).eps) * max(X_scale, float(np.finfo(dtype).tiny))


def _elementwise_terms(Xd, WHd, beta: float, floor: float) -> float:
    """Σ over the given entries of the X-dependent part of the divergence (float64)."""
    Xd = np.asarray(Xd, dtype=np.float64)
    WHd = np.maximum(np.asarray(WHd, dtype=np.float64), floor)
    pos = Xd > 0
    Xp, WHp = Xd[pos], WHd[pos]
    if beta == 1.0:
        return float(np.dot(Xp, np.log(Xp / WHp)) - Xp.sum())
    if beta == 0.0:
        q = Xp / WHp
        return float(np.sum(q) - np.sum(np.log(q)))
    return float(((Xp**beta).sum() - beta * np.dot(Xp, WHp ** (beta - 1))) / (beta * (beta - 1)))


def beta_divergence(X, W, H, beta, square_root: bool = False, nx=None, run=None) -> float:
    """β-divergence D_β(X | WH) as a float.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
    W : ndarray of shape (n_samples, n_components)
    H : ndarray of shape (n_components, n_features)
    beta : float or {'frobenius', 'kullback-leibler', 'itakura-saito'}
    square_root : if True return √(2·D), scikit-learn's ``reconstruction_err_``.
    nx : backend; resolved from the inputs when None.
    run : for dense X and the Frobenius loss on the host, ``run(part, n_samples)`` computes
        ``part(r0, r1)`` over ranges of rows covering the samples on host threads and returns
        their values in order (the engine's ``fitted_divergence``); None: one thread.
    """
    beta = beta_loss_to_float(beta)
    nx = nx or get_backend(X, W, H)
    # numpy: the formulas below on the host; a device backend (torch) computes on the device,
    # with no host copy of X. Rounding of an exact fit: 0
    host = _beta_divergence_numpy
    if run is not None:
        def host(X_, W_, H_, b):
            return _beta_divergence_numpy(X_, W_, H_, b, run=run)
    res = max(nx.beta_divergence(X, W, H, beta, host=host), 0.0)
    return math.sqrt(2.0 * res) if square_root else res


def _beta_divergence_numpy(X, W, H, beta: float, run=None) -> float:
    import scipy.sparse as sp

    n_samples, n_features = X.shape
    dtype = np.result_type(W.dtype, H.dtype, X.dtype)
    if beta == 2.0 and not sp.issparse(X):
        # the residual in the data's precision (float32 data: a float32 product, as scikit-
        # learn's), its squares summed in float64; no pass over X beyond the residual's
        work = dtype if dtype in (np.float32, np.float64) else np.float64
        Hw = np.asarray(H, dtype=work)
        # with ``run``, ranges of rows at the same time, each in blocks of half the size
        # (the temporaries' bytes stay those of one block)
        block = _BLOCK_ELEMENTS if run is None else _BLOCK_ELEMENTS // 2

        def part(r0, r1):
            res = 0.0
            for rows in row_blocks(r1 - r0, n_features, block):
                rows = slice(r0 + rows.start, r0 + rows.stop)
                R = np.asarray(W[rows], dtype=work) @ Hw
                np.subtract(np.asarray(X[rows], dtype=work), R, out=R)
                res += float(np.einsum("ij,ij->", R, R, dtype=np.float64))
            return res
        if run is None:
            return 0.5 * part(0, n_samples)
        return 0.5 * float(sum(run(part, n_samples)))
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        # mean over all n·m entries (implicit zeros included), as for dense X: the floor on WH,
        # and so the divergence where WH = 0 < X, is the same for both storages
        X_scale = float(X.data.sum()) / max(n_samples * n_features, 1) if X.nnz else 1.0
    else:
        X_scale = float(X.mean()) if X.size else 1.0  # X ≥ 0: no |·| copy of X
    floor = _floor(dtype if np.issubdtype(dtype, np.floating) else np.float64, X_scale)

    if beta == 2.0:
        return _sparse_frobenius(X, W, H)

    # terms that need WH at X's non-zeros only, plus a term over all of WH
    if sp.issparse(X):
        from .backends import NumpyBackend

        WH_nz = NumpyBackend.sampled_dot(W, H, X)
        res = _elementwise_terms(X.data, WH_nz, beta, floor)
        n_total = n_samples * n_features
        if beta == 1.0:
            res += float(np.dot(W.sum(axis=0, dtype=np.float64), H.sum(axis=1, dtype=np.float64)))
        elif beta == 0.0:
            # entries with X == 0 contribute X/WH − log(X/WH) − 1 = +inf in theory; the
            # scikit-learn convention ignores them (they are forbidden for β <= 0 in fit)
            res -= n_total
        else:
            res += _sum_WH_pow(W, H, beta, floor) * (beta - 1) / (beta * (beta - 1))
        return res

    res = 0.0
    for rows in row_blocks(n_samples, n_features, _BLOCK_ELEMENTS):
        WH = np.asarray(W[rows], dtype=np.float64) @ np.asarray(H, dtype=np.float64)
        Xb = np.asarray(X[rows], dtype=np.float64)
        res += _elementwise_terms(Xb.ravel(), WH.ravel(), beta, floor)
        if beta == 1.0:
            res += float(WH.sum())
        elif beta == 0.0:
            res -= Xb.size
        else:
            np.maximum(WH, floor if beta < 0 else 0.0, out=WH)
            res += float((WH**beta).sum()) * (beta - 1) / (beta * (beta - 1))
    return res


def _sparse_frobenius(X, W, H) -> float:
    """½‖X − WH‖² for a sparse X from Gram products, in float64."""
    W64 = np.asarray(W, dtype=np.float64)
    H64 = np.asarray(H, dtype=np.float64)
    data = X.data.astype(np.float64, copy=False)
    sq_X = float(np.dot(data, data))
    cross = float(np.einsum("ij,ij->", np.asarray(X @ H64.T), W64))
    gram = float(np.einsum("ij,ij->", W64.T @ W64, H64 @ H64.T))
    return frobenius_from_grams(sq_X, cross, gram)


def _sum_WH_pow(W, H, beta: float, floor: float) -> float:
    """Σ (WH)^β computed in row blocks, never holding all of WH."""
    total = 0.0
    n_samples, n_features = W.shape[0], H.shape[1]
    H64 = np.asarray(H, dtype=np.float64)
    for rows in row_blocks(n_samples, n_features, _BLOCK_ELEMENTS):
        WH = np.asarray(W[rows], dtype=np.float64) @ H64
        if beta < 0:
            np.maximum(WH, floor, out=WH)
        total += float((WH**beta).sum())
    return total
