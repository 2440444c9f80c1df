"""Row-block kernels shared by the out-of-core and the Dask fits.

An alternating iteration of HALS or MU needs X only through row-separable pieces: the W-update
of a row block X_b uses X_b, W_b and H alone, and the H-update needs only the sums over blocks
of small statistics, (W_bᵀW_b, W_bᵀX_b) for Frobenius (k×k and k×n_features), or the MU
numerator W_bᵀ(X_b ⊙ (W_bH)^(β−2)) and denominator for other β. So one pass over the blocks
per iteration computes exactly what the in-memory solvers compute, in the same order: W
first (with the old H), then H from the reduced statistics. The arithmetic is the library's:
``nnls.hals_sweep`` for HALS and the MU solver's own W-update and quotients.

Every function here is a picklable top-level function of NumPy/SciPy blocks, so a Dask worker
can run it where the block lives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .backends import get_backend
from .losses import beta_divergence, frobenius_from_grams
from .nnls import hals_sweep
from .penalties import split_hals
from .solvers import Problem
from .solvers.mu import MultiplicativeUpdate, gamma_exponent

__all__ = ["BlockConfig", "block_objective", "block_step", "combine", "update_H"]

_ZERO_FLOOR = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class BlockConfig:
    """What a block kernel needs to know: the solver ("cd" = HALS or "mu"), β, penalties."""

    method: str
    beta: float
    penalties_W: tuple = field(default_factory=tuple)
    penalties_H: tuple = field(default_factory=tuple)
    #: HALS sweeps per half-iteration (1 = plain HALS; more reuse each pass over X)
    sweeps: int = 1

    @property
    def gamma(self) -> float:
        return gamma_exponent(self.beta)

    @property
    def frobenius_stats(self) -> bool:
        return self.method == "cd" or self.beta == 2.0


def _mu_solver(Xb, Wb, H, cfg: BlockConfig) -> MultiplicativeUpdate:
    nx = get_backend(Xb)
    Xp, Xt = nx.prepare_X(Xb)
    problem = Problem(
        X=Xp, Xt=Xt, W=Wb, H=H, beta=cfg.beta, nx=nx,
        penalties_W=list(cfg.penalties_W), update_H=False,
    )
    return MultiplicativeUpdate(problem)


def _cross(Xb, Wb):
    """W_bᵀ X_b, shape (k, n_features), dense."""
    if sp.issparse(Xb):
        return np.ascontiguousarray(np.asarray(Xb.T @ Wb).T)
    return Wb.T @ Xb


def block_step(Xb, Wb, H, cfg: BlockConfig, GH=None):
    """Update one row block of W with H fixed, then return its statistics for the H-update.

    Parameters
    ----------
    Xb : ndarray or sparse (b, n_features), the block of X.
    Wb : ndarray (b, k), its rows of W (not modified).
    H : ndarray (k, n_features).
    GH : ndarray (k, k), H Hᵀ, precomputed once per pass (HALS).

    Returns
    -------
    Wb_new : ndarray (b, k)
    stats : tuple of arrays, summed over blocks by :func:`combine`: (A (k, k) or (k, m),
        B (k, m) or (k,), W-penalty value (0-d)).
    """
    if sp.issparse(Xb) and Xb.format != "csr":
        Xb = Xb.tocsr()
    if cfg.method == "cd":
        Wt = np.array(Wb.T, order="C", copy=True)
        if GH is None:
            GH = H @ H.T
        R = np.ascontiguousarray(np.asarray(Xb @ H.T).T)  # H X_bᵀ, (k, b)
        l1, l2, extra = split_hals(cfg.penalties_W)
        for _ in range(cfg.sweeps):
            hals_sweep(Wt, GH, R, l1, l2, None, extra)
        Wn = np.ascontiguousarray(Wt.T)
        stats = (Wt @ Wn, _cross(Xb, Wn))
    else:
        solver = _mu_solver(Xb, np.array(Wb, order="C", copy=True), H, cfg)
        solver.update_W()
        Wn = solver.p.W
        if cfg.beta == 2.0:
            stats = (Wn.T @ Wn, _cross(Xb, Wn))
        else:
            ratio, WH = solver._ratio(Wn, H)
            num = np.asarray(solver.p.nx.matmul(Wn.T, ratio))
            if cfg.beta == 1.0:
                den = Wn.sum(axis=0)
            elif solver.p.sparse:
                den = solver._blocked_WH_pow_dot(Wn, H, "H")
            else:
                WH **= cfg.beta - 1
                den = Wn.T @ WH
            stats = (num, den)
    pen = sum(p.value(Wn.T) for p in cfg.penalties_W)
    return Wn, (*stats, np.float64(pen))


def combine(a, b):
    """Sum two statistics tuples (the reduction of a tree or of a sequential pass)."""
    return tuple(x + y for x, y in zip(a, b))


def update_H(H, stats, cfg: BlockConfig, sq_norm_X: float | None = None):
    """Update H in place from the reduced statistics, as the in-memory solver does.

    Returns the objective (loss + penalties) at (W, H_new) when it follows from the
    statistics (Frobenius), else None.
    """
    A, B, penW = stats
    if cfg.method == "cd":
        l1, l2, extra = split_hals(cfg.penalties_H)
        for _ in range(cfg.sweeps):
            hals_sweep(H, A, B, l1, l2, None, extra)
    else:
        eps = float(np.finfo(H.dtype).eps)
        if cfg.beta == 2.0:
            num, den = B.copy(), A @ H
        else:
            num = A.copy()
            if cfg.beta == 1.0:
                wsum = B.copy()
                wsum[wsum == 0] = 1.0
                den = np.broadcast_to(wsum[:, np.newaxis], H.shape).copy()
            else:
                den = B.copy()
        num, den = MultiplicativeUpdate.add_penalties(num, den, H, list(cfg.penalties_H), False)
        den[den == 0] = eps
        num /= den
        if cfg.gamma != 1:
            num **= cfg.gamma
        H *= num
        if cfg.beta <= 1:
            H[H < _ZERO_FLOOR] = 0.0
    if cfg.frobenius_stats and sq_norm_X is not None:
        penH = sum(p.value(H) for p in cfg.penalties_H)
        cross = float(np.vdot(B, H))
        gram = float(np.vdot(A, H @ H.T))
        return frobenius_from_grams(sq_norm_X, cross, gram) + float(penW) + penH
    return None


def block_objective(Xb, Wb, H, cfg: BlockConfig) -> float:
    """This block's share of the loss plus the W-penalties on its rows (float)."""
    pen = sum(p.value(np.asarray(Wb).T) for p in cfg.penalties_W)
    return beta_divergence(Xb, Wb, H, cfg.beta) + float(pen)


def block_summary(Xb) -> np.ndarray:
    """[Σx, Σx², min, max, n_finite_violations] of a block, for validation and init."""
    data = Xb.data if sp.issparse(Xb) else np.asarray(Xb)
    data = data.astype(np.float64, copy=False)
    n_zero_implicit = (Xb.shape[0] * Xb.shape[1] - Xb.nnz) if sp.issparse(Xb) else 0
    if data.size == 0:
        return np.array([0.0, 0.0, 0.0 if n_zero_implicit else np.inf, 0.0, 0.0])
    lo = float(data.min())
    if n_zero_implicit:
        lo = min(lo, 0.0)
    bad = float(np.count_nonzero(~np.isfinite(data)))
    return np.array([float(data.sum()), float(np.vdot(data, data)), lo, float(data.max()), bad])


def merge_summaries(a, b) -> np.ndarray:
    return np.array([a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3]), a[4] + b[4]])
