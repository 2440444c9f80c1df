"""Quality of a factorisation: errors, explained variance, sparseness, KKT residual.

Every function accepts a dense or sparse X and never densifies a sparse one: Frobenius
quantities use Gram products (‖X − WH‖² = ‖X‖² − 2⟨WᵀX, H⟩ + ⟨WᵀW, HHᵀ⟩), accumulated in
float64.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from .losses import beta_divergence, beta_loss_to_float

__all__ = [
    "reconstruction_error",
    "relative_error",
    "explained_variance",
    "hoyer_sparseness",
    "kkt_residual",
    "summary",
]


def _sq_norm(X) -> float:
    d = X.data if sp.issparse(X) else np.asarray(X).ravel()
    d = d.astype(np.float64, copy=False)
    return float(np.dot(d, d))


def reconstruction_error(X, W, H, beta_loss="frobenius") -> float:
    """‖X − WH‖_F for Frobenius, √(2·D_β(X‖WH)) otherwise (scikit-learn's convention)."""
    return beta_divergence(X, W, H, beta_loss, square_root=True)


def relative_error(X, W, H) -> float:
    """‖X − WH‖_F / ‖X‖_F (0 for an all-zero X fitted exactly)."""
    nx = math.sqrt(_sq_norm(X))
    err = reconstruction_error(X, W, H, "frobenius")
    if nx == 0:
        return 0.0 if err == 0 else float("inf")
    return err / nx


def explained_variance(X, W, H) -> float:
    """1 − ‖X − WH‖² / ‖X − mean(X)‖², the mean taken per feature (column).

    ‖X − 1μᵀ‖² = ‖X‖² − n‖μ‖², so a sparse X is never centred explicitly. Returns 1.0 for a
    constant X fitted exactly, and can be negative for a fit worse than the column means.
    """
    n = X.shape[0]
    mu = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
    total = _sq_norm(X) - n * float(mu @ mu)
    resid = reconstruction_error(X, W, H, "frobenius") ** 2
    if total <= 0:
        return 1.0 if resid == 0 else 0.0
    return 1.0 - resid / total


def hoyer_sparseness(F, axis=None):
    """Hoyer's sparseness (√N − ‖x‖₁/‖x‖₂) / (√N − 1) in [0, 1] (1 = one non-zero).

    axis=None: of the whole matrix flattened; axis=0 or 1: one value per column / row (the
    mean of those is a common summary). An all-zero vector has sparseness 1 by convention.
    """
    F = np.asarray(F, dtype=np.float64)
    if axis is None:
        F = F.reshape(1, -1)
        axis_ = 1
    else:
        axis_ = axis
    N = F.shape[axis_]
    if N <= 1:
        out = np.ones(F.shape[1 - axis_])
    else:
        l1 = np.abs(F).sum(axis=axis_)
        l2 = np.sqrt((F * F).sum(axis=axis_))
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(l2 > 0, l1 / np.where(l2 > 0, l2, 1.0), 1.0)
        out = (math.sqrt(N) - ratio) / (math.sqrt(N) - 1)
        out = np.clip(out, 0.0, 1.0)
    return float(out[0]) if axis is None else out


def kkt_residual(X, W, H, beta_loss="frobenius", relative: bool = True) -> float:
    """Norm of the projected gradient, the KKT residual of the NMF problem.

    At a stationary point min(F, ∇_F) = 0 elementwise for F ∈ {W, H}. Returns
    ‖min(W, ∇_W)‖ + ‖min(H, ∇_H)‖, divided by ‖∇_W‖ + ‖∇_H‖ at the same point when
    ``relative`` (0 is optimal). Frobenius and KL; other β use the KL form's weights.
    """
    beta = beta_loss_to_float(beta_loss)
    W = np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    if beta == 2.0:
        XHt = np.asarray(X @ H.T, dtype=np.float64)
        WtX = np.asarray((X.T @ W).T if sp.issparse(X) else W.T @ X, dtype=np.float64)
        gW = W @ (H @ H.T) - XHt
        gH = (W.T @ W) @ H - WtX
    elif sp.issparse(X) and beta == 1.0:
        # ∇_W = (1 − X/WH) Hᵀ with X/WH only at X's non-zeros
        Xc = sp.csr_matrix(X, dtype=np.float64)
        rows = np.repeat(np.arange(Xc.shape[0]), np.diff(Xc.indptr))
        WH_nz = np.maximum(np.einsum("ij,ji->i", W[rows], H[:, Xc.indices]), np.finfo(np.float64).eps)
        Q = sp.csr_matrix((Xc.data / WH_nz, Xc.indices, Xc.indptr), shape=Xc.shape)
        gW = H.sum(axis=1)[None, :] - np.asarray(Q @ H.T)
        gH = W.sum(axis=0)[:, None] - np.asarray((Q.T @ W).T)
    elif sp.issparse(X):
        raise ValueError(
            f"kkt_residual on a sparse X is implemented for beta_loss 2 and 1, not {beta!r}; "
            "pass X.toarray() if it fits in memory."
        )
    else:
        # ∇_W = (WH^(β−1) − X ⊙ WH^(β−2)) Hᵀ
        Xd = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        WH = np.maximum(W @ H, np.finfo(np.float64).eps)
        Q = WH ** (beta - 1) - Xd * WH ** (beta - 2)
        gW = Q @ H.T
        gH = W.T @ Q
    rW = np.minimum(W, gW)
    rH = np.minimum(H, gH)
    res = float(np.linalg.norm(rW) + np.linalg.norm(rH))
    if not relative:
        return res
    scale = float(np.linalg.norm(gW) + np.linalg.norm(gH))
    return res / scale if scale > 0 else 0.0


def summary(X, W, H, beta_loss="frobenius") -> dict:
    """The metrics above in one dict (floats), for reports and the CLI."""
    return {
        "reconstruction_error": reconstruction_error(X, W, H, beta_loss),
        "relative_error": relative_error(X, W, H),
        "explained_variance": explained_variance(X, W, H),
        "sparseness_W": hoyer_sparseness(W),
        "sparseness_H": hoyer_sparseness(H),
        "kkt_residual": (
            kkt_residual(X, W, H, beta_loss)
            if not sp.issparse(X) or beta_loss_to_float(beta_loss) in (1.0, 2.0)
            else None
        ),
    }
