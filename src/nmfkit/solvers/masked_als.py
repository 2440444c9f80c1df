"""Masked alternating non-negative least squares (Frobenius), with L1/L2 penalties.

With weights M on the observed set Ω, the W-update decouples over rows: row i solves

    min_{w ≥ 0}  ½ wᵀ G_i w − r_iᵀ w + l1·Σw + ½ l2‖w‖²,
    G_i = Σ_{j∈Ω_i} M_ij h_j h_jᵀ  (k×k),   r_i = Σ_{j∈Ω_i} M_ij X_ij h_j,

and the H-update decouples over columns the same way. Each small problem is solved by
cyclic coordinate descent (exact minimisation along each coordinate, so the objective never
increases), vectorised across a block of rows, for up to ``inner_max_iter`` sweeps or until
the largest change is below ``inner_tol`` times the largest entry (ANLS in the limit; with one
sweep it is exactly the unmasked HALS/"cd" update when every entry is observed).

Cost per outer iteration: O(nnz·k²) to form the per-row Gram matrices, plus
O((n_samples + n_features)·k²) per inner sweep; memory O(block·k²). No array of size
n_samples × n_features is ever formed. Rows with no observation are set to the penalty's
minimiser (0) when a penalty is active, else left unchanged.

The row kernel :func:`solve_rows` is shared with :mod:`nmfkit.recommend` (biased models,
unconstrained bias coordinates).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..masked import every_entry, weighted_divergence
from ..penalties import has_hals_form, split_hals
from ._base import Solver, register_solver

__all__ = ["MaskedALS", "cd_rows", "solve_rows"]

_BLOCK_ELEMENTS = 1 << 22


def cd_rows(F, G, R, l1=0.0, l2=0.0, n_sweeps: int = 10, tol: float = 1e-3, free=None,
            order=None):
    """Coordinate descent on B independent quadratic problems, in place.

    Minimises ½ fᵀ G_b f − R_bᵀ f + l1·Σ f + ½ l2 ‖f‖² for each row b of F, with f ≥ 0 except
    at the coordinates where ``free`` is True (no bound, no L1 there).

    Parameters
    ----------
    F : ndarray (B, k), updated in place.
    G : ndarray (B, k, k), symmetric positive semi-definite.
    R : ndarray (B, k).
    l1, l2 : float or ndarray (B,), per-row penalty weights; l2 may also be (B, k), per
        row and coordinate.
    n_sweeps : int, the most cyclic passes over the k coordinates.
    tol : stop when the largest change of a sweep is ≤ tol × the largest |F| entry.
    free : None or boolean ndarray (k,).
    order : None (0, 1, …, k − 1) or the coordinates' order in every pass.
    """
    B, k = F.shape
    if B == 0:
        return F
    idx = np.arange(k)
    diag = G[:, idx, idx]
    l1 = np.asarray(l1, dtype=F.dtype)
    l2 = np.asarray(l2, dtype=F.dtype)
    for _ in range(n_sweeps):
        biggest = 0.0
        for t in range(k) if order is None else order:
            l2t = l2[:, t] if l2.ndim == 2 else l2
            hess = diag[:, t] + l2t
            grad = R[:, t] - np.einsum("bj,bj->b", G[:, t, :], F) - l2t * F[:, t]
            bounded = free is None or not free[t]
            if bounded and l1.any():
                grad = grad - l1
            ok = hess > 0
            step = np.divide(grad, hess, out=np.zeros_like(grad), where=ok)
            new = F[:, t] + step
            if bounded:
                np.maximum(new, 0, out=new)
            change = np.abs(new - F[:, t])
            if change.size:
                biggest = max(biggest, float(change.max()))
            F[:, t] = new
        if biggest <= tol * max(float(np.abs(F).max()), np.finfo(F.dtype).tiny):
            break
    return F


def active_rows(indptr):
    """(rows with at least one observation, their offsets into the CSR arrays + the end)."""
    counts = np.diff(indptr)
    active = np.flatnonzero(counts)
    return active, np.concatenate([indptr[active], indptr[-1:]])


def _grams(cptr, indices, targets, weights, other, P=None):
    """Per-row Gram matrices G (B, k, k) and right-hand sides R (B, k) for the rows whose
    observations span ``cptr`` (B + 1 offsets, every row non-empty).

    With ``P`` (the upper triangles of h_j h_jᵀ for every j, (N_other, k(k+1)/2)) it is one
    sparse × dense product, O(nnz·k²/2) with no temporary per observation. Otherwise rows
    go through one BLAS product each; when they hold fewer than 4 observations on
    average (e.g. a huge, very sparse matrix) they are batched with a segmented sum instead,
    which avoids a Python-level loop over millions of rows.
    """
    B, k = cptr.shape[0] - 1, other.shape[1]
    s, e = int(cptr[0]), int(cptr[-1])
    if P is not None:
        # G_i = Σ_j M_ij (h_j ⊗ h_j): one sparse × dense product on the upper triangles
        iu = np.triu_indices(k)
        S = sp.csr_matrix((weights[s:e], indices[s:e], cptr - s), shape=(B, other.shape[0]))
        G_up = np.asarray(S @ P)
        G = np.empty((B, k, k), dtype=other.dtype)
        G[:, iu[0], iu[1]] = G_up
        G[:, iu[1], iu[0]] = G_up
        S.data = weights[s:e] * targets[s:e]
        return G, np.asarray(S @ other)
    if e - s < 4 * B:
        Oj = other[indices[s:e]]
        Ow = Oj * weights[s:e, None]
        starts = cptr[:-1] - s
        G = np.add.reduceat(Ow[:, :, None] * Oj[:, None, :], starts, axis=0)
        R = np.add.reduceat(Ow * targets[s:e, None], starts, axis=0)
        return G, R
    G = np.empty((B, k, k), dtype=other.dtype)
    R = np.empty((B, k), dtype=other.dtype)
    for b in range(B):
        lo, hi = int(cptr[b]), int(cptr[b + 1])
        Oj = other[indices[lo:hi]]
        Ow = Oj * weights[lo:hi, None]
        np.dot(Ow.T, Oj, out=G[b])
        np.dot(Ow.T, targets[lo:hi], out=R[b])
    return G, R


def solve_rows(F, indptr, indices, targets, weights, other, l1=0.0, l2=0.0,
               n_sweeps: int = 10, tol: float = 1e-3, free=None, active=None, order=None):
    """Update every row of F (in place) by coordinate descent on its weighted normal equations.

    Row i of F fits ``targets[q] ≈ F[i] · other[indices[q]]`` with weight ``weights[q]`` over
    its observations q ∈ [indptr[i], indptr[i+1]) (CSR order).

    Parameters
    ----------
    F : ndarray (N, k), the factor being solved for, row-major.
    indptr, indices : CSR structure of the observations (N + 1,), (nnz,).
    targets, weights : ndarray (nnz,).
    other : ndarray (N_other, k), the fixed factor, row-major.
    l1, l2 : float or ndarray (N,), penalty weights per row (l2 also (N, k)).
    n_sweeps, tol, free, order : see :func:`cd_rows`.
    active : optional precomputed ``(rows with observations, their compressed indptr)``.
    """
    N, k = F.shape
    rows_act, cptr = active if active is not None else active_rows(indptr)
    l1a, l2a = np.asarray(l1), np.asarray(l2)
    if rows_act.shape[0] < N and (l1a.any() or l2a.any()):
        idle = np.ones(N, dtype=bool)
        idle[rows_act] = False
        F[idle] = 0  # the penalty alone is minimised at 0
    max_nnz = max(1, _BLOCK_ELEMENTS // (k * k))
    n_act = rows_act.shape[0]
    P = None
    if other.shape[0] * k * (k + 1) // 2 <= 4 * _BLOCK_ELEMENTS:
        iu = np.triu_indices(k)
        P = other[:, iu[0]] * other[:, iu[1]]
    a0 = 0
    while a0 < n_act:
        if P is None:
            a1 = int(np.searchsorted(cptr, cptr[a0] + max_nnz, side="right")) - 1
            a1 = min(max(a1, a0 + 1), n_act, a0 + max_nnz)
        else:
            a1 = min(a0 + max_nnz, n_act)
        rows = rows_act[a0:a1]
        G, R = _grams(cptr[a0 : a1 + 1], indices, targets, weights, other, P)
        Fb = F[rows]
        cd_rows(
            Fb, G, R,
            l1a[rows] if l1a.ndim else l1a, l2a[rows] if l2a.ndim else l2a,
            n_sweeps, tol, free, order,
        )
        F[rows] = Fb
        a0 = a1
    return F


class MaskedFrobenius:
    """What the masked Frobenius solvers (masked_als, masked_cd) share: the capabilities, the
    L1/L2 penalties in their HALS form, the observed set (every entry when no mask)."""

    betas = (2.0,)
    sparse = True
    monotone = True
    masks = True
    multiplicative = False

    @classmethod
    def supports_penalty(cls, pen, beta=None) -> bool:
        return has_hals_form(pen)

    def _observed_setup(self):
        p = self.p
        if p.M is None:
            p.M = every_entry(p.X)
        self.obs = p.M
        self.l1W, self.l2W, _ = split_hals(p.penalties_W)
        self.l1H, self.l2H, _ = split_hals(p.penalties_H)
        return self.obs


@register_solver
class MaskedALS(MaskedFrobenius, Solver):
    name = "masked_als"
    masked_for = ("cd", "anls")
    shuffles = True  # the rows' coordinate descent takes each half-step's order
    default_options = {"inner_max_iter": 10, "inner_tol": 1e-3}

    def setup(self):
        p = self.p
        obs = self._observed_setup()
        self.Wr = np.ascontiguousarray(p.W)
        self.Ht = np.ascontiguousarray(p.H.T)
        self.t_values = obs.values[obs.t_perm]
        self.t_weights = obs.weights[obs.t_perm]
        self.act_rows = active_rows(obs.indptr)
        self.act_cols = active_rows(obs.t_indptr)

    @property
    def W(self):
        return self.Wr

    @property
    def H(self):
        return self.Ht.T

    def get_factors(self):
        return self.Wr.copy(), self.Ht.T.copy()

    def set_factors(self, W, H):
        self.Wr = np.ascontiguousarray(W)
        self.Ht = np.ascontiguousarray(H.T)

    def finalize(self):
        return self.Wr, np.ascontiguousarray(self.Ht.T)

    def step(self):
        p, obs = self.p, self.obs
        sweeps, tol = int(self.options["inner_max_iter"]), float(self.options["inner_tol"])
        k = self.Wr.shape[1]
        if p.update_W:
            solve_rows(
                self.Wr, obs.indptr, obs.indices, obs.values, obs.weights, self.Ht,
                self.l1W, self.l2W, sweeps, tol, active=self.act_rows,
                order=p.rng.permutation(k) if p.shuffle else None,
            )
        if p.update_H:
            solve_rows(
                self.Ht, obs.t_indptr, obs.t_indices, self.t_values, self.t_weights, self.Wr,
                self.l1H, self.l2H, sweeps, tol, active=self.act_cols,
                order=p.rng.permutation(k) if p.shuffle else None,
            )

    def objective(self) -> float:
        W, H = self.W, self.H
        return weighted_divergence(self.obs, W, H, 2.0) + self.p.penalty_value(W, H)
