"""Coordinate descent (HALS) for the Frobenius loss, with L1/L2 penalties.

Each outer iteration updates W, then H, each by one exact pass of block coordinate descent
over the k components (Cichocki & Phan 2009; scikit-learn's ``solver="cd"`` performs the same
updates element by element). The Gram products are computed once per half-iteration through
BLAS and the sweep itself is O((n_samples + n_features)·k²), so on a sparse X the cost is
O(nnz·k) for the products plus the sweep — X is never densified.
"""

from __future__ import annotations

from ..nnls import hals_sweep
from ..penalties import split_hals
from ._base import Solver, register_solver

__all__ = ["CoordinateDescent"]


@register_solver
class CoordinateDescent(Solver):
    name = "cd"
    betas = (2.0,)
    sparse = True
    monotone = True
    supports_frozen = True
    # issue 7 (torch): the Frobenius path runs on torch tensors too — keep its array calls on
    # ``p.nx`` (ascontiguous/copy/empty_like/clip_min/vdot) and pass nx to hals_sweep
    backends = frozenset({"numpy", "torch"})

    def setup(self):
        p = self.p
        self.Wt = p.nx.ascontiguous(p.W.T)
        self.Hc = p.nx.ascontiguous(p.H)
        self.l1W, self.l2W, self.extraW = split_hals(p.penalties_W)
        self.l1H, self.l2H, self.extraH = split_hals(p.penalties_H)
        self._RW = self._GH = None

    # the solver works on Wᵀ; the public orientation is a view
    @property
    def W(self):
        return self.Wt.T

    @property
    def H(self):
        return self.Hc

    def get_factors(self):
        return self.p.nx.copy(self.Wt.T), self.p.nx.copy(self.Hc)

    def set_factors(self, W, H):
        self.Wt = self.p.nx.ascontiguous(W.T)
        self.Hc = self.p.nx.ascontiguous(H)

    def finalize(self):
        return self.p.nx.ascontiguous(self.Wt.T), self.Hc

    def _order(self, k, frozen=()):
        p = self.p
        order = p.nx.permutation(p.rng, k) if p.shuffle else None
        if frozen:  # frozen components (issue 4) are skipped by the sweep, never written
            order = [int(t) for t in (range(k) if order is None else order) if t not in frozen]
        return order

    def _cross_W(self):
        """H Xᵀ, shape (k, n_samples)."""
        p = self.p
        if p.sparse:
            return p.nx.ascontiguous(p.nx.matmul(p.X, self.Hc.T).T)
        return self.Hc @ p.Xt

    def _cross_H(self):
        """Wᵀ X, shape (k, n_features)."""
        p = self.p
        if p.sparse:
            return p.nx.ascontiguous(p.nx.matmul(p.Xt, self.Wt.T).T)
        return self.Wt @ p.X

    def step(self):
        p, nx = self.p, self.p.nx
        if p.update_W:
            if self._RW is None or p.update_H:
                self._RW = self._cross_W()
                self._GH = self.Hc @ self.Hc.T
            hals_sweep(
                self.Wt, self._GH, self._RW, self.l1W, self.l2W,
                self._order(self.Wt.shape[0], p.frozen_W), self.extraW, nx=nx,
            )
        if p.update_H:
            R = self._cross_H()
            G = self.Wt @ self.Wt.T
            hals_sweep(
                self.Hc, G, R, self.l1H, self.l2H, self._order(self.Hc.shape[0], p.frozen_H),
                self.extraH, nx=nx,
            )
            H = self.Hc
            return self._frobenius_objective(nx.vdot(R, H), nx.vdot(G, H @ H.T), self.W, H)
        Wt = self.Wt
        return self._frobenius_objective(
            nx.vdot(self._RW, Wt), nx.vdot(self._GH, Wt @ Wt.T), self.W, self.Hc
        )
